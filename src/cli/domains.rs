//! `mailbeacon domains`: the tracking domains of the sender's own that campaigns' links may use
//! (admin work; changes are in the audit log).

use crate::domain::{AuditAction, parse_tracking_domain};
use crate::startup::Context;
use crate::store::{DomainRemoval, TrackingDomain};
use anyhow::bail;
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
    let store = &ctx.store;
    match command {
        DomainsCommand::List { json } => {
            let domains = store.tracking_domains().await?;
            if json {
                serde_json::to_writer(&mut *out, &domains)?;
                writeln!(out)?;
            } else if domains.is_empty() {
                writeln!(out, "no tracking domain: links use the public URL")?;
            }
            if !json {
                for d in &domains {
                    line(d, out)?;
                }
            }
        }
        DomainsCommand::Add { domain, json } => {
            let new = parse_tracking_domain(&domain).map_err(anyhow::Error::msg)?;
            let name = new.domain.clone();
            let Some(added) = store.add_tracking_domain(new).await? else {
                bail!("tracking domain {name} is listed already");
            };
            ctx.audit_cli(AuditAction::AddTrackingDomain, &added.domain)
                .await?;
            if json {
                serde_json::to_writer(&mut *out, &added)?;
                writeln!(out)?;
            } else {
                line(&added, out)?;
            }
        }
        DomainsCommand::Retire { domain } => retire(ctx, &domain, true, out).await?,
        DomainsCommand::Restore { domain } => retire(ctx, &domain, false, out).await?,
        DomainsCommand::Remove { domain } => {
            let domain = domain.trim().to_ascii_lowercase();
            match store.remove_tracking_domain(domain.clone()).await? {
                DomainRemoval::Removed => {
                    ctx.audit_cli(AuditAction::RemoveTrackingDomain, &domain)
                        .await?;
                    writeln!(out, "removed {domain}")?;
                }
                DomainRemoval::NotFound => bail!("tracking domain {domain} is not listed"),
                DomainRemoval::NotRetired => bail!(
                    "tracking domain {domain} is in use: retire it first (mailbeacon domains retire {domain})"
                ),
            }
        }
    }
    Ok(())
}

async fn retire(
    ctx: &Context,
    domain: &str,
    retired: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let domain = domain.trim().to_ascii_lowercase();
    let Some(edited) = ctx
        .store
        .retire_tracking_domain(domain.clone(), retired)
        .await?
    else {
        bail!("tracking domain {domain} is not listed");
    };
    let what = if retired { "retired" } else { "in use" };
    ctx.audit_cli(
        AuditAction::RetireTrackingDomain,
        &format!("{domain} {what}"),
    )
    .await?;
    line(&edited, out)
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
