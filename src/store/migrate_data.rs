//! `mailbeacon migrate-data`: copies an installation from SQLite to PostgreSQL, table by table with
//! the ids kept, and checks the copy before keeping it.
//!
//! The copy works on two [`Conn`]s, so it does not care which engine is on either side (the unit
//! tests copy SQLite to SQLite). Rows are read in primary-key order a page at a time (keyset
//! paging: `WHERE key > last ORDER BY key LIMIT n`) and written as multi-row INSERTs, so memory
//! stays bounded however large the event log is.
//!
//! The source is read in one read transaction, a consistent snapshot; the target is written in one
//! transaction, committed only when the verification found both sides equal (row counts, the
//! highest id, an order-independent checksum of every row of every table, and each campaign's
//! event count) and nobody wrote to the source meanwhile. Anything else leaves the target empty, so
//! the command can simply be run again.

use super::sql::{Conn, Dialect, Row, Value, params};
use super::{StoreError, StoreResult};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

mod tables;
pub use tables::{TABLES, Table};

/// Rows read from the source per query.
pub const PAGE_ROWS: usize = 5000;

/// Rows per INSERT statement, at most (fewer for wide tables: see [`max_params`]).
const INSERT_ROWS: usize = 5000;

/// Told (what is being done, rows done, rows in all) after each page.
pub type Progress = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// What one table came to on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub table: &'static str,
    pub source_rows: u64,
    pub target_rows: u64,
    /// The highest id (tables keyed by one integer column).
    pub source_max_id: Option<i64>,
    pub target_max_id: Option<i64>,
    /// The wrapping sum of a hash of every row: equal when both sides hold the same rows.
    pub source_checksum: u64,
    pub target_checksum: u64,
}

impl TableCheck {
    pub fn equal(&self) -> bool {
        self.source_rows == self.target_rows
            && self.source_max_id == self.target_max_id
            && self.source_checksum == self.target_checksum
    }
}

/// Events per campaign on both sides (only campaigns that have events on either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignEvents {
    pub campaign_id: i64,
    pub source_events: i64,
    pub target_events: i64,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub tables: Vec<TableCheck>,
    pub campaigns: Vec<CampaignEvents>,
    /// Rows copied, all tables together.
    pub rows: u64,
    /// Where each identity sequence of the target now starts (PostgreSQL), as (table, next id).
    pub next_ids: Vec<(&'static str, i64)>,
    /// Another connection committed to the source while it was copied (a server still running
    /// on it): what it wrote is not in the copy.
    pub source_changed: bool,
    /// The target's transaction was committed (everything equal, the source unchanged); otherwise
    /// it was rolled back and the target is as empty as it was.
    pub committed: bool,
}

impl Report {
    pub fn differences(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in self.tables.iter().filter(|t| !t.equal()) {
            out.push(format!(
                "{}: {} rows in the source, {} in the target; highest id {} / {}; checksum {:016x} / {:016x}",
                t.table,
                t.source_rows,
                t.target_rows,
                show(t.source_max_id),
                show(t.target_max_id),
                t.source_checksum,
                t.target_checksum
            ));
        }
        for c in self
            .campaigns
            .iter()
            .filter(|c| c.source_events != c.target_events)
        {
            out.push(format!(
                "campaign {}: {} events in the source, {} in the target",
                c.campaign_id, c.source_events, c.target_events
            ));
        }
        out
    }
}

fn show(v: Option<i64>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The target already holds rows (table, rows): nothing was copied.
    Refused(Vec<(&'static str, u64)>),
    /// Copied and verified; see [`Report::committed`].
    Copied(Report),
}

/// Opens both databases (migrating each to the latest schema, as the server does), then copies.
/// `source` must exist; `target` is a PostgreSQL URL.
pub async fn migrate(
    source: PathBuf,
    target: String,
    progress: Progress,
) -> anyhow::Result<Outcome> {
    use super::postgres::PostgresStore;
    use super::queries::Engine;
    use super::sqlite::SqliteStore;
    use anyhow::Context as _;

    if !source.is_file() {
        anyhow::bail!("--from: there is no database at {}", source.display());
    }
    let path = source.clone();
    tokio::task::spawn_blocking(move || SqliteStore::open(&path, false).map(drop))
        .await?
        .context("--from: cannot open the SQLite database")?;
    let (store, _) = tokio::task::spawn_blocking(move || PostgresStore::open(&target))
        .await?
        .context("--to: cannot open the PostgreSQL database")?;
    let outcome = store
        .engine
        .write(move |dst| {
            let mut src = open_sqlite(&source)?;
            run(&mut src, dst, &*progress)
        })
        .await?;
    Ok(outcome)
}

/// A plain connection to the source: the store's own pool is of no use here, the copy needs both
/// sides on one thread.
fn open_sqlite(path: &std::path::Path) -> StoreResult<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(super::sqlite::store_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(super::sqlite::store_error)?;
    Ok(conn)
}

/// Copies every table of `src` into `dst` and verifies the copy; see the module's description.
pub fn run(
    src: &mut dyn Conn,
    dst: &mut dyn Conn,
    progress: &dyn Fn(&str, u64, u64),
) -> StoreResult<Outcome> {
    check_schema(src, "source")?;
    check_schema(dst, "target")?;
    let mut occupied = Vec::new();
    for t in TABLES {
        let n: i64 = dst.query_one(&format!("SELECT count(*) FROM {}", t.name), params![])?;
        if n > 0 {
            occupied.push((t.name, n as u64));
        }
    }
    if !occupied.is_empty() {
        return Ok(Outcome::Refused(occupied));
    }

    begin_snapshot(src)?;
    let result = copy_within_snapshot(src, dst, progress);
    // Ends the snapshot when the copy failed (after its COMMIT this fails harmlessly), and leaves
    // the target as it was.
    let _ = src.execute_batch("ROLLBACK");
    if result.is_err() {
        let _ = dst.rollback();
    }
    result.map(Outcome::Copied)
}

fn copy_within_snapshot(
    src: &mut dyn Conn,
    dst: &mut dyn Conn,
    progress: &dyn Fn(&str, u64, u64),
) -> StoreResult<Report> {
    let changes_before = data_version(src)?;
    let mut total = 0u64;
    for t in TABLES {
        let n: i64 = src.query_one(&format!("SELECT count(*) FROM {}", t.name), params![])?;
        total += n as u64;
    }
    dst.begin()?;
    let mut report = copy_and_verify(src, dst, total, progress)?;
    // End the snapshot: a commit of another connection since it began shows now.
    src.execute_batch("COMMIT")?;
    report.source_changed = data_version(src)? != changes_before;
    if report.differences().is_empty() && !report.source_changed {
        report.next_ids = reset_sequences(src, dst)?;
        dst.commit()?;
        report.committed = true;
    } else {
        dst.rollback()?;
    }
    Ok(report)
}

fn copy_and_verify(
    src: &mut dyn Conn,
    dst: &mut dyn Conn,
    total: u64,
    progress: &dyn Fn(&str, u64, u64),
) -> StoreResult<Report> {
    let mut checks = Vec::new();
    let mut done = 0u64;
    for t in TABLES {
        let message = format!("copying {}", t.name);
        progress(&message, done, total);
        let insert_full = insert_sql(t, rows_per_insert(t, dst.dialect()));
        let mut source_rows = 0u64;
        let mut source_checksum = 0u64;
        scan(src, t, |rows| {
            let n = rows.len() as u64;
            for r in &rows {
                source_checksum = source_checksum.wrapping_add(row_hash(r));
            }
            insert(dst, t, rows, &insert_full).map_err(|e| {
                StoreError::Other(format!(
                    "copying {} failed after {source_rows} rows: {e}",
                    t.name
                ))
            })?;
            source_rows += n;
            done += n;
            progress(&message, done, total);
            Ok(())
        })?;
        checks.push(TableCheck {
            table: t.name,
            source_rows,
            target_rows: 0,
            source_max_id: max_id(src, t)?,
            target_max_id: None,
            source_checksum,
            target_checksum: 0,
        });
    }
    // Read the copy back: what the target holds, not what was sent to it.
    let mut checked = 0u64;
    for check in &mut checks {
        let t = TABLES
            .iter()
            .find(|t| t.name == check.table)
            .expect("checks follow TABLES");
        let message = format!("verifying {}", t.name);
        progress(&message, checked, total);
        let n: i64 = dst.query_one(&format!("SELECT count(*) FROM {}", t.name), params![])?;
        check.target_rows = n as u64;
        check.target_max_id = max_id(dst, t)?;
        let mut sum = 0u64;
        scan(dst, t, |rows| {
            checked += rows.len() as u64;
            for r in &rows {
                sum = sum.wrapping_add(row_hash(r));
            }
            progress(&message, checked, total);
            Ok(())
        })?;
        check.target_checksum = sum;
    }
    let per_campaign = |c: &mut dyn Conn| -> StoreResult<BTreeMap<i64, i64>> {
        c.query(
            "SELECT campaign_id, count(*) FROM events GROUP BY campaign_id ORDER BY campaign_id",
            params![],
        )?
        .iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?)))
        .collect()
    };
    let (s, d) = (per_campaign(src)?, per_campaign(dst)?);
    let ids: BTreeSet<i64> = s.keys().chain(d.keys()).copied().collect();
    let campaigns = ids
        .into_iter()
        .map(|id| CampaignEvents {
            campaign_id: id,
            source_events: s.get(&id).copied().unwrap_or(0),
            target_events: d.get(&id).copied().unwrap_or(0),
        })
        .collect();
    Ok(Report {
        rows: done,
        tables: checks,
        campaigns,
        next_ids: Vec::new(),
        source_changed: false,
        committed: false,
    })
}

/// Calls `f` with the table's rows, a page at a time, in primary-key order.
fn scan(
    c: &mut dyn Conn,
    t: &Table,
    mut f: impl FnMut(Vec<Row>) -> StoreResult<()>,
) -> StoreResult<()> {
    let columns = t.columns.join(", ");
    let order = t.key.join(", ");
    let key_at: Vec<usize> = t
        .key
        .iter()
        .map(|k| {
            t.columns
                .iter()
                .position(|c| c == k)
                .expect("key columns are columns")
        })
        .collect();
    let first = format!(
        "SELECT {columns} FROM {} ORDER BY {order} LIMIT {PAGE_ROWS}",
        t.name
    );
    let placeholders: Vec<String> = (1..=t.key.len()).map(|i| format!("?{i}")).collect();
    let next = format!(
        "SELECT {columns} FROM {} WHERE ({order}) > ({}) ORDER BY {order} LIMIT {PAGE_ROWS}",
        t.name,
        placeholders.join(", ")
    );
    let mut after: Option<Vec<Value>> = None;
    loop {
        let rows = match &after {
            None => c.query(&first, params![])?,
            Some(key) => c.query(&next, key)?,
        };
        let last_page = rows.len() < PAGE_ROWS;
        if let Some(last) = rows.last() {
            after = Some(key_at.iter().map(|&i| last.0[i].clone()).collect());
        }
        if !rows.is_empty() {
            f(rows)?;
        }
        if last_page {
            return Ok(());
        }
    }
}

/// The most parameters one statement may have.
fn max_params(dialect: Dialect) -> usize {
    match dialect {
        // The protocol counts them in 16 bits.
        Dialect::Postgres => 65_535,
        // SQLITE_MAX_VARIABLE_NUMBER's default since 3.32.
        Dialect::Sqlite => 32_766,
    }
}

fn rows_per_insert(t: &Table, dialect: Dialect) -> usize {
    (max_params(dialect) / t.columns.len()).clamp(1, INSERT_ROWS)
}

fn insert_sql(t: &Table, rows: usize) -> String {
    let n = t.columns.len();
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", t.name, t.columns.join(", "));
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..n {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('?');
            sql.push_str(&(r * n + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

fn insert(dst: &mut dyn Conn, t: &Table, rows: Vec<Row>, insert_full: &str) -> StoreResult<()> {
    let per = rows_per_insert(t, dst.dialect());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Row> = rows.by_ref().take(per).collect();
        let partial;
        let sql = if chunk.len() == per {
            insert_full
        } else {
            partial = insert_sql(t, chunk.len());
            &partial
        };
        let values: Vec<Value> = chunk.into_iter().flat_map(|r| r.0).collect();
        dst.execute(sql, &values)?;
    }
    Ok(())
}

fn max_id(c: &mut dyn Conn, t: &Table) -> StoreResult<Option<i64>> {
    match t.key {
        [k] if t.integer_key => c.query_one(&format!("SELECT max({k}) FROM {}", t.name), params![]),
        _ => Ok(None),
    }
}

/// A hash of one row's values, the same for the same values on either engine.
fn row_hash(r: &Row) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for v in &r.0 {
        match v {
            Value::Null => 0u8.hash(&mut h),
            Value::Int(i) => {
                1u8.hash(&mut h);
                i.hash(&mut h);
            }
            Value::Real(f) => {
                2u8.hash(&mut h);
                f.to_bits().hash(&mut h);
            }
            Value::Text(s) => {
                3u8.hash(&mut h);
                s.hash(&mut h);
            }
            Value::Blob(b) => {
                4u8.hash(&mut h);
                b.hash(&mut h);
            }
            // Rows read from a database hold no lists.
            Value::List(l) => {
                5u8.hash(&mut h);
                format!("{l:?}").hash(&mut h);
            }
        }
    }
    h.finish()
}

/// A read snapshot of the source for the whole copy.
fn begin_snapshot(c: &mut dyn Conn) -> StoreResult<()> {
    match c.dialect() {
        // Deferred: no write lock, so a server still running on the file is not stopped by it
        // (what it writes meanwhile is noticed, see `data_version`).
        Dialect::Sqlite => c.execute_batch("BEGIN"),
        Dialect::Postgres => c.execute_batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
    }?;
    // SQLite's snapshot starts with the first read.
    c.query_one::<i64>("SELECT count(*) FROM schema_migrations", params![])?;
    Ok(())
}

/// Changes when another connection commits to the database (SQLite), fixed within a read
/// transaction. Always 0 on PostgreSQL, whose snapshot is all this needs.
fn data_version(c: &mut dyn Conn) -> StoreResult<i64> {
    match c.dialect() {
        Dialect::Sqlite => c.query_one("PRAGMA data_version", params![]),
        Dialect::Postgres => Ok(0),
    }
}

/// Sets each identity sequence of the target past the copied ids, and past the ids SQLite had
/// handed out before (AUTOINCREMENT tables never give an id twice, even once its row is deleted:
/// event ids are export cursors, and webhook notice ids are made of them). Returns each table's
/// next id.
fn reset_sequences(
    src: &mut dyn Conn,
    dst: &mut dyn Conn,
) -> StoreResult<Vec<(&'static str, i64)>> {
    let mut handed_out: BTreeMap<String, i64> = BTreeMap::new();
    if src.dialect() == Dialect::Sqlite {
        for r in src.query("SELECT name, seq FROM sqlite_sequence", params![])? {
            handed_out.insert(r.get(0)?, r.get::<Option<i64>>(1)?.unwrap_or(0));
        }
    }
    let mut next = Vec::new();
    for t in TABLES.iter().filter(|t| t.identity) {
        let floor = handed_out.get(t.name).copied().unwrap_or(0);
        let id: i64 = match dst.dialect() {
            // Set as if the ids had been handed out by the sequence (its last value read as
            // "handed out so far" bounds readers paging by id: store/queries/paging.rs).
            Dialect::Postgres => dst.query_one(
                &format!(
                    "SELECT CASE WHEN h > 0
                                 THEN setval(pg_get_serial_sequence(?1, 'id'), h) + s.seqincrement
                                 ELSE setval(pg_get_serial_sequence(?1, 'id'), 1, false) END
                     FROM (SELECT greatest(coalesce(max(id), 0), ?2) AS h FROM {}) handed_out,
                          pg_sequence s
                     WHERE s.seqrelid = CAST(pg_get_serial_sequence(?1, 'id') AS regclass)",
                    t.name
                ),
                params![t.name, floor],
            )?,
            Dialect::Sqlite => {
                // SQLite counts AUTOINCREMENT ids in sqlite_sequence (other tables take max + 1).
                if floor > 0 {
                    dst.execute(
                        "DELETE FROM sqlite_sequence WHERE name = ?1",
                        params![t.name],
                    )?;
                    dst.execute(
                        &format!(
                            "INSERT INTO sqlite_sequence (name, seq)
                             SELECT ?1, max(coalesce(max(id), 0), ?2) FROM {}",
                            t.name
                        ),
                        params![t.name, floor],
                    )?;
                }
                dst.query_one::<i64>(
                    &format!("SELECT coalesce(max(id), 0) FROM {}", t.name),
                    params![],
                )?
                .max(floor)
                    + 1
            }
        };
        next.push((t.name, id));
    }
    Ok(next)
}

/// Fails when the database has a table or column this list does not (a migration added one and
/// [`TABLES`] was not updated), or the other way round: nothing would be copied silently short.
fn check_schema(c: &mut dyn Conn, side: &str) -> StoreResult<()> {
    let (tables_sql, columns_sql) = match c.dialect() {
        Dialect::Sqlite => (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'",
            "SELECT name FROM pragma_table_info(?1)",
        ),
        Dialect::Postgres => (
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1",
        ),
    };
    let strings = |rows: Vec<Row>| -> StoreResult<BTreeSet<String>> {
        rows.iter().map(|r| r.get(0)).collect()
    };
    let mut found = strings(c.query(tables_sql, params![])?)?;
    found.remove("schema_migrations");
    // Transactions in progress on PostgreSQL: nothing to copy.
    found.remove("write_transactions");
    let known: BTreeSet<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
    if found != known {
        return Err(StoreError::Other(format!(
            "the {side} database's tables are not the ones this build copies: {} unknown, {} missing",
            list(found.difference(&known)),
            list(known.difference(&found))
        )));
    }
    for t in TABLES {
        let found = strings(c.query(columns_sql, params![t.name])?)?;
        let known: BTreeSet<String> = t.columns.iter().map(|c| c.to_string()).collect();
        if found != known {
            return Err(StoreError::Other(format!(
                "the {side} database's table {} has other columns than this build copies: {} unknown, {} missing",
                t.name,
                list(found.difference(&known)),
                list(known.difference(&found))
            )));
        }
    }
    Ok(())
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests;
