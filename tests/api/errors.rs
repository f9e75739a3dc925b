//! Bad input gets a specific answer: HTTP 4xx with a JSON body naming the problem, or a CLI
//! message and a non-zero exit.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

async fn error_of(r: reqwest::Response) -> (StatusCode, String, String) {
    let status = r.status();
    assert_eq!(
        r.headers()[CONTENT_TYPE],
        "application/json",
        "errors are JSON"
    );
    let body: Value = r.json().await.unwrap();
    let code = body["error"]["code"].as_str().unwrap().to_string();
    let message = body["error"]["message"].as_str().unwrap().to_string();
    (status, code, message)
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(&app.admin_token)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Sends the headers of a POST with a `len`-byte JSON body and the first megabyte of it, then
/// reads whatever the server answers.
async fn oversized_post(app: &TestApp, path: &str, len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
        app.admin_token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // The server may already have answered and closed; that is what is being tested.
    let _ = conn.write_all(&vec![b' '; 1024 * 1024]).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn api_input_errors_are_specific() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Errors").await;
    let messages = format!("/api/campaigns/{campaign}/messages");

    let (status, code, message) = error_of(
        post_raw(
            &app,
            "/api/campaigns",
            "application/json",
            b"{\"name\": ".to_vec(),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "bad_json")
    );
    assert!(message.contains("not valid JSON"), "{message}");

    let (status, code, message) = error_of(app.api_post("/api/campaigns", &json!({})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
    assert!(message.contains("missing field `name`"), "{message}");

    let (status, _, message) = error_of(
        app.api_post(&messages, &json!([{"html": "<p>x</p>"}]))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("recipient_id"), "{message}");

    let (status, code, message) = error_of(
        app.api_post(
            "/api/campaigns/999999/messages",
            &json!({"recipient_id": "a", "html": "<p>x</p>"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "campaign_not_found")
    );
    assert!(message.contains("999999"), "{message}");
    let (status, code, _) = error_of(app.api_get("/api/campaigns/999999/stats").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "campaign_not_found")
    );

    let (status, _, message) = error_of(
        app.api_post(
            &messages,
            &json!([{"recipient_id": "a", "html": "<p>fine</p>"}, {"recipient_id": "b", "html": "just words, no markup"}]),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message.contains("message 1") && message.contains("HTML"),
        "{message}"
    );
    // Nothing of a rejected call is registered.
    assert_eq!(app.stats(campaign).await["sent"], 0);

    let (status, _, message) =
        error_of(app.api_post(&messages, &json!({"recipient_id": "a"})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("template"), "{message}");

    // 50 MB: refused from the declared length, before the body is read. A raw connection, as
    // the server answers early and closes, which HTTP client libraries report as a broken pipe.
    let answer = oversized_post(&app, &messages, 50 * 1024 * 1024).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(
        answer.contains("body_too_large") && answer.contains("larger than"),
        "{answer}"
    );

    let (status, code, _) = error_of(
        post_raw(
            &app,
            "/api/campaigns",
            "text/plain",
            b"{\"name\":\"x\"}".to_vec(),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );

    let (status, code, _) = error_of(app.api_get("/api/campaigns/abc/stats").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_campaign_id")
    );
    let (status, code, _) = error_of(app.api_get("/api/events?limit=0").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_limit")
    );
    let (status, code, _) = error_of(app.api_get("/api/events?after=nonsense").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_cursor")
    );
    let (status, code, _) = error_of(app.api_get("/api/no-such-thing").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );

    // The server is still fine after all that.
    assert_eq!(app.stats(campaign).await["sent"], 0);
}

#[tokio::test]
async fn api_tokens_and_scopes() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/api/campaigns"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
    let (status, code, _) = error_of(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "missing_token")
    );

    let r = app
        .client
        .get(app.url("/api/campaigns"))
        .bearer_auth("mb_not-a-real-token")
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );

    let (ok, viewer, err) = cli(
        &app.db_url(),
        &["token", "create", "--scope", "viewer"],
        None,
    );
    assert!(ok, "{err}");
    let viewer = viewer.trim();
    let campaign = app.create_campaign("Scoped").await;
    let get = |path: String| app.client.get(app.url(&path)).bearer_auth(viewer).send();
    assert_eq!(
        get(format!("/api/campaigns/{campaign}/stats"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get("/api/campaigns".into()).await.unwrap().status(),
        StatusCode::OK
    );
    // Raw events carry recipient ids: not for viewers.
    let (status, code, _) = error_of(get("/api/events".into()).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let r = app
        .client
        .post(app.url("/api/campaigns"))
        .bearer_auth(viewer)
        .json(&json!({"name": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::FORBIDDEN);
}

#[test]
fn bad_settings_stop_the_cli_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("mb.db").display());
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .env("MAILBEACON_LOG", "warn")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} {env:?} must fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["serve", "--database", &db, "--listen", "nowhere"], &[]);
    assert!(err.contains("--listen"), "{err}");
    let err = run(&["serve", "--database", "mysql://x/y"], &[]);
    assert!(
        err.contains("--database") && err.contains("sqlite://"),
        "{err}"
    );
    let err = run(
        &["serve", "--database", &db, "--trusted-proxy", "10.0.0.0/33"],
        &[],
    );
    assert!(err.contains("--trusted-proxy"), "{err}");
    let err = run(
        &["serve", "--database", &db],
        &[("MAILBEACON_CLIENT_IP", "sometimes")],
    );
    assert!(
        err.contains("sometimes") && err.contains("truncate"),
        "{err}"
    );
    let err = run(
        &["serve", "--database", &db, "--public-url", "ftp://x"],
        &[],
    );
    assert!(err.contains("--public-url"), "{err}");
    let err = run(
        &["serve", "--database", &db, "--signing-key", "1:short"],
        &[],
    );
    assert!(err.contains("--signing-key"), "{err}");

    let config = dir.path().join("mailbeacon.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nmax-batch = \"lots\"\n").unwrap();
    let err = run(
        &[
            "serve",
            "--database",
            &db,
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        err.contains("mailbeacon.toml") && err.contains("max-batch"),
        "{err}"
    );
    std::fs::write(&config, "colour = \"blue\"\n").unwrap();
    let err = run(
        &[
            "serve",
            "--database",
            &db,
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert!(err.contains("colour"), "{err}");
    let err = run(
        &[
            "serve",
            "--database",
            &db,
            "--config",
            "/nonexistent/mb.toml",
        ],
        &[],
    );
    assert!(err.contains("/nonexistent/mb.toml"), "{err}");

    // A database path that cannot be created.
    let err = run(
        &[
            "campaign",
            "list",
            "--database",
            "sqlite:///nonexistent/dir/mb.db",
        ],
        &[],
    );
    assert!(err.contains("/nonexistent/dir/mb.db"), "{err}");
}

/// Writes `request` on a fresh connection and reads until the server closes it (or 10 s pass).
async fn raw_exchange(app: &TestApp, request: &[u8]) -> (String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut conn = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    conn.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slow_and_oversized_request_heads_are_cut_off() {
    let app = TestApp::spawn_with(&["--header-timeout", "1"]).await;

    // Slowloris: half a request line, then nothing. The server hangs up after the header timeout.
    let (answer, took) = raw_exchange(&app, b"GET /o/AAAA.gif HTTP/1.1\r\nHost: x\r\n").await;
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert!(!answer.contains("200 OK"), "{answer}");

    // 100 KB of headers: refused with 431, nothing read beyond the limit.
    let mut big = b"GET /o/AAAA.gif HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..1000 {
        big.extend_from_slice(format!("X-Padding-{i}: {}\r\n", "a".repeat(90)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    let (answer, _) = raw_exchange(&app, &big).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

    // The server is unharmed.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn api_requests_beyond_the_rate_limit_get_429_and_the_pixel_never_does() {
    let app = TestApp::spawn_with(&["--api-rate-limit", "2"]).await;
    let campaign = app.create_campaign("Limits").await;
    let msg = app.add_message(campaign, "r@example.com", "<p>x</p>").await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..40 {
        let r = app.api_get("/api/campaigns").await;
        statuses.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            let retry = r.headers()["retry-after"].to_str().unwrap().to_string();
            let body: serde_json::Value = r.json().await.unwrap();
            limited = Some((retry, body));
        }
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(
        (15..=22).contains(&ok),
        "a burst of about 20 passes: {statuses:?}"
    );
    let (retry, body) = limited.expect("some requests were limited");
    assert!(retry.parse::<u64>().unwrap() >= 1);
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2 a second"),
        "{body}"
    );
    for _ in 0..50 {
        let r = app
            .client
            .get(msg["pixel_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "the pixel has no rate limit");
    }
}

#[tokio::test]
async fn an_api_body_that_trickles_in_is_cut_off_with_408() {
    let app = TestApp::spawn_with(&["--body-timeout", "1"]).await;
    let head = format!(
        "POST /api/campaigns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na",
        app.admin_token
    );
    let (answer, took) = raw_exchange(&app, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert_eq!(app.api_get("/api/campaigns").await.status(), StatusCode::OK);
}
