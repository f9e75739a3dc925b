//! How much of a recipient is kept, over HTTP and checked in the database itself: tracking levels
//! and consent (who is tracked individually, who anonymously, what `tracking: none` and a
//! withdrawn consent leave stored), and the audit entry when the privacy settings change.

use crate::helpers::*;
use crate::privacy::{ALICE, all_stored_text, stored_events_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn settings_entries(app: &TestApp) -> Vec<String> {
    let audit: Value = app.api_get("/api/audit").await.json().await.unwrap();
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "change_settings")
        .map(|e| {
            assert_eq!(e["actor"], "startup");
            e["target"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Settings are read at start-up; when those about recipients' data change between starts, the
/// audit log has an entry saying what they became.
#[tokio::test]
async fn changed_privacy_settings_are_in_the_audit_log() {
    let app = TestApp::spawn().await;
    let token = app.admin_token.clone();
    let first = settings_entries(&app).await;
    assert_eq!(first.len(), 1);
    assert!(first[0].contains("client-ip=truncate"), "{first:?}");
    let (_, _, dir) = app.terminate();

    let app = TestApp::spawn_in(
        dir,
        &["--client-ip", "hash", "--retention-days", "30"],
        Some(token.clone()),
    )
    .await;
    let second = settings_entries(&app).await;
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(
        second[1].contains("client-ip=hash") && second[1].contains("retention-days=30"),
        "{second:?}"
    );
    let (_, _, dir) = app.terminate();

    // The same settings again: nothing new.
    let app = TestApp::spawn_in(
        dir,
        &["--client-ip", "hash", "--retention-days", "30"],
        Some(token),
    )
    .await;
    assert_eq!(settings_entries(&app).await.len(), 2);
}

fn stored_messages_of(db: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT recipient_id FROM messages ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn register_one(app: &TestApp, campaign: i64, body: Value) -> Value {
    let r = app
        .api_post(&format!("/api/campaigns/{campaign}/messages"), &body)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["messages"][0].clone()
}

/// `--require-consent`: a recipient with a consent record is tracked individually, anyone else
/// anonymously (the stored message names no one); `tracking: none` leaves the mail untouched and
/// stores nothing; a withdrawn consent stops storage at the next hit, for mail sent before; the
/// records are exportable proof and go with an erasure. Checked in the database itself.
#[tokio::test]
async fn tracking_levels_follow_consent_and_the_installation_cap() {
    const BOB: &str = "bob@example.org";
    const CAROL: &str = "carol@example.org";
    let app = TestApp::spawn_with(&["--require-consent"]).await;
    let db = app.db_path();
    let campaign = app.create_campaign("Consent").await;
    let path = |who: &str| format!("/api/recipients/{}/consent", who.replace('@', "%40"));

    let r = app
        .api_post(
            &path(ALICE),
            &json!({"source": "signup form v3", "text": "Yes, tell me what I read",
                    "given_at": "2026-11-01T10:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let bad = app.api_post(&path(ALICE), &json!({"source": ""})).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("source"));

    let html = "<p>Hi <a href=\"https://shop.example.com/\">shop</a></p>";
    let alice = register_one(&app, campaign, json!({"recipient_id": ALICE, "html": html})).await;
    let bob = register_one(&app, campaign, json!({"recipient_id": BOB, "html": html})).await;
    let carol = register_one(
        &app,
        campaign,
        json!({"recipient_id": CAROL, "html": html, "tracking": "none"}),
    )
    .await;
    assert_eq!(alice["tracking"], "individual");
    assert_eq!(bob["tracking"], "anonymous");
    assert_eq!(carol["tracking"], "none");
    assert_eq!(carol["html"], html, "an untracked mail is sent as written");
    assert!(carol["message_id"].is_null() && carol["pixel_url"].is_null());

    // In the database: Alice by name; Bob's message under a random name; Carol nowhere.
    app.settled().await;
    let names = stored_messages_of(&db);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], ALICE);
    assert!(
        names[1].starts_with("anonymous:") && names[1].len() > 20,
        "{names:?}"
    );
    app.settled().await;
    let text = all_stored_text(&db).join("\n");
    assert!(!text.contains(BOB) && !text.contains(CAROL), "{text}");

    for m in [&alice, &bob] {
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
    assert_eq!(stored_events_of(&db, ALICE), 1);
    let anonymous: (Option<String>, Option<String>, String) = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT e.client_ip, e.user_agent, e.client FROM events e
             JOIN messages m ON m.id = e.message_id WHERE m.recipient_id LIKE 'anonymous:%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (anonymous.0, anonymous.1),
        (None, None),
        "no address, no agent string"
    );
    assert_eq!(anonymous.2, "Chrome", "the parsed client stays");
    let stats = app.stats(campaign).await;
    assert_eq!(stats["sent"], 2);
    assert_eq!(
        stats["opens"]["total"], 2,
        "the anonymous open is counted: {stats}"
    );
    assert_eq!(stats["opens"]["unique"], 2);

    // Withdrawn: Alice's mail (sent before included) is made anonymous; her next open is counted
    // on it, and nothing stored names her any more.
    let r = app
        .client
        .delete(app.url(&path(ALICE)))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let withdrawn: Value = r.json().await.unwrap();
    assert_eq!(withdrawn["withdrawn"], 1, "{withdrawn}");
    assert_eq!(withdrawn["anonymized_messages"], 1, "{withdrawn}");
    let r = app
        .client
        .get(alice["pixel_url"].as_str().unwrap())
        .header(reqwest::header::USER_AGENT, CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.settled().await;
    assert_eq!(stored_events_of(&db, ALICE), 0);
    let names = stored_messages_of(&db);
    assert!(
        names.iter().all(|n| n.starts_with("anonymous:")),
        "{names:?}"
    );
    let traces: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM events WHERE client_ip IS NOT NULL OR user_agent IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        traces, 0,
        "no address or agent string left on anonymous mail"
    );
    let stats = app.stats(campaign).await;
    assert_eq!(stats["opens"]["total"], 3, "{stats}");
    assert_eq!(
        stats["opens"]["unique"], 2,
        "still the same two messages: {stats}"
    );

    // The proof, and its erasure.
    let proof: Value = app.api_get(&path(ALICE)).await.json().await.unwrap();
    assert_eq!(proof["standing"], false, "{proof}");
    assert_eq!(proof["consents"][0]["source"], "signup form v3");
    assert_eq!(proof["consents"][0]["given_at"], "2026-11-01T10:00:00Z");
    assert!(proof["consents"][0]["withdrawn_at"].is_string());
    let export: Value = app
        .api_get(&format!(
            "/api/recipients/{}/export",
            ALICE.replace('@', "%40")
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["consents"].as_array().unwrap().len(), 1);
    let erased: Value = app
        .client
        .delete(app.url(&format!("/api/recipients/{}", ALICE.replace('@', "%40"))))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(erased["removed"]["consents"], 1, "{erased}");
    app.settled().await;
    assert!(!all_stored_text(&db).join("\n").contains(ALICE));

    // --without-consent none: after a withdrawal the hit is answered and not stored.
    let app = TestApp::spawn_with(&["--require-consent", "--without-consent", "none"]).await;
    let campaign = app.create_campaign("Consent, strict").await;
    let r = app
        .api_post(&path(ALICE), &json!({"source": "import"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = register_one(&app, campaign, json!({"recipient_id": ALICE, "html": html})).await;
    assert_eq!(m["tracking"], "individual");
    let load = || {
        app.client
            .get(m["pixel_url"].as_str().unwrap())
            .header(reqwest::header::USER_AGENT, CHROME)
            .send()
    };
    assert_eq!(load().await.unwrap().status(), StatusCode::OK);
    let r = app
        .client
        .delete(app.url(&path(ALICE)))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["anonymized_messages"], 0);
    assert_eq!(load().await.unwrap().status(), StatusCode::OK);
    app.settled().await;
    assert_eq!(
        stored_events_of(&app.db_path(), ALICE),
        1,
        "the later open is not stored"
    );
    // Started again with --without-consent anonymous (the default): the next hit on her mail,
    // still under her name, makes that message anonymous and is counted on it.
    let pixel = m["pixel_url"].as_str().unwrap().to_string();
    let (_, _, dir) = app.terminate();
    let app = TestApp::spawn_in(dir, &["--require-consent"], Some(String::new())).await;
    let pixel = pixel.replacen(pixel.split("/o/").next().unwrap(), &app.base, 1);
    let r = app
        .client
        .get(&pixel)
        .header(reqwest::header::USER_AGENT, CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.settled().await;
    assert_eq!(stored_events_of(&app.db_path(), ALICE), 0);
    assert!(
        stored_messages_of(&app.db_path())
            .iter()
            .all(|n| n.starts_with("anonymous:"))
    );
    let events: i64 = rusqlite::Connection::open(app.db_path())
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        events, 2,
        "the earlier open and this one, on the now anonymous message"
    );

    // The installation's cap lowers what is asked for.
    for (cap, want) in [("anonymous", "anonymous"), ("none", "none")] {
        let app = TestApp::spawn_with(&["--max-tracking-level", cap]).await;
        let campaign = app.create_campaign("Cap").await;
        let m = register_one(
            &app,
            campaign,
            json!({"recipient_id": ALICE, "html": html, "tracking": "individual"}),
        )
        .await;
        assert_eq!(m["tracking"], want);
        app.settled().await;
        assert!(!all_stored_text(&app.db_path()).join("\n").contains(ALICE));
    }
}
