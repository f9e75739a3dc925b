//! The `mailbeacon` command line. Parsing lives here, each family of commands in a file of its
//! own; every command calls the same library code the HTTP routes use.

mod campaigns;
mod dashboard_password;
mod domains;
mod engagement;
mod keys;
mod maintenance;
mod migrate;
mod providers;
mod ranges;
mod reports;
mod segments;
mod tokens;
mod webhooks;

use crate::config::Settings;
use crate::export::ExportFormat;
use crate::startup::{self, Context};
use crate::store::{CampaignId, Scope};
use clap::{Parser, Subcommand};
use keys::KeyCommand;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "mailbeacon",
    version,
    about = "Self-hosted email open- and click-tracking"
)]
pub struct Cli {
    /// TOML file with settings, keyed like the long flags (public-url = "https://t.example.com").
    #[arg(long, env = "MAILBEACON_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: Settings,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the tracker, the API and the metrics endpoint.
    Serve,
    /// Create, list, edit and delete campaigns.
    #[command(subcommand)]
    Campaign(campaigns::CampaignCommand),
    /// Instrument one email for one recipient: reads HTML (from FILE or stdin), writes it with a
    /// tracking pixel and tracked links to stdout, and registers the message.
    Instrument(campaigns::InstrumentArgs),
    /// Print tracking URLs for mail built elsewhere.
    #[command(subcommand)]
    Url(campaigns::UrlCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Manage the signing keys kept in the database.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Send opens, clicks, opt-outs and erasures to your own systems as signed HTTP requests.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Manage the tracking domains of your own that campaigns' links may use.
    #[command(subcommand)]
    Domains(domains::DomainsCommand),
    /// Manage the published address lists classification uses (Apple, Google, Microsoft, ...).
    #[command(subcommand)]
    Ranges(ranges::RangesCommand),
    /// Classify every stored event again (after the rules or the data files changed); reports
    /// follow at once.
    Reclassify {
        /// Only this campaign's events.
        #[arg(long, value_name = "ID")]
        campaign: Option<CampaignId>,
    },
    /// Remove every message, event and address of a recipient, across campaigns, and say what
    /// was removed (a right-to-erasure request).
    Erase {
        #[arg(long, value_name = "RID")]
        recipient: String,
        #[arg(long)]
        json: bool,
    },
    /// Check that every campaign's report rollups, and every message's history summary, agree
    /// with the event log; --repair rewrites the rollups that do not and clears those summaries
    /// (the next hit rebuilds them). Exits with 1 when a difference is found and not repaired.
    Check {
        #[arg(long)]
        repair: bool,
    },
    /// Recompute the report rollups from the event log (a repair after editing the database by
    /// hand or restoring events; counts of events that retention deleted are lost by it).
    #[command(hide = true)]
    RebuildRollups,
    /// Delete raw events older than --retention-days (or --older-than-days); rollups, and so the
    /// reports, stay.
    Purge {
        /// Overrides --retention-days for this run.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=36_500))]
        older_than_days: Option<u32>,
    },
    /// Set the password that signs in to the dashboard with a scope (read from stdin, one line,
    /// at least 12 characters). Setting it again replaces it.
    DashboardPassword {
        #[arg(long, value_enum)]
        scope: Scope,
    },
    /// Write one of a campaign's reports (what the API's report routes answer) as JSON, CSV or
    /// NDJSON.
    Report(reports::ReportArgs),
    /// Deliverability by mailbox provider: check the campaigns due now (the server does so every
    /// ten minutes).
    #[command(subcommand)]
    Providers(providers::ProvidersCommand),
    /// Count a campaign's recipients by segment (opened, clicked, machine only, not opened,
    /// untracked), or list one segment's recipients (per-recipient data, audited).
    Segments(segments::SegmentArgs),
    /// When a reader last opened or clicked each recipient's mail and how many of their latest
    /// messages they read (machine activity never counts): engaged-in-90-days and sunset lists
    /// (per-recipient data, audited).
    Engagement(engagement::EngagementArgs),
    /// Show a campaign's numbers.
    Stats {
        #[arg(long, value_name = "ID")]
        campaign: CampaignId,
        #[arg(long)]
        json: bool,
    },
    /// Write every event of a campaign (per-recipient data), oldest first, as CSV or NDJSON: the
    /// events stored when the export starts. Shows a progress bar on a terminal.
    Export {
        #[arg(long, value_name = "ID")]
        campaign: CampaignId,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// The file to write (replaced if it exists); stdout when left out.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Move an installation from SQLite to PostgreSQL, verified.
    ///
    /// Copies every table with its ids into an empty PostgreSQL database or schema (a progress bar
    /// on a terminal), compares both sides (rows, highest id and a checksum per table, events per
    /// campaign), prints the comparison, and keeps the copy only when they are equal; otherwise
    /// the target is left empty and the exit code is 1. Stop mailbeacon first. --database is not
    /// used.
    MigrateData {
        /// The SQLite database to copy: sqlite://PATH.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty PostgreSQL database to copy into: postgres://USER@HOST/DB (a schema:
        /// add ?options=-csearch_path%3DSCHEMA).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// Runs one command; what it prints goes to stdout, progress and notes to stderr.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = match &cli.config {
        Some(path) => cli
            .settings
            .or_file(Settings::from_file(path).map_err(anyhow::Error::msg)?),
        None => cli.settings,
    }
    .resolve();
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Serve => startup::serve(settings).await.map(|()| ExitCode::SUCCESS),
        Command::Key(KeyCommand::Generate { id }) => done(keys::generate(id, out)),
        Command::MigrateData { from, to } => done(migrate::run(&from, &to, out).await),
        command => {
            let ctx = Context::open(settings).await?;
            run_with_database(&ctx, command, out).await
        }
    }
}

fn done(result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    result.map(|()| ExitCode::SUCCESS)
}

async fn run_with_database(
    ctx: &Context,
    command: Command,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    done(match command {
        Command::Campaign(command) => campaigns::run(ctx, command, out).await,
        Command::Instrument(args) => campaigns::instrument(ctx, args, out).await,
        Command::Url(command) => campaigns::url(ctx, command, out).await,
        Command::Token(command) => tokens::run(ctx, command, out).await,
        Command::Key(command) => keys::run(ctx, command, out).await,
        Command::Webhooks(command) => webhooks::run(ctx, command, out).await,
        Command::Ranges(command) => ranges::run(ctx, command, out).await,
        Command::Domains(command) => domains::run(ctx, command, out).await,
        Command::Check { repair } => return maintenance::check(ctx, repair, out).await,
        Command::RebuildRollups => maintenance::rebuild_rollups(ctx, out).await,
        Command::Purge { older_than_days } => maintenance::purge(ctx, older_than_days, out).await,
        Command::Reclassify { campaign } => maintenance::reclassify(ctx, campaign, out).await,
        Command::Erase { recipient, json } => maintenance::erase(ctx, recipient, json, out).await,
        Command::DashboardPassword { scope } => dashboard_password::set(ctx, scope, out).await,
        Command::Report(args) => reports::report(ctx, args, out).await,
        Command::Segments(args) => segments::segments(ctx, args, out).await,
        Command::Engagement(args) => engagement::engagement(ctx, args, out).await,
        Command::Providers(command) => providers::run(ctx, command, out).await,
        Command::Stats { campaign, json } => reports::stats(ctx, campaign, json, out).await,
        Command::Export {
            campaign,
            format,
            output,
        } => reports::export(ctx, campaign, format, output, out).await,
        Command::Serve | Command::MigrateData { .. } => unreachable!("handled in run"),
    })
}

/// Writes one page of a paged listing as `format` gives it: CSV's header only before the first
/// page's rows, JSON as one array per line (a page each).
fn write_page<R: serde::Serialize + Default>(
    out: &mut dyn Write,
    format: crate::encode::format::Format,
    rows: &[R],
    first: bool,
) -> anyhow::Result<()> {
    use crate::encode::format::{Format, encode};
    if format == Format::Parquet {
        anyhow::bail!(
            "--format parquet is for reports and exports; this listing is written page by page: use json, ndjson or csv"
        );
    }
    let body = encode(format, &rows, rows).map_err(|e| anyhow::anyhow!("{e}"))?;
    let body = match (format, first) {
        (Format::Csv, false) => body.splitn(2, |b| *b == b'\n').nth(1).unwrap_or_default(),
        _ => &body[..],
    };
    out.write_all(body)?;
    if format == Format::Json {
        writeln!(out)?;
    }
    Ok(())
}
