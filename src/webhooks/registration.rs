//! An endpoint as a user asks for it (API body or CLI flags), checked field by field into a
//! [`NewWebhook`], each refusal naming its field.

use super::destination;
use super::segment;
use super::signature;
use super::{MAX_BATCH_SIZE, MAX_RATE_LIMIT, NewWebhook, NoticeKind, Protocol};
use crate::domain::CampaignId;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    pub url: String,
    /// `standard_webhooks` (default) or `segment`.
    pub protocol: Option<String>,
    /// open, click, opt_out, erasure, campaign_deleted, provider_drop, conversion (default: all).
    pub kinds: Option<Vec<String>>,
    /// Class names, or `readers` (default: every class).
    pub classes: Option<Vec<String>>,
    pub campaign_id: Option<CampaignId>,
    /// Only the first reader open / click of each message.
    #[serde(default)]
    pub first_only: bool,
    pub batch_size: Option<u32>,
    pub rate_limit: Option<u32>,
    pub description: Option<String>,
    /// A `whsec_` secret of the caller's; one is generated when left out.
    pub secret: Option<String>,
    /// A `segment` destination's write key (its source's key in Segment, RudderStack, ...).
    pub write_key: Option<String>,
}

impl CreateWebhook {
    /// Checks every field and says which one is wrong. Shared by the API and the CLI.
    /// Whether `campaign_id` names a campaign is the caller's to check (it takes a read).
    pub fn validate(self, allow_private: bool) -> Result<NewWebhook, String> {
        let protocol = match self.protocol.as_deref().map(str::trim) {
            None => Protocol::default(),
            Some(name) => Protocol::parse(name).ok_or_else(|| {
                format!("protocol: unknown protocol '{name}': use standard_webhooks or segment")
            })?,
        };
        let segment = protocol == Protocol::Segment;
        let mut url = destination::check_url(&self.url, allow_private)?;
        if segment {
            url = segment::batch_url(&url);
        }
        let kinds = match self.kinds {
            None if segment => segment::KINDS.to_vec(),
            None => NoticeKind::ALL.to_vec(),
            Some(list) => {
                let mut kinds = Vec::new();
                for k in list.iter().flat_map(|s| s.split([',', ' '])) {
                    let k = k.trim();
                    if k.is_empty() {
                        continue;
                    }
                    let kind = NoticeKind::parse(k).ok_or_else(|| {
                        format!("kinds: unknown kind '{k}': use {}", NoticeKind::names())
                    })?;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                if kinds.is_empty() {
                    return Err(format!(
                        "kinds: name at least one of {}",
                        NoticeKind::names()
                    ));
                }
                if segment && let Some(k) = kinds.iter().find(|k| !segment::KINDS.contains(k)) {
                    return Err(format!(
                        "kinds: {} has no event in Segment's spec; a segment destination takes {}",
                        k.as_str(),
                        segment::KINDS.map(NoticeKind::as_str).join(", ")
                    ));
                }
                kinds
            }
        };
        let classes = match self.classes {
            // Machine activity goes to a customer-data platform only when asked for.
            None if segment => Some(super::parse_class_list(&["readers".into()])?),
            None => None,
            Some(list) => {
                Some(super::parse_class_list(&list).map_err(|e| format!("classes: {e}"))?)
            }
        };
        let batch_size =
            self.batch_size
                .unwrap_or(if segment { segment::DEFAULT_BATCH } else { 1 });
        if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
            return Err(format!("batch_size: from 1 to {MAX_BATCH_SIZE}"));
        }
        let rate_limit = self.rate_limit.unwrap_or(10);
        if !(1..=MAX_RATE_LIMIT).contains(&rate_limit) {
            return Err(format!(
                "rate_limit: requests a second, from 1 to {MAX_RATE_LIMIT}"
            ));
        }
        let secret = match (protocol, self.secret, self.write_key) {
            (Protocol::StandardWebhooks, _, Some(_)) => {
                return Err(
                    "write_key: only a segment destination takes a write key (add \"protocol\": \"segment\")".into(),
                );
            }
            (Protocol::StandardWebhooks, Some(s), None) => {
                signature::parse_secret(&s).map_err(|e| format!("secret: {e}"))?;
                s
            }
            (Protocol::StandardWebhooks, None, None) => super::generate_secret(),
            (Protocol::Segment, Some(_), _) => {
                return Err(
                    "secret: a segment destination is not signed; it authenticates with its write_key".into(),
                );
            }
            (Protocol::Segment, None, None) => {
                return Err(
                    "write_key: a segment destination needs the write key of its source".into(),
                );
            }
            (Protocol::Segment, None, Some(key)) => {
                segment::check_write_key(&key).map_err(|e| format!("write_key: {e}"))?
            }
        };
        let description = self.description.map(|d| d.trim().to_string());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 200)
        {
            return Err("description: at most 200 characters".into());
        }
        Ok(NewWebhook {
            url,
            protocol,
            secret,
            kinds,
            classes,
            campaign_id: self.campaign_id,
            first_only: self.first_only,
            batch_size,
            rate_limit,
            description,
        })
    }
}
