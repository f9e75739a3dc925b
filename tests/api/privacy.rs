//! Recipients' rights over HTTP, read back from the database itself: opt-out (answered, not
//! stored), access (everything stored), erasure (nothing left), and who may use them.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) const ALICE: &str = "alice@example.org";

/// Every text value in every table of the database, to search for what must be gone.
pub(crate) fn all_stored_text(db: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                if let Ok(rusqlite::types::ValueRef::Text(t)) = row.get_ref(i) {
                    out.push(format!("{table}: {}", String::from_utf8_lossy(t)));
                }
            }
        }
    }
    out
}

pub(crate) fn stored_events_of(db: &std::path::Path, recipient: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT count(*) FROM events e JOIN messages m ON m.id = e.message_id WHERE m.recipient_id = ?1",
        [recipient],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn opt_out_access_and_erasure() {
    let app = TestApp::spawn().await;
    let html = "<p>Hi <a href=\"https://shop.example.com/a\">a</a></p>";
    let a = app.create_campaign("A").await;
    let b = app.create_campaign("B").await;
    let alice_a = app.add_message(a, ALICE, html).await;
    let bob_a = app.add_message(a, "bob", html).await;
    let alice_b = app.add_message(b, ALICE, html).await;
    let db = app.db_path();
    let get = |url: &str| app.client.get(url.to_string()).send();

    assert_eq!(
        get(alice_a["pixel_url"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.settled().await;
    assert_eq!(stored_events_of(&db, ALICE), 1);

    // Opt-out: answered as before, nothing stored from now on, for mail sent before too.
    let path = format!("/api/recipients/{}/opt-out", "alice%40example.org");
    let r = app.api_post(&path, &json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["recipient_id"], ALICE);
    let again: Value = app.api_post(&path, &json!({})).await.json().await.unwrap();
    assert_eq!(
        again["opted_out_at"], first["opted_out_at"],
        "repeating changes nothing"
    );
    let r = get(alice_b["pixel_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), 43);
    let click = click_urls(alice_a["html"].as_str().unwrap()).remove(0);
    let r = get(&click).await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["location"], "https://shop.example.com/a");
    app.settled().await;
    assert_eq!(
        stored_events_of(&db, ALICE),
        1,
        "nothing stored after the opt-out"
    );
    assert_eq!(
        get(bob_a["pixel_url"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.settled().await;
    assert_eq!(stored_events_of(&db, "bob"), 1, "others are still tracked");

    // Access: everything stored about her.
    let export: Value = app
        .api_get("/api/recipients/alice%40example.org/export")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["recipient_id"], ALICE);
    assert!(export["opted_out_at"].is_string());
    assert_eq!(export["messages"].as_array().unwrap().len(), 2);
    assert_eq!(
        export["messages"][0]["links"],
        json!(["https://shop.example.com/a"])
    );
    assert_eq!(export["messages"][1]["campaign_name"], "B");
    assert_eq!(export["events"].as_array().unwrap().len(), 1);

    // Who may: viewers nothing, analysts no erasure.
    let token = |scope: &str| {
        let (ok, out, err) = cli(&app.db_url(), &["token", "create", "--scope", scope], None);
        assert!(ok, "{err}");
        out.trim().to_string()
    };
    let (viewer, analyst) = (token("viewer"), token("analyst"));
    for (method, route) in [
        (reqwest::Method::POST, "/api/recipients/x/opt-out"),
        (reqwest::Method::GET, "/api/recipients/x/export"),
        (reqwest::Method::DELETE, "/api/recipients/x"),
    ] {
        let r = app
            .client
            .request(method.clone(), app.url(route))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "viewer on {method} {route}"
        );
    }
    let r = app
        .client
        .delete(app.url("/api/recipients/x"))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .get(app.url("/api/recipients/x/export"))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Erasure: counts of what went, and nothing of hers left anywhere in the database.
    let r = app
        .client
        .delete(app.url("/api/recipients/alice%40example.org"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let erased: Value = r.json().await.unwrap();
    assert_eq!(
        erased["removed"],
        json!({"messages": 2, "links": 2, "events": 1, "opt_outs": 1, "webhook_notices": 0, "consents": 0})
    );
    app.settled().await;
    let left: Vec<String> = all_stored_text(&db)
        .into_iter()
        .filter(|t| t.contains("alice"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    app.settled().await;
    assert_eq!(stored_events_of(&db, "bob"), 1);
    let export: Value = app
        .api_get("/api/recipients/alice%40example.org/export")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["messages"], json!([]));
    // Her old mail's pixel names nothing any more.
    assert_eq!(
        get(alice_a["pixel_url"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // The same from the command line.
    let (ok, out, err) = cli(&app.db_url(), &["erase", "--recipient", "bob"], None);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "erased \"bob\": 1 messages, 1 links, 1 events, 0 opt-out records"
    );
    app.settled().await;
    assert_eq!(stored_events_of(&db, "bob"), 0);

    // The audit log says who did what, for admins only, naming recipients by a hash of their id.
    let r#ref = |id: &str| {
        use sha2::Digest;
        let d = sha2::Sha256::digest(id.as_bytes());
        format!(
            "recipient sha256:{}",
            d[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };
    let (alice, x, bob) = (r#ref(ALICE), r#ref("x"), r#ref("bob"));
    let r = app
        .client
        .get(app.url("/api/audit"))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let log: Value = app.api_get("/api/audit").await.json().await.unwrap();
    let lines: Vec<String> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        // The start-up's note of the settings (see changed_privacy_settings_are_in_the_audit_log).
        .filter(|e| e["action"] != "change_settings")
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["actor"].as_str().unwrap(),
                e["scope"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            format!("token:1 admin opt_out {alice}"),
            format!("token:1 admin opt_out {alice}"),
            format!("token:1 admin export_recipient {alice}"),
            "cli admin create_token viewer".into(),
            "cli admin create_token analyst".into(),
            format!("token:3 analyst export_recipient {x}"),
            format!("token:1 admin erase_recipient {alice}"),
            format!("token:1 admin export_recipient {alice}"),
            format!("cli admin erase_recipient {bob}"),
        ],
        "{log}"
    );
}

#[tokio::test]
async fn client_addresses_are_stored_only_as_the_mode_says() {
    let html = "<p>hi</p>";
    for (mode, expect) in [
        ("truncate", "truncated"),
        ("hash", "hashed"),
        ("none", "absent"),
        ("full", "full"),
    ] {
        let app = TestApp::spawn_with(&[
            "--client-ip",
            mode,
            "--trusted-proxy",
            "127.0.0.1",
            "--internal-network",
            "198.51.100.0/24",
        ])
        .await;
        let campaign = app.create_campaign(mode).await;
        let msg = app.add_message(campaign, "r1", html).await;
        for ip in ["203.0.113.77", "203.0.113.77", "198.51.100.23"] {
            let r = app
                .client
                .get(msg["pixel_url"].as_str().unwrap())
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        app.settled().await;
        let conn = rusqlite::Connection::open(app.db_path()).unwrap();
        let rows: Vec<(Option<String>, bool)> = conn
            .prepare("SELECT client_ip, internal FROM events ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let text = all_stored_text(&app.db_path()).join("\n");
        // The office network is flagged whatever is kept of the address.
        assert_eq!(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            [false, false, true],
            "{mode}"
        );
        match expect {
            "truncated" => {
                assert_eq!(rows[0].0.as_deref(), Some("203.0.113.0"));
                assert!(
                    !text.contains("203.0.113.77") && !text.contains("198.51.100.23"),
                    "{text}"
                );
            }
            "hashed" => {
                let h = rows[0].0.clone().unwrap();
                assert!(h.starts_with("h:"), "{h}");
                assert_eq!(
                    rows[1].0, rows[0].0,
                    "the same address, the same day: the same hash"
                );
                assert_ne!(rows[2].0, rows[0].0);
                assert!(
                    !text.contains("203.0.113") && !text.contains("198.51.100"),
                    "{text}"
                );
            }
            "absent" => {
                assert!(rows.iter().all(|r| r.0.is_none()));
                assert!(
                    !text.contains("203.0.113") && !text.contains("198.51.100"),
                    "{text}"
                );
            }
            _ => assert_eq!(rows[0].0.as_deref(), Some("203.0.113.77")),
        }
    }
}

#[tokio::test]
async fn retention_deletes_raw_events_and_the_reports_stay() {
    retention_keeps_the_reports(false).await;
}

#[tokio::test]
async fn retention_deletes_raw_events_and_the_reports_stay_on_postgres() {
    retention_keeps_the_reports(true).await;
}

async fn retention_keeps_the_reports(postgres: bool) {
    let app = TestApp::spawn_on_engine(postgres, "retention", &[]).await;
    let campaign = app.create_campaign("Retention").await;
    let want = seed(&app, campaign, 200).await;
    let reader = app
        .register_sent(campaign, &["keeps-reading@example.com"], "<p>hi</p>", 1)
        .await;
    let pixel = reader[0]["pixel_url"].as_str().unwrap().to_string();
    let open = || {
        app.client
            .get(&pixel)
            .header(reqwest::header::USER_AGENT, CHROME)
            .send()
    };
    assert_eq!(open().await.unwrap().status(), StatusCode::OK);
    let (before, series_before) = (report(&app, campaign).await, series(&app, campaign).await);
    assert_eq!(before["opens"]["total"], want.opens + 1);

    let (ok, _, err) = cli(&app.db_url(), &["purge"], None);
    assert!(!ok && err.contains("--older-than-days"), "{err}");
    let (ok, out, err) = cli(&app.db_url(), &["purge", "--older-than-days", "0"], None);
    assert!(ok, "{err}");
    app.settled().await;
    let stored = db_count(&app.db_url(), "SELECT count(*) FROM events");
    assert_eq!(stored, 0, "every raw event is gone");
    assert!(
        out.contains(&format!("deleted {} events", want.opens + want.clicks + 1)),
        "{out}"
    );
    assert_eq!(
        report(&app, campaign).await,
        before,
        "the report is what it was"
    );
    assert_eq!(series(&app, campaign).await, series_before);

    // The reader opens again: one more open, but not a second unique one.
    assert_eq!(open().await.unwrap().status(), StatusCode::OK);
    let after = report(&app, campaign).await;
    assert_eq!(after["opens"]["total"], want.opens + 2);
    assert_eq!(after["opens"]["unique"], before["opens"]["unique"]);
    assert_eq!(
        after["opens"]["unique_excluding_machine"],
        before["opens"]["unique_excluding_machine"]
    );

    // Served with --retention-days, fresh events stay.
    let db = app.db_url();
    let (_, _, dir) = app.terminate();
    let app = TestApp::spawn_on(dir, &db, &["--retention-days", "30"], Some(String::new())).await;
    assert!(
        app.stdout
            .iter()
            .any(|l| l.contains("retention: raw events are deleted 30 days")),
        "{:?}",
        app.stdout
    );
    app.settled().await;
    let stored = db_count(&app.db_url(), "SELECT count(*) FROM events");
    assert_eq!(stored, 1);
}

async fn report(app: &TestApp, campaign: i64) -> Value {
    let path = format!("/api/campaigns/{campaign}/report");
    let mut r: Value = app.api_get(&path).await.json().await.unwrap();
    r.as_object_mut().unwrap().remove("definitions");
    r
}

async fn series(app: &TestApp, campaign: i64) -> String {
    let path = format!("/api/campaigns/{campaign}/timeseries?interval=day&format=ndjson");
    app.api_get(&path).await.text().await.unwrap()
}

#[tokio::test]
async fn parsed_user_agents_keep_only_what_was_parsed() {
    let app = TestApp::spawn_with(&["--user-agent", "parsed"]).await;
    let campaign = app.create_campaign("Minimal").await;
    let msgs = app
        .register_sent(
            campaign,
            &["a@example.com", "b@example.com"],
            "<p>hi</p>",
            2,
        )
        .await;
    for (m, ua) in msgs.iter().zip([CHROME, GMAIL_PROXY]) {
        let r = app
            .client
            .get(m["pixel_url"].as_str().unwrap())
            .header(reqwest::header::USER_AGENT, ua)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let read = |db: &std::path::Path| -> Vec<(Option<String>, Option<String>, String)> {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.prepare("SELECT user_agent, client, class FROM events ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    app.settled().await;
    let stored = read(&app.db_path());
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|(ua, _, _)| ua.is_none()), "{stored:?}");
    assert_eq!(stored[0].1.as_deref(), Some("Chrome"));
    assert_eq!(stored[0].2, "human");
    assert_eq!(stored[1].2, "gmail_proxy", "classified from the full agent");
    app.settled().await;
    for text in all_stored_text(&app.db_path()) {
        assert!(
            !text.contains("Mozilla/5.0"),
            "an agent string was stored: {text}"
        );
    }
    // Reclassification has no agent to read again: the classes stay.
    let (db, db_path) = (app.db_url(), app.db_path());
    let (code, _, _dir) = app.terminate();
    assert_eq!(code, Some(0));
    let (ok, _, err) = cli(&db, &["reclassify"], None);
    assert!(ok, "{err}");
    assert_eq!(read(&db_path), stored);
}

#[tokio::test]
async fn the_stop_tracking_link_opts_out_only_when_the_recipient_confirms() {
    let app = TestApp::spawn_with(&["--stop-tracking-link"]).await;
    let campaign = app.create_campaign("Footer").await;
    let msgs = app
        .register_sent(
            campaign,
            &[ALICE, "bob@example.org"],
            "<html><body><p>Hello</p></body></html>",
            2,
        )
        .await;
    let html = msgs[0]["html"].as_str().unwrap();
    let start = html.find("/u/").expect("a stop-tracking link in the mail");
    let link = format!(
        "{}{}",
        app.base,
        &html[start..start + html[start..].find('"').unwrap()]
    );
    assert!(html.contains("Stop tracking my opens and clicks"));
    assert!(html.find("/u/").unwrap() < html.find("/o/").unwrap());
    let opted_out = || {
        rusqlite::Connection::open(app.db_path())
            .unwrap()
            .query_row("SELECT count(*) FROM opt_outs", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };

    // Scanners follow every link: a GET only asks.
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<form method=\"post\">")
    );
    assert_eq!(opted_out(), 0);

    let done = app.client.post(&link).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("no longer"));
    let source: String = rusqlite::Connection::open(app.db_path())
        .unwrap()
        .query_row(
            "SELECT source FROM opt_outs WHERE recipient_id = ?1",
            [ALICE],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(source, "link");

    // Her pixel still loads, and nothing is stored; Bob is still tracked.
    for m in &msgs {
        let r = app
            .client
            .get(m["pixel_url"].as_str().unwrap())
            .header(reqwest::header::USER_AGENT, CHROME)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    app.settled().await;
    assert_eq!(stored_events_of(&app.db_path(), ALICE), 0);
    assert_eq!(stored_events_of(&app.db_path(), "bob@example.org"), 1);

    // A forged or altered link changes nothing.
    let mut forged = link.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        app.client.post(&forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let open_token = msgs[1]["pixel_url"].as_str().unwrap().replace("/o/", "/u/");
    let open_token = open_token.trim_end_matches(".gif");
    assert_eq!(
        app.client.post(open_token).send().await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "an open token is not a stop-tracking token"
    );
    assert_eq!(opted_out(), 1);
}
