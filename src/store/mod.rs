//! The storage interface. Handlers, the writer and the CLI see only this trait and its types. Its
//! one implementation (queries.rs) runs on either engine, SQLite or PostgreSQL, through the small
//! SQL interface in sql.rs; each engine converts its driver's errors at that boundary.

mod database_url;
pub mod migrate_data;
pub mod postgres;
pub mod queries;
mod records;
pub mod sql;
pub mod sqlite;

use crate::analytics::rollup::{Dim, DimCount, HourCount, LinkCount};
use crate::classify::Classifier;
use crate::webhooks::{Attempt, Delivery, DeliveryRecord, DueEndpoint, NewWebhook, Next, Webhook};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

pub use crate::domain::{
    ANONYMOUS_RECIPIENT, CampaignId, EventId, EventKind, MessageId, WithoutConsent,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "the database was migrated by a newer mailbeacon (schema version {found}, this build knows {known})"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// Another transaction got in the way (a deadlock PostgreSQL broke, a serialization
    /// failure): nothing was written, and the same transaction can be tried again at once.
    #[error("a concurrent transaction conflicted, nothing was written: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub use crate::analytics::{CampaignStats, ClassCounts, Counts};
pub use database_url::DatabaseUrl;
pub use records::*;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Round trip to the database, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    async fn create_campaign(
        &self,
        name: &str,
        template_html: Option<&str>,
    ) -> StoreResult<Campaign>;
    async fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>>;
    async fn campaigns(&self) -> StoreResult<Vec<Campaign>>;

    /// Stores messages and their links in one transaction; returns their ids in the same order.
    async fn insert_messages(
        &self,
        campaign: CampaignId,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<MessageId>>;

    /// Stores a batch of events in one transaction (the group commit). The outcomes are in the
    /// batch's order; when this returns `Ok`, every `Recorded` event is durable.
    /// Each event is classified (against the earlier events of its message) as it is stored.
    async fn record_events(
        &self,
        batch: Arc<[NewEvent]>,
        classifier: Arc<Classifier>,
    ) -> StoreResult<Vec<RecordOutcome>>;

    /// Stores events read from the event journal like [`Store::record_events`], on the calling
    /// thread (the store worker's own, which may block), and in the same transaction records that
    /// the journal `journal` has been applied up to `position` (segment, byte offset): a worker
    /// that stops anywhere resumes without storing an event twice.
    fn record_journaled(
        &self,
        batch: &[NewEvent],
        classifier: &Classifier,
        journal: &str,
        position: (u64, u64),
    ) -> StoreResult<Vec<RecordOutcome>>;

    /// How far the journal has been applied (see [`Store::record_journaled`]).
    async fn journal_position(&self, journal: String) -> StoreResult<Option<(u64, u64)>>;

    /// What a tracking request needs before it is answered: `None` when no message has this
    /// tracking id; else the message's [`Standing`], and the destination of link `link_no`
    /// (`None` when the message has no such link, or when no link was asked for).
    async fn lookup_link(
        &self,
        tracking_id: i64,
        link_no: Option<u16>,
    ) -> StoreResult<Option<(Standing, Option<String>)>>;

    /// Runs the classifier again over the stored events (of one campaign, or all), message by
    /// message in arrival order, and stores what changed. `progress` is told (events done, events
    /// in all) after each chunk.
    async fn reclassify(
        &self,
        campaign: Option<CampaignId>,
        classifier: Arc<Classifier>,
        progress: Progress,
    ) -> StoreResult<ReclassifySummary>;

    async fn campaign_stats(&self, id: CampaignId) -> StoreResult<CampaignStats>;
    /// Rollup rows of the hours in `[from_hour, to_hour)` (hours since the Unix epoch).
    async fn report_hours(
        &self,
        id: CampaignId,
        from_hour: i64,
        to_hour: i64,
    ) -> StoreResult<Vec<HourCount>>;
    async fn report_links(&self, id: CampaignId) -> StoreResult<Vec<LinkCount>>;
    async fn report_breakdown(&self, id: CampaignId, dim: Dim) -> StoreResult<Vec<DimCount>>;

    /// From now on, this recipient's opens and clicks are answered but not stored. Returns when
    /// the recipient had opted out (the first time), if it had.
    async fn opt_out(&self, recipient_id: String, source: String) -> StoreResult<DateTime<Utc>>;
    /// Records the recipient's consent to individual tracking.
    async fn record_consent(
        &self,
        recipient_id: String,
        source: String,
        text: Option<String>,
        given_at: DateTime<Utc>,
    ) -> StoreResult<ConsentRecord>;
    /// Withdraws every standing consent of the recipient; returns how many. With `anonymize`
    /// (`--without-consent anonymous`) the recipient's messages are made anonymous in the same
    /// transaction (see [`WithoutConsent::Anonymous`]); the second number says how many.
    async fn withdraw_consent(
        &self,
        recipient_id: String,
        anonymize: bool,
    ) -> StoreResult<(u64, u64)>;
    /// The recipient's consent records, oldest first (withdrawn ones included: the proof).
    async fn consents(&self, recipient_id: String) -> StoreResult<Vec<ConsentRecord>>;
    /// Which of these recipients have a standing consent.
    async fn consenting(&self, recipients: Vec<String>) -> StoreResult<Vec<String>>;
    /// Which of these recipients have opted out.
    async fn opted_out(&self, recipients: Vec<String>) -> StoreResult<Vec<String>>;
    /// The recipient of the message with this tracking id (the "stop tracking me" link).
    async fn recipient_of(&self, tracking_id: i64) -> StoreResult<Option<String>>;
    /// Removes every message, link, event and opt-out record of the recipient, across campaigns.
    async fn erase_recipient(&self, recipient_id: String) -> StoreResult<Erasure>;
    /// Everything stored about the recipient (a subject access request).
    async fn recipient_export(&self, recipient_id: String) -> StoreResult<RecipientExport>;

    /// Address lists imported to replace the shipped ones.
    async fn address_lists(&self) -> StoreResult<Vec<AddressList>>;
    async fn save_address_list(&self, list: AddressList) -> StoreResult<()>;
    /// Forgets an imported list (the shipped one applies again); false when there was none.
    async fn delete_address_list(&self, name: String) -> StoreResult<bool>;
    async fn events(&self, query: EventQuery) -> StoreResult<Vec<EventRecord>>;
    /// Where an export of the campaign's events started now ends: the highest id among them (0
    /// when there are none). Events stored later get higher ids, so they are left out.
    async fn export_bound(&self, campaign: CampaignId) -> StoreResult<EventId>;
    /// One page of an export: the campaign's events with ids in `(after, up_to]`, oldest first,
    /// at most `limit`. Each page is a short read of its own: an export, however long, holds no
    /// transaction open.
    async fn export_page(
        &self,
        campaign: CampaignId,
        after: EventId,
        up_to: EventId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>>;

    /// Signing keys kept in the database, as (id, secret). When there are none, `new_secret` is
    /// stored as key 1 in the same transaction (so processes starting together agree on one key) and
    /// its id is returned beside the list.
    async fn signing_keys_or_create(
        &self,
        new_secret: [u8; 32],
    ) -> StoreResult<(Vec<(u8, [u8; 32])>, Option<u8>)>;
    /// Adds a key with the next free id and returns that id.
    async fn add_signing_key(&self, secret: [u8; 32]) -> StoreResult<u8>;
    /// Deletes a signing key that no longer signs (not the newest): what it signed stops
    /// verifying. Ok(false) when there is no such key; an error for the newest.
    async fn retire_signing_key(&self, id: u8) -> StoreResult<bool>;

    /// Stores a token's hash with its scope and, optionally, when it stops working.
    async fn create_api_token(
        &self,
        token_hash: [u8; 32],
        scope: Scope,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// Every API token, oldest first.
    async fn api_tokens(&self) -> StoreResult<Vec<ApiTokenInfo>>;
    /// Deletes a token and ends the dashboard sessions started with it; false when there was none.
    async fn revoke_api_token(&self, id: i64) -> StoreResult<bool>;
    /// Stores the token only if there is none yet (the first start's admin token); false when
    /// there was one. Processes starting together make one between them.
    async fn create_first_api_token(&self, token_hash: [u8; 32], scope: Scope)
    -> StoreResult<bool>;
    /// The id and scope of the API token with this hash, unless it has expired.
    async fn api_token_scope(&self, token_hash: [u8; 32]) -> StoreResult<Option<(i64, Scope)>>;
    async fn audit(&self, entry: AuditEntry) -> StoreResult<()>;
    /// Audit entries with an id above `after`, oldest first.
    async fn audit_log(&self, after: i64, limit: usize) -> StoreResult<Vec<(i64, AuditEntry)>>;
    /// The target of the latest audit entry with this action.
    async fn last_audit_target(&self, action: String) -> StoreResult<Option<String>>;

    /// Recomputes every rollup from the messages and the event log. For repairs (a database edited
    /// by hand, events restored): counts of events that retention deleted are lost by it.
    async fn rebuild_rollups(&self) -> StoreResult<()>;

    /// Compares every campaign's rollups with what the event log gives, and with `repair`
    /// rewrites those that differ. Campaigns of which retention deleted events are skipped (their
    /// rollups hold counts the log no longer has).
    async fn check_rollups(&self, repair: bool) -> StoreResult<RollupCheck>;

    /// Deletes the raw events received before `before` (retention), oldest first in short
    /// transactions; the rollups stay, and so do the reports. `progress` gets (deleted, 0).
    async fn purge_events(
        &self,
        before: DateTime<Utc>,
        progress: Progress,
    ) -> StoreResult<PurgeSummary>;

    /// The latest events of a campaign, newest first (the dashboard's live feed starts with them).
    async fn recent_events(
        &self,
        campaign: CampaignId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>>;

    /// Sets (or replaces) the dashboard password of a scope, as a password hash string.
    async fn set_dashboard_password(&self, scope: Scope, hash: String) -> StoreResult<()>;
    async fn dashboard_passwords(&self) -> StoreResult<Vec<(Scope, String)>>;
    async fn create_session(&self, session: Session) -> StoreResult<()>;
    /// The unexpired session with this cookie hash.
    async fn session(&self, session_hash: [u8; 32]) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, session_hash: [u8; 32]) -> StoreResult<()>;

    /// Registers a webhook endpoint; it receives notices of what is stored from now on.
    async fn create_webhook(&self, webhook: NewWebhook) -> StoreResult<Webhook>;
    /// Every endpoint with its delivery status.
    async fn webhooks(&self) -> StoreResult<Vec<Webhook>>;
    /// Removes an endpoint and its outbox; false when there was none.
    async fn delete_webhook(&self, id: i64) -> StoreResult<bool>;
    /// Endpoints with pending notices, with the time the earliest may be sent.
    async fn due_webhooks(&self) -> StoreResult<Vec<DueEndpoint>>;
    /// Takes up to `limit` of the endpoint's notices that are due at `now`, oldest first, and
    /// holds them until `lease_until` (after a crash they become due again then).
    async fn claim_webhook_deliveries(
        &self,
        endpoint: i64,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Delivery>>;
    /// Records how an attempt went: each notice's next state, and the endpoint's status.
    async fn finish_webhook_deliveries(
        &self,
        endpoint: i64,
        results: Vec<(i64, Next)>,
        attempt: Attempt,
    ) -> StoreResult<()>;
    /// Makes the dead letters of one endpoint (or all) pending again, due now; returns how many.
    async fn replay_webhooks(&self, endpoint: Option<i64>) -> StoreResult<u64>;
    /// The endpoint's notices with ids above `after`, oldest first, optionally of one state.
    async fn webhook_deliveries(
        &self,
        endpoint: i64,
        state: Option<String>,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRecord>>;
}

/// A signed-in dashboard user.
#[derive(Debug, Clone)]
pub struct Session {
    pub session_hash: [u8; 32],
    /// The API token signed in with; `None` for a password.
    pub token_id: Option<i64>,
    pub scope: Scope,
    pub expires_at: DateTime<Utc>,
}

/// What opening a database did, for the start-up message.
#[derive(Debug, Clone)]
pub struct OpenReport {
    pub created: bool,
    pub migrations_applied: usize,
}

/// Opens (creating if needed) the database the URL names and applies pending migrations.
/// `max_bytes` caps the database's size (`--max-database-mb`).
pub async fn open(
    url: &DatabaseUrl,
    fsync: bool,
    max_bytes: Option<u64>,
) -> anyhow::Result<(Arc<dyn Store>, OpenReport)> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let path = path.clone();
            let (store, report) = tokio::task::spawn_blocking(move || {
                let (store, report) = sqlite::SqliteStore::open(&path, fsync)?;
                if let Some(max) = max_bytes {
                    store.limit_size(max)?;
                }
                anyhow::Ok((store, report))
            })
            .await??;
            Ok((Arc::new(store), report))
        }
        DatabaseUrl::Postgres(url) => {
            if max_bytes.is_some() {
                anyhow::bail!(
                    "--max-database-mb applies to SQLite only; PostgreSQL has its own limits"
                );
            }
            // Every PostgreSQL commit is durable (synchronous_commit is the server's setting).
            let _ = fsync;
            let url = url.clone();
            let (store, report) =
                tokio::task::spawn_blocking(move || postgres::PostgresStore::open(&url)).await??;
            Ok((Arc::new(store), report))
        }
    }
}
