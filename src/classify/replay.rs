//! `reclassify`: runs the classifier again over a message's stored events, in the order they
//! arrived, exactly as the writer did when they came in (burst relabelling included).

use super::rules::{REASON_BURST, burst_members, burst_relabel};
use super::{Class, Classifier, Prior, StoredHit};
use crate::domain::{EventId, EventKind, MessageId};
use chrono::{DateTime, Utc};

/// One stored event: the raw request and what was derived from it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: EventId,
    pub kind: EventKind,
    pub link_no: Option<u16>,
    pub method: String,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub headers: Option<String>,
    pub ip_tags: String,
    pub received_at: DateTime<Utc>,
    /// Stored without its user agent (`--user-agent parsed`): keeps the class it got at arrival.
    pub ua_reduced: bool,
    pub derived: Derived,
}

/// What classification stores beside the raw event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub class: Class,
    pub reasons: String,
    pub duplicate: bool,
    pub internal: bool,
    pub client: Option<String>,
    pub os: Option<String>,
    pub device: String,
}

/// What classification needs to know about the message itself.
#[derive(Debug, Clone)]
pub struct MessageFacts {
    pub id: MessageId,
    pub recipient_id: String,
    pub sent_at: DateTime<Utc>,
    pub failed_check_at: Option<DateTime<Utc>>,
}

/// Reclassifies `events` (one message's, in id order) in place and returns the indexes of those
/// whose derived values changed.
///
/// Address lists: the stored `ip_tags` came from the full address at arrival. The stored address
/// may be truncated (or absent), so lists are also matched against it and the union is kept: a
/// range added to a list since then is found as long as it covers the stored (/24 or /48) network.
pub fn replay(
    classifier: &Classifier,
    message: &MessageFacts,
    events: &mut [StoredEvent],
) -> Vec<usize> {
    let before: Vec<Derived> = events.iter().map(|e| e.derived.clone()).collect();
    let mut history: Vec<Prior> = Vec::with_capacity(events.len());
    for i in 0..events.len() {
        let e = &events[i];
        if e.ua_reduced {
            history.push(Prior {
                id: e.id,
                kind: e.kind,
                link_no: e.link_no,
                received_at: e.received_at,
                class: e.derived.class,
            });
            continue;
        }
        let mut tags: Vec<&str> = e.ip_tags.split_whitespace().collect();
        if let Some(ip) = e.client_ip.as_deref().and_then(|s| s.parse().ok()) {
            let private = super::is_private_address(ip).then_some(super::PRIVATE_ADDRESS_TAG);
            for tag in classifier.ranges.tags(ip).into_iter().chain(private) {
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        let ip_tags = tags.join(" ");
        let hit = StoredHit {
            kind: e.kind,
            link_no: e.link_no,
            method: &e.method,
            user_agent: e.user_agent.as_deref(),
            client_ip: e.client_ip.as_deref(),
            headers: e.headers.as_deref(),
            ip_tags: &ip_tags,
            received_at: e.received_at,
            sent_at: message.sent_at,
            failed_check_at: message.failed_check_at,
            recipient_id: &message.recipient_id,
        };
        let (verdict, info) = hit.classify(classifier, &history);
        let burst = verdict.reasons.contains(&REASON_BURST);
        let received_at = e.received_at;
        events[i].derived = Derived {
            class: verdict.class,
            reasons: verdict.reasons_text(),
            duplicate: verdict.duplicate,
            internal: verdict.internal,
            client: info.client,
            os: info.os,
            device: info.device.as_str().to_string(),
        };
        if burst {
            let members: Vec<usize> = burst_members(received_at, &history).collect();
            for j in members {
                let d = &mut events[j].derived;
                (d.class, d.reasons) = burst_relabel(&d.reasons);
                history[j].class = d.class;
            }
        }
        history.push(Prior {
            id: events[i].id,
            kind: events[i].kind,
            link_no: events[i].link_no,
            received_at,
            class: events[i].derived.class,
        });
    }
    (0..events.len())
        .filter(|&i| events[i].derived != before[i])
        .collect()
}
