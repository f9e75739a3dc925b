//! The rows of a campaign's segments: its messages, a page at a time, with what their events came
//! to (`analytics::segments` decides which segment each is in).

use super::*;
use crate::analytics::segments::MessageActivity;
use rollups::FACT_COLUMNS;
use std::collections::{HashMap, HashSet};

/// The campaign's messages after `after`, oldest first, at most `limit`, with their activity:
/// one read of the messages and one of their events, so a page costs the same wherever it is.
pub(super) fn message_activity(
    c: &mut dyn Conn,
    campaign: CampaignId,
    after: MessageId,
    limit: usize,
) -> StoreResult<Vec<MessageActivity>> {
    let messages = c.query(
        "SELECT id, recipient_id, sent_at, purged_facts FROM messages
         WHERE campaign_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        params![campaign, after, limit],
    )?;
    with_activity(c, messages)
}

/// Every message of these recipients, in every campaign, with its activity.
pub(super) fn recipient_activity(
    c: &mut dyn Conn,
    recipients: &[String],
) -> StoreResult<Vec<MessageActivity>> {
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    let messages = c.query(
        &format!(
            "SELECT id, recipient_id, sent_at, purged_facts FROM messages
             WHERE recipient_id {} ORDER BY id",
            sql::in_json_array(c.dialect(), false)
        ),
        params![json_array(recipients)],
    )?;
    with_activity(c, messages)
}

/// The named recipients with stored messages, in order of their id, after `after`, at most
/// `limit` (anonymous messages name no one). Walks the recipient index: a page costs the same
/// wherever it is.
pub(super) fn recipients_after(
    c: &mut dyn Conn,
    after: &str,
    limit: usize,
) -> StoreResult<Vec<String>> {
    let rows = c.query(
        "SELECT DISTINCT recipient_id FROM messages
         WHERE recipient_id > ?1 AND recipient_id NOT LIKE 'anonymous:%'
         ORDER BY recipient_id LIMIT ?2",
        params![after, limit],
    )?;
    rows.iter().map(|r| r.get(0)).collect()
}

/// Rows of (id, recipient_id, sent_at, purged_facts) with what their events came to: one read of
/// the events for all of them.
fn with_activity(c: &mut dyn Conn, messages: Vec<sql::Row>) -> StoreResult<Vec<MessageActivity>> {
    let mut facts: HashMap<MessageId, Vec<Fact>> = HashMap::new();
    let mut converted: HashSet<MessageId> = HashSet::new();
    let ids: Vec<MessageId> = (messages.iter())
        .map(|r| r.get(0))
        .collect::<StoreResult<_>>()?;
    if !ids.is_empty() {
        let among = sql::in_json_array(c.dialect(), true);
        let sql = format!(
            "SELECT {FACT_COLUMNS}, message_id FROM events WHERE message_id {among} ORDER BY id"
        );
        for r in c.query(&sql, params![json_array(&ids)])? {
            let fact = rollups::fact_from_row(&r)?;
            facts.entry(r.get(8)?).or_default().push(fact);
        }
        let sql = format!("SELECT DISTINCT message_id FROM conversions WHERE message_id {among}");
        for r in c.query(&sql, params![json_array(&ids)])? {
            converted.insert(r.get(0)?);
        }
    }
    messages
        .iter()
        .map(|r| {
            let id: MessageId = r.get(0)?;
            let mut all = rollups::parse_purged(r.get::<Option<String>>(3)?.as_deref());
            all.extend(facts.remove(&id).unwrap_or_default());
            let mut activity = MessageActivity::from_facts(id, r.get(1)?, r.get(2)?, &all);
            activity.converted = converted.contains(&id);
            Ok(activity)
        })
        .collect()
}
