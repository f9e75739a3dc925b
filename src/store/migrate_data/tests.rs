use super::*;
use crate::store::sqlite::SqliteStore;
use std::path::Path;
use std::sync::Mutex;

fn fresh_sqlite(path: &Path) -> rusqlite::Connection {
    drop(SqliteStore::open(path, false).unwrap());
    open_sqlite(path).unwrap()
}

/// More rows than a page in an integer-keyed table (events) and in a table keyed by four
/// columns, two of them text (rollup_dims), so paging is exercised both ways.
fn fill(c: &mut rusqlite::Connection) {
    c.execute_batch(
        "BEGIN;
         INSERT INTO campaigns (id, name, created_at) VALUES (1, 'A', '2026-11-01T00:00:00.000000Z'),
             (7, 'B', '2026-11-02T00:00:00.000000Z');
         INSERT INTO messages (id, campaign_id, recipient_id, tracking_id, sent_at, created_at)
             VALUES (1, 1, 'r1', -9223372036854775807, 't', 't'), (2, 7, 'r2', 9223372036854775807, 't', 't');
         INSERT INTO links VALUES (1, 0, 'https://a.example/'), (1, 1, 'https://b.example/'),
             (2, 1, 'https://c.example/');
         INSERT INTO signing_keys VALUES (1, zeroblob(32), 't');
         INSERT INTO opt_outs VALUES ('r3', 't', 'api');
         INSERT INTO sessions VALUES (x'0102', NULL, 'admin', 't', 't');
         COMMIT;",
    )
    .unwrap();
    let tx = c.transaction().unwrap();
    for i in 1..=12_345i64 {
        tx.execute(
            "INSERT INTO events (id, received_at, kind, campaign_id, message_id, user_agent, method)
             VALUES (?1, 't', 'open', ?2, ?3, ?4, 'GET')",
            rusqlite::params![i * 2, if i % 3 == 0 { 7 } else { 1 }, if i % 3 == 0 { 2 } else { 1 }, format!("ua ✓ {i}")],
        )
        .unwrap();
    }
    for i in 0..6_001i64 {
        tx.execute(
            "INSERT INTO rollup_dims (campaign_id, dim, value, kind, events) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![i % 2, ["client", "os"][(i % 5 % 2) as usize], format!("v{}", i / 4), ["open", "click"][(i / 2 % 2) as usize], i],
        )
        .unwrap();
    }
    // Deleted events: AUTOINCREMENT does not hand their ids out again.
    tx.execute("DELETE FROM events WHERE id > 24000", [])
        .unwrap();
    tx.commit().unwrap();
}

fn rows(c: &mut dyn Conn, table: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {table}"), params![])
        .unwrap()
}

#[test]
fn the_table_list_is_the_sqlite_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = fresh_sqlite(&dir.path().join("s.db"));
    check_schema(&mut c, "source").unwrap();
    c.execute_batch("ALTER TABLE events ADD COLUMN mood TEXT")
        .unwrap();
    let e = check_schema(&mut c, "source").unwrap_err().to_string();
    assert!(
        e.contains("table events has other columns") && e.contains("mood unknown"),
        "{e}"
    );
}

#[test]
fn copies_every_row_and_verifies_between_sqlite_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = fresh_sqlite(&dir.path().join("s.db"));
    fill(&mut src);
    let mut dst = fresh_sqlite(&dir.path().join("d.db"));
    let seen = Mutex::new(Vec::new());
    let outcome = run(&mut src, &mut dst, &|what, done, total| {
        seen.lock().unwrap().push((what.to_string(), done, total))
    })
    .unwrap();
    let Outcome::Copied(report) = outcome else {
        panic!("refused")
    };
    assert!(report.committed && !report.source_changed, "{report:?}");
    assert_eq!(report.differences(), Vec::<String>::new());
    assert_eq!(report.rows, 2 + 2 + 3 + 12_000 + 1 + 1 + 1 + 6_001);
    assert!(
        report.next_ids.contains(&("events", 24_691)),
        "{:?}",
        report.next_ids
    );
    let events = report.tables.iter().find(|t| t.table == "events").unwrap();
    assert_eq!(
        (events.target_rows, events.target_max_id),
        (12_000, Some(24_000))
    );
    assert_eq!(
        report.campaigns,
        vec![
            CampaignEvents {
                campaign_id: 1,
                source_events: 8_000,
                target_events: 8_000
            },
            CampaignEvents {
                campaign_id: 7,
                source_events: 4_000,
                target_events: 4_000
            },
        ]
    );
    assert_eq!(rows(&mut dst, "rollup_dims"), 6_001);
    let seen = seen.into_inner().unwrap();
    assert!(seen.iter().any(|(w, ..)| w == "copying events"));
    assert!(seen.iter().any(|(w, ..)| w == "verifying rollup_dims"));
    assert!(
        seen.iter()
            .all(|&(_, done, total)| done <= total && total == report.rows)
    );
    // Ids go on after the copied ones, and after the deleted ones.
    dst.execute_batch(
        "INSERT INTO events (received_at, kind, campaign_id, message_id, method) VALUES ('t', 'open', 1, 1, 'GET')",
    )
    .unwrap();
    assert_eq!(dst.last_insert_rowid(), 24_691);

    // A second run finds the target holding data, and copies nothing.
    let Outcome::Refused(held) = run(&mut src, &mut dst, &|_, _, _| {}).unwrap() else {
        panic!("copied into a database with data")
    };
    assert!(held.contains(&("events", 12_001)), "{held:?}");
}

#[test]
fn copies_into_postgres_and_sets_the_sequences_past_every_id_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = fresh_sqlite(&dir.path().join("s.db"));
    fill(&mut src);
    let url = super::super::postgres::test_schema("migrate").unwrap_or_else(|e| panic!("{e}"));
    let (store, _) = super::super::postgres::PostgresStore::open(&url).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    use super::super::queries::Engine;
    let (report, next) = rt
        .block_on(store.engine.write(move |dst| {
            let Outcome::Copied(report) = run(&mut src, dst, &|_, _, _| {})? else {
                panic!("refused")
            };
            let next: i64 = dst.query_one(
                "INSERT INTO events (received_at, kind, campaign_id, message_id, method)
                 VALUES ('t', 'open', 1, 1, 'GET') RETURNING id",
                params![],
            )?;
            Ok((report, next))
        }))
        .unwrap();
    assert!(report.committed, "{report:?}");
    assert_eq!(report.differences(), Vec::<String>::new());
    assert_eq!(report.rows, 18_011);
    // PostgreSQL hands event ids out a block at a time: the next block starts past the last id.
    let next_event = 24_690 + crate::store::queries::EVENT_ID_BLOCK;
    assert!(
        report.next_ids.contains(&("events", next_event)),
        "{:?}",
        report.next_ids
    );
    assert!(
        report.next_ids.contains(&("campaigns", 8)),
        "{:?}",
        report.next_ids
    );
    assert_eq!(next, next_event);
    drop(rt);
    std::thread::spawn(move || drop(store)).join().unwrap();
}

#[test]
fn a_write_to_the_source_during_the_copy_leaves_the_target_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut src = fresh_sqlite(&path);
    fill(&mut src);
    let mut dst = fresh_sqlite(&dir.path().join("d.db"));
    let other = Mutex::new(open_sqlite(&path).unwrap());
    let outcome = run(&mut src, &mut dst, &|what, _, _| {
        if what == "copying links" {
            other
                .lock()
                .unwrap()
                .execute(
                    "INSERT OR IGNORE INTO opt_outs VALUES ('late', 't', 'api')",
                    [],
                )
                .unwrap();
        }
    })
    .unwrap();
    let Outcome::Copied(report) = outcome else {
        panic!("refused")
    };
    assert!(report.source_changed && !report.committed, "{report:?}");
    assert_eq!(
        report.differences(),
        Vec::<String>::new(),
        "the snapshot was copied whole"
    );
    for t in TABLES {
        assert_eq!(rows(&mut dst, t.name), 0, "{} was rolled back", t.name);
    }
}
