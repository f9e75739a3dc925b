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
