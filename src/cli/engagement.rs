//! `mailbeacon engagement`: one recipient's engagement, or every recipient's (every page, as CSV,
//! NDJSON or JSON arrays), as the API's engagement routes give them.

use crate::analytics::engagement::{DEFAULT_DAYS, DEFAULT_RECENT, MAX_DAYS, MAX_RECENT};
use crate::domain::AuditAction;
use crate::encode::format::{encode, negotiate};
use crate::reports::{engagement_page, recipient_engagement};
use crate::startup::Context;
use clap::Args;
use std::io::Write;

/// Recipients read per page.
const PAGE: usize = 1_000;

#[derive(Args, Debug)]
pub struct EngagementArgs {
    /// Only this recipient (the id given when their mail was registered).
    #[arg(long, value_name = "ID")]
    recipient: Option<String>,
    /// How many of each recipient's latest messages the recent_* columns look at.
    #[arg(long, default_value_t = DEFAULT_RECENT, value_parser = recent)]
    recent: usize,
    /// Engaged means a reader's open or click within this many days.
    #[arg(long, default_value_t = DEFAULT_DAYS,
          value_parser = clap::value_parser!(i64).range(1..=MAX_DAYS))]
    days: i64,
    /// Only engaged recipients (true) or only the others (false): a sunset list.
    #[arg(long, value_name = "true|false")]
    engaged: Option<bool>,
    /// csv, ndjson, or json (an array per line, one for each page read).
    #[arg(long, default_value = "csv")]
    format: String,
}

fn recent(s: &str) -> Result<usize, String> {
    s.parse()
        .ok()
        .filter(|n| (1..=MAX_RECENT).contains(n))
        .ok_or_else(|| format!("a number of messages from 1 to {MAX_RECENT}"))
}

pub async fn engagement(
    ctx: &Context,
    args: EngagementArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let format =
        negotiate(&Default::default(), Some(&args.format)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let target = args.recipient.as_deref().unwrap_or("every recipient");
    ctx.audit_cli(AuditAction::ReadEngagement, target).await?;
    if let Some(recipient) = args.recipient {
        let row = recipient_engagement(&*ctx.store, recipient, args.recent, args.days).await?;
        let row = [row];
        out.write_all(&encode(format, &row[0], &row).map_err(|e| anyhow::anyhow!("{e}"))?)?;
        return Ok(());
    }
    let (mut after, mut first) = (String::new(), true);
    loop {
        let (rows, next) = engagement_page(
            &*ctx.store,
            after,
            PAGE,
            (args.recent, args.days),
            args.engaged,
        )
        .await?;
        super::write_page(out, format, &rows, first)?;
        first = false;
        match next {
            Some(cursor) => after = cursor,
            None => return Ok(()),
        }
    }
}
