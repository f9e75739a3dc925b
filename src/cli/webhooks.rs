//! `mailbeacon webhooks`: endpoints registered, listed, removed and their dead letters replayed
//! (admin work; each is in the audit log).

use crate::domain::AuditAction;
use crate::startup::Context;
use crate::store::CampaignId;
use crate::webhooks::Protocol;
use crate::webhooks::registration::CreateWebhook;
use anyhow::bail;
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Register an endpoint and print its id and signing secret (shown once). Running servers
    /// send to it from their next batch on.
    Add {
        #[arg(long)]
        url: String,
        /// standard_webhooks (signed JSON notices, the default) or segment (track calls to a
        /// Segment-compatible /v1/batch; give --write-key).
        #[arg(long)]
        protocol: Option<String>,
        /// open, click, opt_out, erasure, campaign_deleted, provider_drop, conversion (comma
        /// separated; default all).
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
        /// A segment destination's write key (or MAILBEACON_WRITE_KEY, which keeps it out of the
        /// process list).
        #[arg(long, env = "MAILBEACON_WRITE_KEY", hide_env_values = true)]
        write_key: Option<String>,
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

pub async fn run(
    ctx: &Context,
    command: WebhooksCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Add {
            url,
            protocol,
            kinds,
            classes,
            campaign,
            first_only,
            batch_size,
            rate_limit,
            description,
            secret,
            write_key,
            json,
        } => {
            let new = CreateWebhook {
                url,
                protocol,
                kinds: (!kinds.is_empty()).then_some(kinds),
                classes: (!classes.is_empty()).then_some(classes),
                campaign_id: campaign,
                first_only,
                batch_size,
                rate_limit,
                description,
                secret,
                write_key,
            }
            .validate(ctx.settings.webhooks.allow_private)
            .map_err(anyhow::Error::msg)?;
            if let Some(id) = new.campaign_id {
                ctx.campaign(id).await?;
            }
            let secret = (new.protocol == Protocol::StandardWebhooks).then(|| new.secret.clone());
            let hook = ctx.store.create_webhook(new).await?;
            ctx.audit_cli(AuditAction::CreateWebhook, &format!("webhook {}", hook.id))
                .await?;
            if json {
                let mut v = serde_json::to_value(&hook)?;
                if let Some(secret) = &secret {
                    v["secret"] = secret.as_str().into();
                }
                serde_json::to_writer(&mut *out, &v)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "webhook {} -> {} ({})",
                    hook.id,
                    hook.url,
                    hook.protocol.as_str()
                )?;
                if let Some(secret) = secret {
                    writeln!(out, "signing secret (shown once): {secret}")?;
                }
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
                    "{}  {}{}  [{}]{}  pending {}  delivered {}  dead {}{}",
                    h.id,
                    h.url,
                    match h.protocol {
                        Protocol::Segment => "  (segment)",
                        Protocol::StandardWebhooks => "",
                    },
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
            ctx.audit_cli(AuditAction::DeleteWebhook, &format!("webhook {id}"))
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
            ctx.audit_cli(AuditAction::ReplayWebhook, &target).await?;
            writeln!(
                out,
                "{n} dead letter(s) of {target} will be sent again by the running server"
            )?;
        }
    }
    Ok(())
}
