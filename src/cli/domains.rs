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
    /// Check again whether a domain reaches this installation (after changing its DNS); exits
    /// with 1 when it does not yet.
    Check { domain: String },
    /// Order a domain's certificate again now, before it is due (the servers started with
    /// --https-listen do it within seconds).
    Renew { domain: String },
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
    let public_url = ctx.public_url()?;
    let check = domains::Check {
        keys: &ctx.keys,
        public_url: &public_url,
        resolve: &ctx.settings.resolve,
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
        DomainsCommand::Add { domain, json } => {
            (domains::add(store, cli, check, &domain).await?, json)
        }
        DomainsCommand::Check { domain } => {
            let checked = domains::check_now(store, cli, check, &domain).await?;
            line(&checked, out)?;
            if let Some(why) = checked.check_error {
                anyhow::bail!("{why}");
            }
            return Ok(());
        }
        DomainsCommand::Renew { domain } => {
            domains::renew_certificate(store, cli, &domain).await?;
            writeln!(
                out,
                "{}: a new certificate will be ordered",
                domain.trim().to_ascii_lowercase()
            )?;
            return Ok(());
        }
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
    } else {
        line(&domain, out)?;
    }
    if let Some(why) = &domain.check_error {
        eprintln!("note: {why}");
    }
    Ok(())
}

fn line(d: &TrackingDomain, out: &mut dyn Write) -> anyhow::Result<()> {
    let retired = d
        .retired_at
        .map_or(String::new(), |t| format!("\tretired {}", t.to_rfc3339()));
    let reaches = match (&d.check_error, d.checked_at) {
        (_, None) => "not checked",
        (None, Some(_)) => "reaches this installation",
        (Some(_), Some(_)) => "does not reach this installation yet",
    };
    writeln!(
        out,
        "{}\t{}\tadded {}{retired}\t{reaches}",
        d.domain,
        d.url,
        d.added_at.to_rfc3339()
    )?;
    Ok(())
}
