//! What the group commit decides for a batch, apart from the database: which events are stored,
//! their classes, the burst relabels, the webhook notices, the rollup delta and the messages'
//! new history summaries. Pure functions of what the batch read ([`Loaded`]): the tests in
//! `tests.rs` run them without a database, and `mod.rs` writes what they return.

use super::load::Loaded;
use crate::analytics::rollup::{Delta, Fact, Seen};
use crate::classify::rules::{REASON_BURST, burst_members, burst_relabel};
use crate::classify::{Class, Classifier, Prior, StoredHit};
use crate::domain::{Keep, Standing};
use crate::store::{
    ANONYMOUS_RECIPIENT, CampaignId, EventId, EventKind, EventRecord, MessageId, NewEvent,
    RecordOutcome,
};
use chrono::{DateTime, Utc};

/// Up to this many facts a message's rollup delta scans them; from there on it keeps a [`Seen`].
/// A Seen costs a dozen allocations to start, a scan a few string comparisons per fact.
const SCAN_UP_TO: usize = 16;

/// Which events of a batch are stored: the first decision, made before event ids are taken.
pub(super) struct Admission {
    /// One per event of the batch; a stored one's `event_id` is given by [`decide`].
    pub(super) outcomes: Vec<RecordOutcome>,
    /// The positions of the events to store, in batch order.
    pub(super) stored: Vec<usize>,
    /// Messages (by tracking id) to rename anonymous before their hits are stored: their
    /// recipient's consent no longer stands, under `--without-consent anonymous`.
    pub(super) anonymize: Vec<i64>,
}

/// Decides which events of `batch` are stored, as [`Standing::keep`] says for their recipients.
pub(super) fn admit(batch: &[NewEvent], loaded: &Loaded) -> Admission {
    let mut admission = Admission {
        outcomes: Vec::with_capacity(batch.len()),
        stored: Vec::with_capacity(batch.len()),
        anonymize: Vec::new(),
    };
    for (i, e) in batch.iter().enumerate() {
        let outcome = if e.failed_check {
            RecordOutcome::FailedCheckNoted
        } else if let Some(m) = loaded.messages.get(&e.tracking_id) {
            let destination = e.link_no.map(|no| loaded.links.get(&(m.id, no)));
            let renamed = admission.anonymize.contains(&e.tracking_id);
            let standing = Standing {
                anonymous: renamed || m.recipient_id.starts_with(ANONYMOUS_RECIPIENT),
                opted_out: loaded.opted_out.contains(&m.recipient_id),
                consenting: loaded.consenting.contains(&m.recipient_id),
            };
            match (destination, standing.keep(e.without_consent)) {
                (Some(None), _) => RecordOutcome::UnknownLink,
                (destination, Keep::Nothing) => RecordOutcome::NotStored {
                    destination: destination.flatten().cloned(),
                },
                (destination, keep) => {
                    if keep == Keep::Anonymous && !standing.anonymous {
                        admission.anonymize.push(e.tracking_id);
                    }
                    admission.stored.push(i);
                    RecordOutcome::Recorded {
                        event_id: EventId(0),
                        destination: destination.flatten().cloned(),
                    }
                }
            }
        } else {
            RecordOutcome::UnknownMessage
        };
        admission.outcomes.push(outcome);
    }
    admission
}

/// A stored event's row, as the INSERT writes it.
pub(super) struct EventRow<'a> {
    pub(super) id: EventId,
    pub(super) received_at: DateTime<Utc>,
    pub(super) kind: EventKind,
    pub(super) campaign_id: CampaignId,
    pub(super) message_id: MessageId,
    pub(super) link_no: Option<u16>,
    pub(super) method: &'static str,
    pub(super) user_agent: Option<&'a str>,
    pub(super) client_ip: Option<&'a str>,
    pub(super) headers: Option<&'a str>,
    pub(super) class: Class,
    pub(super) reasons: String,
    pub(super) duplicate: bool,
    pub(super) internal: bool,
    pub(super) ip_tags: String,
    pub(super) client: Option<String>,
    pub(super) os: Option<String>,
    pub(super) device: &'static str,
    pub(super) country: Option<&'a str>,
    pub(super) region: Option<&'a str>,
    /// The agent string was left out (settings or an anonymous message).
    pub(super) ua_reduced: bool,
}

/// A webhook notice of a stored event, for every endpoint that wants it.
pub(super) struct Notice {
    pub(super) event: EventRecord,
    pub(super) class: Class,
    /// The first of its kind a reader made on the message.
    pub(super) first_for_reader: bool,
    /// A reader's click on mail with no reader open yet: it implies one.
    pub(super) implied_open: bool,
    /// Events of the message this event's burst relabelled a scanner's: their held click
    /// notices are taken back.
    pub(super) withdraw: Vec<EventId>,
}

/// Everything the batch writes, in the order it is written.
pub(super) struct Decision<'a> {
    pub(super) outcomes: Vec<RecordOutcome>,
    /// Events stored before this batch that a burst in it relabelled a scanner's.
    pub(super) relabel: Vec<EventId>,
    /// One per stored event when any endpoint is registered, in event order.
    pub(super) notices: Vec<Notice>,
    pub(super) rows: Vec<EventRow<'a>>,
    /// The new history summary of each message whose events were stored or read from the log.
    pub(super) histories: Vec<(MessageId, String)>,
    pub(super) delta: Delta,
}

/// Classifies the admitted events of `batch` against their messages' histories (the earlier
/// events of the batch included), with `ids` the stored events' ids in order. `notify`: some
/// webhook endpoint is registered, so the notices are worth building.
pub(super) fn decide<'a>(
    batch: &'a [NewEvent],
    mut loaded: Loaded,
    admission: Admission,
    ids: &[EventId],
    classifier: &Classifier,
    notify: bool,
) -> Decision<'a> {
    use std::collections::HashMap;
    let Admission {
        mut outcomes,
        stored,
        ..
    } = admission;
    let mut decision = Decision {
        outcomes: Vec::new(),
        relabel: Vec::new(),
        notices: Vec::new(),
        rows: Vec::with_capacity(stored.len()),
        histories: Vec::new(),
        delta: Delta::default(),
    };
    // Rows of this batch by event id, for a burst that relabels one of them.
    let mut row_of: HashMap<EventId, usize> = HashMap::new();
    for (&i, &event_id) in stored.iter().zip(ids) {
        let e = &batch[i];
        let RecordOutcome::Recorded {
            event_id: id,
            destination,
        } = &mut outcomes[i]
        else {
            unreachable!("only recorded events are stored")
        };
        *id = event_id;
        let m = loaded
            .messages
            .get_mut(&e.tracking_id)
            .expect("an admitted event's message");
        m.stored = true;
        let ip_tags = e.ip_tags.join(" ");
        let hit = StoredHit {
            kind: e.kind,
            link_no: e.link_no,
            method: e.method,
            user_agent: e.user_agent.as_deref(),
            client_ip: e.client_ip.as_deref(),
            headers: e.headers.as_deref(),
            ip_tags: &ip_tags,
            received_at: e.received_at,
            sent_at: m.sent_at,
            failed_check_at: m.failed_check_at,
            recipient_id: &m.recipient_id,
        };
        let (verdict, info) = hit.classify(classifier, &m.prior);
        // An anonymous message keeps neither the address nor the agent string of its readers
        // (classification above has seen them; the parsed client, OS and device stay), nor the
        // headers (a proxy's `Via`, a `From` address) or where the reader was.
        let anonymous = m.recipient_id.starts_with(ANONYMOUS_RECIPIENT);
        let kept = |value: &'a Option<String>| value.as_deref().filter(|_| !anonymous);
        let user_agent = kept(&e.user_agent).filter(|_| e.keep_user_agent);
        let (client_ip, headers) = (kept(&e.client_ip), kept(&e.headers));
        let (country, region) = (kept(&e.country), kept(&e.region));
        row_of.insert(event_id, decision.rows.len());
        decision.rows.push(EventRow {
            id: event_id,
            received_at: e.received_at,
            kind: e.kind,
            campaign_id: m.campaign_id,
            message_id: m.id,
            link_no: e.link_no,
            method: e.method,
            user_agent,
            client_ip,
            headers,
            class: verdict.class,
            reasons: verdict.reasons_text(),
            duplicate: verdict.duplicate,
            internal: verdict.internal,
            ip_tags,
            client: info.client.clone(),
            os: info.os.clone(),
            device: info.device.as_str(),
            country,
            region,
            ua_reduced: user_agent.is_none() && e.user_agent.is_some(),
        });
        // A burst relabels earlier events: then the message's contributions are recomputed from
        // its facts before and after; otherwise the new event's own part is added.
        let relabels = verdict.reasons.contains(&REASON_BURST);
        let before = relabels.then(|| m.facts.clone());
        let mut relabelled = Vec::new();
        if relabels {
            for p in burst_members(e.received_at, &m.prior).collect::<Vec<_>>() {
                let id = m.prior[p].id;
                match row_of.get(&id) {
                    Some(&row) => {
                        let row = &mut decision.rows[row];
                        (row.class, row.reasons) = burst_relabel(&row.reasons);
                    }
                    None => decision.relabel.push(id),
                }
                m.prior[p].class = Class::Scanner;
                m.facts[m.offset + p].class = Class::Scanner;
                relabelled.push(id);
            }
        }
        if notify {
            // A reader's click means the mail was opened (images off or not): an open after a
            // reader's click is not a first open.
            let reader_before = |kind: EventKind| {
                m.facts
                    .iter()
                    .any(|f| f.kind == kind && !f.class.is_machine())
            };
            let first_for_reader = !verdict.class.is_machine()
                && !reader_before(e.kind)
                && (e.kind == EventKind::Click || !reader_before(EventKind::Click));
            let implied_open =
                first_for_reader && e.kind == EventKind::Click && !reader_before(EventKind::Open);
            decision.notices.push(Notice {
                event: EventRecord {
                    id: event_id,
                    kind: e.kind,
                    received_at: e.received_at,
                    campaign_id: m.campaign_id,
                    message_id: m.id,
                    recipient_id: m.recipient_id.clone(),
                    link_url: destination.clone(),
                    method: e.method.to_string(),
                    user_agent: user_agent.map(str::to_string),
                    client_ip: client_ip.map(str::to_string),
                    class: verdict.class.as_str().to_string(),
                    reasons: verdict.reasons_text(),
                    duplicate: verdict.duplicate,
                    internal: verdict.internal,
                    client: info.client.clone(),
                    os: info.os.clone(),
                    device: info.device.as_str().to_string(),
                    country: country.map(str::to_string),
                    region: region.map(str::to_string),
                },
                class: verdict.class,
                first_for_reader,
                implied_open,
                withdraw: relabelled,
            });
        }
        m.prior.push(Prior {
            id: event_id,
            kind: e.kind,
            link_no: e.link_no,
            received_at: e.received_at,
            class: verdict.class,
        });
        let fact = Fact {
            kind: e.kind,
            link_no: e.link_no,
            received_at: e.received_at,
            class: verdict.class,
            client: info.client,
            os: info.os,
            device: info.device.as_str().to_string(),
            country: country.map(str::to_string),
        };
        match before {
            Some(before) => {
                m.facts.push(fact);
                decision.delta.change(m.campaign_id, &before, &m.facts);
                // Relabelled readers changed what the earlier facts show.
                m.seen = None;
            }
            // Most messages hold a few facts: a pass over them allocates nothing.
            None if m.seen.is_none() && m.facts.len() < SCAN_UP_TO => {
                m.facts.push(fact);
                decision.delta.append(m.campaign_id, &m.facts);
            }
            None => {
                let seen = m.seen.get_or_insert_with(|| Seen::of(&m.facts));
                decision.delta.append_seen(m.campaign_id, seen, &fact);
                seen.add(&fact);
                m.facts.push(fact);
            }
        }
        decision.delta.activity(m.campaign_id, e.received_at);
        m.compact_when_long();
    }
    decision.outcomes = outcomes;
    decision.histories = (loaded.messages.values())
        .filter(|m| m.stored || !m.summarised)
        .map(|m| (m.id, m.history(None).to_text()))
        .collect();
    decision
}
