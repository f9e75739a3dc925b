//! Conversions follow consent as clicks do: without a standing consent the mail is anonymous and
//! its conversions name no one; with `--without-consent none` a click after the consent was
//! withdrawn carries no reference, and a reference handed out before is answered and not kept.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

async fn destination(app: &TestApp, message: &Value) -> String {
    let click = click_urls(message["html"].as_str().unwrap()).remove(0);
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

fn reference(to: &str) -> String {
    to.split_once("mb_ref=").expect("a reference").1.to_string()
}

async fn convert(app: &TestApp, reference: &str) {
    let r = app
        .client
        .post(app.url("/conversions"))
        .json(&json!({"ref": reference, "goal": "purchase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

async fn consent(app: &TestApp, who: &str) {
    let r = app
        .api_post(
            &format!("/api/recipients/{who}/consent"),
            &json!({"source": "signup form"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
}

async fn campaign(app: &TestApp) -> i64 {
    let r = app
        .api_post(
            "/api/campaigns",
            &json!({"name": "Consent", "conversions": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

const HTML: &str = r#"<p><a href="https://shop.example.com/a">A</a></p>"#;

#[tokio::test]
async fn without_consent_a_conversion_names_no_one() {
    let app = TestApp::spawn_with(&["--require-consent"]).await;
    let id = campaign(&app).await;
    consent(&app, "ada%40example.com").await;
    let m = app
        .register_sent(id, &["ada@example.com", "bob@example.com"], HTML, 2)
        .await;
    assert_eq!(m[1]["tracking"], "anonymous", "{}", m[1]);
    for message in &m {
        let to = destination(&app, message).await;
        convert(&app, &reference(&to)).await;
    }
    let page: Value = app
        .api_get(&format!("/api/campaigns/{id}/conversions"))
        .await
        .json()
        .await
        .unwrap();
    let named: Vec<&Value> = (page["conversions"].as_array().unwrap().iter())
        .map(|c| &c["recipient_id"])
        .collect();
    assert_eq!(named, [&json!("ada@example.com"), &Value::Null], "{page}");
}

#[tokio::test]
async fn after_consent_is_withdrawn_conversions_are_not_kept() {
    let app = TestApp::spawn_with(&["--require-consent", "--without-consent", "none"]).await;
    let id = campaign(&app).await;
    consent(&app, "cy%40example.com").await;
    let m = app.register_sent(id, &["cy@example.com"], HTML, 2).await;
    let before = reference(&destination(&app, &m[0]).await);
    let r = app
        .client
        .delete(app.url("/api/recipients/cy%40example.com/consent"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let to = destination(&app, &m[0]).await;
    assert_eq!(
        to, "https://shop.example.com/a",
        "no reference after the withdrawal"
    );
    convert(&app, &before).await;
    let report: Value = app
        .api_get(&format!("/api/campaigns/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["conversions"]["total"], 0, "{report}");
}
