//! Conversions over HTTP on both engines: a campaign that asks for them gets UTM parameters on its
//! destinations and a signed reference on each click's redirect; the sender's site reports
//! conversions back with it (POST or pixel), once per id; forged, expired and malformed ones are
//! refused with their reason; an opted-out reader's click carries no reference; the report,
//! webhooks and erasure follow.

use crate::helpers::*;
use mailbeacon::token::{KeyRing, SigningKey};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

#[tokio::test]
async fn conversions_are_reported_back_with_the_clicks_reference() {
    conversions(false).await;
}

#[tokio::test]
async fn conversions_are_reported_back_with_the_clicks_reference_on_postgres() {
    conversions(true).await;
}

async fn post(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url("/conversions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The destination a click redirects to.
async fn follow(app: &TestApp, click: &str) -> String {
    let r = app
        .client
        .get(click)
        .header("user-agent", CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    r.headers()[LOCATION].to_str().unwrap().to_string()
}

async fn conversions(postgres: bool) {
    let key = SigningKey::generate(1);
    let args = ["--webhook-allow-private", "--signing-key", &key.to_spec()];
    let app = TestApp::spawn_on_engine(postgres, "conversions", &args).await;
    let ring = KeyRing::new(&[key]).unwrap();
    let (port, _) = counting_listener().await;
    let r = app
        .api_post(
            "/api/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/hook"), "kinds": ["conversion"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hook = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let r = app
        .api_post(
            "/api/campaigns",
            &json!({"name": "Spring Sale", "utm": true, "conversions": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let campaign: Value = r.json().await.unwrap();
    assert_eq!(
        (&campaign["utm"], &campaign["conversions"]),
        (
            &json!({"source": "mailbeacon", "medium": "email", "campaign": "spring-sale"}),
            &json!(true)
        )
    );
    let id = campaign["id"].as_i64().unwrap();
    let html = r#"<p><a href="https://shop.example.com/a?x=1#top">A</a> <a href="https://shop.example.com/b?utm_source=crm">B</a></p>"#;
    let m = app
        .register_sent(id, &["ada@example.com", "bob@example.com"], html, 2)
        .await;
    let links = |i: usize| click_urls(m[i]["html"].as_str().unwrap());

    // The destination gets its UTM parameters (a link's own kept) and the click's reference.
    let to = follow(&app, &links(0)[0]).await;
    let (page, reference) = to.split_once("&mb_ref=").unwrap();
    let reference = reference.strip_suffix("#top").unwrap().to_string();
    assert_eq!(
        page,
        "https://shop.example.com/a?x=1&utm_source=mailbeacon&utm_medium=email&utm_campaign=spring-sale&utm_content=link-1"
    );
    let to_b = follow(&app, &links(0)[1]).await;
    assert!(
        to_b.starts_with("https://shop.example.com/b?utm_source=crm&utm_medium=email&"),
        "{to_b}"
    );

    // The shop reports an order (twice: a retry), another order, and a signup by pixel.
    let order = json!({"ref": reference, "goal": "purchase", "value": 12.5, "currency": "eur", "id": "order-1"});
    assert_eq!(post(&app, order.clone()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(post(&app, order).await.0, StatusCode::NO_CONTENT);
    let second = json!({"ref": reference, "goal": "purchase", "value": 7.5, "currency": "EUR", "id": "order-2"});
    assert_eq!(post(&app, second).await.0, StatusCode::NO_CONTENT);
    let r = app
        .client
        .get(app.url(&format!("/v/{reference}.gif?goal=signup")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/gif");

    // Refused, each with its reason.
    let token = links(0)[0].rsplit('/').next().unwrap().to_string();
    let clicked = ring.verify_click(&token).unwrap();
    let old_minute = ((chrono::Utc::now() - chrono::Duration::days(31)).timestamp() / 60) as u32;
    let expired = ring.sign_reference(clicked.tracking_id, clicked.link_no, old_minute);
    let mut forged = reference.clone().into_bytes();
    forged[30] = if forged[30] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for (body, says) in [
        (
            json!({"ref": forged, "goal": "purchase"}),
            "not a conversion reference",
        ),
        (
            json!({"ref": token, "goal": "purchase"}),
            "not a conversion reference",
        ),
        (
            json!({"ref": expired, "goal": "purchase"}),
            "expired: conversions count for 30 days",
        ),
        (json!({"ref": reference, "goal": "buy now"}), "goal"),
        (
            json!({"ref": reference, "goal": "purchase", "value": 3}),
            "needs its currency",
        ),
        (
            json!({"ref": reference, "goal": "purchase", "value": 3, "currency": "EURO"}),
            "ISO 4217",
        ),
    ] {
        let (status, answer) = post(&app, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_conversion");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }

    // An opted-out reader's click is followed without a reference.
    let r = app
        .api_post("/api/recipients/bob%40example.com/opt-out", &json!({}))
        .await;
    assert!(r.status().is_success());
    let to = follow(&app, &links(1)[0]).await;
    assert!(!to.contains("mb_ref"), "{to}");

    let report: Value = app
        .api_get(&format!("/api/campaigns/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        report["conversions"],
        json!({"total": 3, "unique": 1, "value": [{"currency": "EUR", "value": 20.0}]}),
        "{report}"
    );
    assert_eq!(report["conversion_rate"].as_f64(), Some(0.5));
    // Listed (CSV for a spreadsheet), per link, per segment, and in an A/B comparison.
    let csv = app
        .api_get(&format!("/api/campaigns/{id}/conversions?format=csv"))
        .await
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "id,received_at,campaign_id,message_id,recipient_id,link_no,link_url,goal,value,currency,clicked_at"
        )
    );
    let first_row = lines.next().unwrap();
    assert!(
        first_row
            .contains(",ada@example.com,1,https://shop.example.com/a?x=1&utm_source=mailbeacon")
            && first_row.contains(",purchase,12.5,EUR,"),
        "{csv}"
    );
    assert_eq!(lines.count(), 2, "{csv}");
    let links: Value = app
        .api_get(&format!("/api/campaigns/{id}/links"))
        .await
        .json()
        .await
        .unwrap();
    let first = &links["links"][0];
    assert_eq!(
        (
            &first["link_no"],
            &first["conversions"],
            &first["converted_messages"]
        ),
        (&json!(1), &json!(3), &json!(1)),
        "{links}"
    );
    let counts: Value = app
        .api_get(&format!("/api/campaigns/{id}/segments"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(counts["converted"], 1, "{counts}");
    let converted: Value = app
        .api_get(&format!("/api/campaigns/{id}/segments/converted"))
        .await
        .json()
        .await
        .unwrap();
    let who: Vec<&str> = (converted["recipients"].as_array().unwrap().iter())
        .map(|m| m["recipient_id"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["ada@example.com"]);
    let other = app.create_campaign("Spring Sale B").await;
    let compared: Value = app
        .api_get(&format!("/api/compare?campaigns={id},{other}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        compared["winners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["metric"] == "converted"),
        "{compared}"
    );
    let deliveries: Value = app
        .api_get(&format!("/api/webhooks/{hook}/deliveries"))
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = (deliveries["deliveries"].as_array().unwrap().iter())
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["email.converted"; 3], "{deliveries}");

    // Erasing Ada takes her conversions, and the notices not sent yet, with her.
    let r = app
        .client
        .delete(app.url("/api/recipients/ada%40example.com"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = app
        .api_get(&format!("/api/campaigns/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["conversions"]["total"], 0, "{report}");
    let (status, answer) = post(&app, json!({"ref": reference, "goal": "purchase"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no longer exists")
    );
}

/// A campaign that does not ask for conversions changes no destination.
#[tokio::test]
async fn without_conversions_a_click_leads_where_it_was_written() {
    let app = TestApp::spawn().await;
    let id = app.create_campaign("Plain").await;
    let html = r#"<p><a href="https://shop.example.com/a">A</a></p>"#;
    let m = app.register_sent(id, &["cy@example.com"], html, 2).await;
    let to = follow(&app, &click_urls(m[0]["html"].as_str().unwrap())[0]).await;
    assert_eq!(to, "https://shop.example.com/a");
}

/// A reference is a credential whoever holds it may use: one message takes at most 100
/// conversions, and the 101st is refused with the reason.
#[tokio::test]
async fn one_message_takes_at_most_a_hundred_conversions() {
    let app = TestApp::spawn().await;
    let r = app
        .api_post(
            "/api/campaigns",
            &json!({"name": "Capped", "conversions": true}),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let html = r#"<p><a href="https://shop.example.com/a">A</a></p>"#;
    let m = app.register_sent(id, &["dee@example.com"], html, 2).await;
    let to = follow(&app, &click_urls(m[0]["html"].as_str().unwrap())[0]).await;
    let reference = to.split_once("mb_ref=").unwrap().1.to_string();
    for n in 0..100 {
        let body = json!({"ref": reference, "goal": "purchase", "id": format!("order-{n}")});
        assert_eq!(
            post(&app, body).await.0,
            StatusCode::NO_CONTENT,
            "order {n}"
        );
    }
    let (status, answer) = post(
        &app,
        json!({"ref": reference, "goal": "purchase", "id": "order-100"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100 conversions already"),
        "{answer}"
    );
}
