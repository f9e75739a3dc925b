//! `mailbeacon ranges`: the published address lists classification uses, replaced by a file the
//! user downloaded, listed, or reset to the shipped copy.

use crate::classify::ranges;
use crate::startup::Context;
use crate::store::AddressList;
use anyhow::{Context as _, bail};
use chrono::Utc;
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum RangesCommand {
    /// Replace a shipped list with a file you downloaded from its publisher: a plain list (one
    /// CIDR per line), Apple's egress-ip-ranges.csv or a geofeed CSV, Google's goog.json or
    /// cloud.json, Microsoft's endpoints JSON, AWS's ip-ranges.json, Oracle's
    /// public_ip_ranges.json or a per-ASN JSON. Restart running servers and run `reclassify` to
    /// apply it.
    Import {
        /// Which list (`mailbeacon ranges list` names them all): apple-mpp-egress,
        /// google-image-proxy, microsoft-eop, proofpoint, cloud-aws, ...
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

pub async fn run(ctx: &Context, command: RangesCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        RangesCommand::Import { list, source, file } => {
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
        RangesCommand::List => {
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
        RangesCommand::Reset { list } => {
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
    }
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
