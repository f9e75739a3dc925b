//! `mailbeacon domains`: the tracking domains of the sender's own that campaigns' links may use
//! (admin work; changes are in the audit log).

use crate::domain::{Actor, Scope};
use crate::startup::Context;
use crate::store::TrackingDomain;
use crate::tracking_domains::{self as domains, Changer};
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum DomainsCommand {
    /// Every tracking domain: name, base URL, added, retired.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a tracking domain: a host name (links use https://NAME) or a base URL. Point the
    /// name's DNS (a CNAME) at this installation first.
    Add {
        domain: String,
        #[arg(long)]
        json: bool,
    },
    /// Retire a domain for new mail; mail already sent under it keeps working.
    Retire { domain: String },
    /// Take a retired domain back into use.
    Restore { domain: String },
    /// Remove a retired domain.
    Remove { domain: String },
}

pub async fn run(
    ctx: &Context,
    command: DomainsCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let store = ctx.store.as_ref();
    let cli = Changer {
        actor: Actor::Cli,
        scope: Scope::Admin,
    };
    let (domain, json) = match command {
        DomainsCommand::List { json } => {
            let listed = store.tracking_domains().await?;
            if json {
                serde_json::to_writer(&mut *out, &listed)?;
                writeln!(out)?;
            } else if listed.is_empty() {
                writeln!(out, "no tracking domain: links use the public URL")?;
            } else {
                for d in &listed {
                    line(d, out)?;
                }
            }
            return Ok(());
        }
        DomainsCommand::Add { domain, json } => (domains::add(store, cli, &domain).await?, json),
        DomainsCommand::Retire { domain } => {
            (domains::retire(store, cli, &domain, true).await?, false)
        }
        DomainsCommand::Restore { domain } => {
            (domains::retire(store, cli, &domain, false).await?, false)
        }
        DomainsCommand::Remove { domain } => {
            domains::remove(store, cli, &domain).await?;
            writeln!(out, "removed {}", domain.trim().to_ascii_lowercase())?;
            return Ok(());
        }
    };
    if json {
        serde_json::to_writer(&mut *out, &domain)?;
        writeln!(out)?;
        return Ok(());
    }
    line(&domain, out)
}

fn line(d: &TrackingDomain, out: &mut dyn Write) -> anyhow::Result<()> {
    let retired = d
        .retired_at
        .map_or(String::new(), |t| format!("\tretired {}", t.to_rfc3339()));
    writeln!(
        out,
        "{}\t{}\tadded {}{retired}",
        d.domain,
        d.url,
        d.added_at.to_rfc3339()
    )?;
    Ok(())
}
