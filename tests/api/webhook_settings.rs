//! Webhook settings refused with the field named, an endpoint's rate limit, the README's example
//! receiver, and paging the event log while it is written.

use crate::helpers::*;
use crate::webhook_receiver::*;
use axum::http::StatusCode;
use reqwest::header::USER_AGENT;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn bad_webhook_settings_are_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("x").await;
    for (body, needle) in [
        (
            json!({"url": "http://127.0.0.1:9/x"}),
            "--webhook-allow-private",
        ),
        (
            json!({"url": "http://localhost/x"}),
            "--webhook-allow-private",
        ),
        (json!({"url": "ftp://example.com/"}), "https://"),
        (
            json!({"url": "https://example.com/", "kinds": ["opens"]}),
            "kinds: unknown kind 'opens'",
        ),
        (
            json!({"url": "https://example.com/", "classes": ["people"]}),
            "classes: unknown class 'people'",
        ),
        (
            json!({"url": "https://example.com/", "campaign_id": campaign + 100}),
            "campaign_id",
        ),
        (
            json!({"url": "https://example.com/", "batch_size": 0}),
            "batch_size",
        ),
        (
            json!({"url": "https://example.com/", "rate_limit": 0}),
            "rate_limit",
        ),
        (
            json!({"url": "https://example.com/", "secret": "hunter2"}),
            "secret: a webhook secret starts with whsec_",
        ),
    ] {
        let r = app.api_post("/api/webhooks", &body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(needle), "{body}: {text}");
    }
    let r = app
        .api_post(
            "/api/webhooks",
            &json!({"url": "https://example.com/", "colour": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.api_get("/api/webhooks/77").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A public receiver is accepted; the CLI lists it and refuses a private one.
    let r = app
        .api_post(
            "/api/webhooks",
            &json!({"url": "https://hooks.example.com/mb"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        created["kinds"],
        json!([
            "open",
            "click",
            "opt_out",
            "erasure",
            "campaign_deleted",
            "provider_drop",
            "conversion"
        ])
    );
    let (ok, out, _) = cli(&app.db_url(), &["webhooks", "list"], None);
    assert!(ok);
    assert!(out.contains("https://hooks.example.com/mb"), "{out}");
    let (ok, _, err) = cli(
        &app.db_url(),
        &["webhooks", "add", "--url", "http://10.0.0.5/hook"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("--webhook-allow-private"), "{err}");
    let (ok, out, _) = cli(
        &app.db_url(),
        &[
            "webhooks",
            "add",
            "--url",
            "https://crm.example.com/in",
            "--kinds",
            "click",
            "--first-only",
            "--json",
        ],
        None,
    );
    assert!(ok);
    let added: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(added["kinds"], json!(["click"]));
    assert_eq!(added["first_only"], true);
    let (ok, out, _) = cli(&app.db_url(), &["webhooks", "replay", "--all"], None);
    assert!(ok, "{out}");
    assert!(out.contains("0 dead letter(s)"), "{out}");
    let (ok, _, err) = cli(&app.db_url(), &["webhooks", "remove", "99"], None);
    assert!(!ok);
    assert!(err.contains("webhook 99 does not exist"), "{err}");
}

/// `GET /api/events?after=` while events are written: every page continues where the last
/// ended, and the pages together hold every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_the_event_log_while_it_is_written_skips_and_repeats_nothing() {
    paging_the_event_log_while_it_is_written_skips_and_repeats_nothing_on(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_the_event_log_while_it_is_written_skips_and_repeats_nothing_on_postgres() {
    paging_the_event_log_while_it_is_written_skips_and_repeats_nothing_on(true).await;
}

async fn paging_the_event_log_while_it_is_written_skips_and_repeats_nothing_on(postgres: bool) {
    let app = TestApp::spawn_on_engine(postgres, "paging", &[]).await;
    let campaign = app.create_campaign("sync").await;
    let rids: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let messages = app.register_sent(campaign, &refs, "<p>x</p>", 2).await;
    let pixels: Vec<String> = messages
        .iter()
        .map(|m| m["pixel_url"].as_str().unwrap().to_string())
        .collect();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let client = app.client.clone();
            let pixels = pixels.clone();
            tokio::spawn(async move {
                for round in 0..3 {
                    for p in pixels.iter().skip(w).step_by(8) {
                        let r = client
                            .get(p)
                            .header(USER_AGENT, format!("sync-{w}-{round}"))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), StatusCode::OK);
                    }
                }
            })
        })
        .collect();
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    let mut done_writing = false;
    loop {
        let r = app
            .api_get(&format!("/api/events?after={cursor}&limit=37"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.unwrap();
        let events = page["events"].as_array().unwrap();
        seen.extend(events.iter().map(|e| e["id"].as_i64().unwrap()));
        cursor = page["next_cursor"].as_str().unwrap().to_string();
        pages += 1;
        if events.len() < 37 {
            if done_writing {
                break;
            }
            done_writing = writers.iter().all(|w| w.is_finished());
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(seen.len(), 600, "every event once ({pages} pages)");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, no repeats");
    let all: Vec<i64> = app
        .events(campaign)
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, all);
}

/// The receiver the README shows is `examples/webhook_receiver.py`, and it works: it accepts
/// mailbeacon's signed notices and refuses a forged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_receiver_checks_signatures() {
    let root = env!("CARGO_MANIFEST_DIR");
    let example = std::fs::read_to_string(format!("{root}/examples/webhook_receiver.py")).unwrap();
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        readme.contains(example.trim_end()),
        "README.md shows examples/webhook_receiver.py as it is"
    );
    let port = crate::ports::unused_port();
    let mut python = std::process::Command::new("python3")
        .arg(format!("{root}/examples/webhook_receiver.py"))
        .env("MAILBEACON_WEBHOOK_SECRET", SECRET)
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the example receiver");
    let out = python.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the example receiver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let app = TestApp::spawn_with(&["--webhook-allow-private"]).await;
    let forged = app
        .client
        .post(format!("http://127.0.0.1:{port}/"))
        .header("webhook-id", "evt_1")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,AAAA")
        .body(r#"{"id":"evt_1","type":"email.opened","data":{}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    add_webhook(&app, json!({"url": format!("http://127.0.0.1:{port}/")})).await;
    let campaign = app.create_campaign("readme").await;
    let m = app
        .add_message(campaign, "alice@example.com", "<p>hi</p>")
        .await;
    let r = app
        .client
        .get(m["pixel_url"].as_str().unwrap())
        .header(USER_AGENT, CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let line = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the receiver printed the open");
    let _ = python.kill();
    let _ = python.wait();
    let (kind, data) = line.split_once(' ').unwrap();
    assert_eq!(kind, "email.opened");
    let data: Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["recipient_id"], "alice@example.com");
}

/// An endpoint's rate limit spaces its requests: 25 notices at 10 requests a second take at least
/// 2.4 s (a lower bound, so a busy machine cannot make this fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoints_rate_limit_spaces_its_requests() {
    let receiver = Receiver::start(Arc::new(|_: &str, _| Answer::Ok)).await;
    let app = TestApp::spawn_with(&["--webhook-allow-private"]).await;
    let campaign = app.create_campaign("rate").await;
    let rids: Vec<String> = (0..25).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let messages = app.register_sent(campaign, &refs, "<p>x</p>", 2).await;
    add_webhook(
        &app,
        json!({"url": format!("{}/slow", receiver.url), "rate_limit": 10}),
    )
    .await;
    let started = Instant::now();
    for m in &messages {
        let r = app
            .client
            .get(m["pixel_url"].as_str().unwrap())
            .header(USER_AGENT, CHROME)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Answered is journaled; the notices follow what the store worker has stored.
    app.settled().await;
    let want = stored_notice_ids(&app).await;
    assert_eq!(want.len(), 25);
    receiver
        .wait_for("slow", &want, Duration::from_secs(30))
        .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2400),
        "25 requests at 10 a second took {took:?}"
    );
    assert_eq!(receiver.received.lock().unwrap().requests, 25);
}
