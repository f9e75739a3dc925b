//! `mailbeacon providers check`: the provider check the server runs every ten minutes, now (for a
//! database no server watches, or from cron); its verdicts, one line per campaign and provider.

use crate::startup::Context;
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum ProvidersCommand {
    /// Check the campaigns whose mail is a day old and that were not checked yet: per mailbox
    /// provider, the first day's reader open rate against the provider's trailing average.
    Check {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(
    ctx: &Context,
    command: ProvidersCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let ProvidersCommand::Check { json } = command;
    let checks =
        crate::deliverability::check_due(&*ctx.store, ctx.settings.provider_drop_ratio).await?;
    if json {
        serde_json::to_writer(&mut *out, &checks)?;
        writeln!(out)?;
        return Ok(());
    }
    let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.1}%", 100.0 * r));
    for k in &checks {
        writeln!(
            out,
            "campaign {}\t{}\t{} sent\t{} read in 24 h\ttrailing {}{}",
            k.campaign_id,
            k.provider,
            k.sent,
            pct(k.open_rate),
            pct(k.trailing_open_rate),
            if k.dropped { "\tDROPPED" } else { "" }
        )?;
    }
    if checks.is_empty() {
        writeln!(out, "no campaign was due for its provider check")?;
    }
    Ok(())
}
