//! Per-recipient engagement over HTTP and the CLI, on both engines: a reader's opens and clicks
//! make a recipient engaged, machines' fetches never do, mail not tracked individually leaves a
//! recipient unknown rather than unengaged; the list pages, filters, exports CSV, refuses bad
//! values, keeps to its scope and is audited.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn readers_make_recipients_engaged_and_machines_do_not() {
    engagement(TestApp::spawn().await).await;
}

#[tokio::test]
async fn readers_make_recipients_engaged_and_machines_do_not_on_postgres() {
    engagement(TestApp::spawn_postgres("engagement", &[]).await).await;
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let r = app.api_get(path).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn engagement(app: TestApp) {
    let html = r#"<p><a href="https://shop.example.com/a">A</a></p>"#;
    let spring = app.create_campaign("Spring").await;
    let summer = app.create_campaign("Summer").await;
    let s = app
        .register_sent(
            spring,
            &["ada@example.com", "bob@example.com", "cy@example.com"],
            html,
            48,
        )
        .await;
    let t = app
        .register_sent(summer, &["ada@example.com", "bob@example.com"], html, 24)
        .await;
    let r = app
        .api_post(
            &format!("/api/campaigns/{summer}/messages"),
            &json!({"recipient_id": "dee@example.com", "html": html, "tracking": "none"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let pixel = |m: &Value| m["pixel_url"].as_str().unwrap().to_string();
    let click = |m: &Value| click_urls(m["html"].as_str().unwrap()).remove(0);
    // Ada reads the spring mail and clicks the summer one with images off; Bob's mail is only
    // prefetched by Apple and followed by a script; Cy's is not touched.
    for (url, agent) in [
        (pixel(&s[0]), CHROME),
        (click(&t[0]), CHROME),
        (pixel(&s[1]), APPLE_MPP),
        (pixel(&t[1]), APPLE_MPP),
        (click(&t[1]), "python-requests/2.32.3"),
    ] {
        let status = app.hit(&url, agent).await;
        assert!(
            status.is_success() || status.is_redirection(),
            "{url}: {status}"
        );
    }
    app.settled().await;

    let (status, page) = get(&app, "/api/engagement").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["next_cursor"], Value::Null, "{page}");
    let rows = page["recipients"].as_array().unwrap();
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["recipient_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["ada@example.com", "bob@example.com", "cy@example.com"],
        "untracked mail names no one: {page}"
    );
    let ada = &rows[0];
    assert_eq!(
        (
            &ada["tracked"],
            &ada["engaged"],
            &ada["messages"],
            &ada["days"]
        ),
        (&json!(true), &json!(true), &json!(2), &json!(90)),
        "{ada}"
    );
    assert!(ada["last_reader_open_at"].is_string() && ada["last_reader_click_at"].is_string());
    assert_eq!(
        (
            &ada["recent_messages"],
            &ada["recent_opened"],
            &ada["recent_clicked"]
        ),
        (&json!(2), &json!(2), &json!(1)),
        "a click implies an open: {ada}"
    );
    let bob = &rows[1];
    assert_eq!(
        (
            &bob["engaged"],
            &bob["last_reader_open_at"],
            &bob["recent_machine_only"]
        ),
        (&json!(false), &Value::Null, &json!(2)),
        "Apple's prefetch and a script are no engagement: {bob}"
    );
    assert_eq!(
        (&rows[2]["engaged"], &rows[2]["recent_opened"]),
        (&json!(false), &json!(0))
    );

    // Untracked mail only: unknown, not unengaged.
    let (status, dee) = get(&app, "/api/recipients/dee%40example.com/engagement").await;
    assert_eq!(status, StatusCode::OK, "{dee}");
    assert_eq!(
        (&dee["tracked"], &dee["messages"]),
        (&json!(false), &json!(0))
    );
    let (_, one) = get(
        &app,
        "/api/recipients/ada%40example.com/engagement?recent=1",
    )
    .await;
    assert_eq!(
        (&one["recent_messages"], &one["recent_opened"]),
        (&json!(1), &json!(1))
    );

    // A sunset list: the others, a page at a time.
    let (_, first) = get(&app, "/api/engagement?engaged=false&limit=1").await;
    assert_eq!(
        first["recipients"].as_array().unwrap().len(),
        0,
        "Ada is engaged: {first}"
    );
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    assert_eq!(cursor, "ada@example.com");
    let (_, second) = get(
        &app,
        &format!("/api/engagement?engaged=false&limit=1&after={cursor}"),
    )
    .await;
    assert_eq!(
        second["recipients"][0]["recipient_id"], "bob@example.com",
        "{second}"
    );

    let r = app.api_get("/api/engagement?format=csv&engaged=true").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "recipient_id,tracked,messages,last_sent_at,last_reader_open_at,last_reader_click_at,\
             engaged,days,recent_messages,recent_opened,recent_clicked,recent_machine_only"
        )
    );
    assert!(
        lines.next().unwrap().starts_with("ada@example.com,true,2,"),
        "{csv}"
    );
    assert_eq!(lines.next(), None, "{csv}");

    for (query, says) in [
        (
            "recent=0",
            "recent must be a number of messages from 1 to 100",
        ),
        ("days=-3", "days must be a number from 1 to 36500"),
        ("engaged=maybe", "engaged is true or false"),
    ] {
        let (status, err) = get(&app, &format!("/api/engagement?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(err["error"]["code"], "invalid_engagement", "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(says),
            "{err}"
        );
    }

    let (ok, out, err) = cli(&app.db_url(), &["engagement", "--engaged", "false"], None);
    assert!(ok, "{err}");
    let listed: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(listed, ["bob@example.com", "cy@example.com"], "{out}");
    let (ok, out, err) = cli(
        &app.db_url(),
        &[
            "engagement",
            "--recipient",
            "ada@example.com",
            "--format",
            "ndjson",
        ],
        None,
    );
    assert!(ok, "{err}");
    let row: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(row["engaged"], true, "{out}");
    let (ok, _, err) = cli(&app.db_url(), &["engagement", "--recent", "0"], None);
    assert!(!ok && err.contains("1 to 100"), "{err}");

    let (ok, viewer, err) = cli(
        &app.db_url(),
        &["token", "create", "--scope", "viewer"],
        None,
    );
    assert!(ok, "{err}");
    let r = app
        .client
        .get(app.url("/api/engagement"))
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
        .filter(|e| e["action"] == "read_engagement")
        .count();
    assert_eq!(reads, 8, "each answered read once, the CLI's too: {audit}");
}
