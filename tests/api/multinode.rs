//! Several mailbeacon processes behind a load balancer share one PostgreSQL database and give
//! the answers one process would.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn two_processes_on_one_postgres_count_exactly() {
    let url = postgres_schema("twonodes");
    let a = TestApp::spawn_on(tempfile::tempdir().unwrap(), &url, &[], None).await;
    // The second process finds the schema migrated and the signing key made by the first.
    let b = TestApp::spawn_on(
        tempfile::tempdir().unwrap(),
        &url,
        &[],
        Some(a.admin_token.clone()),
    )
    .await;
    let campaign = a.create_campaign("Two nodes").await;
    let html = "<p><a href=\"https://shop.example.com/sale\">Sale</a> \
                <a href=\"https://shop.example.com/help\">Help</a></p>";
    let rids: Vec<String> = (0..300).map(|i| format!("node-{i}@example.com")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let messages = a.register_sent(campaign, &refs, html, 2).await;

    // Every message gets its pixel and its first link through both processes at once, so the
    // same message's events race each other in two group commits.
    let mut requests: Vec<(String, &'static str)> = Vec::new();
    let on_b = |u: &str| u.replacen(&a.base, &b.base, 1);
    for (i, m) in messages.iter().enumerate() {
        let pixel = m["pixel_url"].as_str().unwrap();
        let links = click_urls(m["html"].as_str().unwrap());
        requests.push((pixel.to_string(), CHROME));
        requests.push((on_b(pixel), CHROME));
        if i % 2 == 0 {
            requests.push((on_b(&links[0]), CHROME));
            requests.push((links[0].clone(), CHROME));
        }
        if i % 3 == 0 {
            requests.push((on_b(pixel), APPLE_MPP));
        }
    }
    let (pixels, clicks) = (300 + 300 + 100, 150 + 150);
    let mut set = tokio::task::JoinSet::new();
    for worker in 0..32 {
        // Interleaved shares: neighbouring requests (one message's) go out together.
        let share: Vec<(String, &'static str)> =
            requests.iter().skip(worker).step_by(32).cloned().collect();
        let client = a.client.clone();
        set.spawn(async move {
            let mut answered = (0, 0);
            for (url, ua) in share {
                let r = client
                    .get(&url)
                    .header(reqwest::header::USER_AGENT, ua)
                    .send()
                    .await
                    .unwrap();
                match r.status() {
                    StatusCode::OK => answered.0 += 1,
                    StatusCode::FOUND => answered.1 += 1,
                    other => panic!("{url}: {other}"),
                }
            }
            answered
        });
    }
    let (mut ok, mut found) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (o, f) = r.unwrap();
        ok += o;
        found += f;
    }
    assert_eq!((ok, found), (pixels, clicks));

    // Both processes give the same report, and it is exact.
    let report = |app: &TestApp| {
        let path = format!("/api/campaigns/{campaign}/report");
        let client = app.client.clone();
        let (url, token) = (app.url(&path), app.admin_token.clone());
        async move {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    a.settled().await;
    b.settled().await;
    let (ra, rb) = (report(&a).await, report(&b).await);
    assert_eq!(ra, rb);
    assert_eq!(ra["sent"], 300);
    assert_eq!(ra["opens"]["total"], pixels, "{ra}");
    assert_eq!(ra["opens"]["unique"], 300);
    assert_eq!(ra["clicks"]["total"], clicks);
    assert_eq!(ra["clicks"]["unique"], 150);
    // Readers: everyone loaded the pixel in Chrome; Apple's prefetch is machine activity.
    assert_eq!(ra["opens"]["unique_excluding_machine"], 300);
    assert_eq!(ra["opens"]["total_excluding_machine"], 600);
    assert_eq!(ra["clicks"]["unique_excluding_machine"], 150);

    // The event log holds each answered request once, ids in order, and the rollups agree with
    // it when rebuilt from scratch.
    let events = a.events(campaign).await;
    assert_eq!(events.len() as i64, pixels + clicks);
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64())
    );
    let (ok, out, err) = cli(&url, &["check"], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("rollups match the event log"), "{out}");
}

/// The test server's URL (`MAILBEACON_TEST_POSTGRES`, or the one CI runs).
fn test_server() -> String {
    std::env::var("MAILBEACON_TEST_POSTGRES")
        .unwrap_or_else(|_| mailbeacon::store::postgres::TEST_SERVER.into())
}

/// Runs SQL as the test server's superuser.
fn as_superuser(sql: String) {
    db_execute(&test_server(), &sql);
}

/// The test server's URL for another user, in a schema of its own.
fn as_role(role: &str, schema: &str) -> String {
    let server = test_server();
    let (scheme, rest) = server.split_once("://").unwrap();
    let host_and_db = rest.split_once('@').map_or(rest, |(_, h)| h);
    let host_and_db = host_and_db.split('?').next().unwrap();
    format!("{scheme}://{role}@{host_and_db}?options=-csearch_path%3D{schema}")
}

/// PostgreSQL goes away in the middle of a load (the server's role may no longer log in and its
/// connections are terminated) and comes back: pixels and clicks keep being answered (the journal
/// takes them), `/readyz` says degraded meanwhile, and once the journal is stored every answered
/// request is in the database exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_mid_load_loses_nothing_and_counts_nothing_twice() {
    let admin_url = postgres_schema("outage");
    let schema = admin_url.rsplit("%3D").next().unwrap().to_string();
    let role = format!("{schema}_role");
    as_superuser(format!(
        "CREATE ROLE {role} LOGIN; ALTER SCHEMA {schema} OWNER TO {role}"
    ));
    let url = as_role(&role, &schema);
    let app = TestApp::spawn_on(tempfile::tempdir().unwrap(), &url, &[], None).await;
    let campaign = app.create_campaign("Outage").await;
    let html = "<p><a href=\"https://shop.example.com/sale\">Sale</a></p>";
    let rids: Vec<String> = (0..200).map(|i| format!("out-{i}@example.com")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let messages = app.register_sent(campaign, &refs, html, 2).await;

    // 8 workers, 300 requests each, a distinct user agent per request so that each can be found
    // in the database; every fourth is a click.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for worker in 0..8usize {
        let client = app.client.clone();
        let done = done.clone();
        let targets: Vec<(String, bool)> = (0..300)
            .map(|n| {
                let m = &messages[(worker * 300 + n) % messages.len()];
                if n % 4 == 3 {
                    (click_urls(m["html"].as_str().unwrap())[0].clone(), true)
                } else {
                    (m["pixel_url"].as_str().unwrap().to_string(), false)
                }
            })
            .collect();
        set.spawn(async move {
            let mut answered = Vec::new();
            let mut refused = Vec::new();
            for (n, (url, click)) in targets.into_iter().enumerate() {
                let ua = format!("{CHROME} w{worker}-{n}");
                let r = client
                    .get(&url)
                    .header(reqwest::header::USER_AGENT, &ua)
                    .send()
                    .await
                    .unwrap();
                let want = if click {
                    StatusCode::FOUND
                } else {
                    StatusCode::OK
                };
                if r.status() == want {
                    answered.push(ua);
                } else {
                    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{url}");
                    refused.push(ua);
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Spread the load over a few seconds, so the outage falls in the middle of it.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            (answered, refused)
        });
    }
    let total = 8 * 300;
    let wait_for = |n: usize| {
        let done = done.clone();
        async move {
            while done.load(std::sync::atomic::Ordering::Relaxed) < n {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(total / 3).await;
    let r = role.clone();
    tokio::task::spawn_blocking(move || {
        as_superuser(format!(
            "ALTER ROLE {r} NOLOGIN;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{r}'"
        ))
    })
    .await
    .unwrap();
    // Counted from when the outage is in place (on a busy machine the load runs on meanwhile).
    let outage_from = done.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        outage_from + 600 < total,
        "the load ended before the outage"
    );
    wait_for(outage_from + 200).await;
    // Degraded, with events waiting in the journal (the store worker has met the outage by now,
    // or does within a few seconds).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = ready.json().await.unwrap();
        if body["reason"].as_str().unwrap().contains("journal") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    wait_for(outage_from + 500).await;
    let r = role.clone();
    tokio::task::spawn_blocking(move || as_superuser(format!("ALTER ROLE {r} LOGIN")))
        .await
        .unwrap();

    let (mut answered, mut refused) = (Vec::new(), Vec::new());
    while let Some(r) = set.join_next().await {
        let (a, f) = r.unwrap();
        answered.extend(a);
        refused.extend(f);
    }
    wait_until_ready(&app).await;
    let mut stored: std::collections::HashMap<String, usize> = Default::default();
    for e in app.events(campaign).await {
        *stored
            .entry(e["user_agent"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    println!(
        "{} answered, {} refused with 503, {} stored",
        answered.len(),
        refused.len(),
        stored.values().sum::<usize>()
    );
    assert!(
        answered.len() >= total * 9 / 10,
        "{} answered",
        answered.len()
    );
    assert!(answered.iter().all(|ua| stored.get(ua) == Some(&1)));
    assert!(stored.values().all(|n| *n == 1));
    assert!(stored.len() <= answered.len() + refused.len());
    let (ok, out, err) = cli(&url, &["check"], None);
    assert!(ok, "{out}{err}");
    as_superuser(format!("DROP SCHEMA {schema} CASCADE; DROP ROLE {role}"));
}

/// A fresh schema owned by a role of its own (so a test can take the role's rights away without
/// touching other tests); returns (schema, role, the role's database URL).
fn schema_with_role(label: &str) -> (String, String, String) {
    let admin_url = postgres_schema(label);
    let schema = admin_url.rsplit("%3D").next().unwrap().to_string();
    let role = format!("{schema}_role");
    as_superuser(format!(
        "CREATE ROLE {role} LOGIN; ALTER SCHEMA {schema} OWNER TO {role}"
    ));
    let url = as_role(&role, &schema);
    (schema, role, url)
}

/// Two processes started at the same moment on an empty schema: the migrations are applied once
/// (the other waits for the advisory lock), one signing key is made, and mail registered through
/// one is tracked by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_starting_together_migrate_once_and_share_one_key() {
    let url = postgres_schema("together");
    // Only the process that finds no API token makes one, so neither is told to expect one.
    let (mut a, mut b) = tokio::join!(
        TestApp::spawn_on(tempfile::tempdir().unwrap(), &url, &[], Some(String::new())),
        TestApp::spawn_on(tempfile::tempdir().unwrap(), &url, &[], Some(String::new())),
    );
    let tokens: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|app| app.stdout.iter())
        .filter_map(|l| l.split("keep it safe): ").nth(1))
        .map(str::to_string)
        .collect();
    assert_eq!(tokens.len(), 1, "one admin token is made: {tokens:?}");
    a.admin_token = tokens[0].clone();
    b.admin_token = tokens[0].clone();
    let said = |app: &TestApp, what: &str| {
        app.stdout
            .iter()
            .find(|l| l.starts_with(what))
            .cloned()
            .unwrap_or_default()
    };
    let migrations: Vec<String> = [&a, &b].iter().map(|app| said(app, "database:")).collect();
    assert_eq!(
        migrations
            .iter()
            .filter(|l| l.contains("(created, "))
            .count(),
        1,
        "{migrations:?}"
    );
    assert_eq!(
        migrations
            .iter()
            .filter(|l| l.contains("(0 migration(s) applied)"))
            .count(),
        1,
        "{migrations:?}"
    );
    let keys: Vec<String> = [&a, &b]
        .iter()
        .map(|app| said(app, "signing keys:"))
        .collect();
    assert_eq!(
        keys.iter()
            .filter(|l| l.contains("generated signing key 1"))
            .count(),
        1,
        "{keys:?}"
    );
    let campaign = a.create_campaign("Together").await;
    let m = a.add_message(campaign, "t@example.com", "<p>x</p>").await;
    let pixel = m["pixel_url"]
        .as_str()
        .unwrap()
        .replacen(&a.base, &b.base, 1);
    let r = b
        .client
        .get(&pixel)
        .header(reqwest::header::USER_AGENT, CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    b.settled().await;
    assert_eq!(a.stats(campaign).await["opens"]["total"], 1);
}

/// The database turns read-only under the server (the role's transactions are made read-only
/// and its connections renewed): pixels are still answered (the journal takes them), `/readyz`
/// says degraded; once writable again everything answered is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_postgres_database_keeps_answering_and_recovers() {
    let (schema, role, url) = schema_with_role("readonly");
    let app = TestApp::spawn_on(tempfile::tempdir().unwrap(), &url, &[], None).await;
    let campaign = app.create_campaign("Read-only").await;
    let rids: Vec<String> = (0..50).map(|i| format!("ro-{i}@example.com")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let messages = app.register_sent(campaign, &refs, "<p>x</p>", 2).await;
    let renew =
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'");
    let mut answered = Vec::new();
    for phase in 0..3 {
        match phase {
            1 => as_superuser(format!(
                "ALTER ROLE {role} SET default_transaction_read_only = on; {renew}"
            )),
            2 => as_superuser(format!(
                "ALTER ROLE {role} RESET default_transaction_read_only; {renew}"
            )),
            _ => {}
        }
        for n in 0..100 {
            let ua = format!("{CHROME} p{phase}-{n}");
            let r = app
                .client
                .get(messages[n % messages.len()]["pixel_url"].as_str().unwrap())
                .header(reqwest::header::USER_AGENT, &ua)
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::OK {
                answered.push(ua);
            }
        }
        if phase == 1 {
            // Degraded, and (once the store worker has tried the database again on a fresh
            // connection, within a few seconds) because it is read-only.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
                assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
                let body: serde_json::Value = ready.json().await.unwrap();
                let reason = body["reason"].as_str().unwrap().to_string();
                assert!(reason.contains("journal"), "{body}");
                if reason.contains("read-only") {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "{body}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
    assert!(answered.len() >= 295, "{} answered", answered.len());
    wait_until_ready(&app).await;
    let mut stored: std::collections::HashMap<String, usize> = Default::default();
    for e in app.events(campaign).await {
        *stored
            .entry(e["user_agent"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(answered.iter().all(|ua| stored.get(ua) == Some(&1)));
    assert!(stored.values().all(|n| *n == 1));
    drop(app);
    as_superuser(format!("DROP SCHEMA {schema} CASCADE; DROP ROLE {role}"));
}

/// TLS to PostgreSQL as the URL's `sslmode` says (rustls): with `require` every connection of the
/// process is encrypted (the server's `pg_stat_ssl` says so); `verify-full` accepts the server's
/// certificate (Debian's, for `localhost`) from its CA file for `localhost` and refuses it for
/// 127.0.0.1, saying why; `verify-full` without a CA file is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_use_tls_as_the_url_says() {
    let (schema, role, url) = schema_with_role("pgtls");
    let app = TestApp::spawn_on(
        tempfile::tempdir().unwrap(),
        &format!("{url}&sslmode=require"),
        &[],
        None,
    )
    .await;
    let campaign = app.create_campaign("TLS").await;
    let m = app
        .add_message(campaign, "tls@example.com", "<p>x</p>")
        .await;
    assert_eq!(
        app.hit(m["pixel_url"].as_str().unwrap(), CHROME).await,
        StatusCode::OK
    );
    app.settled().await;
    let admin = test_server();
    let connections = db_rows(
        &admin,
        &format!(
            "SELECT CASE WHEN s.ssl THEN 'tls' ELSE 'plain' END FROM pg_stat_activity a
             JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '{role}'"
        ),
    );
    assert!(!connections.is_empty());
    assert!(
        connections.iter().all(|r| r[0].as_deref() == Some("tls")),
        "{connections:?}"
    );
    drop(app);

    let ca = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let verified = format!("{url}&sslmode=verify-full&sslrootcert={ca}");
    let (ok, out, err) = cli(
        &verified.replace("@127.0.0.1", "@localhost"),
        &["check"],
        None,
    );
    assert!(ok, "{out}{err}");
    let (ok, _, err) = cli(&verified, &["check"], None);
    assert!(!ok && err.contains("certificate"), "{err}");
    let (ok, _, err) = cli(&format!("{url}&sslmode=verify-full"), &["check"], None);
    assert!(!ok && err.contains("needs sslrootcert"), "{err}");
    as_superuser(format!("DROP SCHEMA {schema} CASCADE; DROP ROLE {role}"));
}
