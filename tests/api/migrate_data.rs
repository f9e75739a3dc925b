//! `mailbeacon migrate-data`: an installation seeded over HTTP on SQLite moves to PostgreSQL, and a
//! server started on the copy gives the same answers and goes on counting.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// GET as the admin, the body as text.
async fn text(app: &TestApp, path: &str) -> String {
    let r = app.api_get(path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

/// The reports and lists a server on the copy must give exactly as the original did.
async fn answers(app: &TestApp, campaign: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in [
        format!("/api/campaigns/{campaign}/report"),
        format!("/api/campaigns/{campaign}/links"),
        format!("/api/campaigns/{campaign}/breakdown/class"),
        format!("/api/events?campaign={campaign}&limit=10000"),
        "/api/campaigns".to_string(),
        "/api/webhooks".to_string(),
    ] {
        let body = text(app, &path).await;
        out.push((path, body));
    }
    out
}

#[tokio::test]
async fn migrate_data_moves_an_installation_to_postgres() {
    let app = TestApp::spawn_with(&["--webhook-allow-private"]).await;
    let campaign = app.create_campaign("Moving day").await;
    let seeded = seed(&app, campaign, 300).await;
    // An opt-out (its recipient's later pixels must stay unstored on the copy), and a webhook
    // endpoint nobody listens on, so notices wait in the outbox.
    let r = app
        .api_post("/api/recipients/seed-3%40example.com/opt-out", &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .api_post(
            "/api/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "kinds": ["click"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let late = app
        .register_sent(
            campaign,
            &["late@example.com", "seed-3@example.com"],
            "<p>x</p>",
            1,
        )
        .await;
    let before = answers(&app, campaign).await;
    let stats: Value = serde_json::from_str(&before[0].1).unwrap();
    assert_eq!(stats["opens"]["total"], seeded.opens, "{stats}");
    let events_before: Value = serde_json::from_str(&before[3].1).unwrap();
    let last_id = events_before["events"].as_array().unwrap().last().unwrap()["id"]
        .as_i64()
        .unwrap();
    let (token, old_base) = (app.admin_token.clone(), app.base.clone());
    let sqlite = app.db_url();
    let (code, _, dir) = app.terminate();
    assert_eq!(code, Some(0));

    let pg = postgres_schema("migrate");
    let started = Instant::now();
    let (ok, out, err) = cli(
        &sqlite,
        &["migrate-data", "--from", &sqlite, "--to", &pg],
        None,
    );
    assert!(ok, "{out}\n{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let line = |table: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no line for {table}: {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let events_line = line("events");
    assert_eq!(events_line[1], events_line[2], "{out}");
    assert_eq!(events_line.last(), Some(&"equal"), "{out}");
    assert!(events_line.contains(&last_id.to_string().as_str()), "{out}");
    assert_eq!(line("opt_outs")[1..3], ["1", "1"], "{out}");
    assert_eq!(line("webhook_endpoints")[1..3], ["1", "1"], "{out}");
    assert!(
        out.contains("events per campaign: 1 campaigns with events, all equal"),
        "{out}"
    );
    assert!(
        out.contains("verified: ") && out.contains("both sides hold the same rows"),
        "{out}"
    );
    assert!(
        !out.contains("DIFFER"),
        "every table is equal on both sides: {out}"
    );

    // The server on the copy: the old admin token and signing keys work, the answers are the same.
    let app = TestApp::spawn_on(dir, &pg, &["--webhook-allow-private"], Some(token)).await;
    assert!(
        !app.stdout.iter().any(|l| l.contains("keep it safe")),
        "no new admin token: the old one was copied"
    );
    let after = answers(&app, campaign).await;
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        if path == "/api/webhooks" {
            // Delivery status moves on (the new server tries again); the endpoint is the same.
            let (was, is): (Value, Value) = (
                serde_json::from_str(was).unwrap(),
                serde_json::from_str(is).unwrap(),
            );
            assert_eq!(was["webhooks"][0]["id"], is["webhooks"][0]["id"]);
            assert_eq!(was["webhooks"][0]["url"], is["webhooks"][0]["url"]);
            continue;
        }
        assert_eq!(was, is, "{path} differs after the move");
    }

    // A pixel sent before the move (signed with a copied key) is counted, with an id above every
    // copied one; the opted-out recipient's is answered and not stored.
    for m in &late {
        let pixel = m["pixel_url"]
            .as_str()
            .unwrap()
            .replacen(&old_base, &app.base, 1);
        let r = app
            .client
            .get(&pixel)
            .header(reqwest::header::USER_AGENT, CHROME)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let stats = app.stats(campaign).await;
    assert_eq!(stats["opens"]["total"], seeded.opens + 1, "{stats}");
    let events = app.events(campaign).await;
    let newest = events.last().unwrap();
    assert_eq!(newest["recipient_id"], "late@example.com");
    assert!(newest["id"].as_i64().unwrap() > last_id, "{newest}");
    assert_eq!(events.len() as i64, seeded.opens + seeded.clicks + 1);
    // New campaigns and messages get new ids too.
    let second = app.create_campaign("After the move").await;
    assert!(second > campaign);
    let m = app.add_message(second, "new@example.com", "<p>y</p>").await;
    assert!(m["message_id"].as_i64().unwrap() > late[1]["message_id"].as_i64().unwrap());
}

#[tokio::test]
async fn migrate_data_refuses_a_target_that_holds_data_and_wrong_urls() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("mb.db").display());
    let (ok, _, err) = cli(&sqlite, &["campaign", "create", "--name", "Old"], None);
    assert!(ok, "{err}");
    // The target has been used: a token (and the signing key the CLI made on opening it).
    let pg = postgres_schema("migratefull");
    let (ok, _, err) = cli(&pg, &["token", "create", "--scope", "viewer"], None);
    assert!(ok, "{err}");

    let (ok, out, err) = cli(
        &sqlite,
        &["migrate-data", "--from", &sqlite, "--to", &pg],
        None,
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains("the target database already holds data")
            && err.contains("api_tokens (1 rows)")
            && err.contains("signing_keys (1 rows)")
            && err.contains("empty database")
            && err.contains("Nothing was copied"),
        "{err}"
    );
    // Nothing was copied: the campaign is not there.
    let (ok, list, err) = cli(&pg, &["campaign", "list"], None);
    assert!(ok && list.is_empty(), "{list} {err}");

    for (args, needle) in [
        (
            ["--from", pg.as_str(), "--to", pg.as_str()],
            "--from must be the SQLite database",
        ),
        (
            ["--from", sqlite.as_str(), "--to", sqlite.as_str()],
            "--to must be the PostgreSQL database",
        ),
        (
            ["--from", "mysql://x", "--to", pg.as_str()],
            "--from: unsupported database URL",
        ),
    ] {
        let mut all = vec!["migrate-data"];
        all.extend(args);
        let (ok, _, err) = cli(&sqlite, &all, None);
        assert!(!ok && err.contains(needle), "{args:?}: {err}");
    }
    let missing = format!("sqlite://{}", dir.path().join("nothing.db").display());
    let (ok, _, err) = cli(
        &sqlite,
        &["migrate-data", "--from", &missing, "--to", &pg],
        None,
    );
    assert!(!ok && err.contains("there is no database at"), "{err}");
    assert!(!dir.path().join("nothing.db").exists());
}
