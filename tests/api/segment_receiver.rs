//! A Segment-compatible tracking API on 127.0.0.1 for the segment destination tests: `POST
//! /v1/batch` checked against the shape Segment's HTTP API documents (basic auth with a known write
//! key, JSON, at most 500 KB a request and 32 KB a call, track calls with an event name, a user or
//! anonymous id, a message id and ISO-8601 timestamps no later than the batch's `sentAt`). It fails
//! a share of requests, and "loses" the answer to others after keeping their calls, as a receiver
//! behind a flaky network does; calls are told apart by `messageId`, as Segment de-duplicates.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers its n-th request.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Answer {
    Ok,
    /// 500, nothing kept.
    Fail,
    /// The calls are kept, then 503 (the answer "lost"): the sender sends them again.
    Unanswered,
}

pub(crate) type Policy = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

/// One call as kept, with its write key.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) key: String,
    pub(crate) call: Value,
}

#[derive(Default)]
pub(crate) struct Received {
    /// Every call kept, in arrival order (copies included).
    pub(crate) calls: Vec<Call>,
    /// Per write key and notice (the `messageId` without its endpoint's prefix): how many requests
    /// that carried it were answered 200.
    pub(crate) acknowledged: HashMap<(String, String), usize>,
    /// Per write key, the `messageId` prefixes seen (one per endpoint).
    pub(crate) prefixes: HashMap<String, HashSet<String>>,
    /// What broke the documented shape; the tests expect none.
    pub(crate) violations: Vec<String>,
    pub(crate) requests: usize,
    pub(crate) failed: usize,
    pub(crate) answers_lost: usize,
    pub(crate) largest_request: usize,
    pub(crate) most_calls: usize,
}

pub(crate) struct SegmentReceiver {
    /// The data plane's address, without a path (mailbeacon adds `/v1/batch`).
    pub(crate) url: String,
    pub(crate) received: Arc<Mutex<Received>>,
    policy: Arc<Mutex<Policy>>,
}

type ReceiverState = (
    Arc<Mutex<Received>>,
    Arc<Mutex<Policy>>,
    Arc<AtomicUsize>,
    Arc<Vec<String>>,
);

impl SegmentReceiver {
    /// A receiver that takes the write keys `keys`.
    pub(crate) async fn start(keys: &[&str], policy: Policy) -> SegmentReceiver {
        let received = Arc::new(Mutex::new(Received::default()));
        let policy = Arc::new(Mutex::new(policy));
        let keys = Arc::new(keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        let state = (
            received.clone(),
            policy.clone(),
            Arc::new(AtomicUsize::new(0)),
            keys,
        );
        let app = axum::Router::new()
            .route("/v1/batch", axum::routing::post(batch))
            .layer(axum::extract::DefaultBodyLimit::max(4 << 20))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        SegmentReceiver {
            url,
            received,
            policy,
        }
    }

    pub(crate) fn set_policy(&self, policy: Policy) {
        *self.policy.lock().unwrap() = policy;
    }

    /// The calls kept for `key`, by notice id (the last copy).
    pub(crate) fn calls(&self, key: &str) -> HashMap<String, Value> {
        let r = self.received.lock().unwrap();
        r.calls
            .iter()
            .filter(|c| c.key == key)
            .map(|c| (notice_id(&c.call).to_string(), c.call.clone()))
            .collect()
    }

    /// Waits until every notice id of `want` (`evt_42`) was acknowledged to `key`.
    pub(crate) async fn wait_for(&self, key: &str, want: &[String], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let missing = {
                let r = self.received.lock().unwrap();
                want.iter()
                    .filter(|id| {
                        !r.acknowledged
                            .contains_key(&(key.to_string(), id.to_string()))
                    })
                    .count()
            };
            if missing == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{missing} of {} calls not acknowledged within {limit:?}",
                want.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn batch(
    State((received, policy, counter, keys)): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let answer = (policy.lock().unwrap().clone())(n);
    let mut r = received.lock().unwrap();
    r.requests += 1;
    r.largest_request = r.largest_request.max(body.len());
    let key = match write_key(&headers, &keys) {
        Ok(key) => key,
        Err(why) => {
            r.violations.push(why);
            return (StatusCode::UNAUTHORIZED, r#"{"success":false}"#);
        }
    };
    let calls = match check_batch(&headers, &body) {
        Ok(calls) => calls,
        Err(why) => {
            r.violations.push(why);
            return (StatusCode::BAD_REQUEST, r#"{"success":false}"#);
        }
    };
    r.most_calls = r.most_calls.max(calls.len());
    if answer == Answer::Fail {
        r.failed += 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "");
    }
    for call in &calls {
        let id = notice_id(call).to_string();
        let prefix = call["messageId"].as_str().unwrap()[..].trim_end_matches(id.as_str());
        let prefix = prefix.to_string();
        r.prefixes.entry(key.clone()).or_default().insert(prefix);
        if answer == Answer::Ok {
            *r.acknowledged.entry((key.clone(), id)).or_default() += 1;
        }
        r.calls.push(Call {
            key: key.clone(),
            call: call.clone(),
        });
    }
    if answer == Answer::Unanswered {
        r.answers_lost += 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "");
    }
    (StatusCode::OK, r#"{"success":true}"#)
}

/// The notice a call tells of: its `messageId` after the endpoint's prefix (`mailbeacon-<hash>-`).
pub(crate) fn notice_id(call: &Value) -> &str {
    let id = call["messageId"].as_str().unwrap();
    id.rsplit('-').next().unwrap()
}

/// Basic auth: the write key as the user name and an empty password.
fn write_key(headers: &HeaderMap, keys: &[String]) -> Result<String, String> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Authorization header")?;
    let encoded = auth
        .strip_prefix("Basic ")
        .ok_or_else(|| format!("not basic auth: {auth}"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("basic auth is not base64: {e}"))?;
    let decoded = String::from_utf8(decoded).map_err(|e| e.to_string())?;
    let key = decoded
        .strip_suffix(':')
        .ok_or_else(|| format!("basic auth is not 'key:' (empty password): {decoded}"))?;
    if !keys.iter().any(|k| k == key) {
        return Err(format!("unknown write key {key}"));
    }
    Ok(key.to_string())
}

const EVENTS: [&str; 4] = [
    "Email Opened",
    "Email Link Clicked",
    "Unsubscribed",
    "Email Converted",
];

fn check_batch(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, String> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(format!("content-type {content_type}"));
    }
    if body.len() > 500 * 1000 {
        return Err(format!("a request of {} bytes, over 500 KB", body.len()));
    }
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let sent_at = time(&doc["sentAt"]).ok_or_else(|| format!("sentAt: {}", doc["sentAt"]))?;
    let calls = doc["batch"]
        .as_array()
        .filter(|b| !b.is_empty())
        .ok_or("batch: not a non-empty array")?;
    for call in calls {
        let bytes = call.to_string().len();
        let fail = |why: String| Err(format!("{why}: {call}"));
        if bytes > 32 * 1000 {
            return fail(format!("a call of {bytes} bytes, over 32 KB"));
        }
        if call["type"] != "track" {
            return fail("type is not track".into());
        }
        if !EVENTS.contains(&call["event"].as_str().unwrap_or("")) {
            return fail("not one of the email spec's events".into());
        }
        let named = |k: &str| call[k].as_str().is_some_and(|s| !s.is_empty());
        if named("userId") == named("anonymousId") {
            return fail("exactly one of userId and anonymousId".into());
        }
        if !named("messageId") {
            return fail("no messageId".into());
        }
        match time(&call["timestamp"]) {
            Some(t) if t <= sent_at => {}
            _ => return fail("timestamp missing, or after sentAt".into()),
        }
        if !call["properties"].is_object() {
            return fail("properties is not an object".into());
        }
    }
    Ok(calls.clone())
}

fn time(v: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()
}
