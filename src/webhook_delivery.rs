//! The delivery worker: takes due notices from the outbox, sends them, and records the outcome.
//!
//! Each endpoint has at most [`IN_FLIGHT_PER_ENDPOINT`] requests open and at most its
//! `rate_limit` requests a second; one slow or failing receiver delays only its own notices. A
//! claimed notice is leased for the request timeout and a margin: if this process dies while
//! sending, the notice becomes due again when the lease ends (at least once, never lost).
//! Failures are retried after `retry_base * 2^(attempts-1)` (at most [`MAX_BACKOFF`]), scaled by a
//! random factor in [0.5, 1) so that retries of many notices do not arrive together.

use crate::store::Store;
use crate::webhooks::destination::PublicOnly;
use crate::webhooks::{Attempt, Delivery, DueEndpoint, Next, Protocol};
use crate::webhooks::{segment, signature};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

pub const IN_FLIGHT_PER_ENDPOINT: usize = 4;
pub const MAX_BACKOFF: Duration = Duration::from_secs(4 * 3600);
/// How often the outbox is looked at when nothing wakes the worker (other processes' notices,
/// retries coming due).
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub timeout: Duration,
    pub max_attempts: u32,
    pub retry_base: Duration,
    /// Allow receivers on loopback, private and link-local addresses.
    pub allow_private: bool,
}

/// Wakes the worker when the writer has committed (so notices go out at once, not at the next
/// poll). Cheap to clone.
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Runs until `closing` turns true; requests still open then are left to their leases.
pub async fn run(
    store: Arc<dyn Store>,
    settings: DeliverySettings,
    wake: Wake,
    mut closing: watch::Receiver<bool>,
) {
    let client = match client(&settings) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("webhooks: cannot build the HTTP client, nothing will be sent: {e}");
            return;
        }
    };
    let mut in_flight: HashMap<i64, usize> = HashMap::new();
    let mut next_slot: HashMap<i64, Instant> = HashMap::new();
    let mut tasks: JoinSet<i64> = JoinSet::new();
    // Endpoints whose lag gauge was set: it goes back to 0 when their backlog is gone.
    let mut lagging: Vec<i64> = Vec::new();
    loop {
        if *closing.borrow() {
            break;
        }
        let mut sleep = POLL;
        match store.due_webhooks().await {
            Ok(due) => {
                let now = Utc::now();
                for gone in lagging
                    .iter()
                    .filter(|id| !due.iter().any(|e| e.id == **id))
                {
                    metrics::gauge!("mailbeacon_webhook_lag_seconds", "endpoint" => gone.to_string())
                        .set(0.0);
                }
                lagging = due.iter().map(|e| e.id).collect();
                for endpoint in due {
                    let lag = (now - endpoint.next_due).num_milliseconds().max(0) as f64 / 1e3;
                    metrics::gauge!("mailbeacon_webhook_lag_seconds", "endpoint" => endpoint.id.to_string())
                        .set(lag);
                    if endpoint.next_due > now {
                        sleep = sleep.min((endpoint.next_due - now).to_std().unwrap_or(POLL));
                        continue;
                    }
                    let endpoint = Arc::new(endpoint);
                    loop {
                        let open = in_flight.entry(endpoint.id).or_default();
                        if *open >= IN_FLIGHT_PER_ENDPOINT {
                            break;
                        }
                        let slot = next_slot.entry(endpoint.id).or_insert_with(Instant::now);
                        let wait = slot.saturating_duration_since(Instant::now());
                        if !wait.is_zero() {
                            sleep = sleep.min(wait);
                            break;
                        }
                        let now = Utc::now();
                        // Long enough for every request the batch may take, one after the other.
                        let requests = match endpoint.protocol {
                            Protocol::StandardWebhooks => 1,
                            Protocol::Segment => segment::requests_at_most(endpoint.batch_size),
                        };
                        let lease = now
                            + chrono::Duration::from_std(
                                (settings.timeout + Duration::from_secs(2)) * requests,
                            )
                            .unwrap_or_default();
                        let batch = match store
                            .claim_webhook_deliveries(
                                endpoint.id,
                                endpoint.batch_size.max(1) as usize,
                                now,
                                lease,
                            )
                            .await
                        {
                            Ok(b) if b.is_empty() => break,
                            Ok(b) => b,
                            Err(e) => {
                                tracing::warn!(
                                    "webhooks: cannot take notices from the outbox: {e}"
                                );
                                break;
                            }
                        };
                        *open += 1;
                        *slot = Instant::now()
                            + Duration::from_secs_f64(1.0 / endpoint.rate_limit.max(1) as f64);
                        let (store, client, settings, endpoint) = (
                            store.clone(),
                            client.clone(),
                            settings.clone(),
                            endpoint.clone(),
                        );
                        tasks.spawn(async move {
                            deliver(&*store, &client, &settings, &endpoint, batch).await;
                            endpoint.id
                        });
                    }
                }
            }
            Err(e) => tracing::warn!("webhooks: cannot read the outbox: {e}"),
        }
        tokio::select! {
            () = wake.0.notified() => {
                // Let a burst of commits gather before reading the outbox again.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Some(first) = tasks.join_next(), if !tasks.is_empty() => {
                // Every request that has ended frees its endpoint's slot.
                for endpoint in std::iter::once(first)
                    .chain(std::iter::from_fn(|| tasks.try_join_next()))
                    .flatten()
                {
                    if let Some(n) = in_flight.get_mut(&endpoint) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
            () = tokio::time::sleep(sleep) => {}
            _ = closing.changed() => {}
        }
    }
}

/// Sends the batch (one request, or a Segment-style destination's requests under its size limit)
/// and records how each went.
async fn deliver(
    store: &dyn Store,
    client: &reqwest::Client,
    settings: &DeliverySettings,
    endpoint: &DueEndpoint,
    batch: Vec<Delivery>,
) {
    // Registered while --webhook-allow-private was on, and it is off now: an address given
    // literally never meets the resolver's check, so the URL is checked again here.
    let allowed = crate::webhooks::destination::check_url(&endpoint.url, settings.allow_private);
    match endpoint.protocol {
        Protocol::StandardWebhooks => {
            let (msg_id, body) = body(endpoint.batch_size, &batch);
            let started = Instant::now();
            let result = match allowed {
                Ok(_) => send(client, endpoint, &msg_id, body).await,
                Err(e) => Err(e),
            };
            record(
                store,
                settings,
                endpoint,
                &batch,
                result,
                Some(started.elapsed()),
            )
            .await;
        }
        Protocol::Segment => {
            let mut names = HashMap::new();
            for id in segment::campaign_ids(&batch) {
                match store.campaign(crate::domain::CampaignId(id)).await {
                    Ok(Some(c)) => {
                        names.insert(id, c.name);
                    }
                    Ok(None) => {}
                    // Sent again when the database answers.
                    Err(e) => {
                        let e = format!("cannot read campaign {id}'s name: {e}");
                        record(store, settings, endpoint, &batch, Err(e), None).await;
                        return;
                    }
                }
            }
            let prefix = segment::message_id_prefix(endpoint.id, endpoint.created_at);
            let (requests, refused) = segment::requests(&batch, &names, &prefix, Utc::now());
            for (i, why) in refused {
                let one = [batch[i].clone()];
                record(store, settings, endpoint, &one, Err(why), None).await;
            }
            for request in requests {
                let part: Vec<Delivery> =
                    request.notices.iter().map(|&i| batch[i].clone()).collect();
                let started = Instant::now();
                let result = match &allowed {
                    Ok(_) => send_segment(client, endpoint, request.body).await,
                    Err(e) => Err(e.clone()),
                };
                record(
                    store,
                    settings,
                    endpoint,
                    &part,
                    result,
                    Some(started.elapsed()),
                )
                .await;
            }
        }
    }
}

/// Records one request's outcome for the notices it carried: delivered, retried later, or given up.
async fn record(
    store: &dyn Store,
    settings: &DeliverySettings,
    endpoint: &DueEndpoint,
    batch: &[Delivery],
    result: Result<u16, String>,
    // `None`: no request was made (the notice could not be sent as it is).
    latency: Option<Duration>,
) {
    let label = endpoint.id.to_string();
    if let Some(latency) = latency {
        metrics::histogram!("mailbeacon_webhook_request_seconds", "endpoint" => label.clone())
            .record(latency.as_secs_f64());
    }
    let at = Utc::now();
    let (status, error) = match result {
        Ok(status) if (200..300).contains(&status) => (Some(status), None),
        Ok(status) => (
            Some(status),
            Some(format!("the receiver answered {status}")),
        ),
        Err(e) => (None, Some(e)),
    };
    let outcome = if error.is_none() {
        "success"
    } else {
        "failure"
    };
    if latency.is_some() {
        metrics::counter!("mailbeacon_webhook_requests_total", "endpoint" => label.clone(), "outcome" => outcome)
            .increment(1);
    }
    let results: Vec<(i64, Next)> = batch
        .iter()
        .map(|d| {
            let next = if error.is_none() {
                Next::Delivered
            } else if d.attempts + 1 >= settings.max_attempts {
                Next::Dead
            } else {
                Next::RetryAt(at + backoff(settings.retry_base, d.attempts + 1))
            };
            (d.id, next)
        })
        .collect();
    let delivered = results
        .iter()
        .filter(|(_, n)| *n == Next::Delivered)
        .count();
    let dead = results.iter().filter(|(_, n)| *n == Next::Dead).count();
    metrics::counter!("mailbeacon_webhook_notices_total", "endpoint" => label.clone(), "state" => "delivered")
        .increment(delivered as u64);
    metrics::counter!("mailbeacon_webhook_notices_total", "endpoint" => label, "state" => "dead")
        .increment(dead as u64);
    if let Some(e) = &error {
        tracing::debug!("webhook {}: {e}", endpoint.id);
        if dead > 0 {
            tracing::warn!(
                "webhook {}: {dead} notice(s) given up after {} attempts ({e}); `mailbeacon webhooks replay {}` sends them again",
                endpoint.id,
                settings.max_attempts,
                endpoint.id
            );
        }
    }
    let attempt = Attempt {
        at,
        status,
        error,
        latency_ms: latency.unwrap_or_default().as_millis() as i64,
    };
    // If this fails the leases run out and the notices are sent again: at least once.
    if let Err(e) = store
        .finish_webhook_deliveries(endpoint.id, results, attempt)
        .await
    {
        tracing::warn!("webhooks: cannot record a delivery: {e}");
    }
}

/// The `webhook-id` and the JSON body: one notice as it is, or a batch
/// `{"type": "batch", "data": [notice, ...]}` when the endpoint takes batches. Receivers
/// de-duplicate by each notice's `id`.
fn body(batch_size: u32, batch: &[Delivery]) -> (String, String) {
    let notice = |d: &Delivery| {
        format!(
            r#"{{"id":{},"type":{},"timestamp":{},"data":{}}}"#,
            serde_json::Value::from(d.notice_id.as_str()),
            serde_json::Value::from(d.event_type.as_str()),
            serde_json::Value::from(
                d.occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            if d.payload.is_empty() {
                "null"
            } else {
                &d.payload
            },
        )
    };
    if batch_size <= 1 && batch.len() == 1 {
        return (batch[0].notice_id.clone(), notice(&batch[0]));
    }
    let items: Vec<String> = batch.iter().map(notice).collect();
    let first = batch.first().map_or(0, |d| d.id);
    let last = batch.last().map_or(0, |d| d.id);
    (
        format!("batch_{first}_{last}"),
        format!(
            r#"{{"type":"batch","timestamp":"{}","data":[{}]}}"#,
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            items.join(",")
        ),
    )
}

/// A Segment-style batch: the write key as basic auth (user name, empty password).
async fn send_segment(
    client: &reqwest::Client,
    endpoint: &DueEndpoint,
    body: String,
) -> Result<u16, String> {
    let response = client
        .post(&endpoint.url)
        .basic_auth(&endpoint.secret, Some(""))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    Ok(response.status().as_u16())
}

async fn send(
    client: &reqwest::Client,
    endpoint: &DueEndpoint,
    msg_id: &str,
    body: String,
) -> Result<u16, String> {
    let key = signature::parse_secret(&endpoint.secret)?;
    let timestamp = Utc::now().timestamp();
    let sig = signature::sign(&key, msg_id, timestamp, body.as_bytes());
    let response = client
        .post(&endpoint.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    Ok(response.status().as_u16())
}

/// A reqwest error with its causes, which say what actually went wrong (refused, timed out, ...).
fn describe(e: reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer within the timeout".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The delay before attempt `attempt + 1`, after `attempt` failures.
pub fn backoff(base: Duration, attempt: u32) -> chrono::Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(MAX_BACKOFF);
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).expect("the operating system's random source failed");
    let jitter = 0.5 + (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
    chrono::Duration::from_std(exp.mul_f64(jitter)).unwrap_or_default()
}

fn client(settings: &DeliverySettings) -> Result<reqwest::Client, String> {
    // reqwest is built without a crypto provider: ring, not aws-lc (a long C build).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mailbeacon-webhooks/", env!("CARGO_PKG_VERSION")));
    if !settings.allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    // A proxy from the environment (HTTP_PROXY, ALL_PROXY) would make the connection, to a
    // host the resolver above never sees.
    builder = builder.no_proxy();
    builder.build().map_err(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(10);
        for attempt in 1..=6u32 {
            let full = 10.0 * f64::from(1u32 << (attempt - 1));
            let d = backoff(base, attempt).num_milliseconds() as f64 / 1e3;
            assert!(
                d >= full * 0.5 - 0.001 && d < full,
                "attempt {attempt}: {d}"
            );
        }
        let capped = backoff(base, 30).num_seconds();
        assert!(capped <= MAX_BACKOFF.as_secs() as i64 && capped >= 7200);
    }

    #[test]
    fn a_batch_is_one_json_document_with_each_notice() {
        let d = |id: i64| Delivery {
            id,
            notice_id: format!("evt_{id}"),
            event_type: "email.opened".into(),
            occurred_at: Utc::now(),
            payload: format!(r#"{{"n":{id}}}"#),
            attempts: 0,
        };
        let (id, single) = body(1, &[d(1)]);
        assert_eq!(id, "evt_1");
        let v: serde_json::Value = serde_json::from_str(&single).unwrap();
        assert_eq!(v["data"]["n"], 1);
        assert_eq!(v["type"], "email.opened");
        let (id, batch) = body(10, &[d(1), d(2)]);
        assert_eq!(id, "batch_1_2");
        let v: serde_json::Value = serde_json::from_str(&batch).unwrap();
        assert_eq!(v["data"][1]["id"], "evt_2");
    }
}
