//! `mailbeacon segments`: a campaign's segments counted, or one segment's recipients listed (every
//! page, as CSV, NDJSON or JSON arrays), as the API's segment routes give them.

use crate::analytics::segments::Segment;
use crate::domain::{AuditAction, MessageId};
use crate::encode::format::negotiate;
use crate::reports::{SEGMENT_SCAN, segment_counts, segment_members};
use crate::startup::Context;
use crate::store::CampaignId;
use anyhow::{Context as _, bail};
use clap::Args;
use std::io::Write;

#[derive(Args, Debug)]
pub struct SegmentArgs {
    #[arg(long, value_name = "ID")]
    campaign: CampaignId,
    /// List the recipients of this segment (opened, clicked, machine_only, not_opened) instead
    /// of counting every segment.
    #[arg(long, value_name = "SEGMENT")]
    list: Option<String>,
    /// The list's format: csv, ndjson, or json (an array per line, one for each page read).
    #[arg(long, default_value = "csv")]
    format: String,
}

pub async fn segments(ctx: &Context, args: SegmentArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let c = ctx.campaign(args.campaign).await?;
    let Some(name) = args.list else {
        let n = segment_counts(&*ctx.store, c.id).await?;
        writeln!(out, "campaign {} {:?}: {} sent", c.id, c.name, n.sent)?;
        writeln!(
            out,
            "opened        {:>8}  (clicked {})",
            n.opened, n.clicked
        )?;
        writeln!(out, "machine only  {:>8}", n.machine_only)?;
        writeln!(out, "not opened    {:>8}", n.not_opened)?;
        writeln!(out, "untracked     {:>8}", n.untracked)?;
        return Ok(());
    };
    let segment = Segment::parse(&name).with_context(|| {
        let names = Segment::ALL.map(Segment::as_str).join(", ");
        format!("--list: '{name}' is not a segment; the segments are {names}")
    })?;
    if !segment.lists_recipients() {
        bail!("--list untracked: that mail names no recipient, only its count is kept");
    }
    let format =
        negotiate(&Default::default(), Some(&args.format)).map_err(|e| anyhow::anyhow!("{e}"))?;
    ctx.audit_cli(
        AuditAction::ReadSegment,
        &format!("campaign {} segment {}", c.id, segment.as_str()),
    )
    .await?;
    let (mut after, mut first) = (MessageId(0), true);
    loop {
        let (members, next) =
            segment_members(&*ctx.store, c.id, segment, after, 10_000, SEGMENT_SCAN).await?;
        super::write_page(out, format, &members, first)?;
        first = false;
        match next {
            Some(cursor) => after = cursor,
            None => return Ok(()),
        }
    }
}
