//! The click map in the real browser: the campaign's template shown in a sandboxed frame, each
//! tracked link labelled with its readers and their share; the mail's script does not run and its
//! remote image is not fetched, framed or opened on its own.

use crate::browser::Browser;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test]
async fn the_click_map_marks_each_link_and_runs_nothing_from_the_mail() {
    let app = TestApp::spawn().await;
    let (port, fetched) = counting_listener().await;
    let template = format!(
        "<!doctype html><html><head><title>Spring sale</title></head>\
         <body style=\"margin:0;background:#f1f5f9;font-family:Helvetica,Arial,sans-serif\">\
         <table role=\"presentation\" width=\"560\" align=\"center\" style=\"background:#fff;margin:24px auto\">\
         <tr><td style=\"padding:24px\">\
         <h1 style=\"font-family:Georgia,serif;color:#0f172a\">Spring sale</h1>\
         <img src=\"http://127.0.0.1:{port}/banner.png\" alt=\"\" width=\"512\" height=\"10\">\
         <p style=\"color:#334155\">Fresh colours for the new season, and everything from last year at half price until Sunday.</p>\
         <p><a href=\"https://shop.example.com/new\" style=\"display:inline-block;background:#16a34a;color:#fff;\
         padding:10px 18px;border-radius:4px;text-decoration:none\">See the new arrivals</a></p>\
         <p><a href=\"https://shop.example.com/sale\" style=\"color:#16a34a\">Everything at half price</a></p>\
         <p style=\"font-size:12px;color:#64748b\">Questions? <a href=\"mailto:help@shop.example.com\">Write to us</a>.</p>\
         </td></tr></table>\
         <script>document.title = 'the mail ran a script'</script></body></html>"
    );
    let r = app
        .api_post(
            "/api/campaigns",
            &json!({"name": "Spring sale", "html": template}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let campaign = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let sent_at = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let body: Vec<Value> = ["a", "b", "c", "d"]
        .iter()
        .map(|r| json!({"recipient_id": format!("{r}@example.com"), "sent_at": sent_at}))
        .collect();
    let r = app
        .api_post(&format!("/api/campaigns/{campaign}/messages"), &json!(body))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let messages: Value = r.json().await.unwrap();
    // Three readers click the first link, one the second.
    for (i, link) in [(0, 0), (1, 0), (2, 0), (3, 1)] {
        let url = click_urls(messages["messages"][i]["html"].as_str().unwrap()).remove(link);
        assert!(app.hit(&url, CHROME).await.is_redirection());
    }
    app.settled().await;

    let browser = Browser::start().await;
    browser.goto(&app.url("/login")).await;
    browser.fill("#secret", &app.admin_token).await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for("document.querySelector('h1')", Duration::from_secs(10))
        .await
        .unwrap();
    browser
        .goto(&app.url(&format!("/campaigns/{campaign}")))
        .await;
    let frame = "document.querySelector('iframe.click-map')";
    // A sandbox that grants the mail nothing: no scripts, no same origin, no navigation.
    browser
        .wait_for(
            &format!("{frame}.getAttribute('sandbox') === ''"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    // (Re)load the frame and wait for it: the mail's image would have been asked for by then.
    let loaded = format!(
        "new Promise(done => {{ const f = {frame}; f.addEventListener('load', () => done(true)); \
         f.src = f.src; }})"
    );
    assert_eq!(browser.eval(&loaded).await, json!(true));

    // Opened on its own (the frame's document is out of the page's reach: another origin).
    browser.set_window_size(640, 600).await;
    browser
        .goto(&app.url(&format!("/campaigns/{campaign}/click-map")))
        .await;
    assert_eq!(
        browser.title().await,
        "Spring sale",
        "the mail's script did not run"
    );
    let shot = if std::env::var_os("MAILBEACON_UPDATE_DOCS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/click-map.png")
    } else {
        app.dir.path().join("click-map.png")
    };
    browser.screenshot(&shot).await;
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        0,
        "nothing is fetched from elsewhere"
    );

    // What the frame shows: each tracked link's readers and share, and the mail's own text.
    let page = app
        .dashboard_page(
            &app.admin_token,
            &format!("/campaigns/{campaign}/click-map"),
        )
        .await;
    assert_eq!(page.0, StatusCode::OK);
    let html = page.1;
    assert!(html.contains("content:\"3 readers \\00B7  75%\""), "{html}");
    assert!(html.contains("content:\"1 reader \\00B7  25%\""), "{html}");
    assert!(
        html.contains("Everything at half price") && html.contains("mailto:help@shop.example.com")
    );
    assert!(
        !html.contains("https://shop.example.com/sale"),
        "a link in the map leads nowhere"
    );
}
