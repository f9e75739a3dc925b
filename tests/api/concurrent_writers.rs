//! PostgreSQL write transactions of several processes run side by side: one held open does not
//! stop the others, and readers paging with `?after=` never pass an event committed late.

use crate::helpers::*;
use mailbeacon::store::postgres::transactions::{REGISTER, SHARED, UNREGISTER};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// GET with the admin token, at once (no waiting for the journal: the point is to read while
/// others write).
async fn get_now(app: &TestApp, path: &str) -> Value {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// Every id of a paged list, read page by page from `after=0`.
async fn page_all(app: &TestApp, path: &str, key: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        let after = ids.last().copied().unwrap_or(0);
        let page = get_now(app, &format!("{path}after={after}&limit=500")).await;
        let items = page[key].as_array().unwrap();
        if items.is_empty() {
            return ids;
        }
        ids.extend(items.iter().map(|e| e["id"].as_i64().unwrap()));
    }
}

async fn load_pixel(app: &TestApp, url: &str, ua: &str) {
    assert_eq!(app.hit(url, ua).await, StatusCode::OK, "{url}");
}

/// Another process's store transaction on one message, held open (two seconds at least, and
/// until the test has looked): the server stores other messages' events meanwhile, and a reader
/// paging by id sees none past the open transaction's own event until it commits, then all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_held_open_neither_stops_other_messages_nor_lets_paging_skip() {
    let url = postgres_schema("heldopen");
    let app = TestApp::spawn_on(tempfile::tempdir().unwrap(), &url, &[], None).await;
    let campaign = app.create_campaign("Held open").await;
    let messages = app
        .register_sent(
            campaign,
            &["held@example.com", "free@example.com"],
            "<p>x</p>",
            2,
        )
        .await;
    let held: i64 = db_count(
        &url,
        "SELECT id FROM messages WHERE recipient_id = 'held@example.com'",
    );

    // What a store transaction of another mailbeacon process takes: its registration, the
    // shared lock, the message's row, an event id.
    let (opened_tx, opened) = mpsc::channel::<i64>();
    let (release, released) = mpsc::channel::<()>();
    let holder_url = url.clone();
    let holder = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&holder_url, postgres::NoTls).unwrap();
        c.batch_execute(&format!("{REGISTER} BEGIN; {SHARED}"))
            .unwrap();
        c.execute(
            "SELECT id FROM messages WHERE id = $1 FOR NO KEY UPDATE",
            &[&held],
        )
        .unwrap();
        let id: i64 = c
            .query_one(
                "INSERT INTO events (received_at, kind, campaign_id, message_id, method,
                                     user_agent)
                 VALUES ($1, 'open', $2, $3, 'GET', 'the other process') RETURNING id",
                &[&chrono::Utc::now().to_rfc3339(), &campaign, &held],
            )
            .unwrap()
            .get(0);
        let since = Instant::now();
        opened_tx.send(id).unwrap();
        released.recv().unwrap();
        std::thread::sleep(Duration::from_secs(2).saturating_sub(since.elapsed()));
        c.batch_execute(&format!("{UNREGISTER}; COMMIT")).unwrap();
    });
    let other = tokio::task::spawn_blocking(move || opened.recv().unwrap())
        .await
        .unwrap();

    let free = messages[1]["pixel_url"].as_str().unwrap();
    for n in 0..5 {
        load_pixel(&app, free, &format!("{CHROME} free-{n}")).await;
    }
    // Stored and in the report while the other transaction is open.
    app.settled().await;
    let stats = get_now(&app, &format!("/api/campaigns/{campaign}/stats")).await;
    assert_eq!(stats["opens"]["total"], 5, "{stats}");
    // Their ids are above the open transaction's event: a reader stops below it for now.
    let path = format!("/api/events?campaign={campaign}&");
    assert_eq!(page_all(&app, &path, "events").await, Vec::<i64>::new());

    // The held message's own event waits for the row (answered all the same).
    let pixel = messages[0]["pixel_url"].as_str().unwrap();
    load_pixel(&app, pixel, &format!("{CHROME} held")).await;
    let ready = get_now(&app, "/readyz").await;
    assert_eq!(ready["journal"]["pending_events"], 1, "{ready}");

    release.send(()).unwrap();
    tokio::task::spawn_blocking(move || holder.join().unwrap())
        .await
        .unwrap();
    app.settled().await;
    let ids = page_all(&app, &path, "events").await;
    assert_eq!(ids.len(), 7, "{ids:?}");
    assert_eq!(ids[0], other, "the late commit is not skipped: {ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let events = app.events(campaign).await;
    let agents: Vec<&str> = events
        .iter()
        .map(|e| e["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents[0], "the other process");
    assert!(agents[6].ends_with(" held"), "{agents:?}");
}

/// Another process's transaction that has registered but taken no id yet (a webhook delivery, a
/// maintenance run) holds back nothing committed before it: ids are handed out in blocks, and
/// every id of the last block given out is already someone else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_transaction_hides_nothing_committed_before_it() {
    let url = postgres_schema("registered");
    let app = TestApp::spawn_on(tempfile::tempdir().unwrap(), &url, &[], None).await;
    let campaign = app.create_campaign("Registered").await;
    let messages = app
        .register_sent(campaign, &["a@example.com"], "<p>x</p>", 2)
        .await;
    let pixel = messages[0]["pixel_url"].as_str().unwrap();
    for n in 0..3 {
        load_pixel(&app, pixel, &format!("{CHROME} before-{n}")).await;
    }
    app.settled().await;

    // The synchronous client runs on a thread of its own, not on the test's runtime.
    let other_url = url.clone();
    let mut c = tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&other_url, postgres::NoTls).unwrap();
        c.batch_execute(&format!("{REGISTER} BEGIN; {SHARED}"))
            .unwrap();
        c
    })
    .await
    .unwrap();
    let path = format!("/api/events?campaign={campaign}&");
    let ids = page_all(&app, &path, "events").await;
    tokio::task::spawn_blocking(move || c.batch_execute(&format!("{UNREGISTER}; COMMIT")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids.len(), 3, "{ids:?}");
}

/// Two processes take a load on the same messages while a reader pages through the events and
/// an endpoint's webhook notices with `?after=` as they are written: every event and notice is
/// read once, in order, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_while_two_processes_write_reads_every_event_and_notice_once() {
    let url = postgres_schema("pagingtwo");
    let flags = ["--webhook-allow-private"];
    let a = TestApp::spawn_on(tempfile::tempdir().unwrap(), &url, &flags, None).await;
    let b = TestApp::spawn_on(
        tempfile::tempdir().unwrap(),
        &url,
        &flags,
        Some(a.admin_token.clone()),
    )
    .await;
    // Notices to a port nobody listens on: they stay in the outbox to be paged.
    let port = crate::ports::unused_port();
    let r = a
        .api_post(
            "/api/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/hook")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hook = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let campaign = a.create_campaign("Paging").await;
    let rids: Vec<String> = (0..100).map(|i| format!("page-{i}@example.com")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let messages = a.register_sent(campaign, &refs, "<p>x</p>", 2).await;
    let pixels: Vec<String> = messages
        .iter()
        .map(|m| m["pixel_url"].as_str().unwrap().to_string())
        .collect();

    let loading = Arc::new(AtomicBool::new(true));
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..8usize {
        let client = a.client.clone();
        let (base_a, base_b) = (a.base.clone(), b.base.clone());
        let pixels = pixels.clone();
        load.spawn(async move {
            for n in 0..250usize {
                let mut url = pixels[(worker * 7 + n) % pixels.len()].clone();
                if n % 2 == 1 {
                    url = url.replacen(&base_a, &base_b, 1);
                }
                let r = client
                    .get(&url)
                    .header(reqwest::header::USER_AGENT, CHROME)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            }
        });
    }
    // Readers follow the writes page by page, each from where it stopped, on both processes.
    let follow = |app: &TestApp, path: String, key: &'static str| {
        let (client, base, token) = (
            app.client.clone(),
            app.base.clone(),
            app.admin_token.clone(),
        );
        let loading = loading.clone();
        async move {
            let mut ids: Vec<i64> = Vec::new();
            let mut idle_after_load = 0;
            while idle_after_load < 3 {
                let after = ids.last().copied().unwrap_or(0);
                let page: Value = client
                    .get(format!("{base}{path}after={after}&limit=50"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let items = page[key].as_array().unwrap();
                if items.is_empty() {
                    if !loading.load(Ordering::Acquire) {
                        idle_after_load += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                ids.extend(items.iter().map(|e| e["id"].as_i64().unwrap()));
            }
            ids
        }
    };
    let events_reader = tokio::spawn(follow(
        &a,
        format!("/api/events?campaign={campaign}&"),
        "events",
    ));
    let notices_reader = tokio::spawn(follow(
        &b,
        format!("/api/webhooks/{hook}/deliveries?"),
        "deliveries",
    ));
    while let Some(r) = load.join_next().await {
        r.unwrap();
    }
    a.settled().await;
    b.settled().await;
    loading.store(false, Ordering::Release);
    let (events_seen, notices_seen) = (events_reader.await.unwrap(), notices_reader.await.unwrap());

    let all_events = page_all(&a, &format!("/api/events?campaign={campaign}&"), "events").await;
    let all_notices = page_all(
        &b,
        &format!("/api/webhooks/{hook}/deliveries?"),
        "deliveries",
    )
    .await;
    assert_eq!(all_events.len(), 8 * 250);
    assert!(!all_notices.is_empty());
    for (seen, all, what) in [
        (&events_seen, &all_events, "events"),
        (&notices_seen, &all_notices, "notices"),
    ] {
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{what} out of order");
        let (seen, all): (BTreeSet<i64>, BTreeSet<i64>) = (
            seen.iter().copied().collect(),
            all.iter().copied().collect(),
        );
        let skipped: Vec<&i64> = all.difference(&seen).collect();
        assert!(
            skipped.is_empty(),
            "{what} skipped while paging: {skipped:?}"
        );
        assert_eq!(seen.len(), all.len(), "{what}");
    }
}
