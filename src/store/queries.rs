//! The storage logic shared by both engines: the [`Store`] trait on top of [`Conn`]. An engine
//! (src/store/sqlite.rs, src/store/postgres.rs) opens connections, migrates its schema and runs
//! these closures on a blocking thread; everything else, classification against a message's
//! history, the rollup deltas and the webhook outbox included, is written once here.

mod access;
mod batch;
mod campaigns;
mod certificates;
mod checks;
mod consent;
mod conversions;
mod deliverability;
mod history;
mod ingest;
mod maintenance;
mod outbox;
pub(crate) mod paging;
mod recipients;
mod reports;
pub(crate) mod rollups;
mod segments;
mod tokens;
mod tracking_domains;
pub(crate) mod webhooks;

#[cfg(test)]
pub(crate) use batch::EVENT_ID_BLOCK;

use super::sql::{Conn, Row, in_exclusive_tx, in_tx, params};
use super::*;
use crate::analytics::rollup::{
    Delta, Dim, DimCount, Fact, HourCount, LinkCount, contributions, representatives,
};
use crate::classify::Class;
use crate::classify::replay::{Derived, MessageFacts, StoredEvent, replay};
use batch::record_batch;
use checks::{check_each_campaign, check_summaries};
use chrono::SubsecRound;
use consent::{anonymize_message, consent_records, standing_consents};
use history::History;
use std::future::Future;

/// How an engine runs the shared logic: `f` gets a connection on a blocking thread. `write`
/// connections are for statements that change data (the closure opens its transactions with
/// [`in_tx`]); `read` ones may run beside a writer.
pub trait Engine: Send + Sync + 'static {
    fn write<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static;

    fn read<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static;

    /// Runs `f` on the group commit's write connection on the calling thread, which must be one
    /// that may block (the writer's own): no hand-over to a blocking thread and back per batch.
    fn write_here<T>(&self, f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T>;
}

/// The [`Store`] of one engine.
pub struct SqlStore<E> {
    pub(crate) engine: E,
}

impl<E: Engine> SqlStore<E> {
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static,
    {
        self.engine.write(f).await
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static,
    {
        self.engine.read(f).await
    }
}

/// An earlier click of a burst becomes a scanner click too (which ones,
/// `classify::rules::burst_members` decides; into what, `burst_relabel`): ?2 the class, ?3 the
/// reason added.
const BURST_RELABEL: &str = "UPDATE events
    SET class = ?2, reasons = trim(reasons || ' ' || ?3) WHERE id = ?1";

const STORED_EVENT_COLUMNS: &str = "SELECT id, kind, link_no, method, user_agent, client_ip,
        headers, ip_tags, received_at, class, reasons, duplicate, internal, client, os, device,
        ua_reduced
    FROM events WHERE message_id = ?1 ORDER BY id";

fn stored_event_from_row(r: &Row) -> StoreResult<StoredEvent> {
    Ok(StoredEvent {
        id: r.get(0)?,
        kind: parse_kind(&r.get::<String>(1)?)?,
        link_no: r.get(2)?,
        method: r.get(3)?,
        user_agent: r.get(4)?,
        client_ip: r.get(5)?,
        headers: r.get(6)?,
        ip_tags: r.get(7)?,
        received_at: r.get(8)?,
        ua_reduced: r.get(16)?,
        derived: Derived {
            class: parse_class(&r.get::<String>(9)?)?,
            reasons: r.get(10)?,
            duplicate: r.get(11)?,
            internal: r.get(12)?,
            client: r.get(13)?,
            os: r.get(14)?,
            device: r.get(15)?,
        },
    })
}

/// A stored event's kind; anything else is a damaged row, not an open.
pub(crate) fn parse_kind(kind: &str) -> StoreResult<EventKind> {
    EventKind::parse(kind).ok_or_else(|| damaged("events", "kind", kind))
}

/// A stored event's class; anything else is a damaged row, not a reader's event.
pub(crate) fn parse_class(class: &str) -> StoreResult<Class> {
    Class::parse(class).ok_or_else(|| damaged("events", "class", class))
}

fn audit_actor(actor: &str) -> StoreResult<Actor> {
    Actor::parse(actor).ok_or_else(|| damaged("audit_log", "actor", actor))
}

fn audit_action(action: &str) -> StoreResult<AuditAction> {
    AuditAction::parse(action).ok_or_else(|| damaged("audit_log", "action", action))
}

fn damaged(table: &str, column: &str, value: &str) -> StoreError {
    StoreError::Other(format!(
        "an {table} row has {column} '{value}', which this version does not know: was the \
         database changed by hand, or written by a newer mailbeacon?"
    ))
}

const EVENT_COLUMNS: &str = "SELECT e.id, e.kind, e.received_at, e.campaign_id, e.message_id,
        m.recipient_id, l.url, e.method, e.user_agent, e.client_ip, e.class, e.reasons,
        e.duplicate, e.internal, e.client, e.os, e.device, e.country, e.region
    FROM events e
    JOIN messages m ON m.id = e.message_id
    LEFT JOIN links l ON l.message_id = e.message_id AND l.link_no = e.link_no";

fn event_from_row(r: &Row) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        id: r.get(0)?,
        kind: parse_kind(&r.get::<String>(1)?)?,
        received_at: r.get(2)?,
        campaign_id: r.get(3)?,
        message_id: r.get(4)?,
        recipient_id: r.get(5)?,
        link_url: r.get(6)?,
        method: r.get(7)?,
        user_agent: r.get(8)?,
        client_ip: r.get(9)?,
        class: r.get(10)?,
        reasons: r.get(11)?,
        duplicate: r.get(12)?,
        internal: r.get(13)?,
        client: r.get(14)?,
        os: r.get(15)?,
        device: r.get(16)?,
        country: r.get(17)?,
        region: r.get(18)?,
    })
}

fn events_from_rows(rows: Vec<Row>) -> StoreResult<Vec<EventRecord>> {
    rows.iter().map(event_from_row).collect()
}

#[async_trait]
impl<E: Engine> Store for SqlStore<E> {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| {
            c.query("SELECT count(*) FROM schema_migrations", params![])
                .map(drop)
        })
        .await
    }
}

fn json_array<T: Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("plain values serialize")
}

fn read_keys(c: &mut dyn Conn) -> StoreResult<Vec<(u8, [u8; 32])>> {
    c.query("SELECT id, secret FROM signing_keys ORDER BY id", params![])?
        .iter()
        .map(|r| {
            let secret: [u8; 32] = r
                .get(1)
                .map_err(|_| StoreError::Other("a signing key is not 32 bytes".into()))?;
            Ok((r.get(0)?, secret))
        })
        .collect()
}

#[cfg(test)]
mod figures_tests;
#[cfg(test)]
mod tests;
