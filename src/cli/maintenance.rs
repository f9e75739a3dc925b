//! `mailbeacon check`, `rebuild-rollups`, `purge`, `reclassify` and `erase`: work on what is
//! stored, with a progress bar on a terminal where it takes a while.

use crate::domain::AuditAction;
use crate::startup::Context;
use crate::store::CampaignId;
use anyhow::bail;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// Exits with 1 when a difference is found and not repaired.
pub async fn check(ctx: &Context, repair: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
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
    Ok(match damaged && !check.repaired {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    })
}

pub async fn rebuild_rollups(ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    ctx.store.rebuild_rollups().await?;
    writeln!(
        out,
        "rollups rebuilt from the event log in {:.1} s",
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

pub async fn purge(
    ctx: &Context,
    older_than_days: Option<u32>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Some(days) = older_than_days.or(ctx.settings.retention_days) else {
        bail!(
            "say how old events must be to go: --older-than-days N, or set --retention-days / MAILBEACON_RETENTION_DAYS"
        );
    };
    let before = Utc::now() - chrono::Duration::days(days.into());
    ctx.audit_cli(
        AuditAction::PurgeEvents,
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
    Ok(())
}

pub async fn reclassify(
    ctx: &Context,
    campaign: Option<CampaignId>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if let Some(id) = campaign {
        ctx.campaign(id).await?;
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
    Ok(())
}

pub async fn erase(
    ctx: &Context,
    recipient: String,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let recipient = crate::domain::parse_recipient_id(&recipient)
        .map_err(|reason| anyhow::anyhow!("--recipient {reason}"))?;
    ctx.audit_cli(
        AuditAction::EraseRecipient,
        &crate::domain::recipient_ref(&recipient),
    )
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
    Ok(())
}
