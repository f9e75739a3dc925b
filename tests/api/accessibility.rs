//! Every dashboard page, checked by axe-core in the real browser at a desktop's and a phone's
//! width: no serious or critical violation.

use crate::browser::Browser;
use crate::helpers::*;
use std::time::Duration;

#[tokio::test]
async fn every_dashboard_page_passes_axe_core_at_1280_and_390_px() {
    let app = TestApp::spawn().await;
    let first = app.create_campaign("Spring sale").await;
    seed(&app, first, 60).await;
    let second = app.create_campaign("Spring sale, subject B").await;
    seed(&app, second, 40).await;
    // Two tracking domains, one retired (the list's forms, and the Manage card's choice).
    for domain in ["t.spring.example", "old.spring.example"] {
        let r = app
            .api_post(
                "/api/tracking-domains",
                &serde_json::json!({ "domain": domain }),
            )
            .await;
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    }
    let r = app
        .client
        .patch(app.url("/api/tracking-domains/old.spring.example"))
        .bearer_auth(&app.admin_token)
        .json(&serde_json::json!({"retired": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    // The first gets a template (its page then has the click map) and a tracking domain, the
    // second is archived.
    let template = "<!doctype html><html lang=\"en\"><head><title>Spring sale</title></head><body>\
                    <h1>Spring sale</h1><p><a href=\"https://shop.example.com/\">Shop now</a></p>\
                    </body></html>";
    for (id, change) in [
        (
            first,
            serde_json::json!({"html": template, "subject": "Spring is here", "tags": ["spring"],
                "tracking_domain": "t.spring.example"}),
        ),
        (second, serde_json::json!({"archived": true})),
    ] {
        let r = app
            .client
            .patch(app.url(&format!("/api/campaigns/{id}")))
            .bearer_auth(&app.admin_token)
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    }

    let browser = Browser::start().await;
    let mut found = Vec::new();
    let mut check = async |path: &str, ready: &str| {
        for (width, height) in [(1280, 1000), (390, 844)] {
            browser.set_window_size(width, height).await;
            browser.goto(&app.url(path)).await;
            browser
                .wait_for(ready, Duration::from_secs(10))
                .await
                .unwrap();
            for violation in browser.serious_accessibility_violations().await {
                found.push(format!("{path} at {width} px: {violation}"));
            }
        }
    };
    check("/login", "document.querySelector('#secret')").await;
    browser.fill("#secret", &app.admin_token).await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for("document.querySelector('h1')", Duration::from_secs(10))
        .await
        .unwrap();
    check("/", "document.querySelector('table')").await;
    check("/?archived=only", "document.querySelector('table')").await;
    let campaign = format!("/campaigns/{first}");
    check(
        &campaign,
        "document.querySelector('[data-metric=sent]') && document.querySelector('iframe.click-map')",
    )
    .await;
    // (The click map's own document, the sender's mail, runs no script at all, axe-core's
    // included: the page around it is checked, the frame's title with it.)
    let segment = format!("/campaigns/{first}/segments/machine_only");
    check(&segment, "document.querySelector('table.segment')").await;
    let compare = format!("/compare?campaigns={first},{second}");
    check(&compare, "document.querySelector('h1')").await;
    assert!(found.is_empty(), "axe-core:\n{}", found.join("\n"));
}
