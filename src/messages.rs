//! Registering messages: one mail to one recipient gets a tracking id, its HTML is instrumented
//! (pixel plus click redirects) and the message and its links are stored. The API
//! (`POST /api/campaigns/{id}/messages`) and the CLI (`instrument`, `url open`) both come here.

use crate::domain::PublicUrl;
pub use crate::domain::{HONEYPOT_LINK, TrackingLevel};
use crate::instrument::{self, InstrumentError, InstrumentOptions};
use crate::store::{
    ANONYMOUS_RECIPIENT, Campaign, MessageId, NewMessage, Standing, Store, StoreError,
};
use crate::token::KeyRing;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;

/// One message to register.
#[derive(Debug, Clone)]
pub struct MessageRequest {
    pub recipient_id: String,
    /// The mail's HTML; `None` uses the campaign's template, or registers a pixel only when the
    /// campaign has none (mail built elsewhere).
    pub html: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Asked for; the settings may lower it. `None`: individual.
    pub tracking: Option<TrackingLevel>,
}

#[derive(Debug, Clone)]
pub struct RegisteredMessage {
    /// `None` when the message is not tracked (not stored).
    pub message_id: Option<MessageId>,
    pub recipient_id: String,
    pub html: Option<String>,
    /// `None` when the message is not tracked.
    pub pixel_url: Option<String>,
    pub tracking: TrackingLevel,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("message {index}: recipient_id {reason}")]
    BadRecipient { index: usize, reason: &'static str },
    #[error("message {index}: html: {source}")]
    Html {
        index: usize,
        source: InstrumentError,
    },
    #[error("{0}")]
    TrackingDomain(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything registering needs besides the store.
#[derive(Clone)]
pub struct Registrar {
    pub keys: Arc<KeyRing>,
    pub public_url: PublicUrl,
    pub max_links: u16,
    /// Add a hidden link only machines follow (link number 0).
    pub honeypot: bool,
    /// Add the recipient's signed "stop tracking me" link (`--stop-tracking-link`).
    pub stop_tracking: bool,
    /// Told of every message registered, so that its hits need no read (see `ingest::directory`).
    pub directory: Arc<crate::ingest::directory::Directory>,
    /// `--require-consent`: individual only with a standing consent record.
    pub require_consent: bool,
    /// `--max-tracking-level`.
    pub max_tracking: TrackingLevel,
}

impl Registrar {
    pub fn stop_tracking_url(&self, tracking_id: i64) -> String {
        format!(
            "{}/u/{}",
            self.public_url.as_str(),
            self.keys.sign_stop(tracking_id)
        )
    }

    pub fn pixel_url(&self, tracking_id: i64) -> String {
        format!(
            "{}/o/{}.gif",
            self.public_url.as_str(),
            self.keys.sign_open(tracking_id)
        )
    }

    pub fn click_url(&self, tracking_id: i64, link_no: u16) -> String {
        format!(
            "{}/c/{}",
            self.public_url.as_str(),
            self.keys.sign_click(tracking_id, link_no)
        )
    }

    /// Instruments and stores `requests` for `campaign` in one transaction; the answer keeps their order.
    pub async fn register(
        &self,
        store: &dyn Store,
        campaign: &Campaign,
        requests: Vec<MessageRequest>,
    ) -> Result<Vec<RegisteredMessage>, RegisterError> {
        let recipients: Vec<String> = requests
            .iter()
            .map(|r| r.recipient_id.trim().to_string())
            .collect();
        let consenting: HashSet<String> = if self.require_consent {
            store
                .consenting(recipients.clone())
                .await?
                .into_iter()
                .collect()
        } else {
            Default::default()
        };
        // For the directory: hits on mail to an opted-out recipient are journaled without them.
        let opted_out: HashSet<String> = store.opted_out(recipients).await?.into_iter().collect();
        let levels: Vec<TrackingLevel> = requests
            .iter()
            .map(|r| {
                let level = r
                    .tracking
                    .unwrap_or(TrackingLevel::Individual)
                    .min(self.max_tracking);
                if self.require_consent
                    && level == TrackingLevel::Individual
                    && !consenting.contains(r.recipient_id.trim())
                {
                    TrackingLevel::Anonymous
                } else {
                    level
                }
            })
            .collect();
        let mut this = self.clone();
        if let Some(domain) = &campaign.tracking_domain {
            this.public_url = usable_domain_url(store, domain).await?;
        }
        let template = campaign.template_html.clone();
        let utm = campaign.utm.clone();
        // Rewriting thousands of documents is CPU work: keep it off the async workers.
        let prepared = tokio::task::spawn_blocking(move || {
            this.prepare(requests, &levels, template.as_deref(), utm.as_ref())
        })
        .await
        .map_err(|e| StoreError::Other(format!("instrumenting task failed: {e}")))??;
        let (new, mut out): (Vec<Option<NewMessage>>, Vec<RegisteredMessage>) =
            prepared.into_iter().unzip();
        let stored: Vec<usize> = (0..new.len()).filter(|i| new[*i].is_some()).collect();
        let new: Vec<NewMessage> = new.into_iter().flatten().collect();
        // So that this process answers their hits without a read (and redirects their clicks
        // while the database is unreachable). Should the insert fail, nobody has their tokens.
        for m in &new {
            let standing = Standing {
                anonymous: m.recipient_id.starts_with(ANONYMOUS_RECIPIENT),
                opted_out: opted_out.contains(&m.recipient_id),
                consenting: consenting.contains(&m.recipient_id),
            };
            self.directory.remember(
                m.tracking_id,
                standing,
                campaign.conversions,
                &m.links,
                m.honeypot.as_deref(),
            );
        }
        if !new.is_empty() {
            let ids = store.insert_messages(campaign.id, new).await?;
            for (i, id) in stored.into_iter().zip(ids) {
                out[i].message_id = Some(id);
            }
        }
        Ok(out)
    }

    fn prepare(
        &self,
        requests: Vec<MessageRequest>,
        levels: &[TrackingLevel],
        template: Option<&str>,
        utm: Option<&crate::domain::Utm>,
    ) -> Result<Vec<(Option<NewMessage>, RegisteredMessage)>, RegisterError> {
        let now = Utc::now();
        requests
            .into_iter()
            .zip(levels)
            .enumerate()
            .map(|(index, (req, &tracking))| {
                let recipient_id = crate::domain::parse_recipient_id(&req.recipient_id)
                    .map_err(|reason| RegisterError::BadRecipient { index, reason })?;
                // Stored anonymous messages are named so, and skip the consent check.
                if recipient_id.starts_with(ANONYMOUS_RECIPIENT) {
                    return Err(RegisterError::BadRecipient {
                        index,
                        reason: "may not begin with 'anonymous:' (reserved for messages tracked anonymously: register with \"tracking\": \"anonymous\")",
                    });
                }
                if tracking == TrackingLevel::None {
                    // Sent as written: nothing to load, nothing to follow, nothing stored.
                    return Ok((
                        None,
                        RegisteredMessage {
                            message_id: None,
                            recipient_id,
                            html: req.html.or_else(|| template.map(str::to_string)),
                            pixel_url: None,
                            tracking,
                        },
                    ));
                }
                let tracking_id = new_tracking_id();
                let pixel_url = self.pixel_url(tracking_id);
                let (html, links) = match req.html.as_deref().or(template) {
                    Some(html) => {
                        let click_url = |n: u32| self.click_url(tracking_id, n as u16);
                        let honeypot_url = self
                            .honeypot
                            .then(|| self.click_url(tracking_id, HONEYPOT_LINK));
                        // Nothing stored names an anonymous recipient, so there is no one to stop.
                        let stop_tracking_url = (self.stop_tracking
                            && tracking == TrackingLevel::Individual)
                            .then(|| self.stop_tracking_url(tracking_id));
                        let done = instrument::instrument(
                            html,
                            &InstrumentOptions {
                                pixel_url: &pixel_url,
                                click_url: &click_url,
                                max_links: u32::from(self.max_links),
                                honeypot_url: honeypot_url.as_deref(),
                                stop_tracking_url: stop_tracking_url.as_deref(),
                            },
                        )
                        .map_err(|source| RegisterError::Html { index, source })?;
                        let links = match utm {
                            Some(utm) => (done.links.iter().enumerate())
                                .map(|(i, url)| utm.apply(url, i + 1))
                                .collect(),
                            None => done.links,
                        };
                        (Some(done.html), links)
                    }
                    None => (None, Vec::new()),
                };
                let stored_recipient = match tracking {
                    TrackingLevel::Anonymous => format!(
                        "{ANONYMOUS_RECIPIENT}{:016x}",
                        getrandom::u64().expect("the operating system's random source failed")
                    ),
                    _ => recipient_id.clone(),
                };
                Ok((
                    Some(NewMessage {
                        recipient_id: stored_recipient,
                        tracking_id,
                        sent_at: req.sent_at.unwrap_or(now),
                        links,
                        honeypot: (self.honeypot && html.is_some())
                            .then(|| format!("{}/", self.public_url.as_str())),
                    }),
                    RegisteredMessage {
                        message_id: None,
                        recipient_id,
                        html,
                        pixel_url: Some(pixel_url),
                        tracking,
                    },
                ))
            })
            .collect()
    }
}

/// The base URL of a campaign's tracking domain, which new mail may use only while it is listed
/// and not retired.
async fn usable_domain_url(store: &dyn Store, domain: &str) -> Result<PublicUrl, RegisterError> {
    let unusable = |why: &str| {
        RegisterError::TrackingDomain(format!(
            "the campaign's tracking domain {domain} {why}: give the campaign another \
             (PATCH its tracking_domain) or none, which uses the public URL"
        ))
    };
    match store.tracking_domain(domain.to_string()).await? {
        None => Err(unusable("is no longer listed")),
        Some(d) if d.retired_at.is_some() => Err(unusable("is retired for new mail")),
        Some(d) => d.url.parse().map_err(|e: String| {
            StoreError::Other(format!("tracking domain {domain}: {e}")).into()
        }),
    }
}

/// 64 random bits: what a token names, revealing nothing and not guessable.
fn new_tracking_id() -> i64 {
    getrandom::u64().expect("the operating system's random source failed") as i64
}
