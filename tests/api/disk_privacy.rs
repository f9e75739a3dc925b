//! What the privacy review found on disk and in stored data: file modes, what an erasure leaves,
//! what anonymous messages keep, what forged tokens may write.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// A recipient id that begins like the name anonymous messages are stored under would be taken
/// for one (no consent check, no recipient to erase): refused at registration.
#[tokio::test]
async fn the_anonymous_prefix_is_reserved_for_anonymous_messages() {
    let app = TestApp::spawn_with(&["--require-consent"]).await;
    let campaign = app.create_campaign("Reserved").await;
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &json!({"recipient_id": "anonymous:0123456789abcdef", "html": "<p>x</p>"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.text().await.unwrap();
    assert!(text.contains("may not begin with 'anonymous:'"), "{text}");
}

/// An opt-out's webhook notice names the recipient: erasing the recipient withdraws it, pending or
/// dead, whether it was queued with the recipient's name beside it or (as before) only in its
/// payload; the erasure's own notice is what is left to send.
#[tokio::test]
async fn erasure_withdraws_the_recipients_opt_out_notices() {
    for postgres in [false, true] {
        let app =
            TestApp::spawn_on_engine(postgres, "erasenotice", &["--webhook-allow-private"]).await;
        let (port, _) = counting_listener().await;
        let r = app
            .api_post(
                "/api/webhooks",
                &json!({"url": format!("http://127.0.0.1:{port}/hook")}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let hook = r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();
        for who in ["named", "legacy"] {
            let r = app
                .api_post(
                    &format!("/api/recipients/{who}%40example.com/opt-out"),
                    &json!({}),
                )
                .await;
            assert!(r.status().is_success(), "{}", r.status());
        }
        // A notice queued before notices named their recipient.
        db_execute(
            &app.db_url(),
            "UPDATE webhook_outbox SET recipient_id = NULL WHERE payload LIKE '%legacy@%'",
        );
        assert_eq!(notice_types(&app, hook).await, ["recipient.opted_out"; 2]);
        for who in ["named", "legacy"] {
            let r = app
                .client
                .delete(app.url(&format!("/api/recipients/{who}%40example.com")))
                .bearer_auth(&app.admin_token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let erased: serde_json::Value = r.json().await.unwrap();
            assert_eq!(erased["removed"]["webhook_notices"], 1, "{who}: {erased}");
        }
        assert_eq!(
            notice_types(&app, hook).await,
            ["recipient.erased"; 2],
            "postgres: {postgres}"
        );
        let left = db_rows(&app.db_url(), "SELECT payload FROM webhook_outbox");
        assert!(
            left.iter()
                .all(|r| r[0].as_deref().unwrap().contains("erased_at")),
            "{left:?}"
        );
    }
}

/// The database (signing keys, webhook secrets, personal data), its WAL and the journal are the
/// owner's alone: files 0600, directories 0700.
#[tokio::test]
async fn files_on_disk_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Private").await;
    let m = app.add_message(campaign, "f@example.com", "<p>x</p>").await;
    assert_eq!(
        app.hit(m["pixel_url"].as_str().unwrap(), CHROME).await,
        StatusCode::OK
    );
    app.settled().await;
    let mut seen = Vec::new();
    let mut dirs = vec![app.dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            let name = entry.file_name().to_string_lossy().to_string();
            if entry.file_type().unwrap().is_dir() {
                assert_eq!(mode, 0o700, "{name}");
                dirs.push(entry.path());
            } else {
                assert_eq!(mode, 0o600, "{name}");
            }
            seen.push(name);
        }
    }
    for want in ["mb.db", "mb.db-wal", "mailbeacon-journal"] {
        assert!(seen.iter().any(|n| n == want), "{want} not in {seen:?}");
    }
    assert!(seen.iter().any(|n| n.ends_with(".journal")), "{seen:?}");
}

/// After an erasure nothing of the recipient is left in the installation's files: not in the
/// database, not in old WAL frames, not in the journal (where their hits' agents were).
#[tokio::test]
async fn erasure_leaves_nothing_of_the_recipient_in_any_file() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Forget me").await;
    let erased = "forget-me-7f3a@example.com";
    let agent = "Mozilla/5.0 (ForgetMeAgent-91c2) Gecko/20100101 Firefox/133.0";
    let m = app.add_message(campaign, erased, "<p>x</p>").await;
    let other = app
        .add_message(campaign, "stays@example.com", "<p>x</p>")
        .await;
    for (msg, ua) in [(&m, agent), (&other, CHROME), (&m, agent)] {
        assert_eq!(
            app.hit(msg["pixel_url"].as_str().unwrap(), ua).await,
            StatusCode::OK
        );
    }
    app.settled().await;
    let found = |needle: &str| -> Vec<String> {
        let mut hits = Vec::new();
        let mut dirs = vec![app.dir.path().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(bytes) = std::fs::read(&path)
                    && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
                {
                    hits.push(path.display().to_string());
                }
            }
        }
        hits
    };
    assert!(!found(erased).is_empty() && !found(agent).is_empty());
    let r = app
        .client
        .delete(app.url(&format!("/api/recipients/{erased}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The journal's stored part goes once the store worker has looked (it is woken for it).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<String> = [erased, agent].iter().flat_map(|n| found(n)).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still on disk in {left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The rest of the data is still there.
    assert!(!found("stays@example.com").is_empty());
}

/// An anonymous message's events keep no address, agent string or headers (a proxy's `Via`, a
/// `From` address) that could point to the reader; an individual one's keep them.
#[tokio::test]
async fn anonymous_messages_keep_no_headers_of_their_readers() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Anonymous").await;
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &json!([
                {"recipient_id": "anon@example.com", "html": "<p>x</p>", "tracking": "anonymous"},
                {"recipient_id": "named@example.com", "html": "<p>x</p>"},
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let messages: serde_json::Value = r.json().await.unwrap();
    for m in messages["messages"].as_array().unwrap() {
        let r = app
            .client
            .get(m["pixel_url"].as_str().unwrap())
            .header(reqwest::header::USER_AGENT, CHROME)
            .header("Via", "1.1 proxy.reader-home.example")
            .header("From", "reader@home.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    app.settled().await;
    let rows = db_rows(
        &app.db_url(),
        "SELECT m.recipient_id, e.headers, e.user_agent, e.client_ip FROM events e
         JOIN messages m ON m.id = e.message_id ORDER BY m.recipient_id",
    );
    assert_eq!(rows.len(), 2);
    let (anonymous, named) = (&rows[0], &rows[1]);
    assert!(anonymous[0].as_deref().unwrap().starts_with("anonymous:"));
    assert_eq!(anonymous[1..], [None, None, None], "{anonymous:?}");
    assert!(
        named[1].as_deref().unwrap().contains("reader@home.example"),
        "{named:?}"
    );
}

/// A forged token (its message's id with a wrong signature) is noted on the message, as before,
/// but never written to the journal: a flood of them cannot fill it.
#[tokio::test]
async fn forged_tokens_are_noted_without_filling_the_journal() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Forged").await;
    let m = app
        .add_message(campaign, "forged@example.com", "<p>x</p>")
        .await;
    let pixel = m["pixel_url"].as_str().unwrap();
    let token = pixel.rsplit('/').next().unwrap().trim_end_matches(".gif");
    // A character of the signature, not of the message's id.
    let mut forged = token.as_bytes().to_vec();
    forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let agent = "ForgedTokenAgent/7.1";
    for _ in 0..200 {
        assert_eq!(
            app.hit(&app.url(&format!("/o/{forged}.gif")), agent).await,
            StatusCode::NOT_FOUND
        );
    }
    let ready: serde_json::Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["journal"]["pending_bytes"], 0, "{ready}");
    let journal = app.dir.path().join("mailbeacon-journal");
    for entry in std::fs::read_dir(&journal).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(agent.len()).any(|w| w == agent.as_bytes()));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let noted = db_count(
            &app.db_url(),
            "SELECT count(*) FROM messages WHERE first_failed_check_at IS NOT NULL",
        );
        if noted == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed check was never noted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The types of an endpoint's notices in the outbox, in order.
async fn notice_types(app: &TestApp, hook: i64) -> Vec<String> {
    let path = format!("/api/webhooks/{hook}/deliveries");
    let page: serde_json::Value = app.api_get(&path).await.json().await.unwrap();
    page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap().to_string())
        .collect()
}

/// With `--user-agent parsed` the agent string never reaches the disk: the journal holds it
/// sealed with a key only the running process has, the store worker still classifies with it
/// (a script's agent is taken for a bot, a browser's parsed), and the events keep only what was
/// parsed from it.
#[tokio::test]
async fn with_parsed_user_agents_the_journal_holds_no_agent_string() {
    let app = TestApp::spawn_with(&["--user-agent", "parsed"]).await;
    let campaign = app.create_campaign("Parsed").await;
    let script = "python-requests/2.31.0 (SealedAgentProbe)";
    let browser = format!("{CHROME} SealedAgentProbe");
    let a = app.add_message(campaign, "a@example.com", "<p>x</p>").await;
    let b = app.add_message(campaign, "b@example.com", "<p>x</p>").await;
    assert_eq!(
        app.hit(a["pixel_url"].as_str().unwrap(), script).await,
        StatusCode::OK
    );
    assert_eq!(
        app.hit(b["pixel_url"].as_str().unwrap(), &browser).await,
        StatusCode::OK
    );
    let journal = app.dir.path().join("mailbeacon-journal");
    let mut journal_bytes = 0;
    for entry in std::fs::read_dir(&journal).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        journal_bytes += bytes.len();
        assert!(!bytes.windows(16).any(|w| w == b"SealedAgentProbe"));
    }
    assert!(journal_bytes > 0);
    let events = app.events(campaign).await;
    let class_of = |recipient: &str| {
        let e = events
            .iter()
            .find(|e| e["recipient_id"] == recipient)
            .unwrap();
        assert!(e["user_agent"].is_null(), "{e}");
        (
            e["class"].as_str().unwrap().to_string(),
            e["client"].clone(),
        )
    };
    assert_eq!(class_of("a@example.com").0, "bot");
    let (class, client) = class_of("b@example.com");
    assert_eq!((class.as_str(), client.as_str()), ("human", Some("Chrome")));
}

/// An anonymous message's hits keep nothing that points to the reader even while they wait in
/// the journal: no agent string, no proxy header, no address; classification still reads them.
#[tokio::test]
async fn an_anonymous_messages_hits_reach_the_journal_without_the_reader() {
    let app = TestApp::spawn_with(&["--trusted-proxy", "127.0.0.1", "--client-ip", "full"]).await;
    let campaign = app.create_campaign("Anonymous journal").await;
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &json!({"recipient_id": "hidden@example.com", "html": "<p>x</p>", "tracking": "anonymous"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let m: serde_json::Value = r.json().await.unwrap();
    let pixel = m["messages"][0]["pixel_url"].as_str().unwrap().to_string();
    let r = app
        .client
        .get(&pixel)
        .header(
            reqwest::header::USER_AGENT,
            "python-requests/2.31.0 AnonProbe",
        )
        .header("Via", "1.1 anonprobe-proxy.example")
        .header("x-forwarded-for", "198.51.100.77")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let found = in_the_journal(&app, &["AnonProbe", "anonprobe-proxy", "198.51.100.77"]);
    assert!(found.is_empty(), "in the journal: {found:?}");
    let events = app.events(campaign).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["class"], "bot", "{}", events[0]);
    assert!(events[0]["client_ip"].is_null() && events[0]["user_agent"].is_null());
}

/// Which of `needles` some file of the journal directory holds.
fn in_the_journal<'a>(app: &TestApp, needles: &[&'a str]) -> Vec<&'a str> {
    let journal = app.dir.path().join("mailbeacon-journal");
    let files: Vec<Vec<u8>> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    needles
        .iter()
        .copied()
        .filter(|n| {
            files
                .iter()
                .any(|bytes| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
        })
        .collect()
}

/// A probe's hit with an agent, a proxy header and a forwarded address to look for on disk.
async fn probe(app: &TestApp, url: &str, agent: &str, address: &str) -> StatusCode {
    app.client
        .get(url)
        .header(reqwest::header::USER_AGENT, agent)
        .header("Via", format!("1.1 {agent}-proxy.example"))
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
        .status()
}

/// After an opt-out, the recipient's hits are answered and not stored; they reach the journal
/// without agent, headers or address, for mail registered before the opt-out and after it.
#[tokio::test]
async fn an_opted_out_recipients_hits_reach_the_journal_without_them() {
    let app = TestApp::spawn_with(&["--trusted-proxy", "127.0.0.1", "--client-ip", "full"]).await;
    let campaign = app.create_campaign("Opted out").await;
    let html = r#"<p><a href="https://shop.example/sale">Sale</a></p>"#;
    let before = app.add_message(campaign, "gone@example.com", html).await;
    let r = app
        .api_post("/api/recipients/gone@example.com/opt-out", &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let after = app.add_message(campaign, "gone@example.com", html).await;
    for (m, agent) in [(&before, "OptedOutEarlier"), (&after, "OptedOutLater")] {
        let pixel = m["pixel_url"].as_str().unwrap();
        assert_eq!(
            probe(&app, pixel, agent, "198.51.100.78").await,
            StatusCode::OK
        );
        let click = click_urls(m["html"].as_str().unwrap()).remove(0);
        assert_eq!(
            probe(&app, &click, agent, "198.51.100.78").await,
            StatusCode::FOUND
        );
    }
    let found = in_the_journal(&app, &["OptedOutEarlier", "OptedOutLater", "198.51.100.78"]);
    assert!(found.is_empty(), "in the journal: {found:?}");
    app.settled().await;
    assert!(app.events(campaign).await.is_empty());
}

/// `--require-consent`: once the recipient withdraws consent, the hits on mail sent before reach
/// the journal as an anonymous message's do, and are stored anonymous.
#[tokio::test]
async fn after_a_consent_withdrawal_hits_reach_the_journal_without_the_reader() {
    let app = TestApp::spawn_with(&[
        "--require-consent",
        "--trusted-proxy",
        "127.0.0.1",
        "--client-ip",
        "full",
    ])
    .await;
    let campaign = app.create_campaign("Withdrawn").await;
    let consent = "/api/recipients/kept@example.com/consent";
    let r = app.api_post(consent, &json!({"source": "form"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = app
        .add_message(campaign, "kept@example.com", "<p>x</p>")
        .await;
    assert_eq!(m["tracking"], "individual");
    let pixel = m["pixel_url"].as_str().unwrap();
    assert_eq!(
        probe(&app, pixel, "GivenProbe", "198.51.100.79").await,
        StatusCode::OK
    );
    app.settled().await;
    let r = app
        .client
        .delete(app.url(consent))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        probe(&app, pixel, "WithdrawnProbe", "198.51.100.80").await,
        StatusCode::OK
    );
    let found = in_the_journal(&app, &["WithdrawnProbe", "198.51.100.80"]);
    assert!(found.is_empty(), "in the journal: {found:?}");
    app.settled().await;
    let events = app.events(campaign).await;
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert!(
            e["recipient_id"]
                .as_str()
                .unwrap()
                .starts_with("anonymous:"),
            "{e}"
        );
        assert!(e["client_ip"].is_null() && e["user_agent"].is_null(), "{e}");
    }
}
