//! Automatic HTTPS (`--https-listen`): certificates from a local ACME server (Debian's pebble) for
//! two tracking domains, served by name, renewed when asked, shared by two processes on one
//! PostgreSQL database, and kept serving while the ACME server is down.

use crate::acme_server::AcmeServer;
use crate::helpers::*;
use crate::ports::unused_port;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A client that trusts only `root` and reaches the test names at 127.0.0.1.
fn trusting(root: &str) -> reqwest::Client {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let mut client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root.as_bytes()).unwrap()]);
    for name in ["a.test", "b.test", "late.test", "refused.test"] {
        client = client.resolve(name, loopback);
    }
    client
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The certificate (DER) served for `name` on `port`, when it chains to `root` for that name. A
/// client of its own each time: a resumed TLS session would show the certificate it began with.
async fn served(root: &str, name: &str, port: u16) -> Option<Vec<u8>> {
    let r = trusting(root)
        .get(format!("https://{name}:{port}/healthz"))
        .send()
        .await
        .ok()?;
    let info = r.extensions().get::<reqwest::tls::TlsInfo>()?;
    info.peer_certificate().map(<[u8]>::to_vec)
}

/// Polls `probe` until it gives a value (90 s at most: an order takes a few seconds).
async fn wait_for<T>(what: &str, acme: &AcmeServer, probe: impl AsyncFnMut() -> Option<T>) -> T {
    wait_up_to(Duration::from_secs(90), what, acme, probe).await
}

/// [`wait_for`] across a domain recheck (one a minute).
async fn wait_for_long<T>(
    what: &str,
    acme: &AcmeServer,
    probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    wait_up_to(Duration::from_secs(180), what, acme, probe).await
}

async fn wait_up_to<T>(
    most: Duration,
    what: &str,
    acme: &AcmeServer,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + most;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not after {most:?}\n{}",
            acme.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn readyz_certificate(app: &TestApp, name: &str) -> Value {
    let ready: Value = app.api_get("/readyz").await.json().await.unwrap();
    ready["certificates"]
        .as_array()
        .and_then(|certs| certs.iter().find(|c| c["domain"] == name).cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_ordered_served_by_name_renewed_and_shared_by_two_processes() {
    let (http_a, https_a, https_b) = (unused_port(), unused_port(), unused_port());
    // Pebble validates HTTP-01 on the first process's plain listener, whichever process ordered.
    let mut acme = AcmeServer::start(http_a, unused_port(), 3600).await;
    let settings = |https: u16| {
        [
            "--https-listen".to_string(),
            format!("127.0.0.1:{https}"),
            "--acme-directory".into(),
            acme.directory.clone(),
            "--acme-ca-file".into(),
            acme.ca_file.display().to_string(),
            "--acme-retry-base".into(),
            "1".into(),
            "--resolve".into(),
            "a.test=127.0.0.1,b.test=127.0.0.1,refused.test=127.0.0.1,late.test=127.0.0.1".into(),
        ]
    };
    let (a_settings, b_settings) = (settings(https_a), settings(https_b));
    let listen = format!("127.0.0.1:{http_a}");
    let mut a_args = vec!["--listen", listen.as_str()];
    a_args.extend(a_settings.iter().map(String::as_str));
    let a = TestApp::spawn_postgres("acme", &a_args).await;
    // A domain added before its name reaches here (nothing listens at its URL until the second
    // process starts): checked again every minute, it gets its certificate then.
    let r = a
        .api_post(
            "/api/tracking-domains",
            &json!({"domain": format!("https://late.test:{https_b}")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let late: Value = r.json().await.unwrap();
    assert!(late["check_error"].is_string(), "{late}");
    let b_args: Vec<&str> = b_settings.iter().map(String::as_str).collect();
    let b = TestApp::spawn_on(
        tempfile::tempdir().unwrap(),
        &a.database,
        &b_args,
        Some(a.admin_token.clone()),
    )
    .await;

    let root = acme.issuing_root().await;
    wait_for_long(
        "late.test's certificate after a recheck",
        &acme,
        async || served(&root, "late.test", https_b).await,
    )
    .await;
    assert_eq!(acme.issued(), 1, "{}", acme.logs());

    // Two tracking domains; their check reaches this installation over HTTPS before any
    // certificate exists. A third name does not resolve: no certificate is ordered for it. The
    // ACME server refuses a fourth.
    for name in ["a.test", "b.test", "down.test", "refused.test"] {
        let r = a
            .api_post(
                "/api/tracking-domains",
                &json!({"domain": format!("https://{name}:{https_a}")}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let added: Value = r.json().await.unwrap();
        assert_eq!(
            added["verified_at"].is_string(),
            name != "down.test",
            "{added}"
        );
    }

    // Each process serves each name its own certificate, from pebble's root, ordered once.
    let client = trusting(&root);
    let mut first = Vec::new();
    for name in ["a.test", "b.test"] {
        let on_a = wait_for(name, &acme, async || served(&root, name, https_a).await).await;
        let on_b = wait_for(name, &acme, async || served(&root, name, https_b).await).await;
        assert_eq!(
            on_a, on_b,
            "{name}: both processes serve the one certificate"
        );
        first.push(on_a);
    }
    assert_ne!(first[0], first[1], "one certificate per name");
    assert_eq!(acme.issued(), 3, "one order per name\n{}", acme.logs());
    assert!(readyz_certificate(&a, "down.test").await.is_null());
    let refused = wait_for("the refusal reported", &acme, async || {
        let c = readyz_certificate(&b, "refused.test").await;
        c["error"].is_string().then_some(c)
    })
    .await;
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains("the ACME server refused the order") && why.contains("forbidden by policy"),
        "{why}"
    );
    assert!(refused["not_after"].is_null() && refused["retry_at"].is_string());
    assert!(served(&root, "refused.test", https_a).await.is_none());
    assert_eq!(acme.issued(), 3);
    for name in ["a.test", "b.test"] {
        let metrics = a.api_get("/metrics").await.text().await.unwrap();
        let days = (metrics.lines())
            .find(|l| {
                l.starts_with(&format!(
                    "mailbeacon_certificate_expiry_days{{domain=\"{name}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        // Pebble's certificates here last an hour.
        assert!(
            days.is_some_and(|d| d > 0.0 && d <= 1.0 / 24.0 + 0.01),
            "{name}: {days:?}"
        );
    }

    // The pixel over HTTPS under a tracking domain.
    let campaign = a
        .api_post(
            "/api/campaigns",
            &json!({"name": "https", "tracking_domain": "a.test"}),
        )
        .await;
    assert_eq!(campaign.status(), StatusCode::CREATED);
    let id = campaign.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let message = a.add_message(id, "r1", "<p>Hi</p>").await;
    let pixel = message["pixel_url"].as_str().unwrap();
    assert!(
        pixel.starts_with(&format!("https://a.test:{https_a}/o/")),
        "{pixel}"
    );
    let r = client.get(pixel).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/gif");

    // Plain HTTP sends the dashboard on to HTTPS, never the pixel.
    let plain = pixel.replace(&format!("https://a.test:{https_a}"), &a.base);
    assert_eq!(a.hit(&plain, CHROME).await, StatusCode::OK);
    let r = a.client.get(a.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers()["location"],
        format!("https://127.0.0.1:{https_a}/").as_str()
    );

    // Told to renew (as when it nears its expiry): a new certificate on both processes.
    let (ok, out, err) = cli(&a.database, &["domains", "renew", "a.test"], None);
    assert!(ok, "{out}{err}");
    for port in [https_a, https_b] {
        wait_for("the renewed certificate", &acme, async || {
            served(&root, "a.test", port)
                .await
                .filter(|c| *c != first[0])
        })
        .await;
    }
    assert_eq!(acme.issued(), 4, "one more order\n{}", acme.logs());
    let (ok, _, err) = cli(&a.database, &["domains", "renew", "nowhere.test"], None);
    assert!(!ok && err.contains("nowhere.test is not listed"), "{err}");
    let r = a
        .api_post("/api/tracking-domains/down.test/renew", &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let why: Value = r.json().await.unwrap();
    assert!(
        why["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("down.test has no certificate yet")),
        "{why}"
    );

    // The ACME server goes away: the renewal fails, is reported and tried again later, and the
    // certificate in use keeps serving.
    acme.stop();
    let r = b
        .api_post("/api/tracking-domains/b.test/renew", &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let failing = wait_for("the failed renewal reported", &acme, async || {
        let c = readyz_certificate(&b, "b.test").await;
        (c["error"].is_string() && c["retry_at"].is_string()).then_some(c)
    })
    .await;
    assert!(failing["not_after"].is_string(), "{failing}");
    let why = failing["error"].as_str().unwrap();
    assert!(
        why.contains("the ACME server could not be reached"),
        "{why}"
    );
    for port in [https_a, https_b] {
        assert_eq!(
            served(&root, "b.test", port).await.as_ref(),
            Some(&first[1])
        );
    }
    // A removed domain's certificate is no longer served by either process.
    for step in ["retire", "remove"] {
        let (ok, out, err) = cli(&a.database, &["domains", step, "b.test"], None);
        assert!(ok, "{out}{err}");
    }
    for port in [https_a, https_b] {
        wait_for("b.test no longer served", &acme, async || {
            served(&root, "b.test", port).await.is_none().then_some(())
        })
        .await;
    }
    assert!(served(&root, "a.test", https_b).await.is_some());
    // Its expiry gauge stays (it cannot be removed) but says nothing: no alert counts it down.
    wait_for("b.test's expiry gauge blanked", &acme, async || {
        let metrics = a.api_get("/metrics").await.text().await.unwrap();
        metrics
            .lines()
            .any(|l| l == "mailbeacon_certificate_expiry_days{domain=\"b.test\"} NaN")
            .then_some(())
    })
    .await;

    let audit: Value = a
        .api_get("/api/audit?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let renewals: Vec<&Value> = (audit["entries"].as_array().unwrap().iter())
        .filter(|e| e["action"] == "renew_certificate")
        .collect();
    assert_eq!(renewals.len(), 2, "{audit}");
    let mut actors: Vec<&str> = renewals
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    actors.sort();
    assert_eq!(actors, ["cli", "token:1"], "{audit}");
}

/// Without port 80: the public URL's host (the dashboard's) is validated by a TLS handshake on
/// the HTTPS listener (SQLite). Its certificates last 30 s here, so it is renewed by itself
/// (when a third of its lifetime is left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_host_gets_its_certificate_by_tls_alpn_and_renews_it_before_expiry() {
    let https = unused_port();
    let acme = AcmeServer::start(unused_port(), https, 30).await;
    let listen = format!("127.0.0.1:{https}");
    let public = format!("https://a.test:{https}");
    let ca = acme.ca_file.display().to_string();
    let _app = TestApp::spawn_with(&[
        "--https-listen",
        &listen,
        "--public-url",
        &public,
        "--acme-directory",
        &acme.directory,
        "--acme-ca-file",
        &ca,
        "--acme-challenge",
        "tls-alpn-01",
    ])
    .await;
    let root = acme.issuing_root().await;
    let first = wait_for("a.test's certificate", &acme, async || {
        served(&root, "a.test", https).await
    })
    .await;
    wait_for("the renewed certificate", &acme, async || {
        served(&root, "a.test", https).await.filter(|c| *c != first)
    })
    .await;
    assert!(acme.issued() >= 2, "{}", acme.logs());
    // Nothing listens where HTTP-01 would be validated.
    assert!(
        !acme.logs().contains("validate w/ HTTP"),
        "validated by TLS-ALPN-01\n{}",
        acme.logs()
    );
}
