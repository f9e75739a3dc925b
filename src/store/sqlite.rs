//! The embedded SQLite engine (the default). WAL mode; one write connection that every write goes
//! through (SQLite allows one writer at a time anyway, and a single connection keeps its prepared
//! statements warm), plus a small pool of read connections that WAL lets run beside it.
//!
//! Durability: with WAL and `synchronous=NORMAL` a committed transaction is in the WAL file when
//! COMMIT returns, so a crash of the process loses nothing; `fsync` switches to `synchronous=FULL`
//! so that a power loss does not either.

mod rollups;
mod webhooks;

use super::*;
use crate::analytics::rollup::{
    Delta, Dim, DimCount, Fact, HourCount, LinkCount, contributions, representatives,
};
use crate::classify::replay::{Derived, MessageFacts, StoredEvent, replay};
use crate::classify::rules::{REASON_BURST, burst_members};
use crate::classify::{Class, Prior, StoredHit};
use anyhow::Context;
use chrono::{SecondsFormat, SubsecRound};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Schema migrations, applied in order; the number is the version recorded once applied.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_classes.sql")),
    (
        3,
        include_str!("../../migrations/sqlite/0003_failed_checks.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_address_lists.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_geography.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_drop_redundant_index.sql"),
    ),
    (7, include_str!("../../migrations/sqlite/0007_opt_outs.sql")),
    (
        8,
        include_str!("../../migrations/sqlite/0008_audit_log.sql"),
    ),
    (9, include_str!("../../migrations/sqlite/0009_rollups.sql")),
    (
        10,
        include_str!("../../migrations/sqlite/0010_dashboard.sql"),
    ),
    (
        11,
        include_str!("../../migrations/sqlite/0011_retention.sql"),
    ),
    (
        12,
        include_str!("../../migrations/sqlite/0012_reduced_user_agent.sql"),
    ),
    (
        13,
        include_str!("../../migrations/sqlite/0013_webhooks.sql"),
    ),
];

/// The migration that adds the rollups; the events already stored are rolled up right after it.
const ROLLUPS_MIGRATION: i64 = 9;

/// Read connections kept open beyond this many are closed after use.
const MAX_IDLE_READERS: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    fsync: bool,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl SqliteStore {
    pub fn open(path: &Path, fsync: bool) -> anyhow::Result<(Self, OpenReport)> {
        let created = !path.exists();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            anyhow::bail!(
                "cannot create database {}: directory {} does not exist",
                path.display(),
                dir.display()
            );
        }
        let mut conn = connect(path, fsync)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        let migrations_applied = migrate(&mut conn)
            .with_context(|| format!("cannot migrate database {}", path.display()))?;
        let store = SqliteStore {
            path: path.to_path_buf(),
            fsync,
            writer: Arc::new(Mutex::new(conn)),
            readers: Arc::new(Mutex::new(Vec::new())),
        };
        Ok((
            store,
            OpenReport {
                created,
                migrations_applied,
            },
        ))
    }

    /// `--max-database-mb`: writes that would grow the database beyond this fail with "database or
    /// disk is full", as on a full disk; space freed by a purge or an erasure is used again.
    pub fn limit_size(&self, max_bytes: u64) -> anyhow::Result<()> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = max_bytes.div_ceil(page_size.max(1) as u64) as i64;
        let set: i64 = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
            r.get(0)
        })?;
        if set > pages {
            anyhow::bail!(
                "--max-database-mb: the database is already {} MB, more than the limit",
                set * page_size / 1_000_000
            );
        }
        Ok(())
    }

    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn).map_err(store_error)
        })
        .await
        .map_err(|e| StoreError::Other(format!("storage task failed: {e}")))?
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let fsync = self.fsync;
        tokio::task::spawn_blocking(move || {
            let idle = readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => connect(&path, fsync).map_err(store_error)?,
            };
            let result = f(&conn).map_err(store_error);
            let mut pool = readers.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Other(format!("storage task failed: {e}")))?
    }
}

fn connect(path: &Path, fsync: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("SQLite refused WAL mode (journal_mode is {mode})")),
        ));
    }
    conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> anyhow::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let current: i64 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        }
        .into());
    }
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)
            .with_context(|| format!("migration {version} failed"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, ts(Utc::now())],
        )?;
        if *version == ROLLUPS_MIGRATION {
            rollups::rebuild(&tx).context("rolling up the stored events failed")?;
        }
        applied += 1;
    }
    tx.commit()?;
    Ok(applied)
}

fn store_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::ReadOnly
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::NotADatabase,
        ) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })
}

fn opt_ts(s: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_ts).transpose()
}

fn campaign_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Campaign> {
    Ok(Campaign {
        id: r.get(0)?,
        name: r.get(1)?,
        template_html: r.get(2)?,
        created_at: parse_ts(&r.get::<_, String>(3)?)?,
    })
}

/// An earlier click of a burst becomes a scanner click too (rule `burst:links`; which ones,
/// `classify::rules::burst_members` decides).
const BURST_RELABEL: &str = "UPDATE events
    SET class = 'scanner', reasons = trim(reasons || ' burst:links') WHERE id = ?1";

const STORED_EVENT_COLUMNS: &str = "SELECT id, kind, link_no, method, user_agent, client_ip,
        headers, ip_tags, received_at, class, reasons, duplicate, internal, client, os, device,
        ua_reduced
    FROM events WHERE message_id = ?1 ORDER BY id";

fn stored_event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: r.get(0)?,
        kind: parse_kind(&r.get::<_, String>(1)?),
        link_no: r.get(2)?,
        method: r.get(3)?,
        user_agent: r.get(4)?,
        client_ip: r.get(5)?,
        headers: r.get(6)?,
        ip_tags: r.get(7)?,
        received_at: parse_ts(&r.get::<_, String>(8)?)?,
        ua_reduced: r.get(16)?,
        derived: Derived {
            class: Class::parse(&r.get::<_, String>(9)?).unwrap_or(Class::Human),
            reasons: r.get(10)?,
            duplicate: r.get(11)?,
            internal: r.get(12)?,
            client: r.get(13)?,
            os: r.get(14)?,
            device: r.get(15)?,
        },
    })
}

fn prior_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Prior> {
    Ok(Prior {
        id: r.get(4)?,
        kind: parse_kind(&r.get::<_, String>(0)?),
        link_no: r.get(1)?,
        received_at: parse_ts(&r.get::<_, String>(2)?)?,
        class: Class::parse(&r.get::<_, String>(3)?).unwrap_or(Class::Human),
    })
}

fn parse_kind(kind: &str) -> EventKind {
    if kind == "click" {
        EventKind::Click
    } else {
        EventKind::Open
    }
}

const EVENT_COLUMNS: &str = "SELECT e.id, e.kind, e.received_at, e.campaign_id, e.message_id,
        m.recipient_id, l.url, e.method, e.user_agent, e.client_ip, e.class, e.reasons,
        e.duplicate, e.internal, e.client, e.os, e.device, e.country, e.region
    FROM events e
    JOIN messages m ON m.id = e.message_id
    LEFT JOIN links l ON l.message_id = e.message_id AND l.link_no = e.link_no";

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        id: r.get(0)?,
        kind: parse_kind(&r.get::<_, String>(1)?),
        received_at: parse_ts(&r.get::<_, String>(2)?)?,
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

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT count(*) FROM schema_migrations", [], |_| Ok(())))
            .await
    }

    async fn create_campaign(
        &self,
        name: &str,
        template_html: Option<&str>,
    ) -> StoreResult<Campaign> {
        let name = name.to_string();
        let template_html = template_html.map(str::to_string);
        self.write(move |c| {
            // Stored with microseconds: answer with what a later read will return.
            let created_at = Utc::now().trunc_subsecs(6);
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO campaigns (name, template_html, created_at) VALUES (?1, ?2, ?3)",
                params![name, template_html, ts(created_at)],
            )?;
            let id = tx.last_insert_rowid();
            rollups::add_sent(&tx, id, 0)?;
            tx.commit()?;
            Ok(Campaign {
                id,
                name,
                template_html,
                created_at,
            })
        })
        .await
    }

    async fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>> {
        self.read(move |c| {
            c.query_row(
                "SELECT id, name, template_html, created_at FROM campaigns WHERE id = ?1",
                [id],
                campaign_from_row,
            )
            .optional()
        })
        .await
    }

    async fn campaigns(&self) -> StoreResult<Vec<Campaign>> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT id, name, NULL, created_at FROM campaigns ORDER BY id DESC")?;
            stmt.query_map([], campaign_from_row)?.collect()
        })
        .await
    }

    async fn insert_messages(
        &self,
        campaign: CampaignId,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<MessageId>> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut ids = Vec::with_capacity(messages.len());
            {
                let mut msg = tx.prepare_cached(
                    "INSERT INTO messages (campaign_id, recipient_id, tracking_id, sent_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let mut link = tx.prepare_cached(
                    "INSERT INTO links (message_id, link_no, url) VALUES (?1, ?2, ?3)",
                )?;
                let now = ts(Utc::now());
                for m in &messages {
                    msg.execute(params![
                        campaign,
                        m.recipient_id,
                        m.tracking_id,
                        ts(m.sent_at),
                        now
                    ])?;
                    let id = tx.last_insert_rowid();
                    for (i, url) in m.links.iter().enumerate() {
                        link.execute(params![id, i as i64 + 1, url])?;
                    }
                    if let Some(url) = &m.honeypot {
                        link.execute(params![id, 0, url])?;
                    }
                    ids.push(id);
                }
                rollups::add_sent(&tx, campaign, ids.len() as i64)?;
            }
            tx.commit()?;
            Ok(ids)
        })
        .await
    }

    async fn record_events(
        &self,
        batch: Vec<NewEvent>,
        classifier: Arc<Classifier>,
    ) -> StoreResult<Vec<RecordOutcome>> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut outcomes = Vec::with_capacity(batch.len());
            {
                let mut message = tx.prepare_cached(
                    "SELECT id, campaign_id, recipient_id, sent_at, first_failed_check_at,
                            purged_facts
                     FROM messages WHERE tracking_id = ?1",
                )?;
                let mut history = tx.prepare_cached(
                    "SELECT kind, link_no, received_at, class, id, client, os, device, country
                     FROM events WHERE message_id = ?1 ORDER BY id",
                )?;
                let mut delta = Delta::default();
                let routes = webhooks::routes(&tx)?;
                let mut relabelled: Vec<EventId> = Vec::new();
                let mut burst = tx.prepare_cached(BURST_RELABEL)?;
                let mut opted_out =
                    tx.prepare_cached("SELECT 1 FROM opt_outs WHERE recipient_id = ?1")?;
                let mut failed_check = tx.prepare_cached(
                    "UPDATE messages SET first_failed_check_at = ?2
                     WHERE tracking_id = ?1 AND first_failed_check_at IS NULL",
                )?;
                let mut link = tx.prepare_cached(
                    "SELECT url FROM links WHERE message_id = ?1 AND link_no = ?2",
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO events (received_at, kind, campaign_id, message_id, link_no,
                                         method, user_agent, client_ip, headers, class, reasons,
                                         duplicate, internal, ip_tags, client, os, device,
                                         country, region, ua_reduced)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                             ?16, ?17, ?18, ?19, ?20)",
                )?;
                for e in &batch {
                    if e.failed_check {
                        failed_check.execute(params![e.tracking_id, ts(e.received_at)])?;
                        outcomes.push(RecordOutcome::FailedCheckNoted);
                        continue;
                    }
                    let Some((
                        message_id,
                        campaign_id,
                        recipient_id,
                        sent_at,
                        failed_check_at,
                        purged,
                    )) = message
                        .query_row([e.tracking_id], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, String>(2)?,
                                parse_ts(&r.get::<_, String>(3)?)?,
                                opt_ts(r.get(4)?)?,
                                r.get::<_, Option<String>>(5)?,
                            ))
                        })
                        .optional()?
                    else {
                        outcomes.push(RecordOutcome::UnknownMessage);
                        continue;
                    };
                    let destination = match e.link_no {
                        Some(no) => {
                            match link
                                .query_row(params![message_id, no], |r| r.get::<_, String>(0))
                                .optional()?
                            {
                                Some(url) => Some(url),
                                None => {
                                    outcomes.push(RecordOutcome::UnknownLink);
                                    continue;
                                }
                            }
                        }
                        None => None,
                    };
                    if opted_out.exists([&recipient_id])? {
                        outcomes.push(RecordOutcome::NotStored { destination });
                        continue;
                    }
                    let (prior, stored): (Vec<Prior>, Vec<Fact>) = history
                        .query_map([message_id], |r| {
                            let prior = prior_from_row(r)?;
                            let fact = Fact {
                                kind: prior.kind,
                                link_no: prior.link_no,
                                received_at: prior.received_at,
                                class: prior.class,
                                client: r.get(5)?,
                                os: r.get(6)?,
                                device: r.get(7)?,
                                country: r.get(8)?,
                            };
                            Ok((prior, fact))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?
                        .into_iter()
                        .unzip();
                    // Deleted events (retention) stand before the stored ones.
                    let mut facts = rollups::parse_purged(purged.as_deref());
                    let offset = facts.len();
                    facts.extend(stored);
                    let before = facts.clone();
                    let stored = StoredHit {
                        kind: e.kind,
                        link_no: e.link_no,
                        method: e.method,
                        user_agent: e.user_agent.as_deref(),
                        client_ip: e.client_ip.as_deref(),
                        headers: e.headers.as_deref(),
                        ip_tags: &e.ip_tags.join(" "),
                        received_at: e.received_at,
                        sent_at,
                        failed_check_at,
                        recipient_id: &recipient_id,
                    };
                    let (verdict, info) = stored.classify(&classifier, &prior);
                    insert.execute(params![
                        ts(e.received_at),
                        e.kind.as_str(),
                        campaign_id,
                        message_id,
                        e.link_no,
                        e.method,
                        e.user_agent.as_deref().filter(|_| e.keep_user_agent),
                        e.client_ip,
                        e.headers,
                        verdict.class.as_str(),
                        verdict.reasons_text(),
                        verdict.duplicate,
                        verdict.internal,
                        stored.ip_tags,
                        info.client,
                        info.os,
                        info.device.as_str(),
                        e.country,
                        e.region,
                        !e.keep_user_agent,
                    ])?;
                    let event_id = tx.last_insert_rowid();
                    if verdict.reasons.contains(&REASON_BURST) {
                        for i in burst_members(e.received_at, &prior) {
                            burst.execute([prior[i].id])?;
                            facts[offset + i].class = Class::Scanner;
                            relabelled.push(prior[i].id);
                        }
                    }
                    if !routes.is_empty() {
                        // A reader's click means the mail was opened (images off or not): an
                        // open after a reader's click is not a first open.
                        let reader_before = |kind: EventKind| {
                            facts
                                .iter()
                                .any(|f| f.kind == kind && !f.class.is_machine())
                        };
                        let first_for_reader = !verdict.class.is_machine()
                            && !reader_before(e.kind)
                            && (e.kind == EventKind::Click || !reader_before(EventKind::Click));
                        let implied_open = first_for_reader
                            && e.kind == EventKind::Click
                            && !reader_before(EventKind::Open);
                        let record = EventRecord {
                            id: event_id,
                            kind: e.kind,
                            received_at: e.received_at,
                            campaign_id,
                            message_id,
                            recipient_id: recipient_id.clone(),
                            link_url: destination.clone(),
                            method: e.method.to_string(),
                            user_agent: e.user_agent.clone().filter(|_| e.keep_user_agent),
                            client_ip: e.client_ip.clone(),
                            class: verdict.class.as_str().to_string(),
                            reasons: verdict.reasons_text(),
                            duplicate: verdict.duplicate,
                            internal: verdict.internal,
                            client: info.client.clone(),
                            os: info.os.clone(),
                            device: info.device.as_str().to_string(),
                            country: e.country.clone(),
                            region: e.region.clone(),
                        };
                        webhooks::enqueue_event(
                            &tx,
                            &routes,
                            &record,
                            verdict.class,
                            first_for_reader,
                            implied_open,
                        )?;
                        webhooks::withdraw_relabelled(&tx, &routes, &relabelled)?;
                        relabelled.clear();
                    }
                    facts.push(Fact {
                        kind: e.kind,
                        link_no: e.link_no,
                        received_at: e.received_at,
                        class: verdict.class,
                        client: info.client,
                        os: info.os,
                        device: info.device.as_str().to_string(),
                        country: e.country.clone(),
                    });
                    delta.change(campaign_id, &before, &facts);
                    delta.activity(campaign_id, e.received_at);
                    outcomes.push(RecordOutcome::Recorded {
                        event_id,
                        destination,
                    });
                }
                rollups::apply(&tx, &delta)?;
            }
            tx.commit()?;
            Ok(outcomes)
        })
        .await
    }

    async fn reclassify(
        &self,
        campaign: Option<CampaignId>,
        classifier: Arc<Classifier>,
        progress: Progress,
    ) -> StoreResult<ReclassifySummary> {
        self.write(move |c| {
            let total: i64 = c.query_row(
                "SELECT count(*) FROM events WHERE ?1 IS NULL OR campaign_id = ?1",
                [campaign],
                |r| r.get(0),
            )?;
            let mut summary = ReclassifySummary::default();
            let mut after = 0i64;
            progress(0, total as u64);
            loop {
                // Short transactions, so a running server's writer is never kept waiting long.
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let messages: Vec<(MessageFacts, CampaignId)> = tx
                    .prepare_cached(
                        "SELECT id, recipient_id, sent_at, first_failed_check_at, campaign_id
                         FROM messages WHERE id > ?1 AND (?2 IS NULL OR campaign_id = ?2)
                         ORDER BY id LIMIT 500",
                    )?
                    .query_map(params![after, campaign], |r| {
                        Ok((
                            MessageFacts {
                                id: r.get(0)?,
                                recipient_id: r.get(1)?,
                                sent_at: parse_ts(&r.get::<_, String>(2)?)?,
                                failed_check_at: opt_ts(r.get(3)?)?,
                            },
                            r.get(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let Some((last, _)) = messages.last() else {
                    break;
                };
                after = last.id;
                let mut delta = Delta::default();
                {
                    let mut load = tx.prepare_cached(STORED_EVENT_COLUMNS)?;
                    let mut update = tx.prepare_cached(
                        "UPDATE events SET class = ?2, reasons = ?3, duplicate = ?4,
                                internal = ?5, client = ?6, os = ?7, device = ?8
                         WHERE id = ?1",
                    )?;
                    for (message, campaign) in &messages {
                        let mut events: Vec<StoredEvent> = load
                            .query_map([message.id], stored_event_from_row)?
                            .collect::<rusqlite::Result<_>>()?;
                        let changed = replay(&classifier, message, &mut events);
                        if !changed.is_empty() {
                            let before = rollups::message_facts(&tx, message.id)?;
                            let offset = before.len() - events.len();
                            let mut after = before.clone();
                            for (f, e) in after[offset..].iter_mut().zip(&events) {
                                f.class = e.derived.class;
                                f.client.clone_from(&e.derived.client);
                                f.os.clone_from(&e.derived.os);
                                f.device.clone_from(&e.derived.device);
                            }
                            delta.change(*campaign, &before, &after);
                        }
                        for i in changed {
                            let (e, d) = (&events[i], &events[i].derived);
                            update.execute(params![
                                e.id,
                                d.class.as_str(),
                                d.reasons,
                                d.duplicate,
                                d.internal,
                                d.client,
                                d.os,
                                d.device
                            ])?;
                            summary.changed += 1;
                        }
                        summary.events += events.len() as u64;
                    }
                }
                rollups::apply(&tx, &delta)?;
                tx.commit()?;
                progress(summary.events, total as u64);
            }
            Ok(summary)
        })
        .await
    }

    async fn opt_out(&self, recipient_id: String, source: String) -> StoreResult<DateTime<Utc>> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = Utc::now();
            let added = tx.execute(
                "INSERT INTO opt_outs (recipient_id, opted_out_at, source) VALUES (?1, ?2, ?3)
                 ON CONFLICT (recipient_id) DO NOTHING",
                params![recipient_id, ts(now), source],
            )?;
            if added == 1 {
                // Copies elsewhere (a CRM) can stop tracking the recipient too.
                webhooks::enqueue_notice(
                    &tx,
                    crate::webhooks::NoticeKind::OptOut,
                    now,
                    &serde_json::json!({
                        "recipient_id": recipient_id,
                        "opted_out_at": now,
                        "source": source,
                    }),
                )?;
            }
            let at: String = tx.query_row(
                "SELECT opted_out_at FROM opt_outs WHERE recipient_id = ?1",
                [&recipient_id],
                |r| r.get(0),
            )?;
            tx.commit()?;
            parse_ts(&at)
        })
        .await
    }

    async fn recipient_of(&self, tracking_id: i64) -> StoreResult<Option<String>> {
        self.read(move |c| {
            c.prepare_cached("SELECT recipient_id FROM messages WHERE tracking_id = ?1")?
                .query_row([tracking_id], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn erase_recipient(&self, recipient_id: String) -> StoreResult<Erasure> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Take the recipient out of the rollups too, so reports agree with what is stored.
            let messages: Vec<(MessageId, CampaignId)> = tx
                .prepare("SELECT id, campaign_id FROM messages WHERE recipient_id = ?1")?
                .query_map([&recipient_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut delta = Delta::default();
            for (message, campaign) in &messages {
                delta.add(
                    *campaign,
                    contributions(&rollups::message_facts(&tx, *message)?),
                    -1,
                );
                rollups::add_sent(&tx, *campaign, -1)?;
            }
            rollups::apply(&tx, &delta)?;
            let of_recipient = "SELECT id FROM messages WHERE recipient_id = ?1";
            let erasure = Erasure {
                events: tx.execute(
                    &format!("DELETE FROM events WHERE message_id IN ({of_recipient})"),
                    [&recipient_id],
                )? as u64,
                links: tx.execute(
                    &format!("DELETE FROM links WHERE message_id IN ({of_recipient})"),
                    [&recipient_id],
                )? as u64,
                messages: tx.execute(
                    "DELETE FROM messages WHERE recipient_id = ?1",
                    [&recipient_id],
                )? as u64,
                opt_outs: tx.execute(
                    "DELETE FROM opt_outs WHERE recipient_id = ?1",
                    [&recipient_id],
                )? as u64,
                // Notices about the recipient not sent yet are not sent at all.
                webhook_notices: tx.execute(
                    "DELETE FROM webhook_outbox WHERE recipient_id = ?1",
                    [&recipient_id],
                )? as u64,
            };
            let now = Utc::now();
            webhooks::enqueue_notice(
                &tx,
                crate::webhooks::NoticeKind::Erasure,
                now,
                &serde_json::json!({
                    "recipient_id": recipient_id,
                    "erased_at": now,
                    "removed": erasure,
                }),
            )?;
            tx.commit()?;
            Ok(erasure)
        })
        .await
    }

    async fn recipient_export(&self, recipient_id: String) -> StoreResult<RecipientExport> {
        self.read(move |c| {
            let opted_out_at = c
                .query_row(
                    "SELECT opted_out_at FROM opt_outs WHERE recipient_id = ?1",
                    [&recipient_id],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .map(|t| parse_ts(&t))
                .transpose()?;
            let mut links = c.prepare_cached(
                "SELECT url FROM links WHERE message_id = ?1 AND link_no > 0 ORDER BY link_no",
            )?;
            let mut messages: Vec<RecipientMessage> = c
                .prepare_cached(
                    "SELECT m.id, m.campaign_id, c.name, m.sent_at FROM messages m
                     JOIN campaigns c ON c.id = m.campaign_id
                     WHERE m.recipient_id = ?1 ORDER BY m.id",
                )?
                .query_map([&recipient_id], |r| {
                    Ok(RecipientMessage {
                        message_id: r.get(0)?,
                        campaign_id: r.get(1)?,
                        campaign_name: r.get(2)?,
                        sent_at: parse_ts(&r.get::<_, String>(3)?)?,
                        links: Vec::new(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            for m in &mut messages {
                m.links = links
                    .query_map([m.message_id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
            }
            let events = c
                .prepare_cached(&format!(
                    "{EVENT_COLUMNS} WHERE m.recipient_id = ?1 ORDER BY e.id"
                ))?
                .query_map([&recipient_id], event_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(RecipientExport {
                recipient_id,
                opted_out_at,
                messages,
                events,
            })
        })
        .await
    }

    async fn address_lists(&self) -> StoreResult<Vec<AddressList>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT list, source, format, imported_at, cidrs FROM address_lists ORDER BY list",
            )?
            .query_map([], |r| {
                Ok(AddressList {
                    list: r.get(0)?,
                    source: r.get(1)?,
                    format: r.get(2)?,
                    imported_at: parse_ts(&r.get::<_, String>(3)?)?,
                    cidrs: r.get(4)?,
                })
            })?
            .collect()
        })
        .await
    }

    async fn save_address_list(&self, list: AddressList) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO address_lists (list, source, format, imported_at, cidrs)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (list) DO UPDATE SET source = excluded.source,
                     format = excluded.format, imported_at = excluded.imported_at,
                     cidrs = excluded.cidrs",
                params![
                    list.list,
                    list.source,
                    list.format,
                    ts(list.imported_at),
                    list.cidrs
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_address_list(&self, name: String) -> StoreResult<bool> {
        self.write(move |c| {
            c.execute("DELETE FROM address_lists WHERE list = ?1", [name])
                .map(|n| n > 0)
        })
        .await
    }

    async fn campaign_stats(&self, id: CampaignId) -> StoreResult<CampaignStats> {
        self.read(move |c| {
            let t = rollups::totals(c, id)?;
            let mut by_class: std::collections::BTreeMap<&'static str, ClassCounts> = Class::ALL
                .iter()
                .map(|c| (c.as_str(), ClassCounts::default()))
                .collect();
            for row in rollups::dims(c, id, Dim::Class)? {
                if let Some(counts) =
                    Class::parse(&row.value).and_then(|c| by_class.get_mut(c.as_str()))
                {
                    match row.kind {
                        EventKind::Open => counts.opens += row.tally.events,
                        EventKind::Click => counts.clicks += row.tally.events,
                    }
                }
            }
            let click_implied_opens = t.get("reader_opens") - t.get("reader_pixel_opens");
            Ok(CampaignStats {
                campaign_id: id,
                sent: t.sent,
                opens: Counts {
                    total: t.get("opens"),
                    unique: t.get("unique_opens"),
                    total_excluding_machine: t.get("reader_open_events"),
                    unique_excluding_machine: t.get("reader_opens"),
                },
                clicks: Counts {
                    total: t.get("clicks"),
                    unique: t.get("unique_clicks"),
                    total_excluding_machine: t.get("reader_click_events"),
                    unique_excluding_machine: t.get("reader_clicks"),
                },
                first_activity: opt_ts(t.first_at)?,
                last_activity: opt_ts(t.last_at)?,
                click_implied_opens,
                by_class,
            })
        })
        .await
    }

    async fn report_hours(
        &self,
        id: CampaignId,
        from_hour: i64,
        to_hour: i64,
    ) -> StoreResult<Vec<HourCount>> {
        self.read(move |c| rollups::hours(c, id, from_hour, to_hour))
            .await
    }

    async fn report_links(&self, id: CampaignId) -> StoreResult<Vec<LinkCount>> {
        self.read(move |c| rollups::links(c, id)).await
    }

    async fn report_breakdown(&self, id: CampaignId, dim: Dim) -> StoreResult<Vec<DimCount>> {
        self.read(move |c| rollups::dims(c, id, dim)).await
    }

    async fn events(&self, query: EventQuery) -> StoreResult<Vec<EventRecord>> {
        self.read(move |c| {
            let limit = query.limit as i64;
            match query.campaign {
                Some(campaign) => {
                    let mut stmt = c.prepare_cached(&format!(
                        "{EVENT_COLUMNS} WHERE e.campaign_id = ?1 AND e.id > ?2 ORDER BY e.id LIMIT ?3"
                    ))?;
                    stmt.query_map(params![campaign, query.after, limit], event_from_row)?
                        .collect()
                }
                None => {
                    let mut stmt = c.prepare_cached(&format!(
                        "{EVENT_COLUMNS} WHERE e.id > ?1 ORDER BY e.id LIMIT ?2"
                    ))?;
                    stmt.query_map(params![query.after, limit], event_from_row)?
                        .collect()
                }
            }
        })
        .await
    }

    async fn export_bound(&self, campaign: CampaignId) -> StoreResult<EventId> {
        // One step down the (campaign_id, id) index.
        self.read(move |c| {
            c.prepare_cached("SELECT coalesce(max(id), 0) FROM events WHERE campaign_id = ?1")?
                .query_row([campaign], |r| r.get(0))
        })
        .await
    }

    async fn export_page(
        &self,
        campaign: CampaignId,
        after: EventId,
        up_to: EventId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "{EVENT_COLUMNS} WHERE e.campaign_id = ?1 AND e.id > ?2 AND e.id <= ?3
                 ORDER BY e.id LIMIT ?4"
            ))?
            .query_map(
                params![campaign, after, up_to, limit as i64],
                event_from_row,
            )?
            .collect()
        })
        .await
    }

    async fn signing_keys_or_create(
        &self,
        new_secret: [u8; 32],
    ) -> StoreResult<(Vec<(u8, [u8; 32])>, Option<u8>)> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut created = None;
            let count: i64 = tx.query_row("SELECT count(*) FROM signing_keys", [], |r| r.get(0))?;
            if count == 0 {
                tx.execute(
                    "INSERT INTO signing_keys (id, secret, created_at) VALUES (1, ?1, ?2)",
                    params![&new_secret[..], ts(Utc::now())],
                )?;
                created = Some(1);
            }
            let keys = read_keys(&tx)?;
            tx.commit()?;
            Ok((keys, created))
        })
        .await
    }

    async fn add_signing_key(&self, secret: [u8; 32]) -> StoreResult<u8> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let next: i64 = tx.query_row(
                "SELECT coalesce(max(id), 0) + 1 FROM signing_keys",
                [],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO signing_keys (id, secret, created_at) VALUES (?1, ?2, ?3)",
                params![next, &secret[..], ts(Utc::now())],
            )?;
            tx.commit()?;
            Ok(next as u8)
        })
        .await
    }

    async fn create_api_token(&self, token_hash: [u8; 32], scope: Scope) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_tokens (token_hash, scope, created_at) VALUES (?1, ?2, ?3)",
                params![&token_hash[..], scope.as_str(), ts(Utc::now())],
            )
            .map(|_| ())
        })
        .await
    }

    async fn api_token_scope(&self, token_hash: [u8; 32]) -> StoreResult<Option<(i64, Scope)>> {
        self.read(move |c| {
            let row: Option<(i64, String)> = c
                .prepare_cached("SELECT id, scope FROM api_tokens WHERE token_hash = ?1")?
                .query_row([&token_hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(row.and_then(|(id, scope)| Some((id, Scope::parse(&scope)?))))
        })
        .await
    }

    async fn audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO audit_log (at, actor, scope, action, target) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                ts(entry.at),
                entry.actor,
                entry.scope,
                entry.action,
                entry.target
            ])
            .map(drop)
        })
        .await
    }

    async fn audit_log(&self, after: i64, limit: usize) -> StoreResult<Vec<(i64, AuditEntry)>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, at, actor, scope, action, target FROM audit_log
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![after, limit as i64], |r| {
                Ok((
                    r.get(0)?,
                    AuditEntry {
                        at: parse_ts(&r.get::<_, String>(1)?)?,
                        actor: r.get(2)?,
                        scope: r.get(3)?,
                        action: r.get(4)?,
                        target: r.get(5)?,
                    },
                ))
            })?
            .collect()
        })
        .await
    }

    async fn last_audit_target(&self, action: String) -> StoreResult<Option<String>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT target FROM audit_log WHERE action = ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([action], |r| r.get(0))
            .optional()
        })
        .await
    }

    async fn api_token_count(&self) -> StoreResult<i64> {
        self.read(|c| c.query_row("SELECT count(*) FROM api_tokens", [], |r| r.get(0)))
            .await
    }

    async fn rebuild_rollups(&self) -> StoreResult<()> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            rollups::rebuild(&tx)?;
            tx.commit()
        })
        .await
    }

    async fn check_rollups(&self, repair: bool) -> StoreResult<RollupCheck> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let campaigns: Vec<(CampaignId, bool)> = tx
                .prepare(
                    "SELECT c.id, EXISTS (SELECT 1 FROM messages m
                                          WHERE m.campaign_id = c.id AND m.purged_facts IS NOT NULL)
                     FROM campaigns c ORDER BY c.id",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut check = RollupCheck::default();
            for (campaign, purged) in campaigns {
                if purged {
                    check.campaigns_skipped.push(campaign);
                    continue;
                }
                let kept = rollups::dump(&tx, campaign)?;
                rollups::rebuild_campaign(&tx, campaign)?;
                let rebuilt = rollups::dump(&tx, campaign)?;
                check.campaigns_checked += 1;
                if kept != rebuilt {
                    let mut rows: Vec<String> = kept
                        .iter()
                        .filter(|r| !rebuilt.contains(r))
                        .map(|r| format!("stored:  {r}"))
                        .chain(
                            rebuilt
                                .iter()
                                .filter(|r| !kept.contains(r))
                                .map(|r| format!("from log: {r}")),
                        )
                        .collect();
                    rows.truncate(20);
                    check.differences.push((campaign, rows));
                }
            }
            // The rebuilt rows stay only when asked to repair.
            if repair {
                tx.commit()?;
                check.repaired = !check.differences.is_empty();
            } else {
                tx.rollback()?;
            }
            Ok(check)
        })
        .await
    }

    async fn purge_events(
        &self,
        before: DateTime<Utc>,
        progress: Progress,
    ) -> StoreResult<PurgeSummary> {
        self.write(move |c| {
            let cutoff = ts(before);
            let mut summary = PurgeSummary::default();
            loop {
                // Ids follow arrival, so the oldest events are the first ids: read from the start
                // and stop at the first one young enough to keep.
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let head: Vec<(MessageId, String)> = tx
                    .prepare_cached(
                        "SELECT message_id, received_at FROM events ORDER BY id LIMIT 2000",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut messages: Vec<MessageId> = head
                    .iter()
                    .take_while(|(_, at)| *at < cutoff)
                    .map(|(m, _)| *m)
                    .collect();
                messages.sort_unstable();
                messages.dedup();
                if messages.is_empty() {
                    break;
                }
                for message in &messages {
                    let facts = rollups::message_facts(&tx, *message)?;
                    let old: Vec<Fact> = facts
                        .into_iter()
                        .filter(|f| f.received_at < before)
                        .collect();
                    let seed = serde_json::to_string(&representatives(&old))
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
                    tx.prepare_cached("UPDATE messages SET purged_facts = ?2 WHERE id = ?1")?
                        .execute(params![message, seed])?;
                    summary.events +=
                        tx.prepare_cached(
                            "DELETE FROM events WHERE message_id = ?1 AND received_at < ?2",
                        )?
                        .execute(params![message, cutoff])? as u64;
                }
                summary.messages += messages.len() as u64;
                // Notices of those events, sent or not, hold their data too.
                tx.prepare_cached("DELETE FROM webhook_outbox WHERE occurred_at < ?1")?
                    .execute([&cutoff])?;
                tx.commit()?;
                progress(summary.events, 0);
            }
            Ok(summary)
        })
        .await
    }

    async fn recent_events(
        &self,
        campaign: CampaignId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "{EVENT_COLUMNS} WHERE e.campaign_id = ?1 ORDER BY e.id DESC LIMIT ?2"
            ))?
            .query_map(params![campaign, limit as i64], event_from_row)?
            .collect()
        })
        .await
    }

    async fn set_dashboard_password(&self, scope: Scope, hash: String) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO dashboard_passwords (scope, hash, set_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scope) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                params![scope.as_str(), hash, ts(Utc::now())],
            )
            .map(drop)
        })
        .await
    }

    async fn dashboard_passwords(&self) -> StoreResult<Vec<(Scope, String)>> {
        self.read(|c| {
            let rows: Vec<(String, String)> = c
                .prepare_cached("SELECT scope, hash FROM dashboard_passwords")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(scope, hash)| Some((Scope::parse(&scope)?, hash)))
                .collect())
        })
        .await
    }

    async fn create_session(&self, session: Session) -> StoreResult<()> {
        self.write(move |c| {
            let now = Utc::now();
            // Expired sessions go as new ones come.
            c.execute("DELETE FROM sessions WHERE expires_at < ?1", [ts(now)])?;
            c.execute(
                "INSERT INTO sessions (session_hash, token_id, scope, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &session.session_hash[..],
                    session.token_id,
                    session.scope.as_str(),
                    ts(now),
                    ts(session.expires_at)
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn session(&self, session_hash: [u8; 32]) -> StoreResult<Option<Session>> {
        self.read(move |c| {
            let row: Option<(Option<i64>, String, String)> = c
                .prepare_cached(
                    "SELECT token_id, scope, expires_at FROM sessions
                     WHERE session_hash = ?1 AND expires_at > ?2",
                )?
                .query_row(params![&session_hash[..], ts(Utc::now())], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let Some((token_id, scope, expires_at)) = row else {
                return Ok(None);
            };
            Ok(Scope::parse(&scope).map(|scope| Session {
                session_hash,
                token_id,
                scope,
                expires_at: parse_ts(&expires_at).unwrap_or_default(),
            }))
        })
        .await
    }

    async fn delete_session(&self, session_hash: [u8; 32]) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM sessions WHERE session_hash = ?1",
                [&session_hash[..]],
            )
            .map(drop)
        })
        .await
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
        self.write(move |c| Ok(c.execute("DELETE FROM webhook_endpoints WHERE id = ?1", [id])? > 0))
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
        self.write(move |c| webhooks::claim(c, endpoint, limit, now, lease_until))
            .await
    }

    async fn finish_webhook_deliveries(
        &self,
        endpoint: i64,
        results: Vec<(i64, Next)>,
        attempt: Attempt,
    ) -> StoreResult<()> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            webhooks::finish(&tx, endpoint, &results, &attempt)?;
            tx.commit()
        })
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

fn read_keys(c: &Connection) -> rusqlite::Result<Vec<(u8, [u8; 32])>> {
    let mut stmt = c.prepare("SELECT id, secret FROM signing_keys ORDER BY id")?;
    stmt.query_map([], |r| {
        let id: i64 = r.get(0)?;
        let secret: Vec<u8> = r.get(1)?;
        let secret: [u8; 32] = secret.try_into().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Blob,
                "signing key is not 32 bytes".into(),
            )
        })?;
        Ok((id as u8, secret))
    })?
    .collect()
}

#[cfg(test)]
mod tests;
