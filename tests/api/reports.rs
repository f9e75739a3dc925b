//! Reports over HTTP, checked against what was sent and against the raw event log; the OpenAPI
//! document and the scopes of every route in it.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn get_json(app: &TestApp, path: &str) -> Value {
    let r = app.api_get(path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

fn sum(rows: &Value, field: &str) -> i64 {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn reports_agree_with_what_was_sent_and_with_the_event_log() {
    reports_agree(TestApp::spawn().await).await;
}

#[tokio::test]
async fn reports_agree_with_what_was_sent_and_with_the_event_log_on_postgres() {
    reports_agree(TestApp::spawn_postgres("reports", &[]).await).await;
}

async fn reports_agree(app: TestApp) {
    let campaign = app.create_campaign("Reports").await;
    let want = seed(&app, campaign, 400).await;

    let r = get_json(&app, &format!("/api/campaigns/{campaign}/report")).await;
    assert_eq!(r["sent"], want.sent);
    assert_eq!(r["opens"]["total"], want.opens, "{r}");
    assert_eq!(r["opens"]["unique"], want.unique_opens);
    assert_eq!(r["opens"]["total_excluding_machine"], want.reader_opens);
    assert_eq!(r["clicks"]["total"], want.clicks);
    assert_eq!(r["clicks"]["unique"], want.unique_clicks);
    assert_eq!(r["clicks"]["unique_excluding_machine"], want.reader_clicks);
    // Readers' opens: the Chrome and Gmail ones (each Chrome reader also clicked).
    assert_eq!(
        r["opens"]["unique_excluding_machine"],
        want.reader_unique_opens
    );
    assert_eq!(r["opened_by_readers"], want.reader_unique_opens, "{r}");
    let rate = |v: &Value| v.as_f64().unwrap();
    let sent = want.sent as f64;
    assert_eq!(
        rate(&r["open_rate_range"]["floor"]),
        want.reader_unique_opens as f64 / sent
    );
    assert!(
        r["definitions"]["open_rate_floor"]
            .as_str()
            .unwrap()
            .contains("Apple Mail Privacy Protection")
    );

    // The same totals from the raw events.
    let events = app.events(campaign).await;
    // The ceiling: every message anyone or anything opened or clicked.
    let active: std::collections::HashSet<_> =
        events.iter().map(|e| e["message_id"].clone()).collect();
    assert_eq!(r["opened"], active.len(), "{r}");
    assert_eq!(
        rate(&r["open_rate_range"]["ceiling"]),
        active.len() as f64 / sent
    );
    assert!(r["opened"].as_i64() >= r["opens"]["unique"].as_i64());
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count() as i64;
    assert_eq!(count("open"), want.opens);
    assert_eq!(count("click"), want.clicks);

    let series = get_json(
        &app,
        &format!("/api/campaigns/{campaign}/timeseries?interval=hour"),
    )
    .await;
    let points = &series["points"];
    assert_eq!(sum(points, "opens"), want.opens, "{series}");
    assert_eq!(sum(points, "reader_opens"), want.reader_opens);
    assert_eq!(sum(points, "machine_opens"), want.opens - want.reader_opens);
    assert_eq!(sum(points, "first_opens"), want.unique_opens);
    assert_eq!(sum(points, "clicks"), want.clicks);
    let daily = get_json(
        &app,
        &format!("/api/campaigns/{campaign}/timeseries?interval=day&from=2020-01-01&to=2020-01-08"),
    )
    .await;
    assert_eq!(daily["points"].as_array().unwrap().len(), 7);
    assert_eq!(
        sum(&daily["points"], "opens"),
        0,
        "a window with no activity"
    );

    let links = get_json(&app, &format!("/api/campaigns/{campaign}/links")).await;
    let links = links["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["url"], "https://shop.example.com/sale");
    assert_eq!(links[0]["clicks"], want.link1_clicks);
    assert_eq!(links[0]["reader_unique_clicks"], want.link1_clicks);
    assert_eq!(links[1]["clicks"], want.link2_clicks);
    assert_eq!(links[1]["reader_clicks"], 0, "only a script followed it");

    let classes = get_json(&app, &format!("/api/campaigns/{campaign}/breakdown/class")).await;
    let class = |name: &str| {
        classes["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["value"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {classes}"))
    };
    assert_eq!(class("apple_mpp")["opens"], want.opens - want.reader_opens);
    assert_eq!(class("gmail_proxy")["unique_opens"], 100);
    assert_eq!(class("bot")["clicks"], want.link2_clicks);
    assert_eq!(sum(&classes["rows"], "opens"), want.opens);
    let clients = get_json(&app, &format!("/api/campaigns/{campaign}/breakdown/client")).await;
    assert_eq!(sum(&clients["rows"], "opens"), want.opens);
    let devices = get_json(&app, &format!("/api/campaigns/{campaign}/breakdown/device")).await;
    assert!(devices["rows"][0]["value"].is_string(), "{devices}");

    let grid = get_json(
        &app,
        &format!("/api/campaigns/{campaign}/hour-of-week?tz=-05:30"),
    )
    .await;
    assert_eq!(grid["cells"].as_array().unwrap().len(), 168);
    assert_eq!(grid["utc_offset_minutes"], -330);
    assert_eq!(sum(&grid["cells"], "opens"), want.opens);
    // As the README writes it: the `+` of the offset reaches the server as a space.
    let grid = get_json(
        &app,
        &format!("/api/campaigns/{campaign}/hour-of-week?tz=+02:00"),
    )
    .await;
    assert_eq!(grid["utc_offset_minutes"], 120);
    assert_eq!(grid["time_zone"], "+02:00");
    // A named zone, whose offset follows daylight saving time cell by cell.
    let named = get_json(
        &app,
        &format!("/api/campaigns/{campaign}/hour-of-week?tz=Europe/Berlin"),
    )
    .await;
    assert_eq!(named["time_zone"], "Europe/Berlin");
    assert_eq!(sum(&named["cells"], "opens"), want.opens);

    // Two campaigns side by side.
    let other = app.create_campaign("Reports B").await;
    app.register_sent(other, &["b@example.com"], "<p>hi</p>", 1)
        .await;
    let both = get_json(&app, &format!("/api/compare?campaigns={campaign},{other}")).await;
    assert_eq!(both["campaigns"][0]["campaign"]["name"], "Reports");
    assert_eq!(both["campaigns"][0]["opens"]["total"], want.opens);
    assert_eq!(both["campaigns"][1]["sent"], 1);

    // CSV and NDJSON of a report, as a download.
    let csv = app
        .client
        .get(app.url(&format!("/api/campaigns/{campaign}/links?format=csv")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("campaign-")
    );
    let text = csv.text().await.unwrap();
    // The CLI writes the same report.
    let (ok, out, err) = cli(
        &app.db_url(),
        &[
            "report",
            "--campaign",
            &campaign.to_string(),
            "--report",
            "links",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out, text);
    let (ok, _, err) = cli(
        &app.db_url(),
        &[
            "report",
            "--campaign",
            &campaign.to_string(),
            "--report",
            "planets",
        ],
        None,
    );
    assert!(!ok && err.contains("'planets' is not a report"), "{err}");
    let (ok, out, err) = cli(
        &app.db_url(),
        &[
            "report",
            "--campaign",
            &campaign.to_string(),
            "--report",
            "hour-of-week",
            "--tz",
            "-05:30",
            "--format",
            "json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let grid: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(grid["utc_offset_minutes"], -330);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "link_no,url,honeypot,clicks,reader_clicks,unique_clicks,reader_unique_clicks,conversions,converted_messages"
        )
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("1,https://shop.example.com/sale,false,")
    );
    let nd = app
        .client
        .get(app.url(&format!("/api/campaigns/{campaign}/report")))
        .header("accept", "application/x-ndjson")
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sent_row: Value = serde_json::from_str(nd.lines().next().unwrap()).unwrap();
    assert_eq!(sent_row["metric"], "sent");
    assert_eq!(sent_row["value"], want.sent as f64);
    let empty = app
        .client
        .get(app.url(&format!("/api/campaigns/{other}/links?format=csv")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        empty,
        "link_no,url,honeypot,clicks,reader_clicks,unique_clicks,reader_unique_clicks,conversions,converted_messages\n"
    );

    // A recipient's timeline.
    let t = get_json(&app, "/api/recipients/seed-0@example.com/timeline").await;
    let kinds: Vec<&str> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 3, "{t}");
    assert!(kinds.contains(&"open") && kinds.contains(&"click"));
}

#[tokio::test]
async fn report_parameters_that_make_no_sense_are_refused_by_name() {
    report_parameters_refused(TestApp::spawn().await).await;
}

#[tokio::test]
async fn report_parameters_that_make_no_sense_are_refused_by_name_on_postgres() {
    report_parameters_refused(TestApp::spawn_postgres("params", &[]).await).await;
}

async fn report_parameters_refused(app: TestApp) {
    let c = app.create_campaign("Params").await;
    for (path, says) in [
        (
            format!("/api/campaigns/{c}/timeseries?interval=week"),
            "interval 'week'",
        ),
        (
            format!("/api/campaigns/{c}/timeseries?from=yesterday"),
            "from 'yesterday'",
        ),
        (
            format!("/api/campaigns/{c}/timeseries?interval=hour&from=2020-01-01&to=2021-01-01"),
            "interval=day",
        ),
        (
            format!("/api/campaigns/{c}/timeseries?from=2021-01-01&to=2020-01-01"),
            "must be after",
        ),
        (
            format!("/api/campaigns/{c}/breakdown/planet"),
            "'planet' is not a breakdown",
        ),
        (
            format!("/api/campaigns/{c}/hour-of-week?tz=Mars"),
            "tz 'Mars'",
        ),
        (
            format!("/api/campaigns/{c}/report?format=xml"),
            "format 'xml'",
        ),
        (format!("/api/campaigns/{c}/links?colour=red"), "colour"),
        (format!("/api/compare?campaigns={c}"), "2 to 20"),
    ] {
        let r = app.api_get(&path).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        let body: Value = r.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
    let r = app.api_get("/api/campaigns/999/report").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .api_get(&format!("/api/compare?campaigns={c},999"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Every operation of the OpenAPI document, with its path parameters filled in.
async fn operations(app: &TestApp) -> Vec<(String, String, String, String)> {
    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let filled = path
                .replace(
                    "{id}",
                    if path.contains("recipients") {
                        "nobody"
                    } else {
                        "1"
                    },
                )
                .replace("{by}", "class");
            ops.push((
                method.to_uppercase(),
                filled,
                op["operationId"].as_str().unwrap().to_string(),
                op["x-mailbeacon-scope"].as_str().unwrap().to_string(),
            ));
        }
    }
    ops
}

#[tokio::test]
async fn scopes_hold_on_every_route_of_the_openapi_document() {
    scopes_hold(TestApp::spawn().await).await;
}

#[tokio::test]
async fn scopes_hold_on_every_route_of_the_openapi_document_on_postgres() {
    scopes_hold(TestApp::spawn_postgres("scopes", &[]).await).await;
}

async fn scopes_hold(app: TestApp) {
    app.create_campaign("Scopes").await;
    let token = |scope: &str| {
        let (ok, out, err) = cli(&app.db_url(), &["token", "create", "--scope", scope], None);
        assert!(ok, "{err}");
        out.trim().to_string()
    };
    let (viewer, analyst) = (token("viewer"), token("analyst"));
    let ops = operations(&app).await;
    assert!(ops.len() >= 17, "{ops:?}");
    let mut per_recipient = 0;
    for (method, path, id, scope) in &ops {
        let send = |token: Option<&str>| {
            let mut req = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .header("content-type", "application/json")
                .body("{}");
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let anonymous = send(None).await.unwrap().status();
        let as_viewer = send(Some(&viewer)).await.unwrap().status();
        let as_analyst = send(Some(&analyst)).await.unwrap().status();
        match scope.as_str() {
            "public" => assert_eq!(anonymous, StatusCode::OK, "{id}"),
            "viewer" => {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{id}");
                assert_ne!(as_viewer, StatusCode::FORBIDDEN, "{id}");
                assert_ne!(as_viewer, StatusCode::UNAUTHORIZED, "{id}");
            }
            "analyst" => {
                per_recipient += 1;
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{id}");
                assert_eq!(as_viewer, StatusCode::FORBIDDEN, "viewer on {id}");
                assert_ne!(as_analyst, StatusCode::FORBIDDEN, "analyst on {id}");
            }
            "admin" => {
                assert_eq!(as_viewer, StatusCode::FORBIDDEN, "viewer on {id}");
                assert_eq!(as_analyst, StatusCode::FORBIDDEN, "analyst on {id}");
            }
            other => panic!("{id}: unknown scope {other}"),
        }
        // No operation of the document falls through to the router's 404.
        let body = send(Some(&app.admin_token))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let code = serde_json::from_str::<Value>(&body).map(|v| v["error"]["code"].clone());
        assert_ne!(
            code.ok(),
            Some(json!("not_found")),
            "{method} {path}: {body}"
        );
    }
    assert!(per_recipient >= 5);
}
