//! A campaign's segments over HTTP, on both engines: the counts add up to what was sent and agree
//! with the headline figures, each list names the right recipients in every format and pages,
//! and the per-recipient lists keep to the scopes and the audit log.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn segments_add_up_and_list_their_recipients() {
    segments(TestApp::spawn().await).await;
}

#[tokio::test]
async fn segments_add_up_and_list_their_recipients_on_postgres() {
    segments(TestApp::spawn_postgres("segments", &[]).await).await;
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let r = app.api_get(path).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn recipients(page: &Value) -> Vec<&str> {
    (page["recipients"].as_array().unwrap().iter())
        .map(|m| m["recipient_id"].as_str().unwrap())
        .collect()
}

async fn segments(app: TestApp) {
    let campaign = app.create_campaign("Segments").await;
    let html = r#"<p><a href="https://shop.example.com/a">A</a></p>"#;
    let names = ["reader", "prefetched", "images-off", "scanned", "quiet"];
    let messages = app.register_sent(campaign, &names, html, 2).await;
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &json!({"recipient_id": "unnamed@example.com", "html": html, "tracking": "anonymous"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let unnamed = r.json::<Value>().await.unwrap()["messages"][0].clone();
    let pixel = |m: &Value| m["pixel_url"].as_str().unwrap().to_string();
    let link = |m: &Value| click_urls(m["html"].as_str().unwrap()).remove(0);
    for (url, agent) in [
        (pixel(&messages[1]), APPLE_MPP),
        (pixel(&messages[0]), APPLE_MPP),
        (pixel(&messages[0]), CHROME),
        (link(&messages[2]), CHROME),
        (link(&messages[3]), SCRIPT),
        (pixel(&unnamed), CHROME),
    ] {
        let status = app.hit(&url, agent).await;
        assert!(
            status.is_success() || status.is_redirection(),
            "{url}: {status}"
        );
    }
    app.settled().await;

    let (status, counts) = get(&app, &format!("/api/campaigns/{campaign}/segments")).await;
    assert_eq!(status, StatusCode::OK, "{counts}");
    let n = |k: &str| counts[k].as_i64().unwrap();
    assert_eq!(
        [
            n("sent"),
            n("opened"),
            n("clicked"),
            n("machine_only"),
            n("not_opened"),
            n("untracked")
        ],
        [6, 2, 1, 2, 1, 1],
        "{counts}"
    );
    assert_eq!(
        n("opened") + n("machine_only") + n("not_opened") + n("untracked"),
        n("sent")
    );
    let stats = app.stats(campaign).await;
    assert_eq!(n("sent"), stats["sent"].as_i64().unwrap(), "{stats}");

    // Sent two hours ago, read now: hour 2 of the curve after sending.
    let (status, curve) = get(&app, &format!("/api/campaigns/{campaign}/since-send")).await;
    assert_eq!(status, StatusCode::OK, "{curve}");
    let hours = curve["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 73);
    let hour_2 = (
        hours[2]["first_reads"].as_i64(),
        hours[2]["first_clicks"].as_i64(),
    );
    assert_eq!(hour_2, (Some(2), Some(1)), "{curve}");
    let total: i64 = hours
        .iter()
        .map(|h| h["first_reads"].as_i64().unwrap())
        .sum();
    // The untracked message counts too (counted, naming no one); it was sent just now: hour 0.
    assert_eq!(hours[0]["first_reads"], 1, "{curve}");
    assert_eq!(total, n("opened") + 1);

    let list =
        |segment: &str, query: &str| format!("/api/campaigns/{campaign}/segments/{segment}{query}");
    let expected = [
        ("opened", vec!["reader", "images-off"]),
        ("clicked", vec!["images-off"]),
        ("machine_only", vec!["prefetched", "scanned"]),
        ("not_opened", vec!["quiet"]),
    ];
    for (segment, who) in expected {
        let (status, page) = get(&app, &list(segment, "")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(recipients(&page), who, "{segment}");
        assert_eq!(page["next_cursor"], Value::Null, "{segment}");
    }
    let (_, opened) = get(&app, &list("opened", "")).await;
    assert!(
        opened["recipients"][0]["first_read_at"].is_string(),
        "{opened}"
    );
    assert_eq!(opened["recipients"][1]["clicked"], true, "{opened}");

    // A page at a time.
    let (_, first) = get(&app, &list("machine_only", "?limit=1")).await;
    assert_eq!(recipients(&first), ["prefetched"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = get(
        &app,
        &list("machine_only", &format!("?limit=1&after={cursor}")),
    )
    .await;
    assert_eq!(recipients(&second), ["scanned"]);

    // CSV, for a resend.
    let csv = app
        .client
        .get(app.url(&list("not_opened", "?format=csv")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    let header = "message_id,recipient_id,sent_at,first_read_at,clicked,first_click_at,last_event_at,converted";
    assert_eq!(lines.next(), Some(header), "{text}");
    assert!(lines.next().unwrap().contains(",quiet,"), "{text}");
    assert_eq!(lines.next(), None, "{text}");

    // Bad input.
    for (segment, query, code) in [
        ("untracked", "", "invalid_segment"),
        ("openers", "", "invalid_segment"),
        ("opened", "?limit=0", "invalid_limit"),
        ("opened", "?after=x", "invalid_cursor"),
    ] {
        let (status, body) = get(&app, &list(segment, query)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{segment}{query}: {body}"
        );
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    let (status, _) = get(&app, "/api/campaigns/999/segments").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Viewers see the counts, not who is in them; every list read is audited.
    let (ok, viewer, err) = cli(
        &app.db_url(),
        &["token", "create", "--scope", "viewer"],
        None,
    );
    assert!(ok, "{err}");
    let as_viewer = |path: String| {
        let r = app
            .client
            .get(app.url(&path))
            .bearer_auth(viewer.trim())
            .send();
        async move { r.await.unwrap().status() }
    };
    let counts_path = format!("/api/campaigns/{campaign}/segments");
    assert_eq!(as_viewer(counts_path).await, StatusCode::OK);
    assert_eq!(as_viewer(list("opened", "")).await, StatusCode::FORBIDDEN);
    // The same on the dashboard, signed in with each token.
    let page = list("opened", "").replacen("/api", "", 1);
    let (status, _) = app.dashboard_page(viewer.trim(), &page).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, page) = app.dashboard_page(&app.admin_token, &page).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("<td>reader</td>") && page.contains("<td>images-off</td>"),
        "{page}"
    );
    assert!(!page.contains("<td>quiet</td>"), "{page}");
    let (_, audit) = get(&app, "/api/audit").await;
    let reads = (audit["entries"].as_array().unwrap().iter())
        .filter(|e| e["action"] == "read_segment")
        .count();
    assert_eq!(
        reads, 9,
        "four lists, opened again, two pages, the CSV, the dashboard's list: {audit}"
    );

    // The CLI gives the same.
    let (ok, out, err) = cli(
        &app.db_url(),
        &["segments", "--campaign", &campaign.to_string()],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains(": 6 sent"), "{out}");
    let opened = ["opened", "2", "(clicked", "1)"];
    assert!(
        out.lines().any(|l| l.split_whitespace().eq(opened)),
        "{out}"
    );
    let args = [
        "segments",
        "--campaign",
        &campaign.to_string(),
        "--list",
        "machine_only",
    ];
    let (ok, out, err) = cli(&app.db_url(), &args, None);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.contains(",prefetched,") && out.contains(",scanned,"),
        "{out}"
    );
    let args = [
        "segments",
        "--campaign",
        &campaign.to_string(),
        "--list",
        "untracked",
    ];
    let (ok, _, err) = cli(&app.db_url(), &args, None);
    assert!(!ok && err.contains("names no recipient"), "{err}");
}

#[tokio::test]
async fn providers_show_readers_per_mailbox_provider() {
    providers(TestApp::spawn().await).await;
}

#[tokio::test]
async fn providers_show_readers_per_mailbox_provider_on_postgres() {
    providers(TestApp::spawn_postgres("providers", &[]).await).await;
}

async fn providers(app: TestApp) {
    let campaign = app.create_campaign("Providers").await;
    let mut recipients: Vec<String> = (0..6).map(|i| format!("g{i}@gmail.com")).collect();
    recipients.extend((0..5).map(|i| format!("o{i}@Outlook.com")));
    recipients.extend([
        "a@small.example".into(),
        "b@small.example".into(),
        "crm-1".into(),
    ]);
    let names: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let messages = app.register_sent(campaign, &names, "<p>hi</p>", 2).await;
    // Four Gmail readers, one Outlook reader, one at the small domain; Apple's prefetch for the
    // rest of Outlook's is no reader.
    for (i, agent) in [
        (0, CHROME),
        (1, CHROME),
        (2, CHROME),
        (3, CHROME),
        (6, CHROME),
        (11, CHROME),
    ]
    .into_iter()
    .chain((7..11).map(|i| (i, APPLE_MPP)))
    {
        let status = app
            .hit(messages[i]["pixel_url"].as_str().unwrap(), agent)
            .await;
        assert!(status.is_success(), "{status}");
    }
    app.settled().await;
    let (status, body) = get(&app, &format!("/api/campaigns/{campaign}/providers")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows: Vec<(String, i64, i64)> = (body["providers"].as_array().unwrap().iter())
        .map(|r| {
            let n = |k: &str| r[k].as_i64().unwrap();
            (
                r["provider"].as_str().unwrap().to_string(),
                n("sent"),
                n("opened"),
            )
        })
        .collect();
    let want = [
        ("Gmail", 6, 4),
        ("Outlook/Hotmail", 5, 1),
        ("other", 2, 1),
        ("not an address", 1, 0),
    ];
    let want: Vec<(String, i64, i64)> = want
        .iter()
        .map(|(p, s, o)| (p.to_string(), *s, *o))
        .collect();
    assert_eq!(rows, want, "{body}");
    assert_eq!(
        body["providers"][0]["open_rate"].as_f64().unwrap(),
        4.0 / 6.0
    );
    let csv = app
        .client
        .get(app.url(&format!("/api/campaigns/{campaign}/providers?format=csv")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("provider,sent,opened,clicked,open_rate,click_rate\nGmail,6,4,0,"),
        "{csv}"
    );
}
