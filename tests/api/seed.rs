//! The seeded campaign several report tests share: user agents of readers and machines, and a
//! mix of their opens and clicks sent over HTTP.

use crate::helpers::{CHROME, TestApp, click_urls};
use reqwest::StatusCode;

/// Apple Mail Privacy Protection's prefetch announces itself with this bare agent.
pub const APPLE_MPP: &str = "Mozilla/5.0";
pub const GMAIL_PROXY: &str =
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
pub const SCRIPT: &str = "python-requests/2.32.3";

/// What [`seed`] sent, to check reports against.
#[derive(Debug, Default)]
pub struct Seeded {
    pub sent: i64,
    pub opens: i64,
    pub unique_opens: i64,
    pub reader_opens: i64,
    pub reader_unique_opens: i64,
    pub clicks: i64,
    pub unique_clicks: i64,
    pub reader_clicks: i64,
    pub link1_clicks: i64,
    pub link2_clicks: i64,
}

/// Registers `n` recipients (mail with two links, sent two hours ago) and loads their pixels and
/// links over HTTP, 32 at a time: recipient i reads in Chrome and clicks link 1 (i % 4 == 0), is
/// prefetched by Apple (1), is fetched twice through Gmail's proxy (2), or does nothing (3); every
/// fifth recipient's link 2 is also followed by a script.
pub async fn seed(app: &TestApp, campaign: i64, n: usize) -> Seeded {
    let html = "<p><a href=\"https://shop.example.com/sale\">Sale</a> \
                <a href=\"https://shop.example.com/help\">Help</a></p>";
    let rids: Vec<String> = (0..n).map(|i| format!("seed-{i}@example.com")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let mut messages = Vec::new();
    for chunk in refs.chunks(1000) {
        messages.extend(app.register_sent(campaign, chunk, html, 2).await);
    }
    let mut want = Seeded {
        sent: n as i64,
        ..Seeded::default()
    };
    // Scripts come after the readers: a reader's click right after a script's click on another
    // link would be (rightly) taken for a scanner's burst.
    let mut requests: Vec<(String, &'static str)> = Vec::new();
    let mut scripts: Vec<(String, &'static str)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let pixel = m["pixel_url"].as_str().unwrap().to_string();
        let links = click_urls(m["html"].as_str().unwrap());
        match i % 4 {
            0 => {
                requests.push((pixel, CHROME));
                requests.push((links[0].clone(), CHROME));
                want.opens += 1;
                want.unique_opens += 1;
                want.reader_opens += 1;
                want.reader_unique_opens += 1;
                want.clicks += 1;
                want.unique_clicks += 1;
                want.reader_clicks += 1;
                want.link1_clicks += 1;
            }
            1 => {
                requests.push((pixel, APPLE_MPP));
                want.opens += 1;
                want.unique_opens += 1;
            }
            2 => {
                requests.push((pixel.clone(), GMAIL_PROXY));
                requests.push((pixel, GMAIL_PROXY));
                want.opens += 2;
                want.unique_opens += 1;
                want.reader_opens += 2;
                want.reader_unique_opens += 1;
            }
            _ => {}
        }
        if i % 5 == 0 {
            scripts.push((links[1].clone(), SCRIPT));
            want.clicks += 1;
            want.link2_clicks += 1;
            if i % 4 != 0 {
                want.unique_clicks += 1;
            }
        }
    }
    send_all(app, requests).await;
    send_all(app, scripts).await;
    // Stored, not only answered: callers read the database directly.
    app.settled().await;
    want
}

/// Sends the requests by 32 workers, each its share in order (a message's requests are next to
/// each other, so one worker sends them in order unless they straddle two shares).
pub async fn send_all(app: &TestApp, requests: Vec<(String, &'static str)>) {
    let mut set = tokio::task::JoinSet::new();
    let per_worker = requests.len().div_ceil(32).max(1);
    for chunk in requests.chunks(per_worker) {
        let chunk = chunk.to_vec();
        let client = app.client.clone();
        set.spawn(async move {
            for (url, ua) in chunk {
                let r = client
                    .get(&url)
                    .header(reqwest::header::USER_AGENT, ua)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success() || r.status() == StatusCode::FOUND);
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
}
