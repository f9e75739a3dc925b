//! `mailbeacon campaign`, `instrument` and `url`: campaigns made and listed, and mail registered
//! for a recipient from the command line.

use crate::messages::{MessageRequest, RegisteredMessage};
use crate::startup::Context;
use crate::store::CampaignId;
use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, Utc};
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum CampaignCommand {
    /// Create a campaign and print its id.
    Create {
        #[arg(long)]
        name: String,
        /// An HTML template used for messages registered without HTML of their own.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List campaigns, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct InstrumentArgs {
    #[arg(long, value_name = "ID")]
    campaign: CampaignId,
    #[arg(long, value_name = "RID")]
    recipient: String,
    /// When the mail was or will be sent (RFC 3339; default now).
    #[arg(long, value_name = "TIME")]
    sent_at: Option<DateTime<FixedOffset>>,
    /// The HTML file; stdin when left out.
    file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum UrlCommand {
    /// Register a message for the recipient and print its pixel URL.
    Open {
        #[arg(long, value_name = "ID")]
        campaign: CampaignId,
        #[arg(long, value_name = "RID")]
        recipient: String,
    },
}

pub async fn run(
    ctx: &Context,
    command: CampaignCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        CampaignCommand::Create { name, html, json } => {
            let name = crate::domain::parse_campaign_name(&name)
                .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let template = match html {
                Some(path) => {
                    let html = read_html(Some(&path))?;
                    crate::instrument::check_html(&html)
                        .with_context(|| format!("{}", path.display()))?;
                    Some(html)
                }
                None => None,
            };
            let campaign = ctx.store.create_campaign(name, template.as_deref()).await?;
            if json {
                serde_json::to_writer(&mut *out, &campaign)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", campaign.id)?;
            }
        }
        CampaignCommand::List { json } => {
            let campaigns = ctx.store.campaigns().await?;
            if json {
                serde_json::to_writer(&mut *out, &campaigns)?;
                writeln!(out)?;
            } else {
                for c in campaigns {
                    writeln!(
                        out,
                        "{}\t{}\t{}",
                        c.id,
                        c.created_at.format("%Y-%m-%d"),
                        c.name
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// `mailbeacon instrument`: the HTML with its pixel and tracked links to stdout, a line about
/// the message to stderr.
pub async fn instrument(
    ctx: &Context,
    args: InstrumentArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let html = read_html(args.file.as_ref())?;
    let message = register(ctx, args.campaign, args.recipient, Some(html), args.sent_at).await?;
    out.write_all(message.html.unwrap_or_default().as_bytes())?;
    match (message.message_id, &message.pixel_url) {
        (Some(id), Some(pixel)) => eprintln!(
            "registered message {id} for recipient {} ({} tracking); pixel {pixel}",
            message.recipient_id,
            format!("{:?}", message.tracking).to_lowercase()
        ),
        _ => eprintln!(
            "not tracked (--max-tracking-level none): the HTML is unchanged, nothing stored"
        ),
    }
    Ok(())
}

pub async fn url(ctx: &Context, command: UrlCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let UrlCommand::Open {
        campaign,
        recipient,
    } = command;
    let message = register(ctx, campaign, recipient, None, None).await?;
    let pixel = message
        .pixel_url
        .context("tracking is off (--max-tracking-level none): there is no pixel to give")?;
    writeln!(out, "{pixel}")?;
    Ok(())
}

async fn register(
    ctx: &Context,
    campaign: CampaignId,
    recipient: String,
    html: Option<String>,
    sent_at: Option<DateTime<FixedOffset>>,
) -> anyhow::Result<RegisteredMessage> {
    let campaign = ctx.campaign(campaign).await?;
    let mut registered = ctx
        .registrar(ctx.public_url()?)
        .register(
            &*ctx.store,
            &campaign,
            vec![MessageRequest {
                recipient_id: recipient,
                html,
                sent_at: sent_at.map(|t| t.with_timezone(&Utc)),
                tracking: None,
            }],
        )
        .await?;
    Ok(registered.remove(0))
}

pub(super) fn read_html(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let (bytes, name) = match file {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            (bytes, "standard input".to_string())
        }
    };
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text"))
}
