//! The storage logic shared by both engines: the [`Store`] trait on top of [`Conn`]. An engine
//! (src/store/sqlite.rs, src/store/postgres.rs) opens connections, migrates its schema and runs
//! these closures on a blocking thread; everything else, classification against a message's
//! history, the rollup deltas and the webhook outbox included, is written once here.

mod access;
mod address_lists;
mod campaigns;
mod checks;
mod consent;
mod history;
mod maintenance;
mod message_row;
pub(crate) mod paging;
mod recipients;
mod record_batch;
mod reports;
pub(crate) mod rollups;
mod tokens;
pub(crate) mod webhooks;

use super::sql::{Conn, Row, in_exclusive_tx, in_tx, params};
use super::*;
use crate::analytics::rollup::{
    Delta, Dim, DimCount, Fact, HourCount, LinkCount, contributions, representatives,
};
use crate::classify::replay::{Derived, MessageFacts, StoredEvent, replay};
use crate::classify::rules::{REASON_BURST, burst_members, burst_relabel};
use crate::classify::{Class, Prior, StoredHit};
use checks::{check_each_campaign, check_summaries};
use chrono::SubsecRound;
use consent::{anonymize_message, consent_records, standing_consents};
use history::History;
use message_row::MessageRow;
use record_batch::record_batch;
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

fn campaign_from_row(r: &Row) -> StoreResult<Campaign> {
    Ok(Campaign {
        id: r.get(0)?,
        name: r.get(1)?,
        template_html: r.get(2)?,
        created_at: r.get(3)?,
    })
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
    EventKind::parse(kind).ok_or_else(|| damaged("kind", kind))
}

/// A stored event's class; anything else is a damaged row, not a reader's event.
pub(crate) fn parse_class(class: &str) -> StoreResult<Class> {
    Class::parse(class).ok_or_else(|| damaged("class", class))
}

fn damaged(column: &str, value: &str) -> StoreError {
    StoreError::Other(format!(
        "an events row has {column} '{value}', which this version does not know: was the database \
         changed by hand, or written by a newer mailbeacon?"
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

    async fn create_campaign(
        &self,
        name: &str,
        template_html: Option<&str>,
    ) -> StoreResult<Campaign> {
        campaigns::create_campaign(self, name, template_html).await
    }

    async fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>> {
        campaigns::campaign(self, id).await
    }

    async fn campaigns(&self) -> StoreResult<Vec<Campaign>> {
        campaigns::campaigns(self).await
    }

    async fn insert_messages(
        &self,
        campaign: CampaignId,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<MessageId>> {
        campaigns::insert_messages(self, campaign, messages).await
    }

    async fn record_events(
        &self,
        batch: Arc<[NewEvent]>,
        classifier: Arc<Classifier>,
    ) -> StoreResult<Vec<RecordOutcome>> {
        self.write(move |c| in_tx(c, |c| record_batch(c, &batch, &classifier)))
            .await
    }

    fn record_journaled(
        &self,
        batch: &[NewEvent],
        classifier: &Classifier,
        journal: &str,
        position: (u64, u64),
    ) -> StoreResult<Vec<RecordOutcome>> {
        self.engine.write_here(|c| {
            in_tx(c, |c| {
                let outcomes = record_batch(c, batch, classifier)?;
                c.execute(
                    "INSERT INTO spool_progress (spool, segment, byte_offset, updated_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (spool) DO UPDATE SET segment = excluded.segment,
                         byte_offset = excluded.byte_offset, updated_at = excluded.updated_at",
                    params![journal, position.0, position.1, Utc::now()],
                )?;
                Ok(outcomes)
            })
        })
    }

    async fn journal_position(&self, journal: String) -> StoreResult<Option<(u64, u64)>> {
        self.read(move |c| {
            c.query_row(
                "SELECT segment, byte_offset FROM spool_progress WHERE spool = ?1",
                params![journal],
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
        })
        .await
    }

    async fn lookup_link(
        &self,
        tracking_id: i64,
        link_no: Option<u16>,
    ) -> StoreResult<Option<(Standing, Option<String>)>> {
        campaigns::lookup_link(self, tracking_id, link_no).await
    }

    async fn reclassify(
        &self,
        campaign: Option<CampaignId>,
        classifier: Arc<Classifier>,
        progress: Progress,
    ) -> StoreResult<ReclassifySummary> {
        maintenance::reclassify(self, campaign, classifier, progress).await
    }

    async fn opt_out(&self, recipient_id: String, source: String) -> StoreResult<DateTime<Utc>> {
        recipients::opt_out(self, recipient_id, source).await
    }

    async fn record_consent(
        &self,
        recipient_id: String,
        source: String,
        text: Option<String>,
        given_at: DateTime<Utc>,
    ) -> StoreResult<ConsentRecord> {
        recipients::record_consent(self, recipient_id, source, text, given_at).await
    }

    async fn withdraw_consent(
        &self,
        recipient_id: String,
        anonymize: bool,
    ) -> StoreResult<(u64, u64)> {
        recipients::withdraw_consent(self, recipient_id, anonymize).await
    }

    async fn consents(&self, recipient_id: String) -> StoreResult<Vec<ConsentRecord>> {
        recipients::consents(self, recipient_id).await
    }

    async fn consenting(&self, recipients: Vec<String>) -> StoreResult<Vec<String>> {
        recipients::consenting(self, recipients).await
    }

    async fn opted_out(&self, recipients: Vec<String>) -> StoreResult<Vec<String>> {
        recipients::opted_out(self, recipients).await
    }

    async fn recipient_of(&self, tracking_id: i64) -> StoreResult<Option<String>> {
        recipients::recipient_of(self, tracking_id).await
    }

    async fn erase_recipient(&self, recipient_id: String) -> StoreResult<Erasure> {
        recipients::erase_recipient(self, recipient_id).await
    }

    async fn recipient_export(&self, recipient_id: String) -> StoreResult<RecipientExport> {
        recipients::recipient_export(self, recipient_id).await
    }

    async fn address_lists(&self) -> StoreResult<Vec<AddressList>> {
        address_lists::address_lists(self).await
    }

    async fn save_address_list(&self, list: AddressList) -> StoreResult<()> {
        address_lists::save_address_list(self, list).await
    }

    async fn delete_address_list(&self, name: String) -> StoreResult<bool> {
        address_lists::delete_address_list(self, name).await
    }

    async fn campaign_stats(&self, id: CampaignId) -> StoreResult<CampaignStats> {
        reports::campaign_stats(self, id).await
    }

    async fn report_hours(
        &self,
        id: CampaignId,
        from_hour: i64,
        to_hour: i64,
    ) -> StoreResult<Vec<HourCount>> {
        reports::report_hours(self, id, from_hour, to_hour).await
    }

    async fn report_links(&self, id: CampaignId) -> StoreResult<Vec<LinkCount>> {
        reports::report_links(self, id).await
    }

    async fn report_breakdown(&self, id: CampaignId, dim: Dim) -> StoreResult<Vec<DimCount>> {
        reports::report_breakdown(self, id, dim).await
    }

    async fn events(&self, query: EventQuery) -> StoreResult<Vec<EventRecord>> {
        reports::events(self, query).await
    }

    async fn export_bound(&self, campaign: CampaignId) -> StoreResult<EventId> {
        reports::export_bound(self, campaign).await
    }

    async fn export_page(
        &self,
        campaign: CampaignId,
        after: EventId,
        up_to: EventId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        reports::export_page(self, campaign, after, up_to, limit).await
    }

    async fn signing_keys_or_create(
        &self,
        new_secret: [u8; 32],
    ) -> StoreResult<(Vec<(u8, [u8; 32])>, Option<u8>)> {
        access::signing_keys_or_create(self, new_secret).await
    }

    async fn add_signing_key(&self, secret: [u8; 32]) -> StoreResult<u8> {
        access::add_signing_key(self, secret).await
    }

    async fn retire_signing_key(&self, id: u8) -> StoreResult<bool> {
        access::retire_signing_key(self, id).await
    }

    async fn create_api_token(
        &self,
        token_hash: [u8; 32],
        scope: Scope,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        access::create_api_token(self, token_hash, scope, expires_at).await
    }

    async fn api_tokens(&self) -> StoreResult<Vec<ApiTokenInfo>> {
        access::api_tokens(self).await
    }

    async fn revoke_api_token(&self, id: i64) -> StoreResult<bool> {
        access::revoke_api_token(self, id).await
    }

    async fn create_first_api_token(
        &self,
        token_hash: [u8; 32],
        scope: Scope,
    ) -> StoreResult<bool> {
        access::create_first_api_token(self, token_hash, scope).await
    }

    async fn api_token_scope(&self, token_hash: [u8; 32]) -> StoreResult<Option<(i64, Scope)>> {
        access::api_token_scope(self, token_hash).await
    }

    async fn audit(&self, entry: AuditEntry) -> StoreResult<()> {
        access::audit(self, entry).await
    }

    async fn audit_log(&self, after: i64, limit: usize) -> StoreResult<Vec<(i64, AuditEntry)>> {
        access::audit_log(self, after, limit).await
    }

    async fn last_audit_target(&self, action: String) -> StoreResult<Option<String>> {
        access::last_audit_target(self, action).await
    }

    async fn rebuild_rollups(&self) -> StoreResult<()> {
        maintenance::rebuild_rollups(self).await
    }

    async fn check_rollups(&self, repair: bool) -> StoreResult<RollupCheck> {
        maintenance::check_rollups(self, repair).await
    }

    async fn purge_events(
        &self,
        before: DateTime<Utc>,
        progress: Progress,
    ) -> StoreResult<PurgeSummary> {
        maintenance::purge_events(self, before, progress).await
    }

    async fn recent_events(
        &self,
        campaign: CampaignId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        reports::recent_events(self, campaign, limit).await
    }

    async fn set_dashboard_password(&self, scope: Scope, hash: String) -> StoreResult<()> {
        access::set_dashboard_password(self, scope, hash).await
    }

    async fn dashboard_passwords(&self) -> StoreResult<Vec<(Scope, String)>> {
        access::dashboard_passwords(self).await
    }

    async fn create_session(&self, session: Session) -> StoreResult<()> {
        access::create_session(self, session).await
    }

    async fn session(&self, session_hash: [u8; 32]) -> StoreResult<Option<Session>> {
        access::session(self, session_hash).await
    }

    async fn delete_session(&self, session_hash: [u8; 32]) -> StoreResult<()> {
        access::delete_session(self, session_hash).await
    }

    async fn create_webhook(&self, webhook: NewWebhook) -> StoreResult<Webhook> {
        self.write(move |c| {
            let id = webhooks::create(c, &webhook)?;
            let mut all = webhooks::list(c)?;
            let at = all.iter().position(|w| w.id == id).expect("just stored");
            Ok(all.swap_remove(at))
        })
        .await
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.read(webhooks::list).await
    }

    async fn delete_webhook(&self, id: i64) -> StoreResult<bool> {
        self.write(move |c| {
            Ok(c.execute("DELETE FROM webhook_endpoints WHERE id = ?1", params![id])? > 0)
        })
        .await
    }

    async fn due_webhooks(&self) -> StoreResult<Vec<DueEndpoint>> {
        self.read(webhooks::due).await
    }

    async fn claim_webhook_deliveries(
        &self,
        endpoint: i64,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Delivery>> {
        self.write(move |c| in_tx(c, |c| webhooks::claim(c, endpoint, limit, now, lease_until)))
            .await
    }

    async fn finish_webhook_deliveries(
        &self,
        endpoint: i64,
        results: Vec<(i64, Next)>,
        attempt: Attempt,
    ) -> StoreResult<()> {
        self.write(move |c| in_tx(c, |c| webhooks::finish(c, endpoint, &results, &attempt)))
            .await
    }

    async fn replay_webhooks(&self, endpoint: Option<i64>) -> StoreResult<u64> {
        self.write(move |c| webhooks::replay(c, endpoint)).await
    }

    async fn webhook_deliveries(
        &self,
        endpoint: i64,
        state: Option<String>,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.read(move |c| webhooks::deliveries(c, endpoint, state.as_deref(), after, limit))
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
mod tests;
