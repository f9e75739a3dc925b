//! The group commit: a batch of journaled events classified against their messages' history
//! and stored with the rollups and webhook outbox in one transaction. `load` reads, `decide`
//! decides without the database, and this file writes what it decided.

mod decide;
mod load;
mod message_row;
#[cfg(test)]
mod tests;

use super::consent::anonymize_message;
use super::{BURST_RELABEL, history, rollups, webhooks};
use crate::classify::Classifier;
use crate::classify::rules::{REASON_BURST, burst_relabel};
use crate::store::sql::{self, Conn, params};
use crate::store::{EventId, NewEvent, RecordOutcome, StoreResult};
use decide::{Decision, EventRow, admit, decide};

/// Columns of an events row as the group commit inserts it, in [`EventRow`]'s order.
const EVENT_INSERT_COLUMNS: &str = "id, received_at, kind, campaign_id, message_id, link_no,
    method, user_agent, client_ip, headers, class, reasons, duplicate, internal, ip_tags, client,
    os, device, country, region, ua_reduced";
/// The group commit's INSERT of a batch's events.
static EVENT_INSERT: std::sync::LazyLock<sql::MultiRow> = std::sync::LazyLock::new(|| {
    use sql::Column::{Int, Text};
    sql::MultiRow::new(
        &format!("INSERT INTO events ({EVENT_INSERT_COLUMNS})"),
        &[
            Int, Text, Text, Int, Int, Int, Text, Text, Text, Text, Text, Text, Int, Int, Text,
            Text, Text, Text, Text, Text, Int,
        ],
        "",
    )
});

/// The group commit: classifies and stores each event of the batch against its message's
/// history (earlier events of the batch included), keeps the rollups and the outbox in step.
/// The batch's messages, links, opt-outs and histories are read with one statement each, and
/// its events are written with multi-row INSERTs, so the statements do not grow with the batch.
pub(super) fn record_batch(
    c: &mut dyn Conn,
    batch: &[NewEvent],
    classifier: &Classifier,
) -> StoreResult<Vec<RecordOutcome>> {
    lock_messages(c, batch)?;
    for e in batch.iter().filter(|e| e.failed_check) {
        c.execute(
            "UPDATE messages SET first_failed_check_at = ?2
             WHERE tracking_id = ?1 AND first_failed_check_at IS NULL",
            params![e.tracking_id, e.received_at],
        )?;
    }
    let events: Vec<&NewEvent> = batch.iter().filter(|e| !e.failed_check).collect();
    let mut loaded = load::load(c, &events)?;
    let admission = admit(batch, &loaded);
    for tracking_id in &admission.anonymize {
        // Recorded from now on under a name that points to no one (see anonymize_message).
        let m = loaded.messages.get_mut(tracking_id).expect("known message");
        m.recipient_id = anonymize_message(c, m.id)?;
    }
    let ids = next_event_ids(c, admission.stored.len())?;
    let routes = webhooks::routes(c)?;
    let decision = decide(
        batch,
        loaded,
        admission,
        &ids,
        classifier,
        !routes.is_empty(),
    );
    write(c, decision, &routes)
}

/// Writes what [`decide`] decided; the rollups last, since a campaign's rollup rows are the ones
/// other processes' batches wait for.
fn write(
    c: &mut dyn Conn,
    decision: Decision,
    routes: &[crate::webhooks::Route],
) -> StoreResult<Vec<RecordOutcome>> {
    let (class, _) = burst_relabel("");
    for id in &decision.relabel {
        c.execute(BURST_RELABEL, params![*id, class.as_str(), REASON_BURST])?;
    }
    for notice in &decision.notices {
        webhooks::enqueue_event(
            c,
            routes,
            &notice.event,
            notice.class,
            notice.first_for_reader,
            notice.implied_open,
        )?;
        webhooks::withdraw_relabelled(c, routes, &notice.withdraw)?;
    }
    EVENT_INSERT.execute(c, decision.rows.into_iter().map(row_values).collect())?;
    history::write(c, &decision.histories)?;
    rollups::apply(c, &decision.delta)?;
    Ok(decision.outcomes)
}

fn row_values(row: EventRow) -> Vec<sql::Value> {
    vec![
        row.id.into(),
        row.received_at.into(),
        row.kind.as_str().into(),
        row.campaign_id.into(),
        row.message_id.into(),
        row.link_no.into(),
        row.method.into(),
        row.user_agent.into(),
        row.client_ip.into(),
        row.headers.into(),
        row.class.as_str().into(),
        row.reasons.into(),
        row.duplicate.into(),
        row.internal.into(),
        row.ip_tags.into(),
        row.client.into(),
        row.os.into(),
        row.device.into(),
        row.country.into(),
        row.region.into(),
        row.ua_reduced.into(),
    ]
}

/// How many event ids one call of the PostgreSQL sequence hands out: its increment (migration
/// 0011). A batch takes ceil(n / block) calls and uses each block's ids from its first.
pub const EVENT_ID_BLOCK: i64 = 1024;

/// Ids for `n` new events, in order: above every id the table has had.
fn next_event_ids(c: &mut dyn Conn, n: usize) -> StoreResult<Vec<EventId>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    match c.dialect() {
        sql::Dialect::Sqlite => {
            // AUTOINCREMENT never reuses an id: start above the highest ever given.
            let base: i64 = c.query_one(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
                            coalesce((SELECT max(id) FROM events), 0))",
                params![],
            )?;
            Ok((1..=n as i64).map(|i| EventId(base + i)).collect())
        }
        sql::Dialect::Postgres => {
            let blocks = (n as i64 + EVENT_ID_BLOCK - 1) / EVENT_ID_BLOCK;
            let mut starts: Vec<i64> = c
                .query(
                    "SELECT nextval(pg_get_serial_sequence('events', 'id'))
                     FROM generate_series(1, CAST(?1 AS BIGINT))",
                    params![blocks],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect::<StoreResult<_>>()?;
            starts.sort_unstable();
            Ok(starts
                .into_iter()
                .flat_map(|start| start..start + EVENT_ID_BLOCK)
                .take(n)
                .map(EventId)
                .collect())
        }
    }
}

/// Two processes must not store events of one message at once on PostgreSQL (each reads the
/// message's history and rewrites it): the batch locks its messages first, in id order, so that
/// two batches never wait for each other in a circle. SQLite writes one transaction at a time.
fn lock_messages(c: &mut dyn Conn, batch: &[NewEvent]) -> StoreResult<()> {
    if c.dialect() == sql::Dialect::Sqlite || batch.is_empty() {
        return Ok(());
    }
    let mut tracking: Vec<i64> = batch.iter().map(|e| e.tracking_id).collect();
    tracking.sort_unstable();
    tracking.dedup();
    let sql = format!(
        "SELECT id FROM messages WHERE tracking_id {} ORDER BY id FOR NO KEY UPDATE",
        sql::in_json_array(c.dialect(), true)
    );
    c.query(&sql, params![super::json_array(&tracking)])
        .map(drop)
}
