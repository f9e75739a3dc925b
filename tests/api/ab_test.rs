//! `compare` names the winner of an A/B test when the difference is clear, and says "not yet"
//! when there is too little to tell, in the API and on the dashboard.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn compare_names_a_clear_winner_and_says_not_yet_otherwise() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    // Subject A: 30 of 40 readers open; subject B: 12 of 40. Nobody clicks.
    for (name, readers) in [("Subject A", 30), ("Subject B", 12)] {
        let campaign = app.create_campaign(name).await;
        let recipients: Vec<String> = (0..40).map(|i| format!("{name}-{i}@example.com")).collect();
        let recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
        let messages = app
            .register_sent(campaign, &recipients, "<p>hi</p>", 2)
            .await;
        for m in &messages[..readers] {
            let status = app.hit(m["pixel_url"].as_str().unwrap(), CHROME).await;
            assert!(status.is_success(), "{status}");
        }
        ids.push(campaign);
    }
    app.settled().await;
    let r = app
        .api_get(&format!("/api/compare?campaigns={},{}", ids[1], ids[0]))
        .await;
    let both: Value = r.json().await.unwrap();
    let winners = both["winners"].as_array().unwrap();
    let opened = &winners[0];
    assert_eq!(opened["metric"], "readers_opened", "{both}");
    assert_eq!(opened["outcome"], "winner", "{opened}");
    assert_eq!(opened["leader"], ids[0], "{opened}");
    assert_eq!(opened["leader_rate"], 0.75);
    // 75% against 30% of 40: z = 4.03.
    assert!(
        (opened["z"].as_f64().unwrap() - 4.03).abs() < 0.01,
        "{opened}"
    );
    assert!(opened["p_value"].as_f64().unwrap() < 0.001, "{opened}");
    let clicked = &winners[1];
    assert_eq!(clicked["outcome"], "not_yet", "{clicked}");
    assert!(
        clicked["summary"].as_str().unwrap().contains("too few"),
        "{clicked}"
    );

    // The dashboard's comparison says the same.
    let path = format!("/compare?campaigns={},{}", ids[0], ids[1]);
    let (_, page) = app.dashboard_page(&app.admin_token, &path).await;
    assert!(
        page.contains(
            "data-outcome=\"winner\">Readers who opened: <b>Subject A</b> wins: 75.0% against 30.0%"
        ),
        "{page}"
    );
    assert!(
        page.contains("Readers who clicked: not yet: too few"),
        "{page}"
    );
}
