//! Registering messages: one mail to one recipient gets a tracking id, its HTML is instrumented
//! (pixel plus click redirects) and the message and its links are stored. The API
//! (`POST /api/campaigns/{id}/messages`) and the CLI (`instrument`, `url open`) both come here.

use crate::config::PublicUrl;
use crate::instrument::{self, InstrumentError, InstrumentOptions};
use crate::store::{Campaign, MessageId, NewMessage, Store, StoreError};
use crate::token::KeyRing;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Recipient ids are the sender's own identifiers (a CRM id, a hashed address…), kept short.
pub const MAX_RECIPIENT_ID_LEN: usize = 256;

/// One message to register.
#[derive(Debug, Clone)]
pub struct MessageRequest {
    pub recipient_id: String,
    /// The mail's HTML; `None` uses the campaign's template, or registers a pixel only when the
    /// campaign has none (mail built elsewhere).
    pub html: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct RegisteredMessage {
    pub message_id: MessageId,
    pub recipient_id: String,
    pub html: Option<String>,
    pub pixel_url: String,
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
    /// The server's memory of click destinations (see `ingest::destinations`).
    pub destinations: Arc<crate::ingest::destinations::Destinations>,
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
        let this = self.clone();
        let template = campaign.template_html.clone();
        // Rewriting thousands of documents is CPU work: keep it off the async workers.
        let prepared =
            tokio::task::spawn_blocking(move || this.prepare(requests, template.as_deref()))
                .await
                .map_err(|e| StoreError::Other(format!("instrumenting task failed: {e}")))??;
        let (new, mut out): (Vec<NewMessage>, Vec<RegisteredMessage>) =
            prepared.into_iter().unzip();
        // So that this process can redirect the clicks while the database is unreachable.
        for m in &new {
            for (i, url) in m.links.iter().enumerate() {
                self.destinations.remember(m.tracking_id, i as u16 + 1, url);
            }
            if let Some(url) = &m.honeypot {
                self.destinations.remember(m.tracking_id, 0, url);
            }
        }
        let ids = store.insert_messages(campaign.id, new).await?;
        for (message, id) in out.iter_mut().zip(ids) {
            message.message_id = id;
        }
        Ok(out)
    }

    fn prepare(
        &self,
        requests: Vec<MessageRequest>,
        template: Option<&str>,
    ) -> Result<Vec<(NewMessage, RegisteredMessage)>, RegisterError> {
        let now = Utc::now();
        requests
            .into_iter()
            .enumerate()
            .map(|(index, req)| {
                let recipient_id = req.recipient_id.trim().to_string();
                if recipient_id.is_empty() {
                    return Err(RegisterError::BadRecipient {
                        index,
                        reason: "is empty",
                    });
                }
                if recipient_id.len() > MAX_RECIPIENT_ID_LEN {
                    return Err(RegisterError::BadRecipient {
                        index,
                        reason: "is longer than 256 bytes",
                    });
                }
                let tracking_id = new_tracking_id();
                let pixel_url = self.pixel_url(tracking_id);
                let (html, links) = match req.html.as_deref().or(template) {
                    Some(html) => {
                        let click_url = |n: u32| self.click_url(tracking_id, n as u16);
                        let honeypot_url = self
                            .honeypot
                            .then(|| self.click_url(tracking_id, HONEYPOT_LINK));
                        let stop_tracking_url = self
                            .stop_tracking
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
                        (Some(done.html), done.links)
                    }
                    None => (None, Vec::new()),
                };
                Ok((
                    NewMessage {
                        recipient_id: recipient_id.clone(),
                        tracking_id,
                        sent_at: req.sent_at.unwrap_or(now),
                        links,
                        honeypot: (self.honeypot && html.is_some())
                            .then(|| format!("{}/", self.public_url.as_str())),
                    },
                    RegisteredMessage {
                        message_id: 0,
                        recipient_id,
                        html,
                        pixel_url,
                    },
                ))
            })
            .collect()
    }
}

/// The hidden link's number; real links count from 1.
pub const HONEYPOT_LINK: u16 = 0;

/// 64 random bits: what a token names, revealing nothing and not guessable.
fn new_tracking_id() -> i64 {
    getrandom::u64().expect("the operating system's random source failed") as i64
}
