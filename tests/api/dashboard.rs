//! The dashboard in a real headless Chromium, and its sign-in, scopes and headers over HTTP.

use crate::browser::Browser;
use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE, USER_AGENT};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_analyst_reads_a_campaign_in_the_browser_and_sees_it_live() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Spring sale").await;
    let want = seed(&app, campaign, 2400).await;
    assert!(want.opens + want.clicks > 3000, "a few thousand events");

    let browser = Browser::start().await;
    browser
        .goto(&app.url(&format!("/campaigns/{campaign}")))
        .await;
    // Not signed in: the sign-in form, which comes back here afterwards.
    browser
        .wait_for("document.querySelector('#secret')", Duration::from_secs(10))
        .await
        .unwrap();
    browser.fill("#secret", &app.admin_token).await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for(
            "document.querySelector('[data-metric=sent]')",
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    // The headline figures on the page are the API's.
    let on_page: BTreeMap<String, Value> = serde_json::from_value(
        browser
            .eval(
                "Object.fromEntries([...document.querySelectorAll('[data-metric]')].map(e => \
                 [e.dataset.metric, e.dataset.value ?? (e.dataset.floor + ' ' + e.dataset.ceiling)]))",
            )
            .await,
    )
    .unwrap();
    let api: Value = app
        .api_get(&format!("/api/campaigns/{campaign}/report"))
        .await
        .json()
        .await
        .unwrap();
    let figure = |name: &str| on_page[name].as_str().unwrap().to_string();
    assert_eq!(figure("sent"), api["sent"].to_string());
    assert_eq!(
        figure("opened_by_readers"),
        api["opened_by_readers"].to_string()
    );
    assert_eq!(figure("opens_unique"), api["opens"]["unique"].to_string());
    assert_eq!(
        figure("clicks_unique_excluding_machine"),
        api["clicks"]["unique_excluding_machine"].to_string()
    );
    let machine = api["opens"]["total"].as_i64().unwrap()
        - api["opens"]["total_excluding_machine"].as_i64().unwrap();
    assert_eq!(figure("machine_opens"), machine.to_string());
    let machine_clicks = api["clicks"]["total"].as_i64().unwrap()
        - api["clicks"]["total_excluding_machine"].as_i64().unwrap();
    assert!(machine_clicks > 0, "the seed has scanners' clicks");
    assert_eq!(figure("machine_clicks"), machine_clicks.to_string());
    // The live feed says why an event is a machine's.
    let reasons = browser
        .eval("[...document.querySelectorAll('#live-feed .reasons')].map(e => e.textContent)")
        .await;
    assert!(
        reasons.as_array().is_some_and(|r| !r.is_empty()),
        "{reasons}"
    );
    assert_eq!(figure("sent"), want.sent.to_string());
    let (floor, ceiling) = (
        api["open_rate_range"]["floor"].as_f64().unwrap(),
        api["open_rate_range"]["ceiling"].as_f64().unwrap(),
    );
    assert_eq!(
        on_page["open_rate_range"],
        format!("{floor:.6} {ceiling:.6}")
    );
    // The visible text says the same, formatted.
    let shown = browser
        .text_of("[data-metric=open_rate_range] .value")
        .await;
    assert_eq!(
        shown,
        format!("{:.1}% – {:.1}%", floor * 100.0, ceiling * 100.0)
    );
    // Charts, tables and the heat map are there, drawn here (SVG), nothing from elsewhere.
    let counts = browser
        .eval(
            "[document.querySelectorAll('svg.chart rect').length, \
              document.querySelectorAll('svg.heatmap rect').length, \
              document.querySelectorAll('table.links tbody tr').length, \
              document.querySelectorAll('[data-breakdown]').length, \
              performance.getEntriesByType('resource').filter(r => !r.name.startsWith(location.origin)).length]",
        )
        .await;
    assert!(counts[0].as_i64().unwrap() >= 2, "{counts}");
    assert_eq!(counts[1], 168);
    assert_eq!(counts[2], 2);
    assert_eq!(counts[3], 5);
    assert_eq!(counts[4], 0, "no request left mailbeacon");

    // A new pixel load shows up in the live feed without a reload.
    browser
        .wait_for(
            "document.getElementById('live-status').textContent === 'live'",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let fresh = app
        .register_sent(campaign, &["late-reader@example.com"], "<p>hi</p>", 1)
        .await;
    let r = app
        .client
        .get(fresh[0]["pixel_url"].as_str().unwrap())
        .header(USER_AGENT, CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    browser
        .wait_for(
            "document.getElementById('live-count').textContent === '1'",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    // The headline cards follow it, without a reload.
    let readers = api["opened_by_readers"].as_i64().unwrap() + 1;
    let sent = want.sent + 1;
    browser
        .wait_for(
            &format!(
                "document.querySelector('[data-metric=opened_by_readers]').dataset.value \
                 === '{readers}' && document.querySelector('[data-metric=sent]').dataset.value === '{sent}'"
            ),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let newest = browser.text_of("#live-feed li:first-child").await;
    assert!(
        newest.contains("open") && newest.contains("human"),
        "{newest}"
    );

    // The download button gives the report as CSV.
    browser.click("#download-report").await;
    let file = browser
        .downloaded_file("report.csv", Duration::from_secs(10))
        .await;
    let csv = std::fs::read_to_string(file).unwrap();
    assert!(csv.starts_with("campaign_id,metric,value\n"), "{csv}");
    assert!(
        csv.contains(&format!("{campaign},sent,{}", want.sent + 1)),
        "{csv}"
    );

    // The screenshot for the README (MAILBEACON_UPDATE_DOCS=1 writes it to docs/).
    browser.set_window_size(1280, 2300).await;
    browser
        .goto(&app.url(&format!("/campaigns/{campaign}")))
        .await;
    browser
        .wait_for(
            "document.getElementById('live-status').textContent === 'live'",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let shot = if std::env::var_os("MAILBEACON_UPDATE_DOCS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard-campaign.png")
    } else {
        app.dir.path().join("dashboard-campaign.png")
    };
    browser.screenshot(&shot).await;
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));

    // No table is cut off at its container's edge (to be scrolled to).
    let cut_off = "[...document.querySelectorAll('.scroll')].filter(e => e.scrollWidth > e.clientWidth + 1) \
         .map(e => e.closest('[data-breakdown]')?.dataset.breakdown ?? e.firstElementChild.className)";
    // For the message: each scrolling box's content width, own width and table.
    let widths = "[...document.querySelectorAll('.scroll')] \
         .map(e => [e.scrollWidth, e.clientWidth, e.firstElementChild.className])";
    let sizes = browser.eval(widths).await;
    assert_eq!(
        browser.eval(cut_off).await,
        serde_json::json!([]),
        "at 1280 px: {sizes}"
    );

    // Readable on a phone: nothing wider than the screen.
    browser.set_window_size(390, 844).await;
    let sizes = browser.eval(widths).await;
    assert_eq!(
        browser.eval(cut_off).await,
        serde_json::json!([]),
        "at 390 px: {sizes}"
    );
    let too_wide = browser
        .eval(
            "[...document.querySelectorAll('body *')].filter(e => \
             e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll')) \
             .map(e => e.tagName + '.' + e.className).slice(0, 5)",
        )
        .await;
    assert_eq!(too_wide, serde_json::json!([]), "wider than a phone");
    // The charts' labels stay readable on it.
    let smallest = browser
        .eval(
            "Math.min(...[...document.querySelectorAll('svg text')] \
             .map(t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a))",
        )
        .await;
    let smallest = smallest.as_f64().unwrap();
    assert!(
        smallest >= 8.5,
        "chart text {smallest:.1} px tall on a phone"
    );

    // The segments card says what the API's segments say, and leads to a segment's recipients.
    let segments: Value = app
        .api_get(&format!("/api/campaigns/{campaign}/segments"))
        .await
        .json()
        .await
        .unwrap();
    let on_card = browser
        .eval(
            "Object.fromEntries([...document.querySelectorAll('#segments [data-segment]')].map(r => \
             [r.dataset.segment, Number(r.querySelector('[data-value]').dataset.value)]))",
        )
        .await;
    for s in [
        "opened",
        "clicked",
        "machine_only",
        "not_opened",
        "untracked",
    ] {
        assert_eq!(on_card[s], segments[s], "{s}: {on_card} against {segments}");
    }
    browser
        .click("#segments [data-segment=machine_only] a")
        .await;
    browser
        .wait_for(
            "document.querySelector('table.segment')",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let rows = browser
        .eval("document.querySelectorAll('table.segment tbody tr').length")
        .await;
    let expected = segments["machine_only"].as_i64().unwrap().clamp(1, 500);
    assert_eq!(rows, expected, "{segments}");
    let too_wide = browser
        .eval(
            "[...document.querySelectorAll('body *')].filter(e => \
             e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll')) \
             .map(e => e.tagName + '.' + e.className).slice(0, 5)",
        )
        .await;
    assert_eq!(
        too_wide,
        serde_json::json!([]),
        "the segment page, wider than a phone"
    );
}

fn session_cookie(r: &reqwest::Response) -> String {
    let set = r
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn dashboard_sign_in_scopes_and_headers() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Newsletter <b>42</b>").await;
    let login = |secret: &str, origin: Option<&str>| {
        let mut req = app
            .client
            .post(app.url("/login"))
            .form(&[("secret", secret), ("next", "/campaigns/1")]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };

    // Pages need a session.
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/login");

    // A password an admin set, for the viewer scope.
    let (ok, _, err) = cli(
        &app.db_url(),
        &["dashboard-password", "--scope", "viewer"],
        Some("short\n"),
    );
    assert!(!ok && err.contains("at least 12 characters"), "{err}");
    let (ok, out, err) = cli(
        &app.db_url(),
        &["dashboard-password", "--scope", "viewer"],
        Some("board meeting slides\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("set"), "{out}");

    let r = login("wrong password!", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not a valid API token or password")
    );
    let r = login("board meeting slides", Some("https://evil.example"))
        .await
        .unwrap();
    assert!(
        r.status().is_client_error(),
        "another site's form is refused"
    );
    assert!(r.headers().get(SET_COOKIE).is_none());

    let r = login("board meeting slides", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/campaigns/1");
    let viewer = session_cookie(&r);
    let page = |path: &str, cookie: &str| {
        app.client
            .get(app.url(path))
            .header(COOKIE, cookie.to_string())
            .send()
    };
    let r = page("/", &viewer).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Newsletter &lt;b&gt;42") && !body.contains("<b>42"),
        "names are escaped"
    );
    for external in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!body.contains(external), "{external} in the campaigns page");
    }
    let body = page(&format!("/campaigns/{campaign}"), &viewer)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("data-metric=\"sent\""));
    assert!(
        !body.contains("Raw events"),
        "viewers get no per-recipient download"
    );
    for external in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!body.contains(external), "{external} in the campaign page");
    }
    // The session reads aggregate reports through the API, but not per-recipient data.
    let r = page(
        &format!("/api/campaigns/{campaign}/report?format=csv"),
        &viewer,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = page("/api/events", &viewer).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // ... and never writes: a cookie is not enough for POST.
    let r = app
        .client
        .post(app.url("/api/campaigns"))
        .header(COOKIE, viewer.clone())
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // An admin signed in with a token gets the raw events download.
    let r = login(&app.admin_token, None).await.unwrap();
    let admin = session_cookie(&r);
    let body = page(&format!("/campaigns/{campaign}"), &admin)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("Raw events (CSV)"));
    // The Parquet downloads behind their links are Parquet files.
    for link in ["events/export?format=parquet", "report?format=parquet"] {
        let link = format!("/api/campaigns/{campaign}/{link}");
        assert!(body.contains(&link), "{body}");
        let file = page(&link, &admin).await.unwrap();
        assert_eq!(file.status(), StatusCode::OK);
        assert_eq!(
            file.headers()["content-type"],
            "application/vnd.apache.parquet"
        );
        let bytes = file.bytes().await.unwrap();
        assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
    }
    let r = page("/compare?campaigns=1&campaigns=1", &admin)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = page("/campaigns/999", &admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A new viewer password signs out whoever signed in with the old one (not the admin, who
    // signed in with a token).
    let (ok, _, err) = cli(
        &app.db_url(),
        &["dashboard-password", "--scope", "viewer"],
        Some("a brand new viewer password\n"),
    );
    assert!(ok, "{err}");
    let r = page("/", &viewer).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = page("/", &admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Signing out ends the session.
    let r = app
        .client
        .post(app.url("/logout"))
        .header(COOKIE, viewer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = page("/", &viewer).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // An open live feed does not hold up shutdown.
    let live = page(&format!("/campaigns/{campaign}/live"), &admin)
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let started = Instant::now();
    let (code, _, _) = app.terminate();
    assert_eq!(code, Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(live);
}

#[tokio::test]
async fn repeated_failed_sign_ins_from_one_address_are_slowed_down() {
    let app = TestApp::spawn_with(&["--trusted-proxy", "127.0.0.1"]).await;
    let attempt = |secret: &str, from: &'static str| {
        app.client
            .post(app.url("/login"))
            .header("x-forwarded-for", from)
            .form(&[("secret", secret)])
            .send()
    };
    for _ in 0..10 {
        let r = attempt("guess guess guess", "198.51.100.7").await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right token is refused from there for a while...
    let r = attempt(&app.admin_token, "198.51.100.7").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    // ... while another address signs in.
    let r = attempt(&app.admin_token, "198.51.100.8").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// User agents are the visitor's to choose: markup in one never reaches a page as markup, whatever
/// the client, OS or device parsed from it.
#[tokio::test]
async fn hostile_user_agents_are_escaped_on_the_campaign_page() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("agents").await;
    let hostile = [
        "<script>alert(1)</script>/1.0",
        "Mozilla/5.0 (<img src=x onerror=alert(2)>; Linux) <svg onload=alert(3)>Bot/2.0",
        "\"><iframe src=//evil.example>Chrome/120.0 Mobile Safari",
        "Outlook-iOS/<b>4.0</b>",
    ];
    let html = "<p><a href=\"https://shop.example.com/x\">x</a></p>";
    for (i, ua) in hostile.iter().enumerate() {
        let m = app.add_message(campaign, &format!("h{i}"), html).await;
        for url in [
            m["pixel_url"].as_str().unwrap().to_string(),
            click_urls(m["html"].as_str().unwrap())[0].clone(),
        ] {
            let r = app
                .client
                .get(url)
                .header(reqwest::header::USER_AGENT, *ua)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success() || r.status() == StatusCode::FOUND);
        }
    }
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[("secret", app.admin_token.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&r);
    let page = app
        .client
        .get(app.url(&format!("/campaigns/{campaign}")))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for raw in [
        "<script>alert",
        "<img src=x",
        "<svg onload",
        "<iframe",
        "<b>4.0",
    ] {
        assert!(!page.contains(raw), "{raw} reached the page as markup");
    }
    // (uap-core's patterns parse these as no client, "Bot" and "Chrome": the markup does not even
    // reach the parsed fields; the pages escape them all the same.)
}
