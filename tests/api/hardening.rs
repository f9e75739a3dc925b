//! Findings of the security and privacy review, each checked as an attacker or an auditor would.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A proxy named in the environment would connect to a host the webhook resolver's check never
/// sees: webhooks go straight to the receiver, whatever HTTP_PROXY and ALL_PROXY say.
#[tokio::test]
async fn webhooks_ignore_proxies_from_the_environment() {
    let (proxy, proxied) = counting_listener().await;
    let (receiver, received) = counting_listener().await;
    let proxy_url = format!("http://127.0.0.1:{proxy}");
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("mailbeacon.db").display());
    let app = TestApp::spawn_with_env(
        dir,
        &db,
        &["--webhook-allow-private"],
        None,
        &[
            ("HTTP_PROXY", &proxy_url),
            ("http_proxy", &proxy_url),
            ("ALL_PROXY", &proxy_url),
        ],
    )
    .await;
    let r = app
        .api_post(
            "/api/webhooks",
            &json!({"url": format!("http://127.0.0.1:{receiver}/hook")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let campaign = app.create_campaign("Proxy").await;
    let m = app.add_message(campaign, "p@example.com", "<p>x</p>").await;
    assert_eq!(
        app.hit(m["pixel_url"].as_str().unwrap(), CHROME).await,
        StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the receiver was never called ({} connection(s) to the proxy)",
            proxied.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(proxied.load(Ordering::SeqCst), 0);
}

/// Anyone who loads a pixel chooses its user agent: in a CSV export a formula there must reach
/// a spreadsheet as text (OWASP's leading quote), in the events list and the campaign export.
#[tokio::test]
async fn csv_exports_neutralise_formulas() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Formulas").await;
    let m = app.add_message(campaign, "+49 30 1234", "<p>x</p>").await;
    let formula = "=HYPERLINK(\"https://evil.example/\",\"open\")";
    assert_eq!(
        app.hit(m["pixel_url"].as_str().unwrap(), formula).await,
        StatusCode::OK
    );
    for path in [
        format!("/api/events?campaign={campaign}"),
        format!("/api/campaigns/{campaign}/events/export?format=csv"),
    ] {
        app.settled().await;
        let r = app
            .client
            .get(app.url(&path))
            .bearer_auth(&app.admin_token)
            .header(reqwest::header::ACCEPT, "text/csv")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let text = r.text().await.unwrap();
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        let headers = rows.headers().unwrap().clone();
        let row = rows.records().next().unwrap().unwrap();
        let cell = |name: &str| &row[headers.iter().position(|h| h == name).unwrap()];
        assert_eq!(cell("user_agent"), format!("'{formula}"), "{path}");
        assert_eq!(cell("recipient_id"), "'+49 30 1234", "{path}");
        assert_eq!(cell("kind"), "open", "{path}");
    }
}

/// Sign-in guesses are counted before they are checked, so twenty sent at once from one address
/// get no more than ten answers; a success from the same address (another credential) does not
/// clear the failures; IPv6 addresses count per /64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_guesses_are_counted_before_checking_and_never_forgiven() {
    let app = TestApp::spawn_with(&["--trusted-proxy", "127.0.0.1"]).await;
    // No dashboard password: each guess is checked at once (none is hashed), which is when
    // guesses counted only after their check would all pass the limit together.
    let attempt = |secret: String, from: String| {
        let (client, url) = (app.client.clone(), app.url("/login"));
        async move {
            client
                .post(url)
                .header("x-forwarded-for", from)
                .form(&[("secret", secret)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let guesses: Vec<_> = (0..20)
        .map(|i| tokio::spawn(attempt(format!("guess number {i}"), "198.51.100.20".into())))
        .collect();
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.unwrap());
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (10, 10), "{statuses:?}");

    // Nine failures, a success with the API token, one more failure: the limit is reached.
    let from = "198.51.100.21".to_string();
    for i in 0..9 {
        assert_eq!(
            attempt(format!("wrong {i}"), from.clone()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt(app.admin_token.clone(), from.clone()).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        attempt("wrong again".into(), from.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt(app.admin_token.clone(), from.clone()).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Ten failures spread over one /64, then any address in it waits; the next /64 does not.
    for i in 1..=10 {
        let addr = format!("2001:db8:5:6::{i:x}");
        assert_eq!(
            attempt(format!("v6 {i}"), addr).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let same = attempt(app.admin_token.clone(), "2001:db8:5:6:abcd::1".into()).await;
    assert_eq!(same, StatusCode::TOO_MANY_REQUESTS);
    let next = attempt(app.admin_token.clone(), "2001:db8:5:7::1".into()).await;
    assert_eq!(next, StatusCode::SEE_OTHER);
}

/// A large template instrumented for many recipients would come back as one answer of
/// gigabytes: refused before anything is built, saying how many fit.
#[tokio::test]
async fn a_registration_whose_answer_would_be_huge_is_refused_up_front() {
    let app = TestApp::spawn().await;
    let template = format!(
        "<p>{}</p><a href=\"https://shop.example.com/\">x</a>",
        "w".repeat(500_000)
    );
    let r = app
        .api_post("/api/campaigns", &json!({"name": "Huge", "html": template}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let campaign = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let recipients: Vec<serde_json::Value> = (0..10_000)
        .map(|i| json!({"recipient_id": format!("r{i}@example.com")}))
        .collect();
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &json!(recipients),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.text().await.unwrap();
    let fits: usize = text
        .split("register at most about ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!((100..140).contains(&fits), "{text}");
    assert_eq!(app.stats(campaign).await["sent"], 0);
    // As many as it says fit are registered.
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &json!(recipients[..fits]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// More messages than one call takes are refused from the array's count, read element by element
/// (not parsed whole first), with the limit named.
#[tokio::test]
async fn too_many_messages_in_one_call_are_refused_with_the_limit() {
    let app = TestApp::spawn_with(&["--max-recipients-per-call", "10"]).await;
    let campaign = app.create_campaign("Many").await;
    let messages: Vec<serde_json::Value> = (0..11)
        .map(|i| json!({"recipient_id": format!("m{i}"), "html": "<p>x</p>"}))
        .collect();
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &json!(messages),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.text().await.unwrap();
    assert!(text.contains("more than 10 messages in one call"), "{text}");
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &json!(messages[..10]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// `/metrics` passes `promtool check metrics` (Debian's `prometheus` package) with every family
/// the tracker, the store worker and webhook delivery write: described, typed, histograms.
#[tokio::test]
async fn metrics_pass_promtool() {
    let promtool = "/usr/bin/promtool";
    assert!(
        std::path::Path::new(promtool).exists(),
        "{promtool} is missing: apt-get install prometheus (bash .ci/test does it)"
    );
    let app =
        TestApp::spawn_with(&["--webhook-allow-private", "--webhook-retry-base", "0.05"]).await;
    let (port, _) = counting_listener().await;
    let r = app
        .api_post(
            "/api/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let campaign = app.create_campaign("Metrics").await;
    let html = "<p><a href=\"https://shop.example.com/\">x</a></p>";
    let m = app.add_message(campaign, "metrics@example.com", html).await;
    for url in [
        m["pixel_url"].as_str().unwrap().to_string(),
        click_urls(m["html"].as_str().unwrap())[0].clone(),
        app.url("/o/not-a-token.gif"),
    ] {
        app.client
            .get(url)
            .header(reqwest::header::USER_AGENT, CHROME)
            .send()
            .await
            .unwrap();
    }
    app.settled().await;
    // Until the webhook's first request has been tried and timed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("mailbeacon_webhook_request_seconds_bucket") {
            break text;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for family in [
        "mailbeacon_track_requests_total",
        "mailbeacon_track_refused_total",
        "mailbeacon_ingest_stored_total",
        "mailbeacon_ingest_commit_seconds",
        "mailbeacon_journal_group_size",
        "mailbeacon_journal_pending_events",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family}: {text}"
        );
    }
    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "{said}\n{text}"
    );
}

/// `--metrics-listen` moves `/metrics` to a listener of its own: the public one answers 404.
#[tokio::test]
async fn metrics_can_live_on_their_own_listener() {
    let app = TestApp::spawn_with(&["--metrics-listen", "127.0.0.1:0"]).await;
    let url = app
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("metrics: "))
        .unwrap_or_else(|| panic!("{:?}", app.stdout))
        .to_string();
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("# HELP mailbeacon_"));
    let other = url.replace("/metrics", "/api/campaigns");
    let r = app.client.get(&other).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// API tokens are listed, expire when told to, and a revoked one stops working at once, with
/// the dashboard sessions started with it.
#[tokio::test]
async fn api_tokens_are_listed_expire_and_are_revoked() {
    let app = TestApp::spawn().await;
    let db = app.db_url();
    let (ok, out, err) = cli(&db, &["token", "create", "--scope", "analyst"], None);
    assert!(ok, "{err}");
    let analyst = out.trim().to_string();
    let (ok, out, err) = cli(
        &db,
        &[
            "token",
            "create",
            "--scope",
            "viewer",
            "--expires-days",
            "30",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let viewer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(viewer["expires_at"].is_string(), "{viewer}");
    let viewer = viewer["token"].as_str().unwrap().to_string();
    let (ok, out, _) = cli(&db, &["token", "list", "--json"], None);
    assert!(ok);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let scopes: Vec<&str> = list.iter().map(|t| t["scope"].as_str().unwrap()).collect();
    assert_eq!(scopes, ["admin", "analyst", "viewer"]);
    assert!(list[2]["expires_at"].is_string() && list[1]["expires_at"].is_null());
    assert!(
        !out.contains(&analyst) && !out.contains(&viewer),
        "no token is shown again"
    );

    let status = |token: String| {
        let (client, url) = (app.client.clone(), app.url("/api/campaigns"));
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(analyst.clone()).await, StatusCode::OK);
    assert_eq!(status(viewer.clone()).await, StatusCode::OK);
    // The viewer's token runs out (its expiry moved to the past); a dashboard session started
    // with the analyst's ends when that token is revoked.
    db_execute(
        &db,
        "UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00Z' WHERE scope = 'viewer'",
    );
    assert_eq!(status(viewer).await, StatusCode::UNAUTHORIZED);
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[("secret", analyst.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let dashboard = || {
        let (client, url, cookie) = (app.client.clone(), app.url("/"), cookie.clone());
        async move {
            let r = client.get(url).header(reqwest::header::COOKIE, cookie);
            r.send().await.unwrap().status()
        }
    };
    assert_eq!(dashboard().await, StatusCode::OK);
    let id = list[1]["id"].as_i64().unwrap().to_string();
    let (ok, out, err) = cli(&db, &["token", "revoke", &id], None);
    assert!(ok && out.contains("revoked"), "{out}{err}");
    assert_eq!(status(analyst).await, StatusCode::UNAUTHORIZED);
    assert_eq!(dashboard().await, StatusCode::SEE_OTHER);
    let (ok, _, err) = cli(&db, &["token", "revoke", &id], None);
    assert!(!ok && err.contains("there is no API token"), "{err}");
}

/// `key retire` deletes an older signing key: after a restart, mail it signed answers 404 while
/// mail signed since the rotation is tracked; the key that signs cannot be retired.
#[tokio::test]
async fn a_retired_signing_key_no_longer_verifies() {
    let app = TestApp::spawn().await;
    let token = app.admin_token.clone();
    let db = app.db_url();
    let campaign = app.create_campaign("Keys").await;
    let old = app
        .add_message(campaign, "old@example.com", "<p>x</p>")
        .await;
    let (ok, out, err) = cli(&db, &["key", "rotate"], None);
    assert!(ok, "{out}{err}");
    let (_, _, dir) = app.terminate();
    let app = TestApp::spawn_in(dir, &[], Some(token.clone())).await;
    let new = app
        .add_message(campaign, "new@example.com", "<p>x</p>")
        .await;
    let (ok, _, err) = cli(&db, &["key", "retire", "2", "--yes"], None);
    assert!(!ok && err.contains("is the one that signs"), "{err}");
    let (ok, _, err) = cli(&db, &["key", "retire", "1"], None);
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, out, err) = cli(&db, &["key", "retire", "1", "--yes"], None);
    assert!(ok && out.contains("retired"), "{out}{err}");
    let (_, _, dir) = app.terminate();
    let app = TestApp::spawn_in(dir, &[], Some(token)).await;
    // Each start listens on a port of its own: the pixel's path on this one.
    let pixel = |m: &serde_json::Value| {
        let url = m["pixel_url"].as_str().unwrap();
        app.url(&format!("/o/{}", url.split_once("/o/").unwrap().1))
    };
    assert_eq!(app.hit(&pixel(&old), CHROME).await, StatusCode::NOT_FOUND);
    assert_eq!(app.hit(&pixel(&new), CHROME).await, StatusCode::OK);
}

/// An endpoint on the local network, registered while `--webhook-allow-private` was on, is not
/// called once the server runs without it: the delivery fails, saying why.
#[tokio::test]
async fn private_endpoints_are_not_called_once_the_flag_is_off() {
    let app = TestApp::spawn_with(&["--webhook-allow-private"]).await;
    let token = app.admin_token.clone();
    let (port, received) = counting_listener().await;
    let r = app
        .api_post(
            "/api/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hook = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let campaign = app.create_campaign("Private").await;
    let m = app.add_message(campaign, "p@example.com", "<p>x</p>").await;
    let path = m["pixel_url"]
        .as_str()
        .unwrap()
        .split_once("/o/")
        .unwrap()
        .1
        .to_string();
    let (_, _, dir) = app.terminate();
    let app = TestApp::spawn_in(dir, &[], Some(token)).await;
    assert_eq!(
        app.hit(&app.url(&format!("/o/{path}")), CHROME).await,
        StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status: serde_json::Value = app
            .api_get(&format!("/api/webhooks/{hook}"))
            .await
            .json()
            .await
            .unwrap();
        if status.to_string().contains("--webhook-allow-private") {
            break status;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(received.load(Ordering::SeqCst), 0, "{status}");
}
