//! The tracker's user story: campaign, instrumented mail, pixel, click, numbers, raw events.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, EXPIRES, LOCATION, PRAGMA, USER_AGENT};
use serde_json::{Value, json};

const EMAIL: &str = r##"<!DOCTYPE html>
<html><head><title>Spring</title><style>a{color:red}</style></head>
<body>
<p>Hello &amp; welcome, Grüße</p>
<a href="https://shop.example.com/spring?utm=1&amp;x=2">Shop</a>
<a href='https://shop.example.com/b'>B</a>
<a href="mailto:help@example.com">Mail us</a>
<a href="tel:+331234">Call</a>
<a href="#top">Top</a>
<a href="https://shop.example.com/secret" data-mailbeacon="off">Untracked</a>
<a href="https://shop.example.com/unsubscribe?u=9">Unsubscribe</a>
</body></html>"##;

#[tokio::test]
async fn a_new_user_tracks_an_open_and_a_click() {
    let app = TestApp::spawn().await;
    // Step 1: the start-up message says where it listens and gives the admin token.
    assert!(
        app.stdout
            .iter()
            .any(|l| l.starts_with("database: sqlite://"))
    );
    assert!(app.stdout.iter().any(|l| l.contains("admin API token")));

    // Step 2: campaign and instrumented mail.
    let campaign = app.create_campaign("Spring sale").await;
    let msg = app.add_message(campaign, "cust-42", EMAIL).await;
    let html = msg["html"].as_str().unwrap();
    let pixel = msg["pixel_url"].as_str().unwrap();
    assert!(html.contains(&format!("<img src=\"{pixel}\"")), "{html}");
    assert!(pixel.starts_with(&app.base) && pixel.ends_with(".gif"));
    let clicks = click_urls(html);
    assert_eq!(clicks.len(), 2, "two http(s) links are tracked: {html}");
    // Nothing about the recipient or the destination shows in a URL.
    for url in clicks.iter().chain([&pixel.to_string()]) {
        assert!(
            !url.contains("cust-42") && !url.contains("shop.example"),
            "{url}"
        );
    }
    // What must stay untouched, stays.
    for kept in [
        "mailto:help@example.com",
        "tel:+331234",
        "href=\"#top\"",
        "href=\"https://shop.example.com/secret\" data-mailbeacon=\"off\"",
        "https://shop.example.com/unsubscribe?u=9",
        "<p>Hello &amp; welcome, Grüße</p>",
        "<style>a{color:red}</style>",
    ] {
        assert!(html.contains(kept), "lost {kept:?} in {html}");
    }

    // Step 3: the pixel loads, the click lands on the original page.
    let r = app
        .client
        .get(pixel)
        .header(USER_AGENT, "Mozilla/5.0 test-reader")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "image/gif");
    assert_eq!(
        r.headers()[CACHE_CONTROL],
        "no-store, no-cache, must-revalidate, private"
    );
    assert_eq!(r.headers()[PRAGMA], "no-cache");
    assert_eq!(r.headers()[EXPIRES], "0");
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), 43);
    assert!(body.starts_with(b"GIF89a"));

    let r = app.client.get(&clicks[0]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        r.headers()[LOCATION],
        "https://shop.example.com/spring?utm=1&x=2"
    );
    let r = app.client.get(&clicks[1]).send().await.unwrap();
    assert_eq!(r.headers()[LOCATION], "https://shop.example.com/b");

    // Step 4: the numbers and the raw events.
    let stats = app.stats(campaign).await;
    assert_eq!(stats["sent"], 1);
    assert_eq!(stats["opens"]["total"], 1);
    assert_eq!(stats["opens"]["unique"], 1);
    assert_eq!(stats["clicks"]["total"], 2);
    assert_eq!(stats["clicks"]["unique"], 1);
    assert!(stats["first_activity"].is_string() && stats["last_activity"].is_string());

    let events = app.events(campaign).await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["kind"], "open");
    assert_eq!(events[0]["recipient_id"], "cust-42");
    assert_eq!(events[0]["user_agent"], "Mozilla/5.0 test-reader");
    assert_eq!(events[0]["method"], "GET");
    assert_eq!(
        events[0]["client_ip"], "127.0.0.0",
        "truncated to /24 by default"
    );
    assert_eq!(events[1]["kind"], "click");
    assert_eq!(
        events[1]["link_url"],
        "https://shop.example.com/spring?utm=1&x=2"
    );
    assert_eq!(events[0]["message_id"], msg["message_id"]);
}

#[tokio::test]
async fn the_png_pixel_and_head_requests_work() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("c").await;
    let msg = app
        .add_message(campaign, "r", "<p><a href=\"https://x.test/\">x</a></p>")
        .await;
    let gif = msg["pixel_url"].as_str().unwrap();
    let png = gif.replace(".gif", ".png");
    let r = app.client.get(&png).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "image/png");
    assert!(r.bytes().await.unwrap().starts_with(b"\x89PNG"));

    let r = app.client.head(gif).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "image/gif");
    let click = &click_urls(msg["html"].as_str().unwrap())[0];
    let r = app.client.head(click).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()[LOCATION], "https://x.test/");

    let events = app.events(campaign).await;
    let methods: Vec<_> = events
        .iter()
        .map(|e| e["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["GET", "HEAD", "HEAD"]);
    assert_eq!(app.stats(campaign).await["opens"]["total"], 2);
}

#[tokio::test]
async fn forged_altered_and_truncated_tokens_get_404_and_no_event() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("c").await;
    let msg = app
        .add_message(campaign, "r", "<a href=\"https://x.test/\">x</a>")
        .await;
    let pixel = msg["pixel_url"].as_str().unwrap().to_string();
    let click = click_urls(msg["html"].as_str().unwrap())[0].clone();

    let token = pixel.rsplit('/').next().unwrap().trim_end_matches(".gif");
    let mut altered = token.as_bytes().to_vec();
    altered[12] = if altered[12] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let bad = [
        format!("/o/{altered}.gif"),
        format!("/o/{}.gif", &token[..token.len() - 1]),
        "/o/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.gif".to_string(),
        "/o/not-a-token.gif".to_string(),
        format!("/o/{token}.jpg"),
        format!("/o/{token}"),
        // An open token is not a click token, and the other way round.
        format!("/c/{token}"),
        format!("/o/{}.gif", click.rsplit('/').next().unwrap()),
        format!("{}x", click.trim_start_matches(&app.base)),
    ];
    for path in &bad {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(r.headers().get(LOCATION).is_none());
    }
    assert!(app.events(campaign).await.is_empty());
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("mailbeacon_track_refused_total"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(refused as usize, bad.len(), "{metrics}");
}

#[tokio::test]
async fn there_is_no_open_redirect() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("c").await;
    let msg = app
        .add_message(campaign, "r", "<a href=\"https://x.test/\">x</a>")
        .await;
    let click = &click_urls(msg["html"].as_str().unwrap())[0];
    // Destinations cannot be smuggled in through the URL.
    for path in [
        format!("{click}?url=https://evil.test/"),
        format!("{click}/https://evil.test/"),
        "/c/https://evil.test/".to_string(),
        "/c/?u=https%3A%2F%2Fevil.test".to_string(),
    ] {
        let url = if path.starts_with("http") {
            path.clone()
        } else {
            app.url(&path)
        };
        let r = app.client.get(&url).send().await.unwrap();
        let location = r
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_string());
        assert!(
            location.is_none() || location.as_deref() == Some("https://x.test/"),
            "{path} redirected to {location:?}"
        );
    }
}

#[tokio::test]
async fn a_genuine_token_for_an_unregistered_link_does_not_redirect() {
    // With the signing key known, mint a click token for a link number the message never had.
    let key = mailbeacon::token::SigningKey::generate(1);
    let app = TestApp::spawn_with(&["--signing-key", &key.to_spec()]).await;
    let ring = mailbeacon::token::KeyRing::new(&[key]).unwrap();
    let campaign = app.create_campaign("c").await;
    let msg = app
        .add_message(campaign, "r", "<a href=\"https://x.test/\">x</a>")
        .await;
    let click = &click_urls(msg["html"].as_str().unwrap())[0];
    let genuine = ring
        .verify_click(click.rsplit('/').next().unwrap())
        .unwrap();
    assert_eq!(genuine.link_no, 1);
    let r = app.client.get(click).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let unregistered = ring.sign_click(genuine.tracking_id, 2);
    let r = app
        .client
        .get(app.url(&format!("/c/{unregistered}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers().get(LOCATION).is_none());
    // And a genuine token for a message this server never registered.
    let r = app
        .client
        .get(app.url(&format!("/o/{}.gif", ring.sign_open(12345))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.events(campaign).await.len(), 1);
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let app =
        TestApp::spawn_with(&["--trusted-proxy", "127.0.0.1/32", "--client-ip", "full"]).await;
    let untrusted = TestApp::spawn_with(&["--client-ip", "full"]).await;
    for (app, expected) in [(&app, "198.51.100.7"), (&untrusted, "127.0.0.1")] {
        let campaign = app.create_campaign("c").await;
        let msg = app.add_message(campaign, "r", "<p>hi</p>").await;
        let r = app
            .client
            .get(msg["pixel_url"].as_str().unwrap())
            .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let events = app.events(campaign).await;
        assert_eq!(events[0]["client_ip"], expected);
    }
    // RFC 7239 Forwarded, from a proxy said to set it; an X-Forwarded-For the client sent along
    // is not read then.
    let forwarded = TestApp::spawn_with(&[
        "--trusted-proxy",
        "127.0.0.1/32",
        "--client-ip",
        "full",
        "--proxy-header",
        "forwarded",
    ])
    .await;
    let campaign = forwarded.create_campaign("d").await;
    let msg = forwarded.add_message(campaign, "r", "<p>hi</p>").await;
    forwarded
        .client
        .get(msg["pixel_url"].as_str().unwrap())
        .header("forwarded", "for=\"[2001:db8::7]:443\";proto=https")
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(
        forwarded.events(campaign).await[0]["client_ip"],
        "2001:db8::7"
    );
}

#[tokio::test]
async fn events_page_with_a_cursor_in_json_ndjson_and_csv() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("c").await;
    let msg = app.add_message(campaign, "r,1", "<p>hi</p>").await;
    let pixel = msg["pixel_url"].as_str().unwrap();
    for i in 0..5 {
        app.client
            .get(pixel)
            .header(USER_AGENT, format!("ua \"{i}\""))
            .send()
            .await
            .unwrap();
    }
    app.settled().await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .client
            .get(app.url(&format!(
                "/api/events?campaign={campaign}&after={cursor}&limit=2"
            )))
            .bearer_auth(&app.admin_token)
            .header("accept", "application/x-ndjson")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()[CONTENT_TYPE], "application/x-ndjson");
        cursor = r.headers()["next-cursor"].to_str().unwrap().to_string();
        let text = r.text().await.unwrap();
        let page: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if page.is_empty() {
            break;
        }
        seen.extend(
            page.into_iter()
                .map(|e| e["user_agent"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("ua \"{i}\"")).collect::<Vec<_>>()
    );

    let csv = app
        .client
        .get(app.url(&format!("/api/events?campaign={campaign}")))
        .bearer_auth(&app.admin_token)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,kind,received_at,campaign_id,message_id,recipient_id,link_url,method,user_agent,client_ip,\
         class,reasons,duplicate,internal,client,os,device,country,region"
    );
    let first = lines.next().unwrap();
    assert!(first.contains(",\"r,1\","), "quoted recipient: {first}");
    assert!(
        first.contains("\"ua \"\"0\"\"\""),
        "quoted user agent: {first}"
    );
    assert_eq!(lines.count(), 4);
}

#[tokio::test]
async fn ten_thousand_recipients_in_one_call() {
    let app = TestApp::spawn().await;
    let r = app
        .api_post(
            "/api/campaigns",
            &json!({"name": "big", "html": "<html><body><a href=\"https://x.test/a\">a</a><a href=\"https://x.test/b\">b</a></body></html>"}),
        )
        .await;
    let campaign = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let items: Vec<Value> = (0..10_000)
        .map(|i| json!({"recipient_id": format!("r{i}"), "sent_at": "2026-11-20T08:00:00+01:00"}))
        .collect();
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &Value::Array(items),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 10_000);
    assert_eq!(messages[9_999]["recipient_id"], "r9999");
    let pixels: std::collections::HashSet<_> = messages
        .iter()
        .map(|m| m["pixel_url"].as_str().unwrap())
        .collect();
    assert_eq!(pixels.len(), 10_000, "every recipient has their own pixel");
    assert_eq!(click_urls(messages[5]["html"].as_str().unwrap()).len(), 2);
    assert_eq!(app.stats(campaign).await["sent"], 10_000);
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ready");
    let campaign = app.create_campaign("c").await;
    let msg = app.add_message(campaign, "r", "<p>x</p>").await;
    app.client
        .get(msg["pixel_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    app.settled().await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("mailbeacon_track_requests_total{route=\"pixel\",result=\"recorded\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mailbeacon_ingest_batch_size_bucket"),
        "{text}"
    );
    let r = app
        .api_get(&format!("/api/campaigns/{campaign}/report"))
        .await;
    assert_eq!(r.headers()["pending-events"], "0");
    // The journal's backlog, stored by now.
    assert!(
        text.contains("mailbeacon_journal_pending_events 0")
            && text.contains("mailbeacon_journal_group_size_bucket"),
        "{text}"
    );
}
