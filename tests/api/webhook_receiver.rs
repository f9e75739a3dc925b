//! The webhook receiver the webhook tests share: a real HTTP server on 127.0.0.1 that fails a share
//! of requests and answers slowly at times, and checks every signature with the Standard Webhooks
//! reference library (`standardwebhooks`).

use crate::helpers::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use reqwest::header::USER_AGENT;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fixed test secret (32 bytes of 0x2a), as `whsec_` + base64.
pub(crate) const SECRET: &str = "whsec_KioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// How the receiver answers its n-th request (counted across paths).
pub(crate) type Policy = Arc<dyn Fn(&str, usize) -> Answer + Send + Sync>;

#[derive(Clone, Copy)]
pub(crate) enum Answer {
    Ok,
    Fail,
    /// Records the notices, then answers after this long.
    Slow(Duration),
}

#[derive(Default)]
pub(crate) struct Received {
    /// Notice ids per path, with how often each arrived.
    pub(crate) ids: HashMap<String, HashMap<String, usize>>,
    /// Notices per path by id (the last copy).
    pub(crate) notices: HashMap<String, HashMap<String, Value>>,
    pub(crate) bad_signatures: usize,
    pub(crate) requests: usize,
    pub(crate) failed: usize,
}

pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) received: Arc<Mutex<Received>>,
    pub(crate) policy: Arc<Mutex<Policy>>,
}

impl Receiver {
    pub(crate) async fn start(policy: Policy) -> Receiver {
        let received = Arc::new(Mutex::new(Received::default()));
        let policy = Arc::new(Mutex::new(policy));
        let counter = Arc::new(AtomicUsize::new(0));
        let state = (received.clone(), policy.clone(), counter);
        let app = axum::Router::new()
            .route("/{path}", axum::routing::post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url,
            received,
            policy,
        }
    }

    pub(crate) fn set_policy(&self, policy: Policy) {
        *self.policy.lock().unwrap() = policy;
    }

    pub(crate) fn ids(&self, path: &str) -> HashSet<String> {
        let r = self.received.lock().unwrap();
        r.ids
            .get(path)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn notice(&self, path: &str, id: &str) -> Option<Value> {
        let r = self.received.lock().unwrap();
        r.notices.get(path).and_then(|m| m.get(id)).cloned()
    }

    pub(crate) fn notices(&self, path: &str) -> Vec<Value> {
        let r = self.received.lock().unwrap();
        r.notices
            .get(path)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until `path` has received every id of `want`.
    pub(crate) async fn wait_for(&self, path: &str, want: &HashSet<String>, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.ids(path);
            if want.is_subset(&got) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} of {} notices arrived within {limit:?}",
                want.intersection(&got).count(),
                want.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(crate) type ReceiverState = (Arc<Mutex<Received>>, Arc<Mutex<Policy>>, Arc<AtomicUsize>);

pub(crate) async fn receive(
    State((received, policy, counter)): State<ReceiverState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let answer = (policy.lock().unwrap().clone())(&path, n);
    let verified = standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .verify(&body, &headers)
        .is_ok();
    {
        let mut r = received.lock().unwrap();
        r.requests += 1;
        if !verified {
            r.bad_signatures += 1;
        }
        if matches!(answer, Answer::Fail) {
            r.failed += 1;
        } else if verified {
            let doc: Value = serde_json::from_slice(&body).unwrap();
            let notices = if doc["type"] == "batch" {
                doc["data"].as_array().unwrap().clone()
            } else {
                vec![doc]
            };
            for notice in notices {
                let id = notice["id"].as_str().unwrap().to_string();
                *r.ids
                    .entry(path.clone())
                    .or_default()
                    .entry(id.clone())
                    .or_default() += 1;
                r.notices
                    .entry(path.clone())
                    .or_default()
                    .insert(id, notice);
            }
        }
    }
    match answer {
        Answer::Ok => StatusCode::NO_CONTENT,
        Answer::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Answer::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
    }
}

pub(crate) async fn add_webhook(app: &TestApp, body: Value) -> Value {
    let mut body = body;
    body["secret"] = SECRET.into();
    let r = app.api_post("/api/webhooks", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["secret"], SECRET);
    v
}

/// Every event id stored, as the notice ids receivers see (`evt_<id>`).
pub(crate) async fn stored_notice_ids(app: &TestApp) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut after = 0i64;
    loop {
        let r = app
            .api_get(&format!("/api/events?after={after}&limit=10000"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.unwrap();
        let events = page["events"].as_array().unwrap();
        for e in events {
            ids.insert(format!("evt_{}", e["id"]));
        }
        if events.len() < 10_000 {
            return ids;
        }
        after = page["next_cursor"].as_str().unwrap().parse().unwrap();
    }
}

pub(crate) async fn webhook_status(app: &TestApp, id: i64) -> Value {
    let r = app.api_get(&format!("/api/webhooks/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["status"].clone()
}

/// Sequential pixel loads of fresh messages; returns each latency.
pub(crate) async fn pixel_latencies(
    app: &TestApp,
    campaign: i64,
    n: usize,
    tag: &str,
) -> Vec<Duration> {
    let rids: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let messages = app.register_sent(campaign, &refs, "<p>hi</p>", 2).await;
    let mut out = Vec::with_capacity(n);
    for m in messages {
        let started = Instant::now();
        let r = app
            .client
            .get(m["pixel_url"].as_str().unwrap())
            .header(USER_AGENT, CHROME)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        out.push(started.elapsed());
    }
    out.sort();
    out
}

pub(crate) fn pct(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Until no endpoint has a notice waiting (each was delivered, withdrawn or given up on): nothing
/// more will arrive.
pub(crate) async fn until_nothing_is_pending(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hooks: Value = app.api_get("/api/webhooks").await.json().await.unwrap();
        let hooks = hooks["webhooks"].as_array().unwrap();
        if hooks.iter().all(|h| h["status"]["pending"] == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "notices still waiting: {hooks:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
