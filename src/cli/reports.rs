//! `mailbeacon report`, `stats` and `export`: a campaign's reports and events, as the API's
//! routes give them.

use crate::analytics::CampaignReport;
use crate::domain::AuditAction;
use crate::export::{EventExport, ExportFormat};
use crate::reports::{Options, Which, render};
use crate::startup::Context;
use crate::store::CampaignId;
use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[arg(long, value_name = "ID")]
    campaign: CampaignId,
    /// report (the headline figures), timeseries, links, hour-of-week, or a breakdown:
    /// client, os, device, country, class.
    #[arg(long, value_name = "NAME", default_value = "report")]
    report: String,
    /// json, csv, ndjson or parquet (to a file or a pipe, not a terminal).
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
    /// Hour of week: a UTC offset (+02:00) or a time zone (Europe/Berlin).
    #[arg(long, allow_hyphen_values = true)]
    tz: Option<String>,
    /// The file to write; stdout when left out.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn report(ctx: &Context, args: ReportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let report = &args.report;
    // A breakdown is named by its dimension alone here (`client`), as in the API's path.
    let which = Which::parse(report)
        .or_else(|| Which::parse(&format!("breakdown/{report}")))
        .with_context(|| {
            format!(
                "'{report}' is not a report: use report, timeseries, links, hour-of-week, client, os, device, country or class"
            )
        })?;
    let format = crate::encode::format::negotiate(&Default::default(), Some(&args.format))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if format == crate::encode::format::Format::Parquet
        && args.output.is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        anyhow::bail!("Parquet is a binary file: give --output FILE, or send stdout to a file");
    }
    let zone = match args.tz.as_deref() {
        None => Default::default(),
        Some(tz) => crate::analytics::report::Zone::parse(tz).with_context(|| {
            format!("--tz '{tz}' is neither a UTC offset such as +02:00 nor a zone such as Europe/Berlin")
        })?,
    };
    let c = ctx.campaign(args.campaign).await?;
    let options = Options {
        interval: args.interval,
        from: args.from,
        to: args.to,
        zone,
    };
    let (_, body) = render(&*ctx.store, &c, which, &options, format)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match args.output {
        Some(path) => std::fs::write(&path, &body)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => out.write_all(&body)?,
    }
    Ok(())
}

pub async fn stats(
    ctx: &Context,
    campaign: CampaignId,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let c = ctx.campaign(campaign).await?;
    let report = CampaignReport::from(ctx.store.campaign_stats(c.id).await?);
    if json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "campaign {} {:?}\n{report}", c.id, c.name)?;
    }
    Ok(())
}

/// `mailbeacon export`: the same paged export as the API's, written to a file or stdout.
pub async fn export(
    ctx: &Context,
    campaign: CampaignId,
    format: ExportFormat,
    output: Option<PathBuf>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let c = ctx.campaign(campaign).await?;
    let mut file = match &output {
        Some(path) => Some(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => None,
    };
    ctx.audit_cli(AuditAction::ExportEvents, &format!("campaign {}", c.id))
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
