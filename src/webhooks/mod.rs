//! Webhooks: opens, clicks, opt-outs and erasures pushed to the user's own systems.
//!
//! The writer puts a notice for each matching endpoint into the outbox in the same transaction as
//! the event ([`Route`] decides which endpoints want it), so nothing acknowledged is left unsent.
//! The delivery worker (`crate::webhook_delivery`) sends them, signed the Standard Webhooks way
//! ([`signature`]), retries failures with exponential backoff and jitter, and gives up on a notice
//! after `--webhook-max-attempts` (a dead letter, sent again by `replay`). The pixel never waits
//! for any of it.

pub mod destination;
pub mod registration;
pub mod segment;
pub mod signature;

use crate::classify::Class;
use crate::domain::{CampaignId, EventKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a notice tells of, and the `type` a receiver sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Open,
    Click,
    OptOut,
    Erasure,
    CampaignDeleted,
    ProviderDrop,
    Conversion,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 7] = [
        NoticeKind::Open,
        NoticeKind::Click,
        NoticeKind::OptOut,
        NoticeKind::Erasure,
        NoticeKind::CampaignDeleted,
        NoticeKind::ProviderDrop,
        NoticeKind::Conversion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Open => "open",
            NoticeKind::Click => "click",
            NoticeKind::OptOut => "opt_out",
            NoticeKind::Erasure => "erasure",
            NoticeKind::CampaignDeleted => "campaign_deleted",
            NoticeKind::ProviderDrop => "provider_drop",
            NoticeKind::Conversion => "conversion",
        }
    }

    /// Every kind's name, comma separated, for messages.
    pub fn names() -> String {
        NoticeKind::ALL.map(NoticeKind::as_str).join(", ")
    }

    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The payload's `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            NoticeKind::Open => "email.opened",
            NoticeKind::Click => "email.clicked",
            NoticeKind::OptOut => "recipient.opted_out",
            NoticeKind::Erasure => "recipient.erased",
            NoticeKind::CampaignDeleted => "campaign.deleted",
            NoticeKind::ProviderDrop => "deliverability.provider_drop",
            NoticeKind::Conversion => "email.converted",
        }
    }

    pub fn of_event(kind: EventKind) -> NoticeKind {
        match kind {
            EventKind::Open => NoticeKind::Open,
            EventKind::Click => NoticeKind::Click,
        }
    }
}

/// How an endpoint is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// JSON notices signed the Standard Webhooks way with the endpoint's `whsec_` secret.
    #[default]
    StandardWebhooks,
    /// Segment's HTTP tracking API (`/v1/batch`, the write key as basic auth): track calls named
    /// after the email spec's semantic events ([`segment`]).
    Segment,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::StandardWebhooks, Protocol::Segment];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::StandardWebhooks => "standard_webhooks",
            Protocol::Segment => "segment",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// An endpoint as registered: where, what, and how fast.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub protocol: Protocol,
    /// The `whsec_` signing secret, or a Segment-style destination's write key.
    pub secret: String,
    pub kinds: Vec<NoticeKind>,
    /// `None`: every class.
    pub classes: Option<Vec<Class>>,
    pub campaign_id: Option<CampaignId>,
    pub first_only: bool,
    pub batch_size: u32,
    pub rate_limit: u32,
    pub description: Option<String>,
}

pub const MAX_BATCH_SIZE: u32 = 1000;
pub const MAX_RATE_LIMIT: u32 = 10_000;

#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub protocol: Protocol,
    pub kinds: Vec<NoticeKind>,
    pub classes: Option<Vec<&'static str>>,
    pub campaign_id: Option<CampaignId>,
    pub first_only: bool,
    pub batch_size: u32,
    pub rate_limit: u32,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub status: WebhookStatus,
}

/// How delivery to an endpoint is going.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WebhookStatus {
    /// Notices waiting to be sent, or to be retried.
    pub pending: i64,
    /// Notices delivered since the endpoint was registered (they are not kept, only counted).
    pub delivered: i64,
    /// Notices given up on after the last attempt; `replay` sends them again.
    pub dead: i64,
    /// Seconds the oldest pending notice has waited.
    pub oldest_pending_seconds: Option<i64>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub consecutive_failures: i64,
    /// Over the last 100 successful requests: milliseconds from sending to the receiver's answer.
    pub latency_ms_p50: Option<i64>,
    pub latency_ms_p95: Option<i64>,
}

/// What the writer matches each stored event against: an endpoint's filters.
#[derive(Debug, Clone)]
pub struct Route {
    pub endpoint_id: i64,
    pub kinds: Vec<NoticeKind>,
    pub classes: Option<Vec<Class>>,
    pub campaign_id: Option<CampaignId>,
    pub first_only: bool,
}

impl Route {
    /// Whether the endpoint wants this event. `first_for_reader`: it is a reader's (not a
    /// machine's) and the message has no earlier reader event of its kind.
    pub fn wants_event(
        &self,
        kind: EventKind,
        class: Class,
        campaign: CampaignId,
        first_for_reader: bool,
    ) -> bool {
        self.kinds.contains(&NoticeKind::of_event(kind))
            && self.campaign_id.is_none_or(|c| c == campaign)
            && self.classes.as_ref().is_none_or(|cs| cs.contains(&class))
            && (!self.first_only || first_for_reader)
    }

    pub fn wants(&self, kind: NoticeKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Whether the endpoint's choice depends on the class. Clicks for such endpoints are held
    /// for the burst window: a scanner following every link is only recognised at its second
    /// click, and the first click is then taken back before it was sent.
    pub fn depends_on_class(&self) -> bool {
        self.first_only || self.classes.is_some()
    }
}

/// How long clicks for class-dependent endpoints wait before they may be sent.
pub const CLICK_HOLD_MS: i64 = crate::classify::rules::BURST_WINDOW_MS + 500;

/// `kinds` as stored: space separated.
pub fn kinds_text(kinds: &[NoticeKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn parse_kinds_text(s: &str) -> Vec<NoticeKind> {
    s.split_whitespace().filter_map(NoticeKind::parse).collect()
}

pub fn classes_text(classes: &[Class]) -> String {
    classes
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn parse_classes_text(s: &str) -> Vec<Class> {
    s.split_whitespace().filter_map(Class::parse).collect()
}

/// Parses a list of class names as a user writes it (commas or spaces); `readers` stands for
/// every class that is not machine activity.
pub fn parse_class_list(items: &[String]) -> Result<Vec<Class>, String> {
    let mut out: Vec<Class> = Vec::new();
    for item in items.iter().flat_map(|s| s.split([',', ' '])) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let add: Vec<Class> = if item == "readers" {
            Class::ALL.into_iter().filter(|c| !c.is_machine()).collect()
        } else {
            vec![Class::parse(item).ok_or_else(|| {
                format!(
                    "unknown class '{item}': use readers or one of {}",
                    Class::ALL.map(|c| c.as_str()).join(", ")
                )
            })?]
        };
        for c in add {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    if out.is_empty() {
        return Err("name at least one class (or leave classes out for all)".into());
    }
    Ok(out)
}

/// One notice taken from the outbox for sending.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The outbox row.
    pub id: i64,
    pub notice_id: String,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    /// The `data` object, as JSON.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// An endpoint with notices waiting.
#[derive(Debug, Clone)]
pub struct DueEndpoint {
    pub id: i64,
    pub url: String,
    pub protocol: Protocol,
    /// The signing secret, or the write key.
    pub secret: String,
    pub batch_size: u32,
    pub rate_limit: u32,
    /// When its earliest pending notice may be sent.
    pub next_due: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// What became of one notice after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Delivered,
    RetryAt(DateTime<Utc>),
    Dead,
}

/// The result of one request, for the endpoint's status.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    /// `None` when the receiver answered 2xx.
    pub error: Option<String>,
    pub latency_ms: i64,
}

/// A notice as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub notice_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// A new random endpoint secret in the Standard Webhooks form.
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source failed");
    signature::format_secret(&key)
}

/// A random id part for notices that are not events (opt-outs, erasures).
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_lists_accept_readers_and_name_unknown_classes() {
        let readers = parse_class_list(&["readers".into()]).unwrap();
        assert!(readers.contains(&Class::Human));
        assert!(!readers.iter().any(|c| c.is_machine()));
        let two = parse_class_list(&["human, scanner".into()]).unwrap();
        assert_eq!(two, vec![Class::Human, Class::Scanner]);
        let err = parse_class_list(&["humans".into()]).unwrap_err();
        assert!(err.contains("unknown class 'humans'"), "{err}");
        assert!(parse_class_list(&[]).is_err());
    }

    #[test]
    fn first_only_routes_take_only_a_readers_first_event() {
        let route = Route {
            endpoint_id: 1,
            kinds: vec![NoticeKind::Open],
            classes: None,
            campaign_id: Some(CampaignId(7)),
            first_only: true,
        };
        assert!(route.wants_event(EventKind::Open, Class::Human, CampaignId(7), true));
        assert!(!route.wants_event(EventKind::Open, Class::Human, CampaignId(7), false));
        assert!(!route.wants_event(EventKind::Open, Class::Human, CampaignId(8), true));
        assert!(!route.wants_event(EventKind::Click, Class::Human, CampaignId(7), true));
        assert!(route.depends_on_class());
    }
}
