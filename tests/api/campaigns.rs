//! Campaigns as users keep them, over HTTP on both engines: a subject, a send time (given, or the
//! first message's), tags; the list with readers' open and click rates, archived ones left out
//! unless asked for; rename and archive by analysts; deletion by admins only, which removes what
//! erasure would, answers 404 for the campaign's pixels and links, withdraws the webhook notices
//! about its events, tells receivers, is audited, and leaves other campaigns as they were.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn campaigns_are_described_listed_archived_and_deleted() {
    lifecycle(TestApp::spawn_with(&["--webhook-allow-private"]).await).await;
}

#[tokio::test]
async fn campaigns_are_described_listed_archived_and_deleted_on_postgres() {
    lifecycle(TestApp::spawn_postgres("campaignlife", &["--webhook-allow-private"]).await).await;
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.settled().await;
    let mut r = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn names(list: &Value) -> Vec<&str> {
    list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

fn token(app: &TestApp, scope: &str) -> String {
    let (ok, out, err) = cli(&app.db_url(), &["token", "create", "--scope", scope], None);
    assert!(ok, "{err}");
    out.trim().to_string()
}

async fn lifecycle(app: TestApp) {
    use reqwest::Method;
    let admin = app.admin_token.clone();
    let analyst = token(&app, "analyst");
    let viewer = token(&app, "viewer");

    let (status, a) = send(
        &app,
        Method::POST,
        "/api/campaigns",
        &admin,
        Some(json!({"name": " Spring sale ", "subject": "Spring is here, Ada", "tags": ["spring", "newsletter", "spring"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(
        (
            &a["name"],
            &a["subject"],
            &a["tags"],
            &a["sent_at"],
            &a["archived_at"]
        ),
        (
            &json!("Spring sale"),
            &json!("Spring is here, Ada"),
            &json!(["spring", "newsletter"]),
            &Value::Null,
            &Value::Null
        )
    );
    let a_id = a["id"].as_i64().unwrap();
    let (status, b) = send(
        &app,
        Method::POST,
        "/api/campaigns",
        &analyst,
        Some(json!({"name": "Receipts", "sent_at": "2026-11-30T09:00:00+01:00"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert_eq!(b["sent_at"], "2026-11-30T08:00:00Z");
    let b_id = b["id"].as_i64().unwrap();

    // Without a send time of its own, the campaign takes its first message's.
    let html = r#"<p><a href="https://shop.example.com/spring">Shop</a></p>"#;
    let messages = app
        .register_sent(a_id, &["ada@example.com", "bob@example.com"], html, 2)
        .await;
    app.register_sent(b_id, &["cy@example.com"], html, 1).await;
    let (_, a) = send(
        &app,
        Method::GET,
        &format!("/api/campaigns/{a_id}"),
        &viewer,
        None,
    )
    .await;
    let sent_at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let two_hours_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    let off = (sent_at(&a["sent_at"]).with_timezone(&chrono::Utc) - two_hours_ago).num_seconds();
    assert!(off.abs() < 120, "the messages were sent two hours ago: {a}");

    // Ada reads it, Bob clicks with images off: both opened, one clicked.
    let pixel = messages[0]["pixel_url"].as_str().unwrap();
    assert_eq!(app.hit(pixel, CHROME).await, StatusCode::OK);
    let link = click_urls(messages[1]["html"].as_str().unwrap()).remove(0);
    assert!(app.hit(&link, CHROME).await.is_redirection());
    let (status, list) = send(&app, Method::GET, "/api/campaigns", &viewer, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(names(&list), ["Receipts", "Spring sale"]);
    let listed = &list["campaigns"][1];
    assert_eq!(
        (
            &listed["sent"],
            &listed["reader_opens"],
            &listed["reader_clicks"]
        ),
        (&json!(2), &json!(2), &json!(1)),
        "{listed}"
    );
    assert_eq!(
        (
            listed["reader_open_rate"].as_f64(),
            listed["reader_click_rate"].as_f64()
        ),
        (Some(1.0), Some(0.5))
    );
    let (_, tagged) = send(
        &app,
        Method::GET,
        "/api/campaigns?tag=spring",
        &viewer,
        None,
    )
    .await;
    assert_eq!(names(&tagged), ["Spring sale"]);

    // Analysts rename and archive; an archived campaign leaves the list and keeps tracking.
    let (status, edited) = send(
        &app,
        Method::PATCH,
        &format!("/api/campaigns/{a_id}"),
        &analyst,
        Some(json!({"name": "Spring sale (final)", "subject": null, "tags": ["q2"], "archived": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        (&edited["name"], &edited["subject"], &edited["tags"]),
        (&json!("Spring sale (final)"), &Value::Null, &json!(["q2"]))
    );
    assert!(edited["archived_at"].is_string(), "{edited}");
    assert_eq!(
        sent_at(&edited["sent_at"]),
        sent_at(&a["sent_at"]),
        "a change leaves out what it does not name"
    );
    let (_, list) = send(&app, Method::GET, "/api/campaigns", &viewer, None).await;
    assert_eq!(names(&list), ["Receipts"]);
    let (_, list) = send(
        &app,
        Method::GET,
        "/api/campaigns?archived=only",
        &viewer,
        None,
    )
    .await;
    assert_eq!(names(&list), ["Spring sale (final)"]);
    let (_, list) = send(
        &app,
        Method::GET,
        "/api/campaigns?archived=include",
        &viewer,
        None,
    )
    .await;
    assert_eq!(names(&list), ["Receipts", "Spring sale (final)"]);
    assert_eq!(app.hit(pixel, CHROME).await, StatusCode::OK);
    app.settled().await;
    assert_eq!(app.stats(a_id).await["opens"]["total"], 2);

    // Bad input gets its own answer.
    for (method, path, token, body, want, code) in [
        (
            Method::PATCH,
            format!("/api/campaigns/{a_id}"),
            &analyst,
            json!({"subject": "two\nlines"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_subject",
        ),
        (
            Method::PATCH,
            format!("/api/campaigns/{a_id}"),
            &analyst,
            json!({"tags": ["a,b"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_tags",
        ),
        (
            Method::PATCH,
            format!("/api/campaigns/{a_id}"),
            &analyst,
            json!({"name": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
        ),
        (
            Method::PATCH,
            format!("/api/campaigns/{a_id}"),
            &analyst,
            json!({"colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Method::PATCH,
            "/api/campaigns/999999".into(),
            &analyst,
            json!({"archived": false}),
            StatusCode::NOT_FOUND,
            "campaign_not_found",
        ),
        (
            Method::PATCH,
            format!("/api/campaigns/{a_id}"),
            &viewer,
            json!({"archived": false}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            Method::DELETE,
            format!("/api/campaigns/{a_id}"),
            &analyst,
            Value::Null,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            Method::GET,
            "/api/campaigns?archived=maybe".into(),
            &viewer,
            Value::Null,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
        ),
        (
            Method::GET,
            "/api/campaigns?tag=a,b".into(),
            &viewer,
            Value::Null,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_tags",
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = send(&app, method.clone(), &path, token, body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (want, Some(code)),
            "{method} {path}: {answer}"
        );
    }

    // A receiver of deletions, and an open notice about A waiting for its receiver.
    let (port, _) = counting_listener().await;
    let (status, hook) = send(
        &app,
        Method::POST,
        "/api/webhooks",
        &admin,
        Some(json!({"url": format!("http://127.0.0.1:{port}/hook"), "kinds": ["open", "campaign_deleted"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook = hook["id"].as_i64().unwrap();
    assert_eq!(app.hit(pixel, CHROME).await, StatusCode::OK);
    let b_report = send(
        &app,
        Method::GET,
        &format!("/api/campaigns/{b_id}/report"),
        &viewer,
        None,
    )
    .await;

    let (status, deleted) = send(
        &app,
        Method::DELETE,
        &format!("/api/campaigns/{a_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["removed"]["messages"], 2, "{deleted}");
    assert_eq!(deleted["removed"]["links"], 2, "{deleted}");
    assert_eq!(deleted["removed"]["events"], 4, "{deleted}");
    assert_eq!(deleted["removed"]["webhook_notices"], 1, "{deleted}");
    let (status, _) = send(
        &app,
        Method::GET,
        &format!("/api/campaigns/{a_id}"),
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.hit(pixel, CHROME).await, StatusCode::NOT_FOUND);
    assert_eq!(app.hit(&link, CHROME).await, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/campaigns/{a_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        db_count(
            &app.db_url(),
            &format!("SELECT count(*) FROM events WHERE campaign_id = {a_id}")
        ),
        0
    );
    assert_eq!(
        db_count(
            &app.db_url(),
            &format!("SELECT count(*) FROM campaign_totals WHERE campaign_id = {a_id}")
        ),
        0
    );
    let deliveries: Value = app
        .api_get(&format!("/api/webhooks/{hook}/deliveries"))
        .await
        .json()
        .await
        .unwrap();
    let notices = deliveries["deliveries"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{deliveries}");
    assert_eq!(notices[0]["type"], "campaign.deleted");
    let (_, audit) = send(&app, Method::GET, "/api/audit", &admin, None).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "delete_campaign" && e["target"] == format!("campaign {a_id}")),
        "{audit}"
    );
    let (_, list) = send(
        &app,
        Method::GET,
        "/api/campaigns?archived=include",
        &viewer,
        None,
    )
    .await;
    assert_eq!(names(&list), ["Receipts"]);
    assert_eq!(
        send(
            &app,
            Method::GET,
            &format!("/api/campaigns/{b_id}/report"),
            &viewer,
            None
        )
        .await,
        b_report
    );
}

/// The campaign page's Manage card: analysts rename and archive, admins delete after typing the
/// id; forms from another site, viewers and a wrong confirmation change nothing.
#[tokio::test]
async fn the_dashboard_renames_archives_and_deletes() {
    use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
    let app = TestApp::spawn().await;
    let id = app.create_campaign("Autumn").await;
    let viewer = token(&app, "viewer");
    let sign_in = |secret: String| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(app.url("/login"))
                .form(&[("secret", secret.as_str())])
                .send()
                .await
                .unwrap();
            let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
            cookie.split(';').next().unwrap().to_string()
        }
    };
    let admin = sign_in(app.admin_token.clone()).await;
    let viewer = sign_in(viewer).await;
    let post = |path: String, cookie: &str, form: &[(&str, &str)], origin: Option<&'static str>| {
        let mut r = app
            .client
            .post(app.url(&path))
            .header(COOKIE, cookie.to_string())
            .form(&form);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    let page = |path: String, cookie: &str| {
        let r = app
            .client
            .get(app.url(&path))
            .header(COOKIE, cookie.to_string())
            .send();
        async move { r.await.unwrap().text().await.unwrap() }
    };
    let edit = [
        ("name", "Autumn <sale>"),
        ("subject", "Leaves & prices fall"),
        ("tags", "autumn, sale"),
    ];

    let r = post(
        format!("/campaigns/{id}/edit"),
        &admin,
        &edit,
        Some("https://evil.example"),
    )
    .await
    .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = post(format!("/campaigns/{id}/edit"), &viewer, &edit, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        !page(format!("/campaigns/{id}"), &viewer)
            .await
            .contains("Manage")
    );

    let r = post(format!("/campaigns/{id}/edit"), &admin, &edit, None)
        .await
        .unwrap();
    assert_eq!(
        (r.status(), &r.headers()[LOCATION]),
        (
            StatusCode::SEE_OTHER,
            &format!("/campaigns/{id}")
                .parse::<reqwest::header::HeaderValue>()
                .unwrap()
        )
    );
    let body = page(format!("/campaigns/{id}"), &admin).await;
    assert!(body.contains("<h1>Autumn &lt;sale&gt;</h1>"), "{body}");
    assert!(
        body.contains("Leaves &amp; prices fall")
            && body.contains("<span class=\"tag\">sale</span>"),
        "{body}"
    );
    let r = post(
        format!("/campaigns/{id}/edit"),
        &admin,
        &[("name", " "), ("subject", ""), ("tags", "")],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let r = post(
        format!("/campaigns/{id}/archive"),
        &admin,
        &[("archived", "true")],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!page("/".into(), &viewer).await.contains("Autumn"));
    assert!(
        page("/?archived=only".into(), &viewer)
            .await
            .contains("Autumn &lt;sale&gt;")
    );

    let r = post(
        format!("/campaigns/{id}/delete"),
        &admin,
        &[("confirm", "12345")],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("nothing was deleted"));
    assert_eq!(
        app.api_get(&format!("/api/campaigns/{id}")).await.status(),
        StatusCode::OK
    );
    let confirm = id.to_string();
    let r = post(
        format!("/campaigns/{id}/delete"),
        &admin,
        &[("confirm", &confirm)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.api_get(&format!("/api/campaigns/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// The same from the command line: create with a subject, send time and tags, list, edit,
/// archive, and delete only with --yes.
#[tokio::test]
async fn the_cli_keeps_campaigns_too() {
    let app = TestApp::spawn().await;
    let db = app.db_url();
    let run = |args: &[&str]| {
        let (ok, out, err) = cli(&db, args, None);
        assert!(ok, "{args:?}: {err}");
        out
    };
    let id = run(&[
        "campaign",
        "create",
        "--name",
        "Winter",
        "--subject",
        "Snow days",
        "--sent-at",
        "2026-12-01T08:00:00Z",
        "--tags",
        "winter,promo",
    ]);
    let id = id.trim();
    let list = run(&["campaign", "list"]);
    assert!(
        list.contains(&format!("{id}\t2026-12-01\t-\t-\tWinter\twinter,promo")),
        "{list}"
    );
    let edited = run(&[
        "campaign",
        "edit",
        id,
        "--name",
        "Winter (final)",
        "--no-subject",
        "--archive",
        "--json",
    ]);
    let edited: Value = serde_json::from_str(&edited).unwrap();
    assert_eq!(
        (&edited["name"], &edited["subject"]),
        (&json!("Winter (final)"), &Value::Null)
    );
    assert!(!run(&["campaign", "list"]).contains("Winter"));
    assert!(
        run(&["campaign", "list", "--archived"])
            .contains("Winter (final)\twinter,promo\t(archived)")
    );
    assert!(
        run(&["campaign", "list", "--tag", "promo", "--archived-only"]).contains("Winter (final)")
    );
    let (ok, _, err) = cli(&db, &["campaign", "edit", id, "--tags", "a\u{7}b"], None);
    assert!(!ok && err.contains("--tags"), "{err}");
    let (ok, _, err) = cli(&db, &["campaign", "delete", id], None);
    assert!(!ok && err.contains("--yes"), "{err}");
    assert!(run(&["campaign", "delete", id, "--yes"]).contains("deleted campaign"));
    assert!(!run(&["campaign", "list", "--archived"]).contains("Winter"));
    let (ok, _, err) = cli(&db, &["campaign", "delete", id, "--yes"], None);
    assert!(!ok && err.contains("does not exist"), "{err}");
}
