//! The PostgreSQL engine (`--database postgres://…`): any number of mailbeacon processes share one
//! database. A pool of connections (the synchronous `postgres` client, run on blocking threads like
//! SQLite's), migrations under an advisory lock so that processes starting together apply each
//! once, and write transactions of all processes side by side (postgres/transactions.rs: row
//! locks where they touch the same rows, and a record of transactions in progress so that a
//! reader paging by id never passes an event committed late).
//!
//! The search path may name a schema: `postgres://…/db?options=-csearch_path%3Dname` (the tests
//! give each test its own). Locks are per schema.

#[doc(hidden)]
mod tls;
pub mod transactions;
mod values;

use super::queries::{Engine, SqlStore};
use super::sql::{self, Conn, Dialect, Row, Value};
use super::{OpenReport, StoreError, StoreResult};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Schema migrations, applied in order; the number is the version recorded once applied.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../migrations/postgres/0002_spool.sql")),
    (
        3,
        include_str!("../../migrations/postgres/0003_consents.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_message_history.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_write_transactions.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_token_expiry.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_campaign_details.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_provider_checks.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_conversions.sql"),
    ),
    (
        10,
        include_str!("../../migrations/postgres/0010_opened.sql"),
    ),
    (
        11,
        include_str!("../../migrations/postgres/0011_event_id_blocks.sql"),
    ),
    (
        12,
        include_str!("../../migrations/postgres/0012_messages_fillfactor.sql"),
    ),
    (
        13,
        include_str!("../../migrations/postgres/0013_tracking_domains.sql"),
    ),
    (
        14,
        include_str!("../../migrations/postgres/0014_certificates.sql"),
    ),
    (
        15,
        include_str!("../../migrations/postgres/0015_webhook_protocol.sql"),
    ),
];

/// mailbeacon's advisory locks: the first key is "mbcn" (and one more), the second the schema's
/// hash; 1835164526 is the write transactions' (postgres/transactions.rs).
const MIGRATION_LOCK: &str = "SELECT pg_advisory_lock(1835164527, hashtext(current_schema()))";
const MIGRATION_UNLOCK: &str = "SELECT pg_advisory_unlock(1835164527, hashtext(current_schema()))";

/// Pooled connections open at once, at most, per process (the group commit has one more).
const POOL_SIZE: usize = 16;

pub type PostgresStore = SqlStore<Postgres>;

pub struct Postgres {
    config: Target,
    idle: Arc<Mutex<Vec<PgConn>>>,
    permits: Arc<Semaphore>,
    /// The group commit's own connection (beside the pool), kept with its prepared statements.
    group_commit: Mutex<Option<PgConn>>,
}

/// Where to connect, and with which TLS (see postgres/tls.rs).
#[derive(Clone)]
struct Target {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

/// A client with the statements it has prepared.
pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
    in_transaction: bool,
}

impl SqlStore<Postgres> {
    /// Connects, checks the schema named by the search path exists, and migrates.
    pub fn open(url: &str) -> anyhow::Result<(Self, OpenReport)> {
        let (url, tls) = tls::from_url(url)?;
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives_idle(Duration::from_secs(30));
        let config = Target { config, tls };
        let mut conn = connect(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let schema: Option<String> = (&mut conn as &mut dyn Conn)
            .query_one("SELECT current_schema()", sql::params![])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if schema.is_none() {
            anyhow::bail!(
                "no schema of the search path exists in the database (create it, or fix search_path)"
            );
        }
        let (created, migrations_applied) =
            migrate(&mut conn).map_err(|e| anyhow::anyhow!("cannot migrate the database: {e}"))?;
        Ok((
            SqlStore {
                engine: Postgres {
                    config,
                    idle: Arc::new(Mutex::new(vec![conn])),
                    permits: Arc::new(Semaphore::new(POOL_SIZE)),
                    group_commit: Mutex::new(None),
                },
            },
            OpenReport {
                created,
                migrations_applied,
            },
        ))
    }
}

impl Postgres {
    fn run<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static,
    {
        let idle = self.idle.clone();
        let permits = self.permits.clone();
        let config = self.config.clone();
        async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|_| StoreError::Unavailable("the connection pool is closed".into()))?;
            tokio::task::spawn_blocking(move || {
                let pooled = idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let (result, reusable) = run_on(pooled, &config, f);
                if let Some(conn) = reusable {
                    idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
                }
                result
            })
            .await
            .map_err(|e| StoreError::Other(format!("storage task failed: {e}")))?
        }
    }
}

impl Engine for Postgres {
    fn write<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static,
    {
        self.run(f)
    }

    fn read<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static,
    {
        self.run(f)
    }

    fn write_here<T>(&self, f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T> {
        let mut slot = self.group_commit.lock().unwrap_or_else(|e| e.into_inner());
        let (result, reusable) = run_on(slot.take(), &self.config, f);
        *slot = reusable;
        result
    }
}

/// Runs `f` on `conn`, or on a new connection when there is none or it was closed; gives back the
/// connection when it can be used again (open, no transaction left behind).
fn run_on<T>(
    conn: Option<PgConn>,
    config: &Target,
    f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>,
) -> (StoreResult<T>, Option<PgConn>) {
    let mut conn = match conn {
        Some(c) if !c.client.is_closed() => c,
        _ => match connect(config) {
            Ok(c) => c,
            Err(e) => return (Err(e), None),
        },
    };
    let result = f(&mut conn);
    if conn.in_transaction {
        let _ = conn.rollback();
    }
    let reusable = (!conn.client.is_closed() && !conn.in_transaction).then_some(conn);
    (result, reusable)
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Each client owns a small runtime, which may not be dropped on an async worker thread.
        let mut conns = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        conns.extend(
            self.group_commit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        if !conns.is_empty() {
            std::thread::spawn(move || drop(conns));
        }
    }
}

fn connect(target: &Target) -> StoreResult<PgConn> {
    let connected = match &target.tls {
        None => target.config.connect(NoTls),
        Some(tls) => target.config.connect(tls.clone()),
    };
    let client = connected.map_err(|e| {
        StoreError::Unavailable(format!("cannot connect to PostgreSQL: {}", describe(&e)))
    })?;
    Ok(PgConn {
        client,
        statements: HashMap::new(),
        in_transaction: false,
    })
}

/// The server's message, or the connection's, with the SQLSTATE code when there is one.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

fn store_error(e: postgres::Error) -> StoreError {
    let unavailable = e.is_closed()
        || match e.code() {
            // Connection exceptions, operator intervention (shutdown, terminated backend),
            // insufficient resources, a role that may no longer connect, and a database (or
            // role) set read-only: nothing was written, so the events can wait in the spool.
            Some(code) => {
                let c = code.code();
                c.starts_with("08")
                    || c.starts_with("57")
                    || c.starts_with("53")
                    || c == "28000"
                    || c == "25006"
                    || c == "42501" && e.to_string().contains("CONNECT")
            }
            None => true,
        };
    // Deadlock detected, serialization failure.
    if matches!(e.code().map(|c| c.code()), Some("40P01" | "40001")) {
        return StoreError::Conflict(describe(&e));
    }
    if unavailable {
        StoreError::Unavailable(describe(&e))
    } else {
        StoreError::Other(describe(&e))
    }
}

impl PgConn {
    fn statement(&mut self, sql: &str) -> StoreResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self
            .client
            .prepare(&sql::numbered_to_dollar(sql))
            .map_err(store_error)?;
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let stmt = self.statement(sql)?;
        self.client
            .execute(&stmt, &refs(params))
            .map_err(store_error)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let rows = self
            .client
            .query(&stmt, &refs(params))
            .map_err(store_error)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<_, Value>(i).map_err(store_error))
                    .collect::<StoreResult<Vec<_>>>()
                    .map(Row)
            })
            .collect()
    }

    fn execute_batch(&mut self, sql: &str) -> StoreResult<()> {
        let result = self.client.batch_execute(sql).map_err(store_error);
        let upper = sql.trim_start().to_ascii_uppercase();
        if upper.starts_with("COMMIT") || upper.starts_with("ROLLBACK") {
            self.in_transaction = false;
        }
        result
    }

    fn commit(&mut self) -> StoreResult<()> {
        self.commit_write()
    }

    fn rollback(&mut self) -> StoreResult<()> {
        self.rollback_write()
    }

    fn begin(&mut self) -> StoreResult<()> {
        self.begin_write(false)
    }

    fn begin_exclusive(&mut self) -> StoreResult<()> {
        self.begin_write(true)
    }
}

fn migrate(conn: &mut PgConn) -> StoreResult<(bool, usize)> {
    let c: &mut dyn Conn = conn;
    // Processes starting together: the first applies, the others wait here and find nothing to do.
    c.execute_batch(MIGRATION_LOCK)?;
    // PostgreSQL's DDL is transactional: all pending migrations commit together or not at all.
    // A plain transaction: the write transactions' bookkeeping may not exist yet.
    c.execute_batch("BEGIN")?;
    let result = sql::apply_migrations(c, MIGRATIONS, |_, _| Ok(()));
    let result = match result {
        Ok(done) => c.execute_batch("COMMIT").map(|()| done),
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    };
    let _ = c.execute_batch(MIGRATION_UNLOCK);
    let (found, applied) = result?;
    transactions::forget_departed(c)?;
    Ok((found == 0, applied))
}

/// Where tests find PostgreSQL: `MAILBEACON_TEST_POSTGRES`, or the server CI runs.
pub const TEST_SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// For tests: creates a fresh schema in the test database and returns a URL whose search path
/// names it, so tests run in parallel without seeing each other. Schemas of runs more than an hour
/// old are dropped on the way. Fails, saying how to start PostgreSQL, when it is not reachable.
#[doc(hidden)]
pub fn test_schema(label: &str) -> anyhow::Result<String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::env::var("MAILBEACON_TEST_POSTGRES").unwrap_or_else(|_| TEST_SERVER.into());
    let mut config: postgres::Config = base.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    let mut client = config.connect(NoTls).map_err(|e| {
        anyhow::anyhow!(
            "PostgreSQL is not reachable at {base}: {}. The storage tests run against a real \
             server: start it (Debian: `apt-get install postgresql && service postgresql start`, \
             then allow trust auth for 127.0.0.1 and `createdb -U postgres test`; `bash .ci/test` does \
             this), or point MAILBEACON_TEST_POSTGRES at another server",
            describe(&e)
        )
    })?;
    let now = chrono::Utc::now().timestamp();
    let label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(20)
        .collect::<String>()
        .to_ascii_lowercase();
    let schema = format!(
        "mbt_{now}_{}_{}_{label}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    for row in client.query(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'mbt\\_%'",
        &[],
    )? {
        let name: String = row.get(0);
        let started: i64 = name
            .split('_')
            .nth(1)
            .and_then(|t| t.parse().ok())
            .unwrap_or(now);
        if now - started > 3600 {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
        }
    }
    client.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}
