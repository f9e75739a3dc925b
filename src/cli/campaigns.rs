//! `mailbeacon campaign`, `instrument` and `url`: campaigns made, listed, edited and deleted,
//! and mail registered for a recipient from the command line.

use crate::domain::{AuditAction, Utm, parse_tags};
use crate::messages::{MessageRequest, RegisteredMessage};
use crate::startup::Context;
use crate::store::{Archived, CampaignEdit, CampaignId, ListedCampaign, NewCampaign};
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
        subject: Option<String>,
        /// When the mail goes out (RFC 3339); default: the first message's send time.
        #[arg(long, value_name = "TIME")]
        sent_at: Option<DateTime<FixedOffset>>,
        /// Tags, comma separated.
        #[arg(long, value_name = "TAGS", value_delimiter = ',')]
        tags: Vec<String>,
        /// Add UTM parameters to the tracked destinations (utm_source=mailbeacon,
        /// utm_medium=email, utm_campaign=the name).
        #[arg(long)]
        utm: bool,
        /// Clicks carry a signed reference (mb_ref) to their destination, for conversions.
        #[arg(long)]
        conversions: bool,
        /// A listed tracking domain (`mailbeacon domains list`) its mail's links use; default:
        /// the public URL.
        #[arg(long, value_name = "DOMAIN")]
        tracking_domain: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List campaigns, newest first: id, send date, reader open and click rates, name, tags.
    List {
        /// Archived campaigns too.
        #[arg(long, conflicts_with = "archived_only")]
        archived: bool,
        /// Archived campaigns only.
        #[arg(long)]
        archived_only: bool,
        /// Only campaigns with this tag.
        #[arg(long)]
        tag: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Rename a campaign, change its subject, send time or tags, archive it or bring it back.
    Edit {
        id: CampaignId,
        #[arg(long)]
        name: Option<String>,
        /// A new HTML template (what the click map shows, and messages without HTML use).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        #[arg(long, conflicts_with = "no_subject")]
        subject: Option<String>,
        #[arg(long)]
        no_subject: bool,
        #[arg(long, value_name = "TIME")]
        sent_at: Option<DateTime<FixedOffset>>,
        /// Replaces the tags (comma separated; "" for none).
        #[arg(long, value_name = "TAGS")]
        tags: Option<String>,
        #[arg(long, conflicts_with = "unarchive")]
        archive: bool,
        #[arg(long)]
        unarchive: bool,
        /// Add UTM parameters to destinations registered from now on.
        #[arg(long, conflicts_with = "no_utm")]
        utm: bool,
        #[arg(long)]
        no_utm: bool,
        /// Clicks carry a signed reference for conversions from now on.
        #[arg(long, conflicts_with = "no_conversions")]
        conversions: bool,
        #[arg(long)]
        no_conversions: bool,
        /// Mail registered from now on uses this listed tracking domain.
        #[arg(long, value_name = "DOMAIN", conflicts_with = "no_tracking_domain")]
        tracking_domain: Option<String>,
        /// Mail registered from now on uses the public URL.
        #[arg(long)]
        no_tracking_domain: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a campaign with its messages, links, events and rollups (as erasure does; audited).
    Delete {
        id: CampaignId,
        /// Required: deleting cannot be undone.
        #[arg(long)]
        yes: bool,
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
        CampaignCommand::Create {
            name,
            html,
            subject,
            sent_at,
            tags,
            utm,
            conversions,
            tracking_domain,
            json,
        } => {
            let tracking_domain =
                crate::tracking_domains::chosen(&*ctx.store, tracking_domain.as_deref()).await?;
            let name = crate::domain::parse_campaign_name(&name)
                .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let template = html.map(|path| template(&path)).transpose()?;
            let campaign = ctx
                .store
                .create_campaign(NewCampaign {
                    name: name.to_string(),
                    template_html: template,
                    subject: subject.as_deref().map(parse_subject).transpose()?,
                    sent_at: sent_at.map(|t| t.with_timezone(&Utc)),
                    tags: parse_tags(&tags).map_err(|e| anyhow::anyhow!("--tags: {e}"))?,
                    utm: utm.then(|| Utm::for_campaign(name)),
                    conversions,
                    tracking_domain,
                })
                .await?;
            if json {
                serde_json::to_writer(&mut *out, &campaign)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", campaign.id)?;
            }
        }
        CampaignCommand::List {
            archived,
            archived_only,
            tag,
            json,
        } => {
            let which = match (archived, archived_only) {
                (_, true) => Archived::Only,
                (true, _) => Archived::Include,
                _ => Archived::Exclude,
            };
            let tag = tag
                .as_deref()
                .map(crate::domain::parse_tag)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--tag: {e}"))?;
            let mut campaigns = ctx.store.campaigns(which).await?;
            if let Some(tag) = tag {
                campaigns.retain(|c| c.campaign.tags.iter().any(|t| t == tag));
            }
            if json {
                serde_json::to_writer(&mut *out, &campaigns)?;
                writeln!(out)?;
            } else {
                list_lines(&campaigns, out)?;
            }
        }
        CampaignCommand::Edit {
            id,
            name,
            html,
            subject,
            no_subject,
            sent_at,
            tags,
            archive,
            unarchive,
            utm,
            no_utm,
            conversions,
            no_conversions,
            tracking_domain,
            no_tracking_domain,
            json,
        } => {
            let tracking_domain = match (tracking_domain.as_deref(), no_tracking_domain) {
                (None, false) => None,
                (d, _) => Some(crate::tracking_domains::chosen(&*ctx.store, d).await?),
            };
            let edit_name = name.clone();
            let edit = CampaignEdit {
                name: name
                    .as_deref()
                    .map(crate::domain::parse_campaign_name)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--name: {e}"))?
                    .map(str::to_string),
                template_html: html.map(|path| template(&path).map(Some)).transpose()?,
                subject: match (subject, no_subject) {
                    (Some(s), _) => Some(Some(parse_subject(&s)?)),
                    (None, true) => Some(None),
                    (None, false) => None,
                },
                sent_at: sent_at.map(|t| Some(t.with_timezone(&Utc))),
                tags: tags
                    .map(|t| {
                        let list: Vec<&str> =
                            t.split(',').filter(|t| !t.trim().is_empty()).collect();
                        parse_tags(&list)
                    })
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--tags: {e}"))?,
                archived: (archive || unarchive).then_some(archive),
                utm: match (utm, no_utm) {
                    (true, _) => {
                        let current = ctx.campaign(id).await?;
                        let name = edit_name.as_deref().unwrap_or(&current.name);
                        Some(Some(Utm::for_campaign(name)))
                    }
                    (_, true) => Some(None),
                    _ => None,
                },
                conversions: (conversions || no_conversions).then_some(conversions),
                tracking_domain,
            };
            let campaign = ctx
                .store
                .edit_campaign(id, edit)
                .await?
                .with_context(|| format!("campaign {id} does not exist"))?;
            if json {
                serde_json::to_writer(&mut *out, &campaign)?;
                writeln!(out)?;
            } else {
                writeln!(out, "campaign {}: {}", campaign.id, campaign.name)?;
            }
        }
        CampaignCommand::Delete { id, yes, json } => {
            let campaign = ctx.campaign(id).await?;
            anyhow::ensure!(
                yes,
                "deleting campaign {id} ({:?}) removes its messages, links and events for good: \
                 add --yes to do it",
                campaign.name
            );
            ctx.audit_cli(AuditAction::DeleteCampaign, &format!("campaign {id}"))
                .await?;
            let removed = ctx
                .store
                .delete_campaign(id)
                .await?
                .with_context(|| format!("campaign {id} does not exist"))?;
            if json {
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({"campaign_id": id, "removed": removed}),
                )?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "deleted campaign {id} ({:?}): {} messages, {} links, {} events",
                    campaign.name, removed.messages, removed.links, removed.events
                )?;
            }
        }
    }
    Ok(())
}

/// An HTML template read from a file and checked.
fn template(path: &PathBuf) -> anyhow::Result<String> {
    let html = read_html(Some(path))?;
    crate::instrument::check_html(&html).with_context(|| format!("{}", path.display()))?;
    Ok(html)
}

fn parse_subject(s: &str) -> anyhow::Result<String> {
    crate::domain::parse_subject(s)
        .map(str::to_string)
        .map_err(|e| anyhow::anyhow!("--subject: {e}"))
}

/// One line per campaign: id, send date, reader open and click rates, name, tags.
fn list_lines(campaigns: &[ListedCampaign], out: &mut dyn Write) -> anyhow::Result<()> {
    let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.1}%", 100.0 * r));
    for c in campaigns {
        let k = &c.campaign;
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}{}",
            k.id,
            k.sent_at
                .map_or("-".to_string(), |t| t.format("%Y-%m-%d").to_string()),
            pct(c.reader_open_rate),
            pct(c.reader_click_rate),
            k.name,
            k.tags.join(","),
            if k.archived_at.is_some() {
                "\t(archived)"
            } else {
                ""
            }
        )?;
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
