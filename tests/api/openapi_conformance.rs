//! The OpenAPI document says what the answers are: every GET with a JSON answer is called on a
//! campaign with events, a recipient, a webhook and a tracking domain, and its answer checked
//! against the document's schema (types, nullability, required and undeclared properties, enums),
//! so the document cannot drift from the code unnoticed.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Where `value` does not fit `schema` (resolving `$ref`s in `doc`), as `at: why` lines.
fn mismatches(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return mismatches(doc, &doc["components"]["schemas"][name], value, at, out);
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = |t: &&str| *t == kind || (*t == "number" && kind == "integer");
    if !allowed.is_empty() && !allowed.iter().any(fits) {
        out.push(format!("{at}: {kind} where the document says {allowed:?}"));
        return;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {options:?}"));
    }
    match value {
        Value::Object(fields) => {
            for name in schema["required"].as_array().into_iter().flatten() {
                if !fields.contains_key(name.as_str().unwrap_or_default()) {
                    out.push(format!("{at}: no {name}"));
                }
            }
            let declared = schema["properties"].as_object();
            for (name, v) in fields {
                match declared.and_then(|d| d.get(name)) {
                    Some(s) => mismatches(doc, s, v, &format!("{at}.{name}"), out),
                    None if schema["additionalProperties"] == json!(false) => {
                        out.push(format!("{at}.{name}: not in the document"))
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) if schema.get("items").is_some() => {
            for (i, v) in items.iter().enumerate() {
                mismatches(doc, &schema["items"], v, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn json_answers_fit_the_openapi_document() {
    let app = TestApp::spawn_with(&["--webhook-allow-private"]).await;
    let campaign = app.create_campaign("Documented").await;
    let html = "<p><a href=\"https://shop.example.com/\">x</a></p>";
    let m = app.add_message(campaign, "doc@example.com", html).await;
    for (url, ua) in [
        (m["pixel_url"].as_str().unwrap().to_string(), CHROME),
        (m["pixel_url"].as_str().unwrap().to_string(), APPLE_MPP),
        (click_urls(m["html"].as_str().unwrap())[0].clone(), CHROME),
    ] {
        assert!(app.hit(&url, ua).await.is_success() || url.contains("/c/"));
    }
    let (port, _) = counting_listener().await;
    let r = app
        .api_post(
            "/api/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hook = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = app
        .api_post(
            "/api/recipients/doc%40example.com/consent",
            &json!({"source": "signup form"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = app
        .api_post("/api/tracking-domains", &json!({"domain": "t.doc.example"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    app.settled().await;

    let doc: Value = app.api_get("/api/openapi.json").await.json().await.unwrap();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(schema) =
            item["get"]["responses"]["200"]["content"]["application/json"].get("schema")
        else {
            continue;
        };
        let url = path
            .replace("/recipients/{id}", "/recipients/doc%40example.com")
            .replace("/webhooks/{id}", &format!("/webhooks/{hook}"))
            .replace("{domain}", "t.doc.example")
            .replace("{id}", &campaign.to_string())
            .replace("{by}", "client")
            .replace("{segment}", "opened");
        let url = match path.as_str() {
            "/api/compare" => format!("{url}?campaigns={campaign},{campaign}"),
            "/api/events" => format!("{url}?campaign={campaign}"),
            _ => url,
        };
        let r = app.api_get(&url).await;
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let body: Value = r.json().await.unwrap();
        mismatches(&doc, schema, &body, &url, &mut wrong);
        checked += 1;
    }
    assert!(checked >= 15, "{checked} operations");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every operation documents the answers any request may get (429, 503), and those that take
/// a body the ones a body may get (400, 408, 413, 415); a real 415 fits the Error schema.
#[tokio::test]
async fn error_answers_are_documented() {
    let app = TestApp::spawn().await;
    let doc: Value = app.api_get("/api/openapi.json").await.json().await.unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path == "/api/openapi.json" {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let codes = op["responses"].as_object().unwrap();
            let mut want = vec!["429", "503"];
            if op.get("requestBody").is_some() {
                want.extend(["400", "408", "413", "415"]);
            }
            for code in want {
                assert!(codes.contains_key(code), "{method} {path}: no {code}");
            }
        }
    }
    let r = app
        .client
        .post(app.url("/api/campaigns"))
        .bearer_auth(&app.admin_token)
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = r.json().await.unwrap();
    let mut wrong = Vec::new();
    let schema = &doc["paths"]["/api/campaigns"]["post"]["responses"]["415"];
    let name = schema["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
    let error = &doc["components"]["responses"][name]["content"]["application/json"]["schema"];
    mismatches(&doc, error, &body, "415", &mut wrong);
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// Where schemathesis (PyPI) is: `MAILBEACON_SCHEMATHESIS`, the venv `.ci/test` makes, or PATH.
fn schemathesis() -> String {
    python_tool("schemathesis", "MAILBEACON_SCHEMATHESIS")
}

/// schemathesis, a client generator users run against OpenAPI documents, sends generated
/// requests to every operation and checks the answers' status codes, content types, headers and
/// bodies against the document: nothing may disagree, and nothing may answer 5xx. Bounded: 20
/// examples an operation, one worker.
#[tokio::test]
async fn schemathesis_finds_the_server_true_to_its_document() {
    let app = TestApp::spawn().await;
    app.create_campaign("Generated").await;
    let program = schemathesis();
    let run = std::process::Command::new(&program)
        .args([
            "run",
            &app.url("/api/openapi.json"),
            "-H",
            &format!("Authorization: Bearer {}", app.admin_token),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--max-examples",
            "20",
            "--workers",
            "1",
            "--seed",
            "1",
        ])
        .current_dir(app.dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program} ({e}): pip install schemathesis (bash .ci/test makes \
                 ~/.cache/mailbeacon-venv with it), or set MAILBEACON_SCHEMATHESIS"
            )
        });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{said}");
    assert!(
        said.contains("Tested:") && !said.contains("Failures:"),
        "{said}"
    );
}
