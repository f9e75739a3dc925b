//! What a batch reads before anything is decided: its messages with their histories, the links
//! its clicks name, and where their recipients stand. One statement each, whatever the batch's
//! size, so that the reads do not grow with it.

use super::message_row::MessageRow;
use crate::analytics::rollup::Fact;
use crate::classify::Prior;
use crate::store::queries::history::History;
use crate::store::queries::{json_array, parse_class, parse_kind, rollups, standing_consents};
use crate::store::sql::{self, Conn, params};
use crate::store::{ANONYMOUS_RECIPIENT, MessageId, NewEvent, StoreResult};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// What the batch read.
#[derive(Default)]
pub(super) struct Loaded {
    /// The messages its events name, by tracking id (a token whose message is gone has none).
    pub(super) messages: HashMap<i64, MessageRow>,
    /// The destinations of the links its clicks name.
    pub(super) links: HashMap<(MessageId, u16), String>,
    /// Its recipients who opted out.
    pub(super) opted_out: HashSet<String>,
    /// Its recipients whose consent stands, read where a hit asks (`--require-consent`): a
    /// withdrawal counts from that moment, for mail sent before too.
    pub(super) consenting: HashSet<String>,
}

/// Reads what deciding `events` (the batch without its failed checks) needs.
pub(super) fn load(c: &mut dyn Conn, events: &[&NewEvent]) -> StoreResult<Loaded> {
    let mut loaded = Loaded {
        messages: messages(c, events)?,
        ..Loaded::default()
    };
    let ids_of = |want: &dyn Fn(&NewEvent) -> bool| -> Vec<MessageId> {
        let mut ids: Vec<MessageId> = events
            .iter()
            .filter(|e| want(e))
            .filter_map(|e| loaded.messages.get(&e.tracking_id).map(|m| m.id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let clicked = ids_of(&|e| e.link_no.is_some());
    if !clicked.is_empty() {
        let sql = format!(
            "SELECT message_id, link_no, url FROM links WHERE message_id {}",
            sql::in_json_array(c.dialect(), true)
        );
        for r in c.query(&sql, params![json_array(&clicked)])? {
            loaded.links.insert((r.get(0)?, r.get(1)?), r.get(2)?);
        }
    }
    let mut recipients: Vec<&str> = (loaded.messages.values())
        .map(|m| m.recipient_id.as_str())
        .collect();
    recipients.sort_unstable();
    recipients.dedup();
    if !recipients.is_empty() {
        let sql = format!(
            "SELECT recipient_id FROM opt_outs WHERE recipient_id {}",
            sql::in_json_array(c.dialect(), false)
        );
        for r in c.query(&sql, params![json_array(&recipients)])? {
            loaded.opted_out.insert(r.get(0)?);
        }
    }
    let mut asking: Vec<String> = events
        .iter()
        .filter(|e| e.without_consent.is_some())
        .filter_map(|e| loaded.messages.get(&e.tracking_id))
        .map(|m| m.recipient_id.clone())
        .filter(|r| !r.starts_with(ANONYMOUS_RECIPIENT))
        .collect();
    asking.sort_unstable();
    asking.dedup();
    loaded.consenting.extend(standing_consents(c, &asking)?);
    histories_from_log(c, &mut loaded.messages)?;
    Ok(loaded)
}

/// The batch's messages, each with its history summary where that covers every event of the
/// batch for it (otherwise `histories_from_log` reads it).
fn messages(c: &mut dyn Conn, events: &[&NewEvent]) -> StoreResult<HashMap<i64, MessageRow>> {
    let mut messages = HashMap::new();
    // When each message's earliest event of the batch arrived: a summary that covers it covers
    // every later one.
    let mut batch_from: HashMap<i64, DateTime<Utc>> = HashMap::new();
    for e in events {
        let at = batch_from.entry(e.tracking_id).or_insert(e.received_at);
        *at = (*at).min(e.received_at);
    }
    if batch_from.is_empty() {
        return Ok(messages);
    }
    let mut tracking: Vec<i64> = batch_from.keys().copied().collect();
    tracking.sort_unstable();
    let sql = format!(
        "SELECT tracking_id, id, campaign_id, recipient_id, sent_at, first_failed_check_at,
                purged_facts, history
         FROM messages WHERE tracking_id {}",
        sql::in_json_array(c.dialect(), true)
    );
    for r in c.query(&sql, params![json_array(&tracking)])? {
        let tracking_id: i64 = r.get(0)?;
        let mut facts = rollups::parse_purged(r.get::<Option<String>>(6)?.as_deref());
        let offset = facts.len();
        let history = r
            .get::<Option<String>>(7)?
            .and_then(|text| History::parse(&text))
            .filter(|h| h.covers(batch_from[&tracking_id]));
        let summarised = history.is_some();
        let (prior, older, cutoff, last) = match history {
            Some(h) => {
                let prior = h.priors();
                facts.extend(h.older.iter().cloned());
                facts.extend(h.recent.into_iter().map(|(_, f)| f));
                (prior, h.older.len(), h.cutoff, h.last)
            }
            None => (Vec::new(), 0, None, Vec::new()),
        };
        messages.insert(
            tracking_id,
            MessageRow {
                id: r.get(1)?,
                campaign_id: r.get(2)?,
                recipient_id: r.get(3)?,
                sent_at: r.get(4)?,
                failed_check_at: r.get(5)?,
                prior,
                offset,
                facts,
                older,
                cutoff,
                last,
                batch_from: batch_from[&tracking_id],
                kept: 0,
                summarised,
                stored: false,
                seen: None,
            },
        );
    }
    Ok(messages)
}

/// The events of the messages whose summary did not serve, from the event log.
fn histories_from_log(
    c: &mut dyn Conn,
    messages: &mut HashMap<i64, MessageRow>,
) -> StoreResult<()> {
    let by_id: HashMap<MessageId, i64> = messages.iter().map(|(t, m)| (m.id, *t)).collect();
    let mut wanted: Vec<MessageId> = (messages.values())
        .filter(|m| !m.summarised)
        .map(|m| m.id)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    wanted.sort_unstable();
    let sql = format!(
        "SELECT message_id, kind, link_no, received_at, class, id, client, os, device, country
         FROM events WHERE message_id {} ORDER BY message_id, id",
        sql::in_json_array(c.dialect(), true)
    );
    for r in c.query(&sql, params![json_array(&wanted)])? {
        let m = messages
            .get_mut(&by_id[&r.get::<MessageId>(0)?])
            .expect("a message of the batch");
        let prior = Prior {
            kind: parse_kind(&r.get::<String>(1)?)?,
            link_no: r.get(2)?,
            received_at: r.get(3)?,
            class: parse_class(&r.get::<String>(4)?)?,
            id: r.get(5)?,
        };
        m.facts.push(Fact {
            kind: prior.kind,
            link_no: prior.link_no,
            received_at: prior.received_at,
            class: prior.class,
            client: r.get(6)?,
            os: r.get(7)?,
            device: r.get(8)?,
            country: r.get(9)?,
        });
        m.prior.push(prior);
    }
    Ok(())
}
