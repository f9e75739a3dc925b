//! The durability contract: a 200 means the event is in the journal, and so reaches the database
//! exactly once, whatever happens next.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::USER_AGENT;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WORKERS: usize = 32;
const MAX_PER_WORKER: usize = 2_000;

/// Loads the pixel from many connections, each request with its own user agent, until the server
/// stops answering or each worker has sent its share. Returns the user agents answered 200.
fn start_load(
    app: &TestApp,
    pixel: String,
    acked: Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    (0..WORKERS)
        .map(|w| {
            let client = app.client.clone();
            let pixel = pixel.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                let mut ok = Vec::new();
                for i in 0..MAX_PER_WORKER {
                    let ua = format!("load-{w}-{i}");
                    let Ok(r) = client.get(&pixel).header(USER_AGENT, &ua).send().await else {
                        break;
                    };
                    if r.status() != StatusCode::OK
                        || r.bytes().await.map(|b| b.len()).ok() != Some(43)
                    {
                        break;
                    }
                    ok.push(ua);
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                ok
            })
        })
        .collect()
}

async fn wait_for(acked: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < deadline, "load did not reach {n} answers");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn acknowledged(workers: Vec<tokio::task::JoinHandle<Vec<String>>>) -> Vec<String> {
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all
}

type Load = Vec<tokio::task::JoinHandle<Vec<String>>>;

/// A server (with `args`) under a pixel load on one message: the app, its admin token, the
/// campaign, the count of answers so far and the load's workers.
async fn loaded(args: &[&str]) -> (TestApp, String, i64, Arc<AtomicUsize>, Load) {
    let app = TestApp::spawn_with(args).await;
    let token = app.admin_token.clone();
    let campaign = app.create_campaign("load").await;
    let msg = app.add_message(campaign, "r", "<p>x</p>").await;
    let acked = Arc::new(AtomicUsize::new(0));
    let pixel = msg["pixel_url"].as_str().unwrap().to_string();
    let workers = start_load(&app, pixel, acked.clone());
    (app, token, campaign, acked, workers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_event() {
    let (app, token, campaign, acked, workers) = loaded(&[]).await;
    wait_for(&acked, 1_000).await;
    let dir = app.kill9();
    let answered = acknowledged(workers).await;
    assert!(answered.len() >= 1_000);

    // Started again, the server stores what the journal holds and the store worker had not.
    let app = TestApp::spawn_in(dir, &[], Some(token)).await;
    app.settled().await;
    assert_stored_once(&app.db_path(), &answered);
    let stats = app.stats(campaign).await;
    assert_eq!(
        stats["opens"]["total"].as_u64().unwrap() as usize,
        stored_events(&app.db_path()).len()
    );
    let (ok, out, err) = cli(&app.db_url(), &["check"], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("rollups match the event log"), "{out}");
}

/// Every answered user agent is stored exactly once.
fn assert_stored_once(db: &std::path::Path, answered: &[String]) {
    let mut stored: std::collections::HashMap<String, usize> = Default::default();
    for (ua, _) in stored_events(db) {
        *stored.entry(ua).or_default() += 1;
    }
    let wrong: Vec<_> = answered
        .iter()
        .filter(|ua| stored.get(*ua) != Some(&1))
        .map(|ua| (ua, stored.get(ua).copied().unwrap_or(0)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} acknowledged events not stored exactly once, e.g. {:?}",
        wrong.len(),
        answered.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// `kill -9` while the store worker is inside its transactions (a load keeps it busy, and the
/// kill comes as soon as the database holds events): the journal and the position the database
/// recorded with the last committed transaction give every answered event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_store_transaction_stores_every_answered_event_once() {
    let (app, token, _, acked, workers) = loaded(&["--max-batch", "50"]).await;
    wait_for(&acked, 500).await;
    let url = app.db_url();
    let deadline = Instant::now() + Duration::from_secs(60);
    while db_count(&url, "SELECT count(*) FROM events") == 0 {
        assert!(Instant::now() < deadline, "nothing was stored in 60 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let dir = app.kill9();
    let answered = acknowledged(workers).await;
    let app = TestApp::spawn_in(dir, &[], Some(token)).await;
    app.settled().await;
    assert_stored_once(&app.db_path(), &answered);
}

#[tokio::test]
async fn check_finds_rollups_that_disagree_with_the_log_and_repairs_them() {
    check_and_repair(false).await;
}

#[tokio::test]
async fn check_finds_rollups_that_disagree_with_the_log_and_repairs_them_on_postgres() {
    check_and_repair(true).await;
}

async fn check_and_repair(postgres: bool) {
    let app = TestApp::spawn_on_engine(postgres, "check", &[]).await;
    let campaign = app.create_campaign("Check").await;
    let want = seed(&app, campaign, 40).await;
    let (ok, out, _) = cli(&app.db_url(), &["check"], None);
    assert!(
        ok && out.contains("checked 1 campaigns: rollups match"),
        "{out}"
    );
    assert!(
        out.contains("checked 40 message history summaries: they match the event log"),
        "{out}"
    );

    // Damage: as if a transaction had been half applied by hand, and a message's history
    // summary had lost its events.
    db_execute(
        &app.db_url(),
        "UPDATE campaign_totals SET opens = opens + 5; DELETE FROM rollup_links WHERE link_no = 2;
         UPDATE messages SET history = '{\"o\":[],\"r\":[]}' WHERE id = 1;",
    );
    let (ok, out, _) = cli(&app.db_url(), &["check"], None);
    assert!(!ok, "a difference makes check fail");
    assert!(out.contains("campaign 1: rollups differ"), "{out}");
    assert!(out.contains("opens="), "{out}");
    assert!(
        out.contains("1 differ (run with --repair to rewrite"),
        "{out}"
    );
    assert!(
        out.contains("messages [1]: history summary differs"),
        "{out}"
    );
    assert!(
        out.contains("1 differ (run with --repair to clear"),
        "{out}"
    );
    let (ok, out, err) = cli(&app.db_url(), &["check", "--repair"], None);
    assert!(ok && out.contains("1 repaired"), "{out}{err}");
    assert!(out.contains("1 cleared"), "{out}{err}");
    let (ok, out, _) = cli(&app.db_url(), &["check"], None);
    assert!(ok && out.contains("rollups match"), "{out}");
    // The cleared summary is not compared; the next hit rebuilds it from the log.
    assert!(
        out.contains("checked 39 message history summaries: they match"),
        "{out}"
    );
    let stats = app.stats(campaign).await;
    assert_eq!(stats["opens"]["total"], want.opens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_the_queue_and_exits_cleanly() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("drain").await;
    let msg = app.add_message(campaign, "r", "<p>x</p>").await;
    let acked = Arc::new(AtomicUsize::new(0));
    let workers = start_load(
        &app,
        msg["pixel_url"].as_str().unwrap().into(),
        acked.clone(),
    );
    wait_for(&acked, 300).await;
    let (code, printed, dir) = app.terminate();
    let answered = acknowledged(workers).await;
    assert_eq!(code, Some(0), "exit status; printed {printed:?}");
    assert!(printed.iter().any(|l| l == "stopped"), "{printed:?}");

    let stored: HashSet<String> = stored_events(&dir.path().join("mb.db"))
        .into_iter()
        .map(|(ua, _)| ua)
        .collect();
    assert!(answered.iter().all(|ua| stored.contains(ua)));
    // Stopping does not invent events either: everything stored was asked for by the load.
    assert!(stored.iter().all(|ua| ua.starts_with("load-")));
}

async fn report(app: &TestApp, campaign: i64) -> serde_json::Value {
    let r = app
        .api_get(&format!("/api/campaigns/{campaign}/report"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// `mailbeacon purge` killed with -9 part-way, at several moments: the database stays intact, the
/// reports stay what they were (rollups are not touched by a purge), and each message is purged
/// whole or not at all; a purge run again then finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_purge_leaves_the_database_and_the_reports_intact() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("purge").await;
    seed(&app, campaign, 3000).await;
    let before = report(&app, campaign).await;
    let total: i64 = rusqlite::Connection::open(app.db_path())
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert!(total > 4000, "{total} events");
    // Each round: start a purge, watch the event count, and kill it the moment a first batch is
    // committed, while the next one is being written.
    let watch = rusqlite::Connection::open(app.db_path()).unwrap();
    let count = || -> i64 {
        watch
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap()
    };
    let mut left = total;
    for round in 1..=2 {
        let mut purge = std::process::Command::new(BIN)
            .args([
                "purge",
                "--older-than-days",
                "0",
                "--database",
                &app.db_url(),
            ])
            .env("MAILBEACON_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while purge.try_wait().unwrap().is_none() && count() == left {
            assert!(Instant::now() < deadline, "the purge deleted nothing");
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = purge.kill();
        purge.wait().unwrap();
        let conn = rusqlite::Connection::open(app.db_path()).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        // A message is purged whole, in one transaction with the note of what it had: none
        // that is marked purged still has events.
        let half_purged: i64 = conn
            .query_row(
                "SELECT count(*) FROM events e JOIN messages m ON m.id = e.message_id
                 WHERE m.purged_facts IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(half_purged, 0, "round {round}");
        let now = count();
        assert!(now < left, "round {round} deleted nothing");
        assert!(
            round > 1 || now > 0,
            "the first purge finished before it was killed"
        );
        left = now;
        println!("purge killed in round {round}: {left} of {total} events left");
        assert_eq!(report(&app, campaign).await, before, "round {round}");
    }
    let (ok, _, err) = cli(&app.db_url(), &["purge", "--older-than-days", "0"], None);
    assert!(ok, "{err}");
    let left: i64 = rusqlite::Connection::open(app.db_path())
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(report(&app, campaign).await, before);
}

/// A database at its size limit (`--max-database-mb`, which fails writes as a full disk does) and
/// a small journal cap: pixels are answered while the journal takes them, then 503 with
/// Retry-After (never a 200 for an event that was not journaled), `/readyz` says degraded and
/// why. Started again with room, the server stores every answered event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_and_a_full_journal_answer_503_and_recover_with_room() {
    let app = TestApp::spawn_with(&["--max-database-mb", "1", "--max-journal-mb", "1"]).await;
    let campaign = app.create_campaign("full").await;
    let rids: Vec<String> = (0..200).map(|i| format!("f{i}")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let messages = app.register_sent(campaign, &refs, "<p>x</p>", 2).await;
    let long_agent = "Mozilla/5.0 ".repeat(40);
    let mut answered = Vec::new();
    let mut refused = None;
    'fill: for round in 0..100 {
        for (i, m) in messages.iter().enumerate() {
            let ua = format!("{long_agent}{round}-{i}");
            let r = app
                .client
                .get(m["pixel_url"].as_str().unwrap())
                .header(USER_AGENT, &ua)
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::OK {
                answered.push(ua);
            } else {
                refused = Some(r);
                break 'fill;
            }
        }
    }
    let refused = refused.expect("the journal never filled up");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("--max-journal-mb") && reason.contains("full"),
        "{body}"
    );
    assert!(body["journal"]["pending_events"].as_u64().unwrap() > 0);
    println!("refused after {} events", answered.len());

    let token = app.admin_token.clone();
    let (code, _, dir) = app.terminate();
    assert_eq!(code, Some(0));
    let app = TestApp::spawn_in(dir, &["--max-database-mb", "50"], Some(token)).await;
    wait_until_ready(&app).await;
    app.settled().await;
    assert_stored_once(&app.db_path(), &answered);
    // The restarted server listens on another port.
    let path = messages[0]["pixel_url"]
        .as_str()
        .unwrap()
        .split("/o/")
        .nth(1);
    let r = app
        .client
        .get(app.url(&format!("/o/{}", path.unwrap())))
        .header(USER_AGENT, CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// `--journal-dir off` is refused with a clear message: there is no write path without it.
#[test]
fn the_journal_cannot_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("mb.db").display());
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .args(["--journal-dir", "off"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the journal cannot be turned off"), "{err}");
}

/// A full database with the journal's default cap: every pixel is answered 200 and what the
/// database cannot take waits in the journal; `/readyz` says degraded. Stopped and started again
/// with room, the server stores the journal: every answered event is stored, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_keeps_events_in_the_journal_and_stores_each_once_later() {
    let app = TestApp::spawn_with(&["--max-database-mb", "1"]).await;
    let campaign = app.create_campaign("spool").await;
    let rids: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let messages = app.register_sent(campaign, &refs, "<p>x</p>", 2).await;
    let long_agent = "Mozilla/5.0 ".repeat(40);
    let mut answered = Vec::new();
    for n in 0..2_500 {
        let ua = format!("{long_agent}{n}");
        let m = &messages[n % messages.len()];
        let r = app
            .client
            .get(m["pixel_url"].as_str().unwrap())
            .header(USER_AGENT, &ua)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "request {n}");
        answered.push(ua);
    }
    let stored_before = stored_events(&app.db_path()).len();
    assert!(stored_before < 2_000, "the database never filled up");
    // Degraded once the store worker has met the full database (on a busy machine it may not
    // have tried yet when the last answer came).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        let status = ready.status();
        let body: serde_json::Value = ready.json().await.unwrap();
        let reason = body["reason"].as_str().unwrap_or_default();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                reason.contains("journal") && reason.contains("full"),
                "{body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "still ready after 60 s: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("full after {stored_before} events, the rest in the journal");
    // Reports say how many answered events they do not hold yet.
    let r = app
        .client
        .get(app.url(&format!("/api/campaigns/{campaign}/report")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pending: usize = r.headers()["pending-events"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(pending > 0);
    assert!(pending + stored_events(&app.db_path()).len() >= answered.len());

    let token = app.admin_token.clone();
    let (code, _, dir) = app.terminate();
    assert_eq!(code, Some(0));
    let app = TestApp::spawn_in(dir, &["--max-database-mb", "50"], Some(token)).await;
    assert!(
        app.stdout
            .iter()
            .any(|l| l.contains("from an earlier run are stored now")),
        "{:?}",
        app.stdout
    );
    wait_until_ready(&app).await;
    app.settled().await;
    assert_eq!(stored_events(&app.db_path()).len(), answered.len());
    assert_stored_once(&app.db_path(), &answered);
    let stats = app.stats(campaign).await;
    assert_eq!(stats["opens"]["total"], 2_500, "{stats}");
    assert_eq!(stats["opens"]["unique"], 200, "{stats}");
}
