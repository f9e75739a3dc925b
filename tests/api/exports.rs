//! Streamed exports of a campaign's events, over HTTP and from the command line, checked against
//! the paged event log and the report's counters.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::Value;

const COLUMNS: &str = "id,kind,received_at,campaign_id,message_id,recipient_id,link_url,method,\
                       user_agent,client_ip,class,reasons,duplicate,internal,client,os,device,\
                       country,region";

/// Downloads an export; returns the body and the Next-Cursor header.
async fn export(app: &TestApp, campaign: i64, format: &str) -> (String, i64) {
    let r = app
        .api_get(&format!(
            "/api/campaigns/{campaign}/events/export?format={format}"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = r.headers()[CONTENT_TYPE].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with(if format == "csv" {
            "text/csv"
        } else {
            "application/x-ndjson"
        }),
        "{content_type}"
    );
    assert_eq!(
        r.headers()[CONTENT_DISPOSITION],
        format!("attachment; filename=\"campaign-{campaign}-events.{format}\"").as_str()
    );
    let cursor = r.headers()["next-cursor"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (r.text().await.unwrap(), cursor)
}

/// The event log of a campaign the paged way, 1,000 at a time: the ids in order.
async fn paged_ids(app: &TestApp, campaign: i64) -> Vec<i64> {
    let (mut ids, mut after) = (Vec::new(), 0);
    loop {
        let r = app
            .api_get(&format!(
                "/api/events?campaign={campaign}&after={after}&limit=1000"
            ))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.unwrap();
        let events = page["events"].as_array().unwrap();
        ids.extend(events.iter().map(|e| e["id"].as_i64().unwrap()));
        after = page["next_cursor"].as_str().unwrap().parse().unwrap();
        if events.len() < 1000 {
            return ids;
        }
    }
}

/// `GET /api/events` in one page of up to 10,000, in a format asked for with Accept.
async fn one_page(app: &TestApp, campaign: i64, accept: &str) -> String {
    let r = app
        .client
        .get(app.url(&format!("/api/events?campaign={campaign}&limit=10000")))
        .bearer_auth(&app.admin_token)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

#[tokio::test]
async fn exports_hold_every_event_once_over_http_and_from_the_cli() {
    exports_hold_every_event_once(TestApp::spawn().await).await;
}

#[tokio::test]
async fn exports_hold_every_event_once_over_http_and_from_the_cli_on_postgres() {
    exports_hold_every_event_once(TestApp::spawn_postgres("exports", &[]).await).await;
}

async fn exports_hold_every_event_once(app: TestApp) {
    let campaign = app.create_campaign("Export").await;
    let other = app.create_campaign("Other").await;
    // More events than one page of the export (5,000): 3,600 recipients make 5,220.
    let want = seed(&app, campaign, 3600).await;
    seed(&app, other, 8).await;
    let total = (want.opens + want.clicks) as usize;
    assert!(total > 5000, "{total}");

    let (csv, cursor) = export(&app, campaign, "csv").await;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header.join(","), COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), total);
    let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(rows.iter().all(|r| r[3] == campaign.to_string()));
    // Every event exactly once, in the order the event log pages them.
    let paged = paged_ids(&app, campaign).await;
    assert_eq!(ids, paged);
    assert_eq!(cursor, *ids.last().unwrap());
    // The same bytes as the event log's own CSV.
    assert_eq!(csv, one_page(&app, campaign, "text/csv").await);

    let (ndjson, _) = export(&app, campaign, "ndjson").await;
    let ids_nd: Vec<i64> = ndjson
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids_nd, paged);
    assert_eq!(
        ndjson,
        one_page(&app, campaign, "application/x-ndjson").await
    );

    // The report's counters agree with the rows.
    let report: Value = app
        .api_get(&format!("/api/campaigns/{campaign}/report"))
        .await
        .json()
        .await
        .unwrap();
    let counted =
        report["opens"]["total"].as_i64().unwrap() + report["clicks"]["total"].as_i64().unwrap();
    assert_eq!(counted as usize, rows.len(), "{report}");

    // The command line writes the same file, and the same NDJSON to stdout.
    let file = app.dir.path().join("out.csv");
    let c = campaign.to_string();
    let (ok, _, err) = cli(
        &app.db_url(),
        &[
            "export",
            "--campaign",
            &c,
            "--output",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(err.contains(&format!("exported {total} events")), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), csv);
    let (ok, out, err) = cli(
        &app.db_url(),
        &["export", "--campaign", &c, "--format", "ndjson"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out, ndjson);

    // Both were audited.
    let audit: Value = app
        .api_get("/api/audit?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let exports: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "export_events" && e["target"] == format!("campaign {c}"))
        .collect();
    assert_eq!(exports.len(), 4, "{audit}");
    assert_eq!(
        exports.iter().filter(|e| e["actor"] == "cli").count(),
        2,
        "{audit}"
    );

    // An event stored after an export is in the next one, and the event log continues from
    // the first one's cursor with it.
    let late = app
        .register_sent(campaign, &["late@example.com"], "<p>Hi</p>", 2)
        .await;
    let r = app
        .client
        .get(late[0]["pixel_url"].as_str().unwrap())
        .header("user-agent", CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (again, next) = export(&app, campaign, "csv").await;
    assert_eq!(again.lines().count(), total + 2);
    assert!(again.starts_with(&csv));
    let page: Value = app
        .api_get(&format!("/api/events?campaign={c}&after={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["id"].as_i64().unwrap(), next);
}

#[tokio::test]
async fn exports_refuse_viewers_unknown_campaigns_and_formats() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Empty").await;
    let (ok, viewer, err) = cli(
        &app.db_url(),
        &["token", "create", "--scope", "viewer"],
        None,
    );
    assert!(ok, "{err}");
    let path = format!("/api/campaigns/{campaign}/events/export");
    let r = app
        .client
        .get(app.url(&path))
        .bearer_auth(viewer.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .api_get("/api/campaigns/999/events/export?format=csv")
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for bad in ["json", "xml"] {
        let r = app.api_get(&format!("{path}?format={bad}")).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // No events: the header row alone (CSV is the default), an empty NDJSON file.
    let r = app.api_get(&path).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["next-cursor"], "0");
    assert_eq!(r.text().await.unwrap(), format!("{COLUMNS}\n"));
    let (ndjson, _) = export(&app, campaign, "ndjson").await;
    assert_eq!(ndjson, "");

    // The command line says what is wrong.
    let (ok, _, err) = cli(&app.db_url(), &["export", "--campaign", "999"], None);
    assert!(!ok);
    assert!(err.contains("campaign 999 does not exist"), "{err}");
    let c = campaign.to_string();
    let (ok, _, err) = cli(
        &app.db_url(),
        &[
            "export",
            "--campaign",
            &c,
            "--output",
            "/nonexistent-dir/out.csv",
        ],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains("cannot write /nonexistent-dir/out.csv"),
        "{err}"
    );
    let (ok, _, err) = cli(
        &app.db_url(),
        &["export", "--campaign", &c, "--format", "json"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("--format"), "{err}");
}
