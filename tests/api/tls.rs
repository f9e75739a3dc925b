//! HTTPS served directly from certificate files, which are read again when they change.

use crate::helpers::*;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A self-signed certificate for 127.0.0.1 and its key, made with the openssl command.
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // An end-entity certificate (the client trusts it directly), not a CA.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command makes test certificates");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    (cert, key)
}

/// A client that trusts only this certificate.
fn trusting(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_from_the_files_and_a_renewed_certificate_is_picked_up() {
    let certs = tempfile::tempdir().unwrap();
    let (a_cert, a_key) = make_cert(certs.path(), "first");
    let (b_cert, b_key) = make_cert(certs.path(), "renewed");
    let (cert, key) = (certs.path().join("tls.crt"), certs.path().join("tls.key"));
    std::fs::copy(&a_cert, &cert).unwrap();
    std::fs::copy(&a_key, &key).unwrap();
    let app = TestApp::spawn_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    assert!(app.base.starts_with("https://"), "{}", app.base);
    let (first, renewed) = (trusting(&a_cert), trusting(&b_cert));

    // The pixel over HTTPS, its URL made with the https public URL.
    let campaign_response = first
        .post(app.url("/api/campaigns"))
        .bearer_auth(&app.admin_token)
        .json(&serde_json::json!({"name": "tls"}))
        .send()
        .await
        .unwrap();
    assert_eq!(campaign_response.status(), StatusCode::CREATED);
    let r = first
        .post(app.url("/api/campaigns/1/messages"))
        .bearer_auth(&app.admin_token)
        .json(&serde_json::json!({"recipient_id": "r", "html": "<p>x</p>"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let pixel = body["messages"][0]["pixel_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pixel.starts_with("https://127.0.0.1:"), "{pixel}");
    let r = first.get(&pixel).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), 43);
    assert!(renewed.get(app.url("/healthz")).send().await.is_err());
    // Plain HTTP on the TLS port gets no answer.
    let plain = app
        .client
        .get(app.url("/healthz").replacen("https://", "http://", 1))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));

    // A file that does not load is refused; the certificate in use stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    let metric = r#"mailbeacon_tls_reloads_total{result="kept"}"#;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = first.get(app.url("/metrics")).send().await.unwrap();
        if metrics.text().await.unwrap().contains(metric) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bad files were not tried"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = first.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok\n");

    // Renewal: new files in place (each written whole, as certbot's rename does).
    let swap = |from: &Path, to: &Path| {
        let tmp = to.with_extension("tmp");
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, to).unwrap();
    };
    swap(&b_key, &key);
    swap(&b_cert, &cert);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match renewed.get(app.url("/healthz")).send().await {
            Ok(r) if r.status() == StatusCode::OK => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "the renewed certificate was not picked up: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    // New connections see the new certificate.
    let again = trusting(&a_cert);
    assert!(again.get(app.url("/healthz")).send().await.is_err());
}

#[test]
fn tls_settings_that_cannot_work_stop_the_server_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = make_cert(dir.path(), "one");
    let (_, other_key) = make_cert(dir.path(), "two");
    let db = format!("sqlite://{}", dir.path().join("mb.db").display());
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let cert = cert.to_str().unwrap();
    let err = run(&["--tls-cert", cert]);
    assert!(err.contains("--tls-cert needs --tls-key"), "{err}");
    let err = run(&["--tls-cert", cert, "--tls-key", "/nonexistent/key.pem"]);
    assert!(err.contains("--tls-key /nonexistent/key.pem"), "{err}");
    let err = run(&["--tls-cert", cert, "--tls-key", other_key.to_str().unwrap()]);
    assert!(err.contains("does not fit --tls-cert"), "{err}");

    // Certificates from files and from ACME do not mix; ACME's settings say what is wrong.
    let key = dir.path().join("one.key");
    let (key, https) = (key.to_str().unwrap(), ["--https-listen", "127.0.0.1:0"]);
    let err = run(&[&https[..], &["--tls-cert", cert, "--tls-key", key]].concat());
    assert!(
        err.contains("--https-listen obtains certificates itself"),
        "{err}"
    );
    let err = run(&[&https[..], &["--acme-challenge", "dns-01"]].concat());
    assert!(
        err.contains("possible values: http-01, tls-alpn-01"),
        "{err}"
    );
    let err = run(&[&https[..], &["--resolve", "t.example.com"]].concat());
    assert!(err.contains("'t.example.com' is not NAME=ADDR"), "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let err = run(&["--https-listen", &taken]);
    assert!(
        err.contains(&format!("cannot listen for HTTPS on {taken}")),
        "{err}"
    );
}
