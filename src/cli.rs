//! The `mailbeacon` command line. Parsing lives here; every command calls the same library code the
//! HTTP routes use.

mod keys;
mod tokens;

use keys::KeyCommand;

use crate::analytics::CampaignReport;
use crate::api;
use crate::classify::ranges;
use crate::config::Settings;
use crate::export::{EventExport, ExportFormat};
use crate::messages::MessageRequest;
use crate::startup::{self, Context};
use crate::store::{AddressList, CampaignId, Scope};
use anyhow::{Context as _, bail};
use chrono::{DateTime, FixedOffset, Utc};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Create and list campaigns.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Instrument one email for one recipient: reads HTML (from FILE or stdin), writes it with a
    /// tracking pixel and tracked links to stdout, and registers the message.
    Instrument {
        #[arg(long, value_name = "ID")]
        campaign: CampaignId,
        #[arg(long, value_name = "RID")]
        recipient: String,
        /// When the mail was or will be sent (RFC 3339; default now).
        #[arg(long, value_name = "TIME")]
        sent_at: Option<DateTime<FixedOffset>>,
        /// The HTML file; stdin when left out.
        file: Option<PathBuf>,
    },
    /// Print tracking URLs for mail built elsewhere.
    #[command(subcommand)]
    Url(UrlCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Manage the signing keys kept in the database.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Send opens, clicks, opt-outs and erasures to your own systems as signed HTTP requests.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Manage the published address lists classification uses (Apple, Google, Microsoft, ...).
    #[command(subcommand)]
    Ranges(RangesCommand),
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
    Report {
        #[arg(long, value_name = "ID")]
        campaign: CampaignId,
        /// report (the headline figures), timeseries, links, hour-of-week, or a breakdown:
        /// client, os, device, country, class.
        #[arg(long, value_name = "NAME", default_value = "report")]
        report: String,
        /// json, csv or ndjson.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Time series: hour or day (default: by the campaign's span).
        #[arg(long)]
        interval: Option<String>,
        /// Time series window start and end (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Hour of week: the UTC offset (+02:00).
        #[arg(long, allow_hyphen_values = true)]
        tz: Option<String>,
        /// The file to write; stdout when left out.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
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

#[derive(Subcommand, Debug)]
pub enum CampaignCommand {
    /// Create a campaign and print its id.
    Create {
        #[arg(long)]
        name: String,
        /// An HTML template used for messages registered without HTML of their own.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List campaigns, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RangesCommand {
    /// Replace a shipped list with a file you downloaded from its publisher: a plain list (one
    /// CIDR per line), Apple's egress-ip-ranges.csv, Google's goog.json or Microsoft's endpoints
    /// JSON. Restart running servers and run `reclassify` to apply it.
    Import {
        /// Which list: apple-mpp-egress, apple-network, google-image-proxy, microsoft-eop,
        /// microsoft-exchange-online, barracuda-egd or mailru-image-proxy.
        #[arg(long, value_name = "NAME")]
        list: String,
        /// Where the file came from (default: its name).
        #[arg(long)]
        source: Option<String>,
        file: PathBuf,
    },
    /// Show each list, its size and whether it is the shipped copy or an import.
    List,
    /// Forget an imported list, so that the shipped copy applies again.
    Reset {
        #[arg(long, value_name = "NAME")]
        list: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Register an endpoint and print its id and signing secret (shown once). Running servers
    /// send to it from their next batch on.
    Add {
        #[arg(long)]
        url: String,
        /// open, click, opt_out, erasure (comma separated; default all four).
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
        /// Only events of these classes, or `readers` (default: every class).
        #[arg(long, value_delimiter = ',')]
        classes: Vec<String>,
        /// Only this campaign's opens and clicks.
        #[arg(long, value_name = "ID")]
        campaign: Option<CampaignId>,
        /// Only the first reader open / click of each message (a follow-up trigger).
        #[arg(long)]
        first_only: bool,
        /// Notices per request (default 1).
        #[arg(long, value_name = "N")]
        batch_size: Option<u32>,
        /// Requests a second at most (default 10).
        #[arg(long, value_name = "PER_SECOND")]
        rate_limit: Option<u32>,
        #[arg(long)]
        description: Option<String>,
        /// Use this whsec_ secret instead of a generated one.
        #[arg(long, hide_env_values = true)]
        secret: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List endpoints with their delivery status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint and the notices waiting for it.
    Remove { id: i64 },
    /// Send an endpoint's dead letters again (or every endpoint's with --all).
    Replay {
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UrlCommand {
    /// Register a message for the recipient and print its pixel URL.
    Open {
        #[arg(long, value_name = "ID")]
        campaign: CampaignId,
        #[arg(long, value_name = "RID")]
        recipient: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = match &cli.config {
        Some(path) => cli
            .settings
            .or_file(Settings::from_file(path).map_err(anyhow::Error::msg)?),
        None => cli.settings,
    }
    .resolve();
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Serve => startup::serve(settings).await,
        Command::Key(KeyCommand::Generate { id }) => keys::generate(id, out),
        Command::MigrateData { from, to } => migrate_data(&from, &to, out).await,
        command => {
            let ctx = Context::open(settings).await?;
            run_with_database(&ctx, command, out).await
        }
    }
}

async fn run_with_database(
    ctx: &Context,
    command: Command,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        Command::Campaign(CampaignCommand::Create { name, html, json }) => {
            let name = api::valid_name(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let template = match html {
                Some(path) => {
                    let html = read_html(Some(&path))?;
                    crate::instrument::check_html(&html)
                        .with_context(|| format!("{}", path.display()))?;
                    Some(html)
                }
                None => None,
            };
            let campaign = ctx.store.create_campaign(name, template.as_deref()).await?;
            if json {
                serde_json::to_writer(&mut *out, &campaign)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", campaign.id)?;
            }
        }
        Command::Campaign(CampaignCommand::List { json }) => {
            let campaigns = ctx.store.campaigns().await?;
            if json {
                serde_json::to_writer(&mut *out, &campaigns)?;
                writeln!(out)?;
            } else {
                for c in campaigns {
                    writeln!(
                        out,
                        "{}\t{}\t{}",
                        c.id,
                        c.created_at.format("%Y-%m-%d"),
                        c.name
                    )?;
                }
            }
        }
        Command::Instrument {
            campaign,
            recipient,
            sent_at,
            file,
        } => {
            let html = read_html(file.as_ref())?;
            let message = register(ctx, campaign, recipient, Some(html), sent_at).await?;
            out.write_all(message.html.unwrap_or_default().as_bytes())?;
            match (message.message_id, &message.pixel_url) {
                (Some(id), Some(pixel)) => eprintln!(
                    "registered message {id} for recipient {} ({:?} tracking); pixel {pixel}",
                    message.recipient_id, message.tracking
                ),
                _ => eprintln!(
                    "not tracked (--max-tracking-level none): the HTML is unchanged, nothing stored"
                ),
            }
        }
        Command::Url(UrlCommand::Open {
            campaign,
            recipient,
        }) => {
            let message = register(ctx, campaign, recipient, None, None).await?;
            let pixel = message.pixel_url.context(
                "tracking is off (--max-tracking-level none): there is no pixel to give",
            )?;
            writeln!(out, "{pixel}")?;
        }
        Command::Token(command) => tokens::run(ctx, command, out).await?,
        Command::Webhooks(command) => webhooks(ctx, command, out).await?,
        Command::Check { repair } => {
            let check = ctx.store.check_rollups(repair).await?;
            for (campaign, rows) in &check.differences {
                writeln!(
                    out,
                    "campaign {campaign}: rollups differ from the event log"
                )?;
                for row in rows {
                    writeln!(out, "  {row}")?;
                }
            }
            if !check.campaigns_skipped.is_empty() {
                writeln!(
                    out,
                    "skipped campaigns {:?}: retention deleted some of their events, so their rollups hold more than the log",
                    check.campaigns_skipped
                )?;
            }
            writeln!(
                out,
                "checked {} campaigns: {}",
                check.campaigns_checked,
                match (check.differences.len(), check.repaired) {
                    (0, _) => "rollups match the event log".to_string(),
                    (n, true) => format!("{n} repaired"),
                    (n, false) => format!("{n} differ (run with --repair to rewrite them)"),
                }
            )?;
            if !check.summaries_wrong.is_empty() {
                writeln!(
                    out,
                    "messages {:?}: history summary differs from the event log",
                    &check.summaries_wrong[..check.summaries_wrong.len().min(20)]
                )?;
            }
            writeln!(
                out,
                "checked {} message history summaries: {}",
                check.summaries_checked,
                match (check.summaries_wrong.len(), check.repaired) {
                    (0, _) => "they match the event log".to_string(),
                    (n, true) => format!("{n} cleared (rebuilt from the log at the next hit)"),
                    (n, false) => format!("{n} differ (run with --repair to clear them)"),
                }
            )?;
            let damaged = !check.differences.is_empty() || !check.summaries_wrong.is_empty();
            if damaged && !check.repaired {
                out.flush()?;
                std::process::exit(1);
            }
        }
        Command::RebuildRollups => {
            let started = std::time::Instant::now();
            ctx.store.rebuild_rollups().await?;
            writeln!(
                out,
                "rollups rebuilt from the event log in {:.1} s",
                started.elapsed().as_secs_f64()
            )?;
        }
        Command::Purge { older_than_days } => {
            let Some(days) = older_than_days.or(ctx.settings.retention_days) else {
                bail!(
                    "say how old events must be to go: --older-than-days N, or set --retention-days / MAILBEACON_RETENTION_DAYS"
                );
            };
            let before = Utc::now() - chrono::Duration::days(days.into());
            ctx.audit_cli(
                "purge_events",
                &format!("received before {}", before.to_rfc3339()),
            )
            .await?;
            let bar = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("purging {spinner} {pos} events deleted ({per_sec})")
                    .expect("valid progress template"),
            );
            let shown = bar.clone();
            let summary = ctx
                .store
                .purge_events(before, Arc::new(move |done, _| shown.set_position(done)))
                .await?;
            bar.finish_and_clear();
            writeln!(
                out,
                "deleted {} events of {} messages received before {}; reports are unchanged",
                summary.events,
                summary.messages,
                before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )?;
        }
        Command::DashboardPassword { scope } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.chars().count() < 12 {
                bail!(
                    "the password must be at least 12 characters long (give it on stdin: echo 'PASSWORD' | mailbeacon dashboard-password --scope {})",
                    scope.as_str()
                );
            }
            ctx.audit_cli("set_dashboard_password", scope.as_str())
                .await?;
            let hash = crate::dashboard::session::hash_password(password)?;
            ctx.store.set_dashboard_password(scope, hash).await?;
            writeln!(
                out,
                "dashboard password for scope {} set; sign in at /login",
                scope.as_str()
            )?;
        }
        Command::Key(command) => keys::run(ctx, command, out).await?,
        Command::Ranges(RangesCommand::Import { list, source, file }) => {
            let tag = known_list(&list)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let (nets, format) =
                ranges::parse_import(tag, &text).with_context(|| format!("{}", file.display()))?;
            if nets.is_empty() {
                bail!("{} holds no addresses for {tag}", file.display());
            }
            let cidrs: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            ctx.store
                .save_address_list(AddressList {
                    list: tag.to_string(),
                    source: source.unwrap_or_else(|| file.display().to_string()),
                    format: format.to_string(),
                    imported_at: Utc::now(),
                    cidrs: cidrs.join("\n"),
                })
                .await?;
            writeln!(
                out,
                "{tag}: {} ranges imported ({format}); restart running servers, and run `mailbeacon reclassify` to apply them to stored events",
                nets.len()
            )?;
        }
        Command::Ranges(RangesCommand::List) => {
            let imported = ctx.store.address_lists().await?;
            let classifier = ctx.classifier().await?;
            for (tag, intervals) in classifier.ranges.summary() {
                let origin = match imported.iter().find(|l| l.list == tag) {
                    Some(l) => format!(
                        "imported {} from {} ({})",
                        l.imported_at.format("%Y-%m-%d"),
                        l.source,
                        l.format
                    ),
                    None => "shipped (data/ip-ranges)".to_string(),
                };
                writeln!(out, "{tag:<26} {intervals:>6} ranges  {origin}")?;
            }
        }
        Command::Ranges(RangesCommand::Reset { list }) => {
            let tag = known_list(&list)?;
            if ctx.store.delete_address_list(tag.to_string()).await? {
                writeln!(
                    out,
                    "{tag}: the shipped list applies again; restart running servers"
                )?;
            } else {
                writeln!(
                    out,
                    "{tag}: no imported list; the shipped one already applies"
                )?;
            }
        }
        Command::Reclassify { campaign } => {
            if let Some(id) = campaign {
                ctx.store
                    .campaign(id)
                    .await?
                    .with_context(|| format!("campaign {id} does not exist"))?;
            }
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template(
                    "reclassifying {bar:40} {pos}/{len} events ({per_sec}, {eta} left)",
                )
                .expect("valid progress template"),
            );
            let shown = bar.clone();
            let started = std::time::Instant::now();
            let summary = ctx
                .store
                .reclassify(
                    campaign,
                    Arc::new(ctx.classifier().await?),
                    Arc::new(move |done, total| {
                        shown.set_length(total);
                        shown.set_position(done);
                    }),
                )
                .await?;
            bar.finish_and_clear();
            writeln!(
                out,
                "reclassified {} events in {:.1} s: {} changed",
                summary.events,
                started.elapsed().as_secs_f64(),
                summary.changed
            )?;
        }
        Command::Erase { recipient, json } => {
            let recipient = recipient.trim().to_string();
            if recipient.is_empty() {
                bail!("--recipient must not be empty");
            }
            ctx.audit_cli("erase_recipient", &api::recipient_ref(&recipient))
                .await?;
            let removed = ctx.store.erase_recipient(recipient.clone()).await?;
            if json {
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({"recipient_id": recipient, "removed": removed}),
                )?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "erased {recipient:?}: {} messages, {} links, {} events, {} opt-out records",
                    removed.messages, removed.links, removed.events, removed.opt_outs
                )?;
            }
        }
        Command::Report {
            campaign,
            report,
            format,
            interval,
            from,
            to,
            tz,
            output,
        } => {
            use crate::api::reports::{Options, Which, render};
            let which = Which::parse(&report).with_context(|| {
                format!(
                    "'{report}' is not a report: use report, timeseries, links, hour-of-week, client, os, device, country or class"
                )
            })?;
            let format = crate::api::format::negotiate(&Default::default(), Some(&format))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let offset_minutes = match tz.as_deref() {
                None => 0,
                Some(tz) => crate::analytics::report::parse_offset(tz).with_context(|| {
                    format!("--tz '{tz}' is not a UTC offset such as +02:00 or -05:30")
                })?,
            };
            let c = ctx
                .store
                .campaign(campaign)
                .await?
                .with_context(|| format!("campaign {campaign} does not exist"))?;
            let options = Options {
                interval,
                from,
                to,
                offset_minutes,
            };
            let (_, body) = render(&*ctx.store, &c, which, &options, format)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            match output {
                Some(path) => std::fs::write(&path, &body)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => out.write_all(&body)?,
            }
        }
        Command::Stats { campaign, json } => {
            let c = ctx
                .store
                .campaign(campaign)
                .await?
                .with_context(|| format!("campaign {campaign} does not exist"))?;
            let report = CampaignReport::from(ctx.store.campaign_stats(c.id).await?);
            if json {
                serde_json::to_writer(&mut *out, &report)?;
                writeln!(out)?;
            } else {
                writeln!(out, "campaign {} {:?}\n{report}", c.id, c.name)?;
            }
        }
        Command::Export {
            campaign,
            format,
            output,
        } => export(ctx, campaign, format, output, out).await?,
        Command::Serve | Command::MigrateData { .. } => {
            unreachable!("handled in run")
        }
    }
    Ok(())
}

async fn webhooks(
    ctx: &Context,
    command: WebhooksCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Add {
            url,
            kinds,
            classes,
            campaign,
            first_only,
            batch_size,
            rate_limit,
            description,
            secret,
            json,
        } => {
            let new = api::webhooks::CreateWebhook {
                url,
                kinds: (!kinds.is_empty()).then_some(kinds),
                classes: (!classes.is_empty()).then_some(classes),
                campaign_id: campaign,
                first_only,
                batch_size,
                rate_limit,
                description,
                secret,
            }
            .validate(&*ctx.store, ctx.settings.webhooks.allow_private)
            .await
            .map_err(anyhow::Error::msg)?;
            let secret = new.secret.clone();
            let hook = ctx.store.create_webhook(new).await?;
            ctx.audit_cli("create_webhook", &format!("webhook {}", hook.id))
                .await?;
            if json {
                let mut v = serde_json::to_value(&hook)?;
                v["secret"] = secret.into();
                serde_json::to_writer(&mut *out, &v)?;
                writeln!(out)?;
            } else {
                writeln!(out, "webhook {} -> {}", hook.id, hook.url)?;
                writeln!(out, "signing secret (shown once): {secret}")?;
            }
        }
        WebhooksCommand::List { json } => {
            let hooks = ctx.store.webhooks().await?;
            if json {
                serde_json::to_writer(&mut *out, &serde_json::json!({ "webhooks": hooks }))?;
                writeln!(out)?;
                return Ok(());
            }
            if hooks.is_empty() {
                writeln!(
                    out,
                    "no webhooks; add one with `mailbeacon webhooks add --url URL`"
                )?;
            }
            for h in hooks {
                let s = &h.status;
                writeln!(
                    out,
                    "{}  {}  [{}]{}  pending {}  delivered {}  dead {}{}",
                    h.id,
                    h.url,
                    crate::webhooks::kinds_text(&h.kinds),
                    if h.first_only { " first only" } else { "" },
                    s.pending,
                    s.delivered,
                    s.dead,
                    match (&s.last_error, s.consecutive_failures) {
                        (Some(e), n) if n > 0 => format!("  failing ({n} in a row): {e}"),
                        _ => String::new(),
                    }
                )?;
            }
        }
        WebhooksCommand::Remove { id } => {
            if !ctx.store.delete_webhook(id).await? {
                bail!("webhook {id} does not exist");
            }
            ctx.audit_cli("delete_webhook", &format!("webhook {id}"))
                .await?;
            writeln!(out, "removed webhook {id}")?;
        }
        WebhooksCommand::Replay { id, all } => {
            let id = if all { None } else { id };
            if let Some(id) = id
                && !ctx.store.webhooks().await?.iter().any(|h| h.id == id)
            {
                bail!("webhook {id} does not exist");
            }
            let n = ctx.store.replay_webhooks(id).await?;
            let target = id.map_or("all webhooks".to_string(), |id| format!("webhook {id}"));
            ctx.audit_cli("replay_webhook", &target).await?;
            writeln!(
                out,
                "{n} dead letter(s) of {target} will be sent again by the running server"
            )?;
        }
    }
    Ok(())
}

async fn register(
    ctx: &Context,
    campaign: CampaignId,
    recipient: String,
    html: Option<String>,
    sent_at: Option<DateTime<FixedOffset>>,
) -> anyhow::Result<crate::messages::RegisteredMessage> {
    let campaign = ctx
        .store
        .campaign(campaign)
        .await?
        .with_context(|| format!("campaign {campaign} does not exist"))?;
    let mut registered = ctx
        .registrar(ctx.public_url())
        .register(
            &*ctx.store,
            &campaign,
            vec![MessageRequest {
                recipient_id: recipient,
                html,
                sent_at: sent_at.map(|t| t.with_timezone(&Utc)),
                tracking: None,
            }],
        )
        .await?;
    Ok(registered.remove(0))
}

/// `mailbeacon export`: the same paged export as the API's, written to a file or stdout.
async fn export(
    ctx: &Context,
    campaign: CampaignId,
    format: ExportFormat,
    output: Option<PathBuf>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let c = ctx
        .store
        .campaign(campaign)
        .await?
        .with_context(|| format!("campaign {campaign} does not exist"))?;
    let mut file = match &output {
        Some(path) => Some(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => None,
    };
    ctx.audit_cli("export_events", &format!("campaign {}", c.id))
        .await?;
    let export = EventExport::start(ctx.store.clone(), c.id, format).await?;
    // The campaign's counters say how many events there are, without counting them.
    let stats = ctx.store.campaign_stats(c.id).await?;
    let bar = ProgressBar::new((stats.opens.total + stats.clicks.total).max(0) as u64).with_style(
        ProgressStyle::with_template(
            "exporting {bar:40} {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .expect("valid progress template"),
    );
    let started = std::time::Instant::now();
    let mut chunks = export.spawn();
    let mut done = 0u64;
    let written: anyhow::Result<()> = async {
        let w: &mut dyn Write = match &mut file {
            Some(f) => f,
            None => out,
        };
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk.with_context(|| format!("the export failed after {done} events"))?;
            w.write_all(&chunk.bytes)
                .context("cannot write the export")?;
            done += chunk.events;
            if done > bar.length().unwrap_or(0) {
                bar.set_length(done);
            }
            bar.set_position(done);
        }
        w.flush().context("cannot write the export")
    }
    .await;
    bar.finish_and_clear();
    if let Err(e) = written {
        // No partial file that looks complete (but leave devices and pipes alone).
        drop(file);
        if let Some(path) = &output
            && std::fs::metadata(path).is_ok_and(|m| m.is_file())
        {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    eprintln!(
        "exported {done} events of campaign {} in {:.1} s{}",
        c.id,
        started.elapsed().as_secs_f64(),
        output
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// `mailbeacon migrate-data`: SQLite to PostgreSQL, verified (src/store/migrate_data.rs).
async fn migrate_data(from: &str, to: &str, out: &mut impl Write) -> anyhow::Result<()> {
    use crate::config::DatabaseUrl;
    use crate::store::migrate_data::{self, Outcome};
    let source = match from.parse::<DatabaseUrl>() {
        Ok(DatabaseUrl::Sqlite(path)) => path,
        Ok(DatabaseUrl::Postgres(_)) => bail!(
            "--from must be the SQLite database to move (sqlite://PATH): migrate-data copies from SQLite to PostgreSQL"
        ),
        Err(e) => bail!("--from: {e}"),
    };
    let target = match to.parse::<DatabaseUrl>() {
        Ok(DatabaseUrl::Postgres(url)) => url,
        Ok(DatabaseUrl::Sqlite(_)) => bail!(
            "--to must be the PostgreSQL database to move to (postgres://USER@HOST/DB): migrate-data copies from SQLite to PostgreSQL"
        ),
        Err(e) => bail!("--to: {e}"),
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:<28} {bar:40} {pos}/{len} rows ({per_sec}, {eta} left)")
            .expect("valid progress template"),
    );
    let shown = bar.clone();
    let started = std::time::Instant::now();
    let result = migrate_data::migrate(
        source.clone(),
        target,
        Arc::new(move |what, done, total| {
            shown.set_length(total);
            shown.set_position(done);
            shown.set_message(what.to_string());
        }),
    )
    .await;
    bar.finish_and_clear();
    let report = match result? {
        Outcome::Refused(occupied) => {
            let held: Vec<String> = occupied
                .iter()
                .map(|(table, rows)| format!("{table} ({rows} rows)"))
                .collect();
            bail!(
                "the target database already holds data: {}. migrate-data copies only into an empty database: \
                 use a new database, or a new schema (CREATE SCHEMA mailbeacon; then add \
                 ?options=-csearch_path%3Dmailbeacon to --to). Nothing was copied",
                held.join(", ")
            );
        }
        Outcome::Copied(report) => report,
    };
    let seconds = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "{:<20} {:>12} {:>12} {:>21}  content",
        "table", "source rows", "target rows", "highest id src / dst"
    )?;
    for t in &report.tables {
        let id = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        writeln!(
            out,
            "{:<20} {:>12} {:>12} {:>21}  {}",
            t.table,
            t.source_rows,
            t.target_rows,
            format!("{} / {}", id(t.source_max_id), id(t.target_max_id)),
            if t.equal() { "equal" } else { "DIFFER" }
        )?;
    }
    let campaigns_differing = report
        .campaigns
        .iter()
        .filter(|c| c.source_events != c.target_events)
        .count();
    writeln!(
        out,
        "events per campaign: {} campaigns with events, {}",
        report.campaigns.len(),
        match campaigns_differing {
            0 => "all equal".to_string(),
            n => format!("{n} differ"),
        }
    )?;
    let differences = report.differences();
    if !differences.is_empty() {
        for d in &differences {
            writeln!(out, "  {d}")?;
        }
        bail!(
            "verification failed: the copy differs from the source ({} difference(s) above); nothing was kept in the target",
            differences.len()
        );
    }
    if report.source_changed {
        bail!(
            "the source database was written to during the copy (is mailbeacon still running on {}?): \
             the copy would miss what was written, so nothing was kept in the target. Stop every \
             mailbeacon process using it and run migrate-data again",
            source.display()
        );
    }
    if !report.next_ids.is_empty() {
        let next: Vec<String> = report
            .next_ids
            .iter()
            .map(|(t, id)| format!("{t} {id}"))
            .collect();
        writeln!(out, "next ids: {}", next.join(", "))?;
    }
    writeln!(
        out,
        "verified: {} rows copied in {seconds:.1} s ({:.0} rows/s); both sides hold the same rows. \
         Start mailbeacon with --database set to the PostgreSQL URL",
        report.rows,
        report.rows as f64 / seconds.max(0.001)
    )?;
    Ok(())
}

fn known_list(name: &str) -> anyhow::Result<&'static str> {
    ranges::known_list(name).with_context(|| {
        format!(
            "--list: unknown list {name:?}; the lists are {}",
            ranges::list_names().collect::<Vec<_>>().join(", ")
        )
    })
}

fn read_html(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let (bytes, name) = match file {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            (bytes, "standard input".to_string())
        }
    };
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text"))
}
