//! Webhooks end to end: a real HTTP receiver on 127.0.0.1 that fails a share of requests and
//! answers slowly at times checks every signature with the Standard Webhooks reference library
//! (`standardwebhooks`), and the tests check that every stored event arrived.

use crate::helpers::*;
use crate::webhook_receiver::*;
use axum::http::StatusCode;
use reqwest::header::USER_AGENT;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flaky_slow_receiver_gets_every_event_signed_and_the_pixel_does_not_wait() {
    a_flaky_slow_receiver_gets_every_event_signed_and_the_pixel_does_not_wait_on(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flaky_slow_receiver_gets_every_event_signed_and_the_pixel_does_not_wait_on_postgres() {
    a_flaky_slow_receiver_gets_every_event_signed_and_the_pixel_does_not_wait_on(true).await;
}

async fn a_flaky_slow_receiver_gets_every_event_signed_and_the_pixel_does_not_wait_on(
    postgres: bool,
) {
    // A fifth of requests fail; now and then one takes 1.5 s, or 3 s (past the 2 s timeout:
    // recorded by the receiver but failed for mailbeacon, so it is sent again).
    let policy: Policy = Arc::new(|_path: &str, n: usize| match n {
        n if n % 5 == 1 => Answer::Fail,
        n if n % 200 == 7 => Answer::Slow(Duration::from_millis(1500)),
        n if n % 301 == 11 => Answer::Slow(Duration::from_secs(3)),
        _ => Answer::Ok,
    });
    let receiver = Receiver::start(policy).await;
    let app = TestApp::spawn_on_engine(
        postgres,
        "flaky",
        &[
            "--webhook-allow-private",
            "--webhook-retry-base",
            "0.05",
            "--webhook-timeout",
            "2",
        ],
    )
    .await;
    let campaign = app.create_campaign("webhooks").await;
    let before = pixel_latencies(&app, campaign, 200, "before").await;
    // Endpoints get what is stored after they are registered: wait until every answered event is.
    app.settled().await;
    let earlier = stored_notice_ids(&app).await;

    let single = add_webhook(
        &app,
        json!({"url": format!("{}/single", receiver.url), "rate_limit": 10000}),
    )
    .await;
    let batched = add_webhook(
        &app,
        json!({"url": format!("{}/batch", receiver.url), "batch_size": 50, "kinds": ["open", "click"]}),
    )
    .await;
    let seeded = seed(&app, campaign, 2000).await;
    // Measured while the receivers are still being sent the seed's notices.
    let during = pixel_latencies(&app, campaign, 200, "during").await;

    // The store worker trails the answers: every answered event, once stored.
    app.settled().await;
    let want: HashSet<String> = stored_notice_ids(&app)
        .await
        .difference(&earlier)
        .cloned()
        .collect();
    assert!(want.len() >= 2_800, "{} events", want.len());
    assert_eq!(
        want.len() as i64,
        seeded.opens + seeded.clicks + 200,
        "seeded events and the second latency probe"
    );
    receiver
        .wait_for("single", &want, Duration::from_secs(180))
        .await;
    receiver
        .wait_for("batch", &want, Duration::from_secs(60))
        .await;

    let sample = {
        let r = receiver.received.lock().unwrap();
        assert_eq!(r.bad_signatures, 0, "every request verifies");
        assert!(r.failed > 100, "the receiver failed {} requests", r.failed);
        for path in ["single", "batch"] {
            let got: HashSet<String> = r.ids[path].keys().cloned().collect();
            assert_eq!(got, want, "{path}: exactly the stored events");
        }
        let repeats: usize = r.ids["single"].values().map(|n| n - 1).sum();
        println!(
            "webhooks: {} events, {} requests, {} failed by the receiver, {} notices received twice or more (timeouts)",
            want.len(),
            r.requests,
            r.failed,
            repeats
        );
        r.notices["single"].values().next().unwrap().clone()
    };
    assert!(matches!(
        sample["type"].as_str(),
        Some("email.opened" | "email.clicked")
    ));
    for field in [
        "class",
        "reasons",
        "campaign_id",
        "recipient_id",
        "received_at",
    ] {
        assert!(
            sample["data"].get(field).is_some(),
            "data.{field}: {sample}"
        );
    }
    // The same event as the API gives it, to the microsecond.
    let id: i64 = sample["id"].as_str().unwrap()["evt_".len()..]
        .parse()
        .unwrap();
    let page: Value = app
        .api_get(&format!("/api/events?after={}&limit=1", id - 1))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"][0]["id"], id);
    assert_eq!(
        sample["data"]["received_at"], page["events"][0]["received_at"],
        "{sample}"
    );

    println!(
        "pixel latency, 200 sequential loads: before webhooks p50 {:?} p99 {:?} max {:?}; while delivering p50 {:?} p99 {:?} max {:?}",
        pct(&before, 0.5),
        pct(&before, 0.99),
        before.last().unwrap(),
        pct(&during, 0.5),
        pct(&during, 0.99),
        during.last().unwrap()
    );
    // The receiver holds some requests for 1.5 and 3 s; no pixel waits for that.
    assert!(
        *during.last().unwrap() < Duration::from_millis(1000),
        "a pixel took {:?} while webhooks were delivered",
        during.last().unwrap()
    );

    // Status: everything delivered (a notice the receiver took but answered too late for is
    // still retried for a moment), nothing dead, latency known.
    for hook in [&single, &batched] {
        let id = hook["id"].as_i64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            let status = webhook_status(&app, id).await;
            if status["pending"] == 0 {
                break status;
            }
            assert!(Instant::now() < deadline, "{status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(status["dead"], 0, "{status}");
        assert!(status["delivered"].as_i64().unwrap() >= want.len() as i64);
        assert!(status["latency_ms_p50"].is_i64(), "{status}");
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mailbeacon_webhook_requests_total{endpoint=\"1\",outcome=\"failure\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("mailbeacon_webhook_notices_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notices_not_delivered_at_a_kill_9_are_delivered_after_the_restart() {
    // Every request takes 100 ms: delivery is still under way when the process is killed.
    let receiver = Receiver::start(Arc::new(|_: &str, _| {
        Answer::Slow(Duration::from_millis(100))
    }))
    .await;
    let flags = [
        "--webhook-allow-private",
        "--webhook-timeout",
        "1",
        "--webhook-retry-base",
        "0.05",
    ];
    let app = TestApp::spawn_with(&flags).await;
    let token = app.admin_token.clone();
    let campaign = app.create_campaign("restart").await;
    add_webhook(
        &app,
        json!({"url": format!("{}/hook", receiver.url), "rate_limit": 50}),
    )
    .await;
    seed(&app, campaign, 300).await;
    app.settled().await;
    let want = stored_notice_ids(&app).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.ids("hook").len() < 20 {
        assert!(Instant::now() < deadline, "delivery did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = app.kill9();
    let before_restart = receiver.ids("hook").len();
    assert!(
        before_restart < want.len(),
        "all {before_restart} delivered before the kill"
    );

    let app = TestApp::spawn_in(dir, &flags, Some(token)).await;
    receiver
        .wait_for("hook", &want, Duration::from_secs(60))
        .await;
    assert_eq!(receiver.ids("hook"), want);
    println!(
        "kill -9 after {before_restart} of {} notices; the rest arrived after the restart",
        want.len()
    );
    let status = webhook_status(&app, 1).await;
    assert_eq!(status["dead"], 0);
    // The rollups agree with the event log after the crash.
    let (ok, out, err) = cli(&app.db_url(), &["check"], None);
    assert!(ok, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn triggers_filters_opt_outs_erasures_and_dead_letters() {
    triggers_filters_opt_outs_erasures_and_dead_letters_on(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn triggers_filters_opt_outs_erasures_and_dead_letters_on_postgres() {
    triggers_filters_opt_outs_erasures_and_dead_letters_on(true).await;
}

async fn triggers_filters_opt_outs_erasures_and_dead_letters_on(postgres: bool) {
    let receiver = Receiver::start(Arc::new(|path: &str, _| {
        if path == "broken" {
            Answer::Fail
        } else {
            Answer::Ok
        }
    }))
    .await;
    let app = TestApp::spawn_on_engine(
        postgres,
        "triggers",
        &[
            "--webhook-allow-private",
            "--webhook-retry-base",
            "0.05",
            "--webhook-max-attempts",
            "3",
        ],
    )
    .await;
    let campaign = app.create_campaign("triggers").await;
    let url = |p: &str| format!("{}/{p}", receiver.url);
    add_webhook(
        &app,
        json!({"url": url("first-open"), "kinds": ["open"], "first_only": true}),
    )
    .await;
    add_webhook(
        &app,
        json!({"url": url("first-click"), "kinds": ["click"], "first_only": true}),
    )
    .await;
    add_webhook(
        &app,
        json!({"url": url("readers"), "kinds": ["open"], "classes": ["readers"]}),
    )
    .await;
    add_webhook(
        &app,
        json!({"url": url("privacy"), "kinds": ["opt_out", "erasure"]}),
    )
    .await;
    let broken = add_webhook(
        &app,
        json!({"url": url("broken"), "kinds": ["open"], "campaign_id": campaign}),
    )
    .await;

    let html = "<p><a href=\"https://shop.example.com/a\">A</a> <a href=\"https://shop.example.com/b\">B</a></p>";
    let messages = app
        .register_sent(
            campaign,
            &["reader", "scanned", "quiet", "imagesoff"],
            html,
            2,
        )
        .await;
    let get = |url: &str, ua: &'static str| {
        let r = app.client.get(url).header(USER_AGENT, ua).send();
        async move {
            let s = r.await.unwrap().status();
            assert!(s == StatusCode::OK || s == StatusCode::FOUND, "{s}");
        }
    };
    let reader_pixel = messages[0]["pixel_url"].as_str().unwrap();
    let reader_links = click_urls(messages[0]["html"].as_str().unwrap());
    // Apple's prefetch first (machine), then the reader opens twice and clicks twice.
    get(reader_pixel, APPLE_MPP).await;
    get(reader_pixel, CHROME).await;
    get(reader_pixel, CHROME).await;
    get(&reader_links[0], CHROME).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    get(&reader_links[1], CHROME).await;
    // A scanner follows both links of the second message at once: its first click looked like a
    // reader's when it arrived, and must not reach the first-click endpoint.
    let scanned_links = click_urls(messages[1]["html"].as_str().unwrap());
    get(&scanned_links[0], CHROME).await;
    get(&scanned_links[1], CHROME).await;
    // A reader with images off clicks, then loads the images later: the click is the first open.
    let imagesoff_links = click_urls(messages[3]["html"].as_str().unwrap());
    get(&imagesoff_links[0], CHROME).await;
    get(messages[3]["pixel_url"].as_str().unwrap(), CHROME).await;

    let events = app.events(campaign).await;
    let id_of = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        events
            .iter()
            .filter(|e| pred(e))
            .map(|e| format!("evt_{}", e["id"]))
            .collect()
    };
    let reader_opens = id_of(&|e| e["recipient_id"] == "reader" && e["kind"] == "open");
    let reader_clicks = id_of(&|e| e["recipient_id"] == "reader" && e["kind"] == "click");
    assert_eq!(reader_opens.len(), 3);
    assert_eq!(reader_clicks.len(), 2);
    let imagesoff_click = id_of(&|e| e["recipient_id"] == "imagesoff" && e["kind"] == "click");
    let imagesoff_open = id_of(&|e| e["recipient_id"] == "imagesoff" && e["kind"] == "open");
    let implied = imagesoff_click[0].replace("evt_", "imp_");
    let want_first_open: HashSet<String> = [reader_opens[1].clone(), implied.clone()].into();
    let want_first_click: HashSet<String> =
        [reader_clicks[0].clone(), imagesoff_click[0].clone()].into();
    receiver
        .wait_for("first-open", &want_first_open, Duration::from_secs(20))
        .await;
    receiver
        .wait_for("first-click", &want_first_click, Duration::from_secs(20))
        .await;
    let want_readers: HashSet<String> = reader_opens[1..]
        .iter()
        .chain(&imagesoff_open)
        .cloned()
        .collect();
    receiver
        .wait_for("readers", &want_readers, Duration::from_secs(20))
        .await;
    // Held clicks are sent 2.5 s after they arrive: once no endpoint has a notice waiting, a
    // withdrawn one would have arrived if it had not been withdrawn.
    until_nothing_is_pending(&app).await;
    assert_eq!(receiver.ids("first-open"), want_first_open);
    assert_eq!(
        receiver.ids("first-click"),
        want_first_click,
        "the scanner's burst is not a first click"
    );
    assert_eq!(receiver.ids("readers"), want_readers, "no Apple prefetch");
    let first = receiver.notice("first-open", &reader_opens[1]).unwrap();
    assert_eq!(first["type"], "email.opened");
    assert_eq!(first["data"]["first_for_reader"], true);
    assert_eq!(first["data"]["recipient_id"], "reader");
    assert_eq!(first["data"]["implied_by_click"], false);
    let by_click = receiver.notice("first-open", &implied).unwrap();
    assert_eq!(by_click["type"], "email.opened");
    assert_eq!(by_click["data"]["kind"], "click");
    assert_eq!(by_click["data"]["implied_by_click"], true);
    assert_eq!(by_click["data"]["recipient_id"], "imagesoff");

    // The broken endpoint: 3 attempts, then dead letters; replay sends them again.
    let broken_id = broken["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let status = webhook_status(&app, broken_id).await;
        if status["pending"] == 0 && status["dead"].as_i64().unwrap() > 0 {
            break status;
        }
        assert!(Instant::now() < deadline, "no dead letters: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        dead["last_error"].as_str().unwrap().contains("500"),
        "{dead}"
    );
    assert_eq!(dead["consecutive_failures"].as_i64().unwrap() % 3, 0);
    let r = app
        .api_get(&format!("/api/webhooks/{broken_id}/deliveries?state=dead"))
        .await;
    let letters: Value = r.json().await.unwrap();
    let letters = letters["deliveries"].as_array().unwrap().clone();
    assert_eq!(letters.len() as i64, dead["dead"].as_i64().unwrap());
    assert!(
        letters
            .iter()
            .all(|d| d["attempts"] == 3 && d["last_status"] == 500)
    );
    receiver.set_policy(Arc::new(|_: &str, _| Answer::Ok));
    let r = app
        .api_post(&format!("/api/webhooks/{broken_id}/replay"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let replayed: Value = r.json().await.unwrap();
    assert_eq!(replayed["replayed"], dead["dead"]);
    let want: HashSet<String> = letters
        .iter()
        .map(|d| d["notice_id"].as_str().unwrap().to_string())
        .collect();
    receiver
        .wait_for("broken", &want, Duration::from_secs(20))
        .await;

    // Opt-out and erasure go downstream too.
    let r = app
        .api_post("/api/recipients/quiet/opt-out", &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .delete(app.url("/api/recipients/reader"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let erased: Value = r.json().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.notices("privacy").len() < 2 {
        assert!(Instant::now() < deadline, "privacy notices did not arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let privacy = receiver.notices("privacy");
    let opted = privacy
        .iter()
        .find(|n| n["type"] == "recipient.opted_out")
        .unwrap();
    assert_eq!(opted["data"]["recipient_id"], "quiet");
    let erasure = privacy
        .iter()
        .find(|n| n["type"] == "recipient.erased")
        .unwrap();
    assert_eq!(erasure["data"]["recipient_id"], "reader");
    assert_eq!(
        erasure["data"]["removed"]["events"],
        erased["removed"]["events"]
    );

    // The dashboard's front page shows admins the same status (once the last delivery is noted).
    let deadline = Instant::now() + Duration::from_secs(20);
    while webhook_status(&app, broken_id).await["pending"] != 0 {
        assert!(Instant::now() < deadline, "replayed notices still pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = app
        .client
        .post(app.url("/login"))
        .header("origin", &app.base)
        .form(&[("secret", app.admin_token.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = app
        .client
        .get(app.url("/"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let status = webhook_status(&app, broken_id).await;
    assert!(
        page.contains(&format!("data-webhook=\"{broken_id}\"")),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "data-metric=\"delivered\" data-value=\"{}\"",
            status["delivered"]
        )),
        "{page}"
    );

    // Each change is in the audit log.
    let audit: Value = app.api_get("/api/audit").await.json().await.unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"create_webhook") && actions.contains(&"replay_webhook"));
    let r = app
        .client
        .delete(app.url(&format!("/api/webhooks/{broken_id}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.api_get(&format!("/api/webhooks/{broken_id}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
