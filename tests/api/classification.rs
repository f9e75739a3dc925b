//! Classification over HTTP: reclassify and the reports, altered tokens, imported address lists,
//! the honeypot link, geography and link bursts. The labelled corpus is in labelled.rs.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::USER_AGENT;
use serde_json::{Value, json};

#[tokio::test]
async fn reclassify_recomputes_stored_events_and_the_reports_follow() {
    reclassify_and_the_reports_follow(false).await;
}

#[tokio::test]
async fn reclassify_recomputes_stored_events_and_the_reports_follow_on_postgres() {
    reclassify_and_the_reports_follow(true).await;
}

async fn reclassify_and_the_reports_follow(postgres: bool) {
    let app = TestApp::spawn_on_engine(postgres, "reclassify", &[]).await;
    let campaign = app.create_campaign("Reclassify").await;
    let html = "<p><a href=\"https://shop.example.com/\">shop</a></p>";
    let msgs = app
        .register_sent(campaign, &["r-reader", "r-apple", "r-script"], html, 1)
        .await;
    let get = |url: String, ua: &'static str| app.client.get(url).header(USER_AGENT, ua).send();
    assert!(
        get(msgs[0]["pixel_url"].as_str().unwrap().into(), CHROME)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert!(
        get(msgs[1]["pixel_url"].as_str().unwrap().into(), "Mozilla/5.0")
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let click = click_urls(msgs[2]["html"].as_str().unwrap()).remove(0);
    assert_eq!(
        get(click, "python-requests/2.32.3").await.unwrap().status(),
        StatusCode::FOUND
    );
    let db = app.db_url();
    let (code, _, _dir) = app.terminate();
    assert_eq!(code, Some(0));

    // As if older rules had called everything a reader (and the rollups had followed them).
    db_execute(&db, "UPDATE events SET class = 'human', reasons = ''");
    let (ok, out, err) = cli(&db, &["rebuild-rollups"], None);
    assert!(ok && out.contains("rollups rebuilt"), "{out} {err}");
    let stats = |db: &str| -> Value {
        let (ok, out, err) = cli(
            db,
            &["stats", "--campaign", &campaign.to_string(), "--json"],
            None,
        );
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    assert_eq!(stats(&db)["opened_by_readers"], 3);

    let (ok, out, err) = cli(
        &db,
        &[
            "reclassify",
            "--campaign",
            &campaign.to_string(),
            "--internal-recipient",
            "r-reader",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("reclassified 3 events") && out.contains("3 changed"),
        "{out}"
    );
    let s = stats(&db);
    assert_eq!(s["opened_by_readers"], 1, "{s}");
    assert_eq!(s["clicks"]["unique_excluding_machine"], 0, "{s}");
    assert_eq!(s["by_class"]["apple_mpp"], json!({"opens": 1, "clicks": 0}));
    assert_eq!(s["by_class"]["bot"], json!({"opens": 0, "clicks": 1}));

    let rows: Vec<Vec<Option<String>>> = db_rows(
        &db,
        "SELECT class, reasons, internal FROM events ORDER BY id",
    );
    let text = |row: [&str; 3]| row.map(|v| Some(v.to_string())).to_vec();
    assert_eq!(
        rows,
        [
            text(["human", "", "1"]),
            text(["apple_mpp", "ua:bare-mozilla", "0"]),
            text(["bot", "ua:crawler", "0"]),
        ]
    );
    // Running it again finds nothing to change.
    let (ok, out, _) = cli(
        &db,
        &["reclassify", "--internal-recipient", "r-reader"],
        None,
    );
    assert!(ok && out.contains("0 changed"), "{out}");
}

#[tokio::test]
async fn a_click_after_an_altered_token_of_the_same_message_is_a_scanner() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Probe").await;
    let html = "<p><a href=\"https://shop.example.com/\">shop</a></p>";
    let msgs = app
        .register_sent(campaign, &["probed", "reader"], html, 2)
        .await;
    let probed = click_urls(msgs[0]["html"].as_str().unwrap()).remove(0);
    let mut altered = probed.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let get = |url: String| app.client.get(url).header(USER_AGENT, CHROME).send();
    assert_eq!(get(altered).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(get(probed).await.unwrap().status(), StatusCode::FOUND);
    let reader = click_urls(msgs[1]["html"].as_str().unwrap()).remove(0);
    assert_eq!(get(reader).await.unwrap().status(), StatusCode::FOUND);

    let events = app.events(campaign).await;
    assert_eq!(events.len(), 2, "the refused request is not an event");
    assert_eq!(events[0]["recipient_id"], "probed");
    assert_eq!(events[0]["class"], "scanner");
    assert_eq!(
        events[0]["reasons"],
        "token:altered-before timing:no-open-before-click"
    );
    assert_eq!(events[1]["class"], "human");
}

#[tokio::test]
async fn an_imported_address_list_replaces_the_shipped_one() {
    let app = TestApp::spawn_with(&["--trusted-proxy", "127.0.0.1"]).await;
    let campaign = app.create_campaign("Import").await;
    let msgs = app.register_sent(campaign, &["r1"], "<p>hi</p>", 1).await;
    // An agent that names no browser (Apple Mail's): Google's proxy by address alone.
    let r = app
        .client
        .get(msgs[0]["pixel_url"].as_str().unwrap())
        .header(
            USER_AGENT,
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        )
        .header("x-forwarded-for", "192.0.2.50")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.events(campaign).await[0]["class"], "human");
    let (db, dir) = (app.db_url(), app.dir.path().to_path_buf());

    // Google's JSON, as downloaded, now says 192.0.2.0/24 is its image proxy.
    let file = dir.join("goog.json");
    std::fs::write(
        &file,
        r#"{"syncToken": "1", "creationTime": "2026-11-20T00:00:00", "prefixes": [{"ipv4Prefix": "192.0.2.0/24"}, {"ipv6Prefix": "2001:db8::/32"}]}"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (ok, out, err) = cli(
        &db,
        &["ranges", "import", "--list", "google-image-proxy", file],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("google-image-proxy: 2 ranges imported (Google JSON)"),
        "{out}"
    );
    let (ok, out, _) = cli(&db, &["ranges", "list"], None);
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("google-image-proxy"))
        .unwrap();
    assert!(
        line.contains("2 ranges") && line.contains("imported"),
        "{line}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("apple-mpp-egress") && l.contains("shipped")),
        "{out}"
    );

    let (ok, out, err) = cli(&db, &["reclassify"], None);
    assert!(ok && out.contains("1 changed"), "{out}{err}");
    let stats = app.stats(campaign).await;
    assert_eq!(stats["by_class"]["gmail_proxy"]["opens"], 1, "{stats}");

    // Mistakes are named.
    let (ok, _, err) = cli(&db, &["ranges", "import", "--list", "google", file], None);
    assert!(
        !ok && err.contains("unknown list") && err.contains("google-image-proxy"),
        "{err}"
    );
    let bad = dir.join("bad.txt");
    std::fs::write(&bad, "192.0.2.0/24\n300.1.1.1\n").unwrap();
    let (ok, _, err) = cli(
        &db,
        &[
            "ranges",
            "import",
            "--list",
            "apple-network",
            bad.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        !ok && err.contains("line 2") && err.contains("300.1.1.1"),
        "{err}"
    );

    let (ok, out, _) = cli(
        &db,
        &["ranges", "reset", "--list", "google-image-proxy"],
        None,
    );
    assert!(ok && out.contains("shipped list applies again"), "{out}");
}

#[tokio::test]
async fn the_hidden_honeypot_link_catches_machines() {
    let app = TestApp::spawn_with(&["--honeypot-link"]).await;
    let campaign = app.create_campaign("Honeypot").await;
    let html = "<html><body><a href=\"https://shop.example.com/\">shop</a></body></html>";
    let msgs = app.register_sent(campaign, &["r1"], html, 1).await;
    let html = msgs[0]["html"].as_str().unwrap();
    let urls = click_urls(html);
    assert_eq!(urls.len(), 2, "the real link and the hidden one: {html}");
    assert!(html.contains("aria-hidden=\"true\""), "{html}");
    let r = app
        .client
        .get(&urls[1])
        .header(USER_AGENT, CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["location"], format!("{}/", app.base));
    let events = app.events(campaign).await;
    assert_eq!(events[0]["class"], "scanner");
    assert!(
        events[0]["reasons"]
            .as_str()
            .unwrap()
            .starts_with("honeypot:followed"),
        "{}",
        events[0]
    );
}

#[tokio::test]
async fn geography_comes_from_the_users_mmdb_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("test-city.mmdb");
    crate::mmdb::write_city_db(
        &db,
        &[
            crate::mmdb::GeoEntry {
                network: "81.2.69.0/24",
                country: "GB",
                region: Some("ENG"),
            },
            crate::mmdb::GeoEntry {
                network: "2001:db8::/32",
                country: "DE",
                region: Some("BY"),
            },
        ],
    );
    let app = TestApp::spawn_in(
        dir,
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--geoip",
            db.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(
        app.stdout
            .iter()
            .any(|l| l.starts_with("geography: ") && l.contains("GeoIP2-City")),
        "{:?}",
        app.stdout
    );
    let campaign = app.create_campaign("Geo").await;
    let msgs = app
        .register_sent(campaign, &["uk", "de", "nowhere"], "<p>hi</p>", 1)
        .await;
    for (msg, ip) in msgs
        .iter()
        .zip(["81.2.69.142", "2001:db8::7", "203.0.113.9"])
    {
        let r = app
            .client
            .get(msg["pixel_url"].as_str().unwrap())
            .header("x-forwarded-for", ip)
            .header(USER_AGENT, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let events = app.events(campaign).await;
    let place = |i: usize| {
        (
            events[i]["country"].clone(),
            events[i]["region"].clone(),
            events[i]["client_ip"].clone(),
        )
    };
    // Looked up from the full address; stored beside the truncated one.
    assert_eq!(place(0), (json!("GB"), json!("ENG"), json!("81.2.69.0")));
    assert_eq!(place(1), (json!("DE"), json!("BY"), json!("2001:db8::")));
    assert_eq!(place(2), (Value::Null, Value::Null, json!("203.0.113.0")));

    // A file that is not a database stops start-up with a message naming it.
    let bad = app.dir.path().join("not.mmdb");
    std::fs::write(&bad, "hello").unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &app.db_url(),
            "--geoip",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--geoip") && err.contains("not.mmdb"), "{err}");
}

#[tokio::test]
async fn clicking_every_link_at_once_is_a_scanner_burst() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Burst").await;
    let html = "<p><a href=\"https://x.example.com/1\">1</a> <a href=\"https://x.example.com/2\">2</a> \
                <a href=\"https://x.example.com/3\">3</a></p>";
    let msgs = app.register_sent(campaign, &["r1"], html, 1).await;
    for url in click_urls(msgs[0]["html"].as_str().unwrap()) {
        let r = app
            .client
            .get(url)
            .header(USER_AGENT, CHROME)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
    }
    let events = app.events(campaign).await;
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["class"].as_str().unwrap(), e["reasons"].as_str().unwrap()))
        .collect();
    // The first click looked like a reader's until the second came; the writer relabels it.
    assert_eq!(
        got,
        [
            ("scanner", "burst:links"),
            ("scanner", "burst:links timing:no-open-before-click"),
            ("scanner", "burst:links timing:no-open-before-click"),
        ]
    );
}
