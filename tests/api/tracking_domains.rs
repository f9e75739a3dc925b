//! Tracking domains of the sender's own, over HTTP on both engines: an admin lists, adds, retires
//! and removes them (audited); a campaign names one and its mail's links use it; a token works
//! whichever domain the request reaches the tracker under, so mail already sent keeps working
//! after its domain is retired for new mail; bad names and unknown or retired domains get
//! specific answers; the CLI does the same.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn campaigns_send_links_under_the_domains_an_admin_manages() {
    domains(TestApp::spawn().await).await;
}

#[tokio::test]
async fn campaigns_send_links_under_the_domains_an_admin_manages_on_postgres() {
    domains(TestApp::spawn_postgres("domains", &[]).await).await;
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn domains(app: TestApp) {
    let admin = app.admin_token.clone();
    let (ok, viewer, err) = cli(
        &app.db_url(),
        &["token", "create", "--scope", "analyst"],
        None,
    );
    assert!(ok, "{err}");
    let analyst = viewer.trim().to_string();

    // None at first; analysts may list but not add.
    let (status, list) = send(&app, Method::GET, "/api/tracking-domains", &analyst, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["tracking_domains"], json!([]));
    let add = |domain: &str| Some(json!({ "domain": domain }));
    let (status, _) = send(
        &app,
        Method::POST,
        "/api/tracking-domains",
        &analyst,
        add("t.brand.example"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A bare name means HTTPS; a URL is kept as given (this test's server is plain HTTP on a
    // loopback address, which is what the second domain names).
    let (status, brand) = send(
        &app,
        Method::POST,
        "/api/tracking-domains",
        &admin,
        add("T.Brand.Example"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{brand}");
    assert_eq!(brand["domain"], "t.brand.example");
    assert_eq!(brand["url"], "https://t.brand.example");
    assert!(brand["retired_at"].is_null());
    // Adding checks at once whether the name reaches this installation, and says what DNS record
    // to create when it does not (this test's server is at 127.0.0.1).
    let why = brand["check_error"].as_str().unwrap();
    assert!(
        why.contains("t.brand.example does not reach this installation yet")
            && why.contains("`t.brand.example. A 127.0.0.1`"),
        "{why}"
    );
    assert!(brand["verified_at"].is_null() && brand["checked_at"].is_string());
    let local_url = app.base.replace("127.0.0.1", "localhost");
    let (status, local) = send(
        &app,
        Method::POST,
        "/api/tracking-domains",
        &admin,
        add(&local_url),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{local}");
    assert_eq!(local["domain"], "localhost");
    assert!(
        local["check_error"].is_null() && local["verified_at"].is_string(),
        "{local}"
    );
    // A name that reaches another installation (its own keys) fails the check, now and when
    // checked again; only admins check.
    let other = TestApp::spawn().await;
    let (status, elsewhere) = send(
        &app,
        Method::POST,
        "/api/tracking-domains",
        &admin,
        add(&other.base),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{elsewhere}");
    assert!(
        elsewhere["check_error"]
            .as_str()
            .unwrap()
            .contains("not with this installation's proof"),
        "{elsewhere}"
    );
    let recheck = "/api/tracking-domains/127.0.0.1/check";
    let (status, _) = send(&app, Method::POST, recheck, &analyst, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, again) = send(&app, Method::POST, recheck, &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(again["check_error"].is_string() && again["verified_at"].is_null());
    let (ok, out, err) = cli(&app.db_url(), &["domains", "check", "localhost"], None);
    assert!(
        ok && out.contains("\treaches this installation"),
        "{out}{err}"
    );
    let (ok, _, err) = cli(&app.db_url(), &["domains", "check", "127.0.0.1"], None);
    assert!(
        !ok && err.contains("does not reach this installation yet"),
        "{err}"
    );
    let (status, again) = send(
        &app,
        Method::POST,
        "/api/tracking-domains",
        &admin,
        add("t.brand.example"),
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    for bad in [
        "*.brand.example",
        "t_1.example",
        "ftp://t.example",
        "https://u@t.example",
    ] {
        let (status, e) = send(
            &app,
            Method::POST,
            "/api/tracking-domains",
            &admin,
            add(bad),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(e["error"]["code"], "invalid_tracking_domain", "{bad}");
    }

    // A campaign names a listed domain; an unknown one is refused with what to do.
    let (status, e) = send(
        &app,
        Method::POST,
        "/api/campaigns",
        &analyst,
        Some(json!({"name": "x", "tracking_domain": "nope.example"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["code"], "invalid_tracking_domain");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not listed"),
        "{e}"
    );
    let (status, campaign) = send(
        &app,
        Method::POST,
        "/api/campaigns",
        &analyst,
        Some(json!({"name": "local", "tracking_domain": "LOCALHOST"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    assert_eq!(campaign["tracking_domain"], "localhost");
    let id = campaign["id"].as_i64().unwrap();
    let plain = app.create_campaign("plain").await;

    // Its mail's pixel and links are under the domain's URL; another campaign's under the public URL.
    let html = r#"<p><a href="https://shop.example/sale">Sale</a></p>"#;
    let message = app.add_message(id, "reader@example.com", html).await;
    let pixel = message["pixel_url"].as_str().unwrap().to_string();
    assert!(pixel.starts_with(&format!("{local_url}/o/")), "{pixel}");
    let links = click_urls(message["html"].as_str().unwrap());
    assert!(
        links
            .iter()
            .all(|l| l.starts_with(&format!("{local_url}/c/"))),
        "{links:?}"
    );
    let other = app.add_message(plain, "reader@example.com", html).await;
    assert!(
        other["pixel_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/o/", app.base))
    );

    // The tracker answers the token under either name: the token, not the host, names the mail.
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    assert_eq!(app.hit(&pixel, chrome).await, StatusCode::OK);
    assert_eq!(
        app.hit(&pixel.replace("localhost", "127.0.0.1"), chrome)
            .await,
        StatusCode::OK
    );

    // Retired: new mail may not use it, mail sent keeps working, the campaign says what to do.
    let (status, retired) = send(
        &app,
        Method::PATCH,
        "/api/tracking-domains/localhost",
        &admin,
        Some(json!({"retired": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{retired}");
    assert!(retired["retired_at"].is_string());
    let r = app
        .api_post(
            &format!("/api/campaigns/{id}/messages"),
            &json!({"recipient_id": "late@example.com", "html": html}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_tracking_domain");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("retired"),
        "{e}"
    );
    assert_eq!(app.hit(&links[0], chrome).await, StatusCode::FOUND);
    let (status, e) = send(
        &app,
        Method::POST,
        "/api/campaigns",
        &analyst,
        Some(json!({"name": "y", "tracking_domain": "localhost"})),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("invalid_tracking_domain")
        )
    );
    // Moved to the other domain, its new mail goes out under that one.
    let (status, moved) = send(
        &app,
        Method::PATCH,
        &format!("/api/campaigns/{id}"),
        &analyst,
        Some(json!({"tracking_domain": "t.brand.example"})),
    )
    .await;
    assert_eq!(
        (status, moved["tracking_domain"].as_str()),
        (StatusCode::OK, Some("t.brand.example"))
    );
    let later = app.add_message(id, "late@example.com", html).await;
    assert!(
        later["pixel_url"]
            .as_str()
            .unwrap()
            .starts_with("https://t.brand.example/o/")
    );

    // Only a retired domain is removed; the events it carried stay.
    let (status, e) = send(
        &app,
        Method::DELETE,
        "/api/tracking-domains/t.brand.example",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (status, _) = send(
        &app,
        Method::DELETE,
        "/api/tracking-domains/localhost",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, e) = send(
        &app,
        Method::GET,
        "/api/tracking-domains/localhost",
        &analyst,
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("tracking_domain_not_found"))
    );
    assert_eq!(app.events(id).await.len(), 3, "two opens and a click");

    // The same from the command line.
    let db = app.db_url();
    let (ok, out, err) = cli(&db, &["domains", "add", "links.shop.example"], None);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("links.shop.example\thttps://links.shop.example\tadded "),
        "{out}"
    );
    let (ok, _, err) = cli(&db, &["domains", "add", "links.shop.example"], None);
    assert!(!ok && err.contains("listed already"), "{err}");
    let (ok, _, err) = cli(&db, &["domains", "remove", "links.shop.example"], None);
    assert!(!ok && err.contains("retire it first"), "{err}");
    let (ok, out, err) = cli(
        &db,
        &[
            "campaign",
            "create",
            "--name",
            "cli",
            "--tracking-domain",
            "links.shop.example",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(made["tracking_domain"], "links.shop.example");
    let (ok, out, err) = cli(&db, &["domains", "retire", "links.shop.example"], None);
    assert!(ok && out.contains("\tretired "), "{out}{err}");
    let (ok, _, err) = cli(
        &db,
        &[
            "campaign",
            "create",
            "--name",
            "cli2",
            "--tracking-domain",
            "links.shop.example",
        ],
        None,
    );
    assert!(!ok && err.contains("retired"), "{err}");
    let (ok, _, err) = cli(&db, &["domains", "remove", "links.shop.example"], None);
    assert!(ok, "{err}");
    let (ok, out, _) = cli(&db, &["domains", "list"], None);
    assert!(
        ok && out
            .lines()
            .any(|l| l.starts_with("t.brand.example\thttps://t.brand.example\t")),
        "{out}"
    );

    // Every change is in the audit log.
    let audit: Value = app.api_get("/api/audit").await.json().await.unwrap();
    let actions: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().contains("tracking_domain"))
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    for expected in [
        ("add_tracking_domain", "t.brand.example"),
        ("add_tracking_domain", "localhost"),
        ("retire_tracking_domain", "localhost retired"),
        ("remove_tracking_domain", "localhost"),
        ("add_tracking_domain", "links.shop.example"),
        ("retire_tracking_domain", "links.shop.example retired"),
        ("remove_tracking_domain", "links.shop.example"),
    ] {
        assert!(
            actions.contains(&expected),
            "{expected:?} not in {actions:?}"
        );
    }
}

/// The dashboard: everyone signed in sees the list; admins add, retire, take back and remove
/// with its forms (from this site only), and a campaign's Manage card chooses its domain.
#[tokio::test]
async fn the_dashboard_manages_domains_and_chooses_a_campaigns() {
    use reqwest::header::{COOKIE, SET_COOKIE};
    let app = TestApp::spawn().await;
    let id = app.create_campaign("Winter").await;
    let (ok, viewer, err) = cli(
        &app.db_url(),
        &["token", "create", "--scope", "viewer"],
        None,
    );
    assert!(ok, "{err}");
    let sign_in = async |secret: &str| {
        let r = app
            .client
            .post(app.url("/login"))
            .form(&[("secret", secret)])
            .send()
            .await
            .unwrap();
        let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    };
    let admin = sign_in(&app.admin_token).await;
    let viewer = sign_in(viewer.trim()).await;
    let post = async |path: &str, cookie: &str, form: &[(&str, &str)], origin: Option<&str>| {
        let mut r = app
            .client
            .post(app.url(path))
            .header(COOKIE, cookie)
            .form(&form);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send().await.unwrap().status()
    };
    let page = async |path: &str, cookie: &str| {
        let r = app.client.get(app.url(path)).header(COOKIE, cookie);
        r.send().await.unwrap().text().await.unwrap()
    };

    let add = [("domain", "t.winter.example")];
    assert!(
        post(
            "/tracking-domains",
            &admin,
            &add,
            Some("https://evil.example")
        )
        .await
        .is_client_error()
    );
    assert_eq!(
        post("/tracking-domains", &viewer, &add, None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post("/tracking-domains", &admin, &add, None).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post(
            "/tracking-domains",
            &admin,
            &[("domain", "bad_name.example")],
            None
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let listed = page("/", &viewer).await;
    assert!(
        listed.contains("<td>t.winter.example</td><td>https:&#x2F;&#x2F;t.winter.example</td>"),
        "{listed}"
    );
    assert!(
        !listed.contains("action=\"/tracking-domains\""),
        "viewers get no forms"
    );

    // The Manage card offers the domains in use; saving it moves the campaign's new mail.
    let manage = page(&format!("/campaigns/{id}"), &admin).await;
    assert!(
        manage.contains("<option value=\"t.winter.example\">t.winter.example</option>"),
        "{manage}"
    );
    let edit = [
        ("name", "Winter"),
        ("subject", ""),
        ("tags", ""),
        ("tracking_domain", "t.winter.example"),
    ];
    assert_eq!(
        post(&format!("/campaigns/{id}/edit"), &admin, &edit, None).await,
        StatusCode::SEE_OTHER
    );
    assert!(
        page(&format!("/campaigns/{id}"), &admin)
            .await
            .contains("links under t.winter.example")
    );
    let message = app.add_message(id, "snow@example.com", "<p>hi</p>").await;
    assert!(
        message["pixel_url"]
            .as_str()
            .unwrap()
            .starts_with("https://t.winter.example/o/")
    );

    // Retired: still the campaign's own choice in its card, marked; removed once retired.
    let path = "/tracking-domains/t.winter.example";
    assert_eq!(
        post(&format!("{path}/remove"), &admin, &[], None).await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post(
            &format!("{path}/retire"),
            &admin,
            &[("retired", "true")],
            None
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert!(
        page(&format!("/campaigns/{id}"), &admin)
            .await
            .contains("t.winter.example (retired)</option>")
    );
    assert_eq!(
        post(
            &format!("{path}/retire"),
            &admin,
            &[("retired", "false")],
            None
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post(
            &format!("{path}/retire"),
            &admin,
            &[("retired", "true")],
            None
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post(&format!("{path}/remove"), &viewer, &[], None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&format!("{path}/remove"), &admin, &[], None).await,
        StatusCode::SEE_OTHER
    );
    assert!(
        page("/", &admin)
            .await
            .contains("None: links use the public URL.")
    );
    let audit: Value = app.api_get("/api/audit").await.json().await.unwrap();
    let targets: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().contains("tracking_domain"))
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 5, "{targets:?}");
}
