//! Send times over HTTP on both engines: each recipient's best hour of the week comes from when
//! they first read each of their messages (every campaign), in the asked time zone; machines'
//! fetches and untracked mail count for nothing; pages, CSV, scopes and the audit log hold.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn each_recipient_gets_the_hour_they_read_in_most() {
    send_times(TestApp::spawn().await).await;
}

#[tokio::test]
async fn each_recipient_gets_the_hour_they_read_in_most_on_postgres() {
    send_times(TestApp::spawn_postgres("sendtimes", &[]).await).await;
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let r = app.api_get(path).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn send_times(app: TestApp) {
    let html = r#"<p><a href="https://shop.example.com/a">A</a></p>"#;
    let spring = app.create_campaign("Spring").await;
    let summer = app.create_campaign("Summer").await;
    let s = app
        .register_sent(
            spring,
            &["ada@example.com", "bob@example.com", "ada@example.com"],
            html,
            48,
        )
        .await;
    let t = app
        .register_sent(summer, &["ada@example.com"], html, 48)
        .await;
    let r = app
        .api_post(
            &format!("/api/campaigns/{spring}/messages"),
            &json!({"recipient_id": "unnamed@example.com", "html": html, "tracking": "anonymous"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let unnamed = r.json::<Value>().await.unwrap()["messages"][0].clone();
    let pixel = |m: &Value| m["pixel_url"].as_str().unwrap().to_string();
    // Ada reads three mails (one twice, one by clicking); Bob's is only prefetched by Apple.
    for (url, agent) in [
        (pixel(&s[0]), CHROME),
        (pixel(&s[0]), CHROME),
        (click_urls(s[2]["html"].as_str().unwrap()).remove(0), CHROME),
        (pixel(&t[0]), CHROME),
        (pixel(&s[1]), APPLE_MPP),
        (pixel(&unnamed), CHROME),
    ] {
        let status = app.hit(&url, agent).await;
        assert!(
            status.is_success() || status.is_redirection(),
            "{url}: {status}"
        );
    }
    app.settled().await;
    // When they happened: two Tuesdays at 07:xx UTC (08:xx in Berlin in winter), one Friday.
    let id = |m: &Value| m["message_id"].as_i64().unwrap();
    for (message, at) in [
        (id(&s[0]), "2026-11-03T07:10:00.000000Z"),
        (id(&t[0]), "2026-11-10T07:50:00.000000Z"),
        (id(&s[2]), "2026-11-06T19:00:00.000000Z"),
    ] {
        db_execute(
            &app.db_url(),
            &format!("UPDATE events SET received_at = '{at}' WHERE message_id = {message}"),
        );
    }

    let (status, page) = get(
        &app,
        &format!("/api/campaigns/{spring}/send-times?tz=Europe/Berlin"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["next_cursor"], Value::Null, "{page}");
    let rows = page["recipients"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "one row per named recipient: {page}");
    assert_eq!(
        rows[0],
        json!({"recipient_id": "ada@example.com", "messages": 3, "messages_read": 3,
               "best_weekday": 1, "best_day": "Tuesday", "best_hour": 8, "reads_in_best_hour": 2,
               "time_zone": "Europe/Berlin"})
    );
    assert_eq!(
        (
            &rows[1]["recipient_id"],
            &rows[1]["messages_read"],
            &rows[1]["best_hour"]
        ),
        (&json!("bob@example.com"), &json!(0), &Value::Null),
        "a machine's fetch is no read"
    );

    // One message at a time: Ada's row, then Bob's, then (her second message) Ada's again.
    let (_, first) = get(&app, &format!("/api/campaigns/{spring}/send-times?limit=1")).await;
    assert_eq!(
        first["recipients"][0]["best_hour"], 7,
        "UTC by default: {first}"
    );
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = get(
        &app,
        &format!("/api/campaigns/{spring}/send-times?limit=1&after={cursor}"),
    )
    .await;
    assert_eq!(
        second["recipients"][0]["recipient_id"], "bob@example.com",
        "{second}"
    );

    let r = app
        .api_get(&format!(
            "/api/campaigns/{spring}/send-times?format=csv&tz=America/New_York"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "recipient_id,messages,messages_read,best_weekday,best_day,best_hour,reads_in_best_hour,time_zone"
        )
    );
    assert_eq!(
        lines.next(),
        Some("ada@example.com,3,3,1,Tuesday,2,2,America/New_York")
    );

    // An offset as written in a URL (`+` encoded).
    let (_, plus_two) = get(
        &app,
        "/api/recipients/ada%40example.com/send-time?tz=%2B02:00",
    )
    .await;
    assert_eq!(
        (&plus_two["best_hour"], &plus_two["time_zone"]),
        (&json!(9), &json!("+02:00"))
    );
    let (status, one) = get(
        &app,
        "/api/recipients/ada%40example.com/send-time?tz=Europe/Berlin",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one, rows[0]);
    let (status, err) = get(
        &app,
        "/api/recipients/ada%40example.com/send-time?tz=Mars/Olympus",
    )
    .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("invalid_timezone"))
    );
    let (status, _) = get(&app, "/api/campaigns/999999/send-times").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (ok, viewer, err) = cli(
        &app.db_url(),
        &["token", "create", "--scope", "viewer"],
        None,
    );
    assert!(ok, "{err}");
    let r = app
        .client
        .get(app.url("/api/recipients/ada%40example.com/send-time"))
        .bearer_auth(viewer.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "per-recipient data");
    let (_, audit) = get(&app, "/api/audit").await;
    let reads = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "read_send_times")
        .count();
    assert_eq!(
        reads, 6,
        "each answered read once; a refused one read nothing: {audit}"
    );
}
