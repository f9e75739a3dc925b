//! Segment-compatible destinations end to end: mailbeacon sends track calls to a local tracking API
//! that checks the documented shape (`segment_receiver`), fails some requests and loses the answer
//! to others; every stored event arrives, each acknowledged exactly once, and consent withdrawal
//! and erasure take back what was not sent yet.

use crate::helpers::*;
use crate::seed::seed;
use crate::segment_receiver::*;
use crate::webhook_receiver::{until_nothing_is_pending, webhook_status};
use axum::http::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

const READERS_KEY: &str = "wk_readers_3f9a";
const ALL_KEY: &str = "wk_everything_71c2";
const MACHINES: [&str; 3] = ["apple_mpp", "scanner", "bot"];

async fn add_destination(app: &TestApp, body: Value) -> Value {
    let r = app.api_post("/api/webhooks", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["protocol"], "segment");
    assert!(
        v.get("secret").is_none(),
        "the write key is not echoed: {v}"
    );
    v
}

/// Every stored event: its call's message id and class.
async fn stored_events(app: &TestApp) -> Vec<(String, String)> {
    let page: Value = app
        .api_get("/api/events?limit=10000")
        .await
        .json()
        .await
        .unwrap();
    let events = page["events"].as_array().unwrap();
    assert!(events.len() < 10_000);
    events
        .iter()
        .map(|e| {
            (
                format!("evt_{}", e["id"]),
                e["class"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn pending(app: &TestApp, hook: i64) -> usize {
    let path = format!("/api/webhooks/{hook}/deliveries?state=pending");
    let page: Value = app.api_get(&path).await.json().await.unwrap();
    page["deliveries"].as_array().unwrap().len()
}

/// 150 mails with a cart link of 7 KB (a hundred such clicks do not fit in one 500 KB request),
/// each clicked in Chrome: the link, and where each click led.
async fn click_carts(app: &TestApp, campaign: i64) -> (String, Vec<String>) {
    let long = format!(
        "https://shop.example.com/cart?items={}",
        "sku-1234,".repeat(780)
    );
    let html = format!("<p><a href=\"{long}\">Your cart</a></p>");
    let rids: Vec<String> = (0..150).map(|i| format!("cart-{i}@example.com")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let mut redirects = Vec::new();
    for m in app.register_sent(campaign, &refs, &html, 1).await {
        let link = &click_urls(m["html"].as_str().unwrap())[0];
        let r = app
            .client
            .get(link)
            .header("user-agent", CHROME)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        redirects.push(r.headers()[LOCATION].to_str().unwrap().to_string());
    }
    (long, redirects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_segment_destination_gets_every_event_once_through_receiver_failures() {
    // Every fourth request fails; every seventh is kept but its answer lost (sent again).
    let policy: Policy = Arc::new(|n| match n {
        n if n % 4 == 1 => Answer::Fail,
        n if n % 7 == 3 => Answer::Unanswered,
        _ => Answer::Ok,
    });
    let receiver = SegmentReceiver::start(&[READERS_KEY, ALL_KEY], policy).await;
    let app = TestApp::spawn_with(&[
        "--webhook-allow-private",
        "--webhook-retry-base",
        "0.05",
        "--webhook-timeout",
        "5",
    ])
    .await;

    // Refusals name their field.
    for (body, says) in [
        (
            json!({"url": receiver.url, "protocol": "segment"}),
            "write_key: a segment destination needs",
        ),
        (
            json!({"url": receiver.url, "protocol": "segment", "write_key": "a:b"}),
            "write_key: may not contain ':'",
        ),
        (
            json!({"url": receiver.url, "protocol": "segment", "write_key": "k", "kinds": ["erasure"]}),
            "kinds: erasure has no event in Segment's spec",
        ),
        (
            json!({"url": receiver.url, "write_key": "k"}),
            "write_key: only a segment destination",
        ),
        (
            json!({"url": receiver.url, "protocol": "mixpanel"}),
            "protocol: unknown protocol 'mixpanel'",
        ),
    ] {
        let r = app.api_post("/api/webhooks", &body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{body}: {text}");
    }

    // Readers only (the default), and everything with machine activity asked for.
    let readers = add_destination(
        &app,
        json!({"url": receiver.url, "protocol": "segment", "write_key": READERS_KEY}),
    )
    .await;
    assert_eq!(readers["url"], format!("{}/v1/batch", receiver.url));
    assert_eq!(readers["batch_size"], 100);
    assert_eq!(
        readers["kinds"],
        json!(["open", "click", "opt_out", "conversion"])
    );
    assert!(
        !readers["classes"]
            .as_array()
            .unwrap()
            .contains(&json!("scanner"))
    );
    add_destination(
        &app,
        json!({"url": format!("{}/v1/batch", receiver.url), "protocol": "segment",
               "write_key": ALL_KEY, "classes": ["readers", "apple_mpp", "scanner", "bot"]}),
    )
    .await;

    let r = app
        .api_post(
            "/api/campaigns",
            &json!({"name": "Winter sale", "conversions": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let campaign = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    // Readers, Apple's prefetch, Gmail's proxy and scripts following links.
    seed(&app, campaign, 600).await;
    let (long, redirects) = click_carts(&app, campaign).await;
    let reference = redirects[0].split_once("mb_ref=").unwrap().1;
    // The first cart's reader buys, and someone opts out.
    let r = app
        .client
        .post(app.url("/conversions"))
        .json(&json!({"ref": reference, "goal": "purchase", "value": 42.5, "currency": "EUR", "id": "o-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .api_post("/api/recipients/seed-3%40example.com/opt-out", &json!({}))
        .await;
    assert!(r.status().is_success(), "{:?}", r.text().await);

    app.settled().await;
    let stored = stored_events(&app).await;
    let everything: Vec<String> = stored.iter().map(|(id, _)| id.clone()).collect();
    let of_readers: HashSet<String> = stored
        .iter()
        .filter(|(_, class)| !MACHINES.contains(&class.as_str()))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(of_readers.len() >= 600 && of_readers.len() < everything.len());
    receiver
        .wait_for(ALL_KEY, &everything, Duration::from_secs(180))
        .await;
    until_nothing_is_pending(&app).await;

    let r = receiver.received.lock().unwrap();
    assert!(r.violations.is_empty(), "{:?}", &r.violations[..1]);
    // At least 20 requests (two destinations, batches of 100): these come up for sure.
    assert!(
        r.requests >= 20 && r.failed >= 3 && r.answers_lost >= 1,
        "{} failed, {} answers lost",
        r.failed,
        r.answers_lost
    );
    println!(
        "segment: {} events, {} requests ({} failed, {} answers lost), largest {} bytes, at most {} calls in one",
        everything.len(),
        r.requests,
        r.failed,
        r.answers_lost,
        r.largest_request,
        r.most_calls
    );
    // One message id prefix per destination, each its own: two sources' calls never collide.
    let prefixes: Vec<&String> = [READERS_KEY, ALL_KEY]
        .iter()
        .map(|k| {
            let seen = &r.prefixes[*k];
            assert_eq!(seen.len(), 1, "{seen:?}");
            seen.iter().next().unwrap()
        })
        .collect();
    assert_ne!(prefixes[0], prefixes[1]);
    assert!(prefixes[0].starts_with("mailbeacon-"), "{prefixes:?}");
    drop(r);
    let acknowledged = receiver.received.lock().unwrap().acknowledged.clone();
    let twice: Vec<_> = acknowledged.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "{} calls acknowledged more than once, as {:?}",
        twice.len(),
        twice.first()
    );

    let all = receiver.calls(ALL_KEY);
    let readers_got = receiver.calls(READERS_KEY);
    let events_of = |calls: &HashMap<String, Value>| -> HashSet<String> {
        calls
            .iter()
            .filter(|(_, c)| c["event"] == "Email Opened" || c["event"] == "Email Link Clicked")
            .map(|(id, _)| id.clone())
            .collect()
    };
    assert_eq!(events_of(&all), everything.iter().cloned().collect());
    assert_eq!(
        events_of(&readers_got),
        of_readers,
        "machine activity only when asked"
    );
    for (id, call) in &all {
        if let Some(class) = call["properties"]["class"].as_str() {
            assert_eq!(
                call["properties"]["machine"],
                MACHINES.contains(&class),
                "{id}: {call}"
            );
            assert_eq!(call["properties"]["campaign_name"], "Winter sale");
        }
    }
    for calls in [&all, &readers_got] {
        let named = |event: &str| -> Vec<&Value> {
            calls.values().filter(|c| c["event"] == event).collect()
        };
        let unsubscribed = named("Unsubscribed");
        assert_eq!(unsubscribed.len(), 1);
        assert_eq!(unsubscribed[0]["userId"], "seed-3@example.com");
        let converted = named("Email Converted");
        assert_eq!(converted.len(), 1, "{converted:?}");
        assert_eq!(converted[0]["userId"], "cart-0@example.com");
        assert_eq!(converted[0]["properties"]["revenue"], 42.5);
        assert_eq!(converted[0]["properties"]["currency"], "EUR");
        let click = named("Email Link Clicked")
            .into_iter()
            .find(|c| c["userId"] == "cart-1@example.com")
            .unwrap();
        assert_eq!(click["properties"]["link_url"], long.as_str());
        assert_eq!(click["properties"]["campaign_id"], campaign.to_string());
        assert!(click["properties"]["email_id"].is_string());
    }
}

/// A hundred calls of 7 KB each are over the 500 KB a request may carry: a full batch goes out as
/// several requests, each under the limit, every call once. The batch is made full by letting
/// every notice fail once (`--webhook-max-attempts 1`) and replaying the dead letters together.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_batch_of_large_calls_is_split_under_the_request_limit() {
    let receiver = SegmentReceiver::start(&[READERS_KEY], Arc::new(|_| Answer::Fail)).await;
    let app =
        TestApp::spawn_with(&["--webhook-allow-private", "--webhook-max-attempts", "1"]).await;
    let hook = add_destination(
        &app,
        json!({"url": receiver.url, "protocol": "segment", "write_key": READERS_KEY, "kinds": ["click"]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let campaign = app.create_campaign("Carts").await;
    click_carts(&app, campaign).await;
    app.settled().await;
    let want: Vec<String> = stored_events(&app)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(want.len(), 150);
    // Every notice tried once and given up on.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while webhook_status(&app, hook).await["dead"] != 150 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            webhook_status(&app, hook).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed = {
        let mut r = receiver.received.lock().unwrap();
        r.largest_request = 0;
        r.requests
    };
    receiver.set_policy(Arc::new(|_| Answer::Ok));
    let r = app
        .api_post(&format!("/api/webhooks/{hook}/replay"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    receiver
        .wait_for(READERS_KEY, &want, Duration::from_secs(60))
        .await;
    until_nothing_is_pending(&app).await;
    let r = receiver.received.lock().unwrap();
    assert!(r.violations.is_empty(), "{:?}", &r.violations[..1]);
    assert!(r.acknowledged.values().all(|n| *n == 1));
    let sent = r.requests - failed;
    println!(
        "segment: 150 calls of 7 KB in {sent} requests after the replay, the largest {} bytes",
        r.largest_request
    );
    // A batch of 100 is 730 KB: two requests at least for it, the fuller one near the limit.
    assert!(sent >= 3, "{sent} requests");
    assert!(r.largest_request > 400_000, "{}", r.largest_request);
}

/// `--require-consent`: what a recipient did while their consent stood and was not sent yet is
/// taken back when they withdraw it, and everything of an erased recipient; their later hits go
/// out anonymous.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consent_withdrawal_and_erasure_take_back_pending_calls_on_postgres() {
    let receiver = SegmentReceiver::start(&[READERS_KEY], Arc::new(|_| Answer::Fail)).await;
    let app = TestApp::spawn_on_engine(
        true,
        "segment_consent",
        &[
            "--require-consent",
            "--webhook-allow-private",
            "--webhook-retry-base",
            "0.05",
        ],
    )
    .await;
    let hook = add_destination(
        &app,
        json!({"url": receiver.url, "protocol": "segment", "write_key": READERS_KEY}),
    )
    .await;
    let hook = hook["id"].as_i64().unwrap();
    let campaign = app.create_campaign("Consent").await;
    for who in ["ada", "bob"] {
        let r = app
            .api_post(
                &format!("/api/recipients/{who}/consent"),
                &json!({"source": "signup"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let html = "<p><a href=\"https://shop.example.com/\">shop</a></p>";
    let m = app
        .register_sent(campaign, &["ada", "bob", "cy"], html, 1)
        .await;
    let pixel = |i: usize| m[i]["pixel_url"].as_str().unwrap().to_string();
    for i in 0..3 {
        assert_eq!(app.hit(&pixel(i), CHROME).await, StatusCode::OK);
    }
    let click = click_urls(m[0]["html"].as_str().unwrap())[0].clone();
    app.hit(&click, CHROME).await;
    app.settled().await;
    assert_eq!(
        pending(&app, hook).await,
        4,
        "the receiver fails: all four wait"
    );

    // Ada withdraws her consent; Bob is erased.
    for path in ["/api/recipients/ada/consent", "/api/recipients/bob"] {
        let r = app
            .client
            .delete(app.url(path))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {:?}", r.text().await);
    }
    assert_eq!(
        pending(&app, hook).await,
        1,
        "only cy's anonymous open is left"
    );

    // Ada reads again: her mail is anonymous now, and so is the call.
    assert_eq!(app.hit(&pixel(0), CHROME).await, StatusCode::OK);
    app.settled().await;
    receiver.set_policy(Arc::new(|_| Answer::Ok));
    until_nothing_is_pending(&app).await;
    let calls = receiver.calls(READERS_KEY);
    assert_eq!(calls.len(), 2, "{calls:?}");
    for call in calls.values() {
        assert!(call.get("userId").is_none(), "{call}");
        assert!(
            call["anonymousId"]
                .as_str()
                .unwrap()
                .starts_with("anonymous:"),
            "{call}"
        );
        assert_eq!(call["event"], "Email Opened");
        let text = call.to_string();
        assert!(!text.contains("ada") && !text.contains("bob"), "{text}");
    }
    assert!(receiver.received.lock().unwrap().violations.is_empty());
}
