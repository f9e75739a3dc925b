//! The command line against a real database, and against a server using the same database.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;

const MAIL: &str =
    "<html><body><p>Hi</p><a href=\"https://docs.example.org/start\">Start</a></body></html>";

#[tokio::test]
async fn cli_campaign_instrument_url_token_stats() {
    let app = TestApp::spawn().await;
    let db = app.db_url();
    // The CLI builds URLs from the same --public-url setting the server uses.
    let cli = |db: &str, args: &[&str], stdin| {
        let mut all = args.to_vec();
        all.extend(["--public-url", &app.base]);
        cli(db, &all, stdin)
    };

    let (ok, out, err) = cli(
        &db,
        &["campaign", "create", "--name", "Newsletter 12", "--json"],
        None,
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let campaign = created["id"].as_i64().unwrap().to_string();
    assert_eq!(created["name"], "Newsletter 12");
    let (ok, out, _) = cli(&db, &["campaign", "list"], None);
    assert!(ok && out.contains("Newsletter 12"), "{out}");

    // instrument reads stdin, writes the instrumented HTML to stdout.
    let (ok, html, err) = cli(
        &db,
        &["instrument", "--campaign", &campaign, "--recipient", "r-1"],
        Some(MAIL),
    );
    assert!(ok, "{err}");
    assert!(
        html.starts_with("<html><body><p>Hi</p><a href=\""),
        "{html}"
    );
    assert!(!html.contains("docs.example.org"), "{html}");
    let click = click_urls(&html).remove(0);
    assert!(
        click.starts_with(&app.base),
        "server and CLI agree on the public URL: {click}"
    );

    // ... or a file.
    let file = app.dir.path().join("mail.html");
    std::fs::write(&file, MAIL).unwrap();
    let (ok, html2, err) = cli(
        &db,
        &[
            "instrument",
            "--campaign",
            &campaign,
            "--recipient",
            "r-2",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_ne!(html, html2, "each recipient gets its own tokens");

    let (ok, pixel, err) = cli(
        &db,
        &["url", "open", "--campaign", &campaign, "--recipient", "r-3"],
        None,
    );
    assert!(ok, "{err}");
    let pixel = pixel.trim();
    assert!(
        pixel.starts_with(&app.base) && pixel.ends_with(".gif"),
        "{pixel}"
    );

    // The running server answers URLs the CLI made.
    assert_eq!(
        app.client.get(pixel).send().await.unwrap().status(),
        StatusCode::OK
    );
    let r = app.client.get(&click).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()[LOCATION], "https://docs.example.org/start");

    // The CLI reads the database: wait until the server has stored what it answered.
    app.settled().await;
    let (ok, out, err) = cli(&db, &["stats", "--campaign", &campaign, "--json"], None);
    assert!(ok, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["sent"], 3);
    assert_eq!(stats["opens"]["unique"], 1);
    assert_eq!(stats["clicks"]["unique"], 1);
    let (ok, out, _) = cli(&db, &["stats", "--campaign", &campaign], None);
    assert!(
        ok && out.contains("Newsletter 12") && out.contains("sent"),
        "{out}"
    );

    let (ok, out, err) = cli(
        &db,
        &["token", "create", "--scope", "analyst", "--json"],
        None,
    );
    assert!(ok, "{err}");
    let token: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(token["scope"], "analyst");
    let r = app
        .client
        .get(app.url("/api/events"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "analysts read raw events");

    // CLI errors: specific message, non-zero exit.
    let (ok, _, err) = cli(&db, &["stats", "--campaign", "4242"], None);
    assert!(!ok && err.contains("campaign 4242 does not exist"), "{err}");
    let (ok, _, err) = cli(
        &db,
        &["instrument", "--campaign", &campaign, "--recipient", "r-9"],
        Some("plain words"),
    );
    assert!(!ok && err.contains("HTML"), "{err}");
    let (ok, _, err) = cli(
        &db,
        &[
            "instrument",
            "--campaign",
            &campaign,
            "--recipient",
            "r-9",
            "/nonexistent.html",
        ],
        None,
    );
    assert!(!ok && err.contains("/nonexistent.html"), "{err}");
    let (ok, _, err) = cli(&db, &["campaign", "create", "--name", "  "], None);
    assert!(!ok && err.contains("--name"), "{err}");
}

#[tokio::test]
async fn key_rotation_keeps_old_mail_working() {
    let app = TestApp::spawn().await;
    let db = app.db_url();
    assert!(
        app.stdout
            .iter()
            .any(|l| l.contains("signing key") && l.contains("generated")),
        "{:?}",
        app.stdout
    );
    let campaign = app.create_campaign("Rotate").await;
    let old = app.add_message(campaign, "before", MAIL).await;

    let (ok, out, err) = cli(&db, &["key", "rotate"], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("signing key 2") && out.contains("Restart"),
        "{out}"
    );

    let token = app.admin_token.clone();
    let (code, _, dir) = app.terminate();
    assert_eq!(code, Some(0));
    let app = TestApp::spawn_in(dir, &[], Some(token)).await;
    let new = app.add_message(campaign, "after", MAIL).await;
    let old_pixel = old["pixel_url"].as_str().unwrap().to_string();
    let new_pixel = new["pixel_url"].as_str().unwrap().to_string();
    // Pixel URLs carry the key id first: different keys, same host.
    let old_pixel = old_pixel.replace(&old_pixel[..old_pixel.find("/o/").unwrap()], &app.base);
    assert_ne!(old_pixel, new_pixel);
    for pixel in [&old_pixel, &new_pixel] {
        assert_eq!(
            app.client.get(pixel).send().await.unwrap().status(),
            StatusCode::OK,
            "{pixel}"
        );
    }
    assert_eq!(app.stats(campaign).await["opens"]["unique"], 2);
}

/// The commands as the README uses them: a breakdown named alone, output into a pipe that
/// closes early (`stats | head`), a listen address whose port is not known yet.
#[test]
fn cli_commands_as_the_readme_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("mailbeacon.db").display());
    let (ok, _, err) = cli(&db, &["campaign", "create", "--name", "Spring sale"], None);
    assert!(ok, "{err}");
    let report = |name: &str| cli(&db, &["report", "--campaign", "1", "--report", name], None);
    let (ok, out, err) = report("client");
    assert!(ok && out.starts_with("value,opens,"), "{out}{err}");
    let (ok, _, err) = report("clients");
    assert!(!ok && err.contains("client, os, device"), "{err}");

    let mut stats = std::process::Command::new(BIN)
        .args(["stats", "--campaign", "1", "--database", &db])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(stats.stdout.take());
    let done = stats.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success() && err.is_empty(), "{err}");

    let args = ["--listen", "127.0.0.1:0", "url", "open", "--campaign", "1"];
    let (ok, out, err) = cli(&db, &[&args[..], &["--recipient", "bob"]].concat(), None);
    assert!(
        !ok && out.is_empty() && err.contains("--public-url"),
        "{out}{err}"
    );
}
