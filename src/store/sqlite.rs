//! The embedded SQLite engine (the default). WAL mode; one write connection that every write goes
//! through (SQLite allows one writer at a time anyway, and a single connection keeps its prepared
//! statements warm), plus a small pool of read connections that WAL lets run beside it.
//!
//! Durability: with WAL and `synchronous=NORMAL` a committed transaction is in the WAL file when
//! COMMIT returns, so a crash of the process loses nothing; `fsync` switches to `synchronous=FULL`
//! so that a power loss does not either.

mod checkpoint;

use super::queries::{Engine, SqlStore, rollups};
use super::sql::{self, Conn, Dialect, Row, Value};
use super::{OpenReport, StoreError, StoreResult};
use anyhow::Context;
use checkpoint::Checkpoints;
use rusqlite::{Connection, ErrorCode};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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
    (14, include_str!("../../migrations/sqlite/0014_spool.sql")),
    (
        15,
        include_str!("../../migrations/sqlite/0015_consents.sql"),
    ),
    (
        16,
        include_str!("../../migrations/sqlite/0016_message_history.sql"),
    ),
    (
        17,
        include_str!("../../migrations/sqlite/0017_token_expiry.sql"),
    ),
    (
        18,
        include_str!("../../migrations/sqlite/0018_campaign_details.sql"),
    ),
    (
        19,
        include_str!("../../migrations/sqlite/0019_provider_checks.sql"),
    ),
    (
        20,
        include_str!("../../migrations/sqlite/0020_conversions.sql"),
    ),
    (21, include_str!("../../migrations/sqlite/0021_opened.sql")),
    (
        22,
        include_str!("../../migrations/sqlite/0022_tracking_domains.sql"),
    ),
    (
        23,
        include_str!("../../migrations/sqlite/0023_certificates.sql"),
    ),
    (
        24,
        include_str!("../../migrations/sqlite/0024_webhook_protocol.sql"),
    ),
];

/// The migration that adds the rollups; the events already stored are rolled up right after it.
const ROLLUPS_MIGRATION: i64 = 9;

/// Read connections kept open beyond this many are closed after use.
const MAX_IDLE_READERS: usize = 4;

/// Statements each connection keeps prepared: the group commit alone uses about thirty (its
/// multi-row statements come in seven sizes).
const STATEMENT_CACHE: usize = 64;

pub type SqliteStore = SqlStore<Sqlite>;

pub struct Sqlite {
    path: PathBuf,
    fsync: bool,
    writer: Arc<Mutex<Connection>>,
    checkpoints: Arc<Checkpoints>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl SqlStore<Sqlite> {
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
        let checkpoints = Checkpoints::start(path, &mut conn, |p| connect(p, fsync))
            .with_context(|| format!("cannot open database {}", path.display()))?;
        let store = SqlStore {
            engine: Sqlite {
                path: path.to_path_buf(),
                fsync,
                writer: Arc::new(Mutex::new(conn)),
                checkpoints: Arc::new(checkpoints),
                readers: Arc::new(Mutex::new(Vec::new())),
            },
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
        let conn = self.engine.writer.lock().unwrap_or_else(|e| e.into_inner());
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
}

impl Engine for Sqlite {
    fn write<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        let checkpoints = self.checkpoints.clone();
        async move {
            tokio::task::spawn_blocking(move || on_writer(&writer, &checkpoints, f))
                .await
                .map_err(|e| StoreError::Other(format!("storage task failed: {e}")))?
        }
    }

    fn write_here<T>(&self, f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T> {
        on_writer(&self.writer, &self.checkpoints, f)
    }

    fn read<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let fsync = self.fsync;
        async move {
            tokio::task::spawn_blocking(move || {
                let idle = readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let mut conn = match idle {
                    Some(conn) => conn,
                    None => connect(&path, fsync).map_err(store_error)?,
                };
                let result = f(&mut conn);
                let mut pool = readers.lock().unwrap_or_else(|e| e.into_inner());
                if pool.len() < MAX_IDLE_READERS && conn.is_autocommit() {
                    pool.push(conn);
                }
                result
            })
            .await
            .map_err(|e| StoreError::Other(format!("storage task failed: {e}")))?
        }
    }
}

fn on_writer<T>(
    writer: &Mutex<Connection>,
    checkpoints: &Checkpoints,
    f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>,
) -> StoreResult<T> {
    let mut conn = writer.lock().unwrap_or_else(|e| e.into_inner());
    checkpoints.before_write(&conn);
    let result = f(&mut *conn);
    // A closure that failed between BEGIN and COMMIT must not leave its transaction open for the
    // next one.
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

fn to_sqlite(v: &Value) -> rusqlite::types::ToSqlOutput<'_> {
    use rusqlite::types::{ToSqlOutput, ValueRef};
    if let Value::List(items) = v {
        return ToSqlOutput::Owned(rusqlite::types::Value::Text(json_list(items)));
    }
    ToSqlOutput::Borrowed(match v {
        Value::Null => ValueRef::Null,
        Value::Int(i) => ValueRef::Integer(*i),
        Value::Real(f) => ValueRef::Real(*f),
        Value::Text(s) => ValueRef::Text(s.as_bytes()),
        Value::Blob(b) => ValueRef::Blob(b),
        Value::List(_) => unreachable!("bound as JSON above"),
    })
}

/// A list as SQLite's JSON functions read it (`json_each(?1)`); a blob as its bytes' numbers.
fn json_list(items: &[Value]) -> String {
    fn json(v: &Value) -> serde_json::Value {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => (*i).into(),
            Value::Real(f) => (*f).into(),
            Value::Text(s) => s.as_str().into(),
            Value::Blob(b) => b.clone().into(),
            Value::List(l) => l.iter().map(json).collect(),
        }
    }
    items
        .iter()
        .map(json)
        .collect::<serde_json::Value>()
        .to_string()
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &[Value]) -> rusqlite::Result<()> {
    for (i, v) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, to_sqlite(v))?;
    }
    Ok(())
}

impl Conn for Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let run = || -> rusqlite::Result<u64> {
            let mut stmt = self.prepare_cached(sql)?;
            bind(&mut stmt, params)?;
            Ok(stmt.raw_execute()? as u64)
        };
        run().map_err(store_error)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let run = || -> rusqlite::Result<Vec<Row>> {
            let mut stmt = self.prepare_cached(sql)?;
            bind(&mut stmt, params)?;
            let n = stmt.column_count();
            let mut rows = stmt.raw_query();
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    use rusqlite::types::ValueRef;
                    values.push(match r.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(i) => Value::Int(i),
                        ValueRef::Real(f) => Value::Real(f),
                        // from_utf8 first: faster than from_utf8_lossy's scan on the valid
                        // text SQLite hands back (3.6% of the writer's time in a profile).
                        ValueRef::Text(t) => Value::Text(match std::str::from_utf8(t) {
                            Ok(s) => s.to_owned(),
                            Err(_) => String::from_utf8_lossy(t).into_owned(),
                        }),
                        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                    });
                }
                out.push(Row(values));
            }
            Ok(out)
        };
        run().map_err(store_error)
    }

    fn execute_batch(&mut self, sql: &str) -> StoreResult<()> {
        Connection::execute_batch(self, sql).map_err(store_error)
    }

    fn begin(&mut self) -> StoreResult<()> {
        Connection::execute_batch(self, "BEGIN IMMEDIATE").map_err(store_error)
    }
}

fn connect(path: &Path, fsync: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("SQLite refused WAL mode (journal_mode is {mode})")),
        ));
    }
    conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted rows (an erasure, a purge) are overwritten, not left in free space.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> anyhow::Result<usize> {
    // One IMMEDIATE transaction: a second process opening the file meanwhile waits for it.
    let (_, applied) = sql::in_tx(conn, |c| {
        sql::apply_migrations(c, MIGRATIONS, |c, version| {
            if version == ROLLUPS_MIGRATION {
                rollups::rebuild(c).map_err(|e| {
                    StoreError::Other(format!("rolling up the stored events failed: {e}"))
                })?;
            }
            Ok(())
        })
    })?;
    Ok(applied)
}

pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
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
