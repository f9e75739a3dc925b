//! Deliverability by mailbox provider over time, on both engines: once a campaign's mail is a day
//! old the server checks it, once, per provider, against the provider's trailing campaigns; a
//! provider whose readers suddenly read far less is marked in `GET /api/providers`, sent to
//! webhook receivers and counted in `/metrics`; a second check (the CLI's) finds nothing due.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_provider_whose_readers_stop_opening_is_reported() {
    provider_drop(false).await;
}

#[tokio::test]
async fn a_provider_whose_readers_stop_opening_is_reported_on_postgres() {
    provider_drop(true).await;
}

async fn provider_drop(postgres: bool) {
    let app =
        TestApp::spawn_on_engine(postgres, "providerdrop", &["--webhook-allow-private"]).await;
    let html = r#"<p>Hello</p>"#;
    // Four campaigns, 20 Gmail and 20 Outlook readers each: 8 of each read the first three within
    // a day; of the latest, only one Gmail reader did. Each is dated last, once its mail and reads
    // are in: the server's look at start may come at any time (a slow machine), and a campaign
    // it looks at is checked once.
    let mut campaigns = Vec::new();
    for (days_ago, gmail_reads) in [(30, 8), (20, 8), (10, 8), (2, 1)] {
        let sent = chrono::Utc::now() - chrono::Duration::days(days_ago);
        let r = app
            .api_post(
                "/api/campaigns",
                &json!({"name": format!("Weekly {days_ago}")}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let gmail: Vec<String> = (0..20)
            .map(|i| format!("g{i}.{days_ago}@gmail.com"))
            .collect();
        let outlook: Vec<String> = (0..20)
            .map(|i| format!("o{i}.{days_ago}@outlook.com"))
            .collect();
        let names: Vec<&str> = gmail.iter().chain(&outlook).map(String::as_str).collect();
        // Sent an hour ago for now: registration dates an undated campaign by its mail.
        let messages = app.register_sent(id, &names, html, 1).await;
        let readers = messages[..gmail_reads].iter().chain(&messages[20..28]);
        for m in readers {
            assert_eq!(
                app.hit(m["pixel_url"].as_str().unwrap(), CHROME).await,
                StatusCode::OK
            );
        }
        app.settled().await;
        // They read an hour after sending.
        let read_at = (sent + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S%.6fZ");
        db_execute(
            &app.db_url(),
            &format!("UPDATE events SET received_at = '{read_at}' WHERE campaign_id = {id}"),
        );
        let sent_at = sent.format("%Y-%m-%dT%H:%M:%S%.6fZ");
        db_execute(
            &app.db_url(),
            &format!("UPDATE messages SET sent_at = '{sent_at}' WHERE campaign_id = {id}"),
        );
        let dated = app
            .client
            .patch(app.url(&format!("/api/campaigns/{id}")))
            .bearer_auth(&app.admin_token)
            .json(&json!({"sent_at": sent.to_rfc3339()}))
            .send()
            .await
            .unwrap();
        assert_eq!(dated.status(), StatusCode::OK);
        campaigns.push(id);
    }
    let (port, _) = counting_listener().await;
    let r = app
        .api_post(
            "/api/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/hook"), "kinds": ["provider_drop"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hook = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    // The server checks at start (and every ten minutes).
    let (db, token) = (app.db_url(), app.admin_token.clone());
    let (_, _, dir) = app.terminate();
    let app = TestApp::spawn_on(dir, &db, &["--webhook-allow-private"], Some(token)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let checks = loop {
        let page: Value = app.api_get("/api/providers").await.json().await.unwrap();
        let checks = page["checks"].as_array().unwrap().clone();
        if checks.len() == 8 {
            break checks;
        }
        assert!(Instant::now() < deadline, "not checked after 60 s: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let latest = &checks[..2];
    let gmail = latest.iter().find(|c| c["provider"] == "Gmail").unwrap();
    let outlook = latest
        .iter()
        .find(|c| c["provider"] == "Outlook/Hotmail")
        .unwrap();
    assert_eq!(gmail["campaign_id"], campaigns[3]);
    assert_eq!(
        (
            &gmail["sent"],
            &gmail["read_in_window"],
            &gmail["trailing_campaigns"],
            &gmail["dropped"]
        ),
        (&json!(20), &json!(1), &json!(3), &json!(true)),
        "{gmail}"
    );
    assert_eq!(gmail["open_rate"].as_f64(), Some(0.05));
    assert_eq!(gmail["trailing_open_rate"].as_f64(), Some(0.4));
    assert_eq!(outlook["dropped"], false, "{outlook}");
    // The first campaign has no history and the second too little: never judged.
    let first = checks.iter().filter(|c| c["campaign_id"] == campaigns[0]);
    assert!(
        first
            .clone()
            .all(|c| c["trailing_campaigns"] == 0 && c["dropped"] == false)
    );
    assert_eq!(checks.iter().filter(|c| c["dropped"] == true).count(), 1);

    let one: Value = app
        .api_get("/api/providers?provider=Gmail&limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["checks"].as_array().unwrap().len(), 2, "{one}");
    let csv = app
        .api_get("/api/providers?format=csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("campaign_id,campaign_name,sent_at,provider,sent,read_in_window,open_rate,trailing_campaigns,trailing_open_rate,dropped\n"),
        "{csv}"
    );

    let deliveries: Value = app
        .api_get(&format!("/api/webhooks/{hook}/deliveries"))
        .await
        .json()
        .await
        .unwrap();
    let notices = deliveries["deliveries"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{deliveries}");
    assert_eq!(notices[0]["type"], "deliverability.provider_drop");
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
        metrics.contains("mailbeacon_provider_drops_total{provider=\"Gmail\"} 1"),
        "{metrics}"
    );

    // Each campaign is checked once.
    let (ok, out, err) = cli(&app.db_url(), &["providers", "check"], None);
    assert!(ok, "{err}");
    assert!(out.contains("no campaign was due"), "{out}");
}
