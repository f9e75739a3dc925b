//! The webhook tables in SQLite: endpoints, and the outbox the writer fills in its transactions
//! and the delivery worker empties.

use super::{opt_ts, parse_ts, ts};
use crate::classify::Class;
use crate::store::{EventId, EventKind, EventRecord};
use crate::webhooks::{
    self, Attempt, CLICK_HOLD_MS, Delivery, DeliveryRecord, DueEndpoint, NewWebhook, Next,
    NoticeKind, Route, Webhook, WebhookStatus,
};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

const INSERT_NOTICE: &str = "INSERT INTO webhook_outbox
    (endpoint_id, notice_id, type, occurred_at, event_id, recipient_id, payload, next_attempt_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The endpoints' filters, read once per group commit (an empty table costs one lookup).
pub fn routes(c: &Connection) -> rusqlite::Result<Vec<Route>> {
    c.prepare_cached("SELECT id, kinds, classes, campaign_id, first_only FROM webhook_endpoints")?
        .query_map([], |r| {
            Ok(Route {
                endpoint_id: r.get(0)?,
                kinds: webhooks::parse_kinds_text(&r.get::<_, String>(1)?),
                classes: r
                    .get::<_, Option<String>>(2)?
                    .map(|s| webhooks::parse_classes_text(&s)),
                campaign_id: r.get(3)?,
                first_only: r.get(4)?,
            })
        })?
        .collect()
}

/// The `data` of an open or click notice: the event as the API shows it, whether it is the first
/// of its kind a reader made on the message (what "send a follow-up" triggers on), and whether the
/// notice is an open implied by a reader's click (the event is then that click).
#[derive(serde::Serialize)]
struct EventData<'a> {
    #[serde(flatten)]
    event: &'a EventRecord,
    first_for_reader: bool,
    implied_by_click: bool,
}

/// Queues a notice of a just-stored event for every endpoint that wants it. `implied_open`: the
/// event is a reader's first click on a message with no reader's open, so endpoints that take only
/// first opens get an `email.opened` notice of it (id `imp_<event id>`).
pub fn enqueue_event(
    c: &Connection,
    routes: &[Route],
    event: &EventRecord,
    class: Class,
    first_for_reader: bool,
    implied_open: bool,
) -> rusqlite::Result<()> {
    let mut payload: Option<String> = None;
    let mut implied_payload: Option<String> = None;
    let kind = NoticeKind::of_event(event.kind);
    for route in routes {
        let (notice_id, notice_kind, payload): (String, NoticeKind, &str) =
            if route.wants_event(event.kind, class, event.campaign_id, first_for_reader) {
                let payload = payload.get_or_insert_with(|| {
                    serde_json::to_string(&EventData {
                        event,
                        first_for_reader,
                        implied_by_click: false,
                    })
                    .expect("an event serializes")
                });
                (format!("evt_{}", event.id), kind, payload)
            } else if implied_open
                && route.first_only
                && route.wants_event(EventKind::Open, class, event.campaign_id, true)
            {
                let payload = implied_payload.get_or_insert_with(|| {
                    serde_json::to_string(&EventData {
                        event,
                        first_for_reader: true,
                        implied_by_click: true,
                    })
                    .expect("an event serializes")
                });
                (format!("imp_{}", event.id), NoticeKind::Open, payload)
            } else {
                continue;
            };
        // Held like the click it comes from.
        let due = if kind == NoticeKind::Click && route.depends_on_class() {
            event.received_at + chrono::Duration::milliseconds(CLICK_HOLD_MS)
        } else {
            event.received_at
        };
        c.prepare_cached(INSERT_NOTICE)?.execute(params![
            route.endpoint_id,
            notice_id,
            notice_kind.event_type(),
            ts(event.received_at),
            event.id,
            event.recipient_id,
            payload,
            ts(due),
        ])?;
    }
    Ok(())
}

/// Takes back held click notices of events a burst just relabelled as a scanner's, from endpoints
/// that would not have wanted them as such.
pub fn withdraw_relabelled(
    c: &Connection,
    routes: &[Route],
    events: &[EventId],
) -> rusqlite::Result<()> {
    for route in routes.iter().filter(|r| {
        r.first_only
            || r.classes
                .as_ref()
                .is_some_and(|cs| !cs.contains(&Class::Scanner))
    }) {
        for id in events {
            c.prepare_cached(
                "DELETE FROM webhook_outbox
                 WHERE event_id = ?1 AND endpoint_id = ?2 AND state = 'pending'",
            )?
            .execute(params![id, route.endpoint_id])?;
        }
    }
    Ok(())
}

/// Queues an opt-out or erasure notice for every endpoint that wants that kind.
pub fn enqueue_notice(
    c: &Connection,
    kind: NoticeKind,
    at: DateTime<Utc>,
    data: &serde_json::Value,
) -> rusqlite::Result<u64> {
    let routes = routes(c)?;
    let notice_id = webhooks::random_id(match kind {
        NoticeKind::OptOut => "opt",
        _ => "era",
    });
    let payload = data.to_string();
    let mut n = 0;
    for route in routes.iter().filter(|r| r.wants(kind)) {
        c.prepare_cached(INSERT_NOTICE)?.execute(params![
            route.endpoint_id,
            notice_id,
            kind.event_type(),
            ts(at),
            None::<i64>,
            None::<String>,
            payload,
            ts(at),
        ])?;
        n += 1;
    }
    Ok(n)
}

pub fn create(c: &Connection, w: &NewWebhook) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO webhook_endpoints (url, secret, kinds, classes, campaign_id, first_only,
                                        batch_size, rate_limit, description, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            w.url,
            w.secret,
            webhooks::kinds_text(&w.kinds),
            w.classes.as_deref().map(webhooks::classes_text),
            w.campaign_id,
            w.first_only,
            w.batch_size,
            w.rate_limit,
            w.description,
            ts(Utc::now()),
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn list(c: &Connection) -> rusqlite::Result<Vec<Webhook>> {
    let now = Utc::now();
    let mut hooks: Vec<Webhook> = c
        .prepare(
            "SELECT id, url, kinds, classes, campaign_id, first_only, batch_size, rate_limit,
                    description, created_at, last_success_at, last_failure_at, last_error,
                    consecutive_failures, delivered_total, recent_latencies
             FROM webhook_endpoints ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(Webhook {
                id: r.get(0)?,
                url: r.get(1)?,
                kinds: webhooks::parse_kinds_text(&r.get::<_, String>(2)?),
                classes: r.get::<_, Option<String>>(3)?.map(|s| {
                    webhooks::parse_classes_text(&s)
                        .into_iter()
                        .map(Class::as_str)
                        .collect()
                }),
                campaign_id: r.get(4)?,
                first_only: r.get(5)?,
                batch_size: r.get(6)?,
                rate_limit: r.get(7)?,
                description: r.get(8)?,
                created_at: parse_ts(&r.get::<_, String>(9)?)?,
                status: {
                    let mut latencies = parse_latencies(r.get::<_, Option<String>>(15)?.as_deref());
                    latencies.sort_unstable();
                    let pick = |q: f64| -> Option<i64> {
                        (!latencies.is_empty())
                            .then(|| latencies[((latencies.len() - 1) as f64 * q).round() as usize])
                    };
                    WebhookStatus {
                        last_success_at: opt_ts(r.get(10)?)?,
                        last_failure_at: opt_ts(r.get(11)?)?,
                        last_error: r.get(12)?,
                        consecutive_failures: r.get(13)?,
                        delivered: r.get(14)?,
                        latency_ms_p50: pick(0.5),
                        latency_ms_p95: pick(0.95),
                        ..WebhookStatus::default()
                    }
                },
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for hook in &mut hooks {
        let s = &mut hook.status;
        s.pending = c
            .prepare_cached(
                "SELECT count(*) FROM webhook_outbox WHERE endpoint_id = ?1 AND state = 'pending'",
            )?
            .query_row([hook.id], |r| r.get(0))?;
        s.dead = c
            .prepare_cached(
                "SELECT count(*) FROM webhook_outbox WHERE endpoint_id = ?1 AND state = 'dead'",
            )?
            .query_row([hook.id], |r| r.get(0))?;
        let oldest: Option<String> = c
            .prepare_cached(
                "SELECT min(occurred_at) FROM webhook_outbox
                 WHERE endpoint_id = ?1 AND state = 'pending'",
            )?
            .query_row([hook.id], |r| r.get(0))?;
        s.oldest_pending_seconds = opt_ts(oldest)?.map(|t| (now - t).num_seconds().max(0));
    }
    Ok(hooks)
}

pub fn due(c: &Connection) -> rusqlite::Result<Vec<DueEndpoint>> {
    c.prepare_cached(
        "SELECT e.id, e.url, e.secret, e.batch_size, e.rate_limit,
                (SELECT min(o.next_attempt_at) FROM webhook_outbox o
                 WHERE o.endpoint_id = e.id AND o.state = 'pending') AS next_due
         FROM webhook_endpoints e WHERE next_due IS NOT NULL",
    )?
    .query_map([], |r| {
        Ok(DueEndpoint {
            id: r.get(0)?,
            url: r.get(1)?,
            secret: r.get(2)?,
            batch_size: r.get(3)?,
            rate_limit: r.get(4)?,
            next_due: parse_ts(&r.get::<_, String>(5)?)?,
        })
    })?
    .collect()
}

pub fn claim(
    c: &Connection,
    endpoint: i64,
    limit: usize,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> rusqlite::Result<Vec<Delivery>> {
    let mut claimed: Vec<Delivery> = c
        .prepare_cached(
            "UPDATE webhook_outbox SET next_attempt_at = ?4
             WHERE id IN (SELECT id FROM webhook_outbox
                          WHERE endpoint_id = ?1 AND state = 'pending' AND next_attempt_at <= ?2
                          ORDER BY next_attempt_at, id LIMIT ?3)
             RETURNING id, notice_id, type, occurred_at, payload, attempts",
        )?
        .query_map(
            params![endpoint, ts(now), limit as i64, ts(lease_until)],
            |r| {
                Ok(Delivery {
                    id: r.get(0)?,
                    notice_id: r.get(1)?,
                    event_type: r.get(2)?,
                    occurred_at: parse_ts(&r.get::<_, String>(3)?)?,
                    payload: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    attempts: r.get(5)?,
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    claimed.sort_by_key(|d| d.id);
    Ok(claimed)
}

/// How many request latencies the status keeps for its percentiles.
const LATENCY_SAMPLES: usize = 100;

fn parse_latencies(json: Option<&str>) -> Vec<i64> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

pub fn finish(
    c: &Connection,
    endpoint: i64,
    results: &[(i64, Next)],
    attempt: &Attempt,
) -> rusqlite::Result<()> {
    let ids_of = |want: fn(&Next) -> bool| -> String {
        let ids: Vec<i64> = results
            .iter()
            .filter(|(_, n)| want(n))
            .map(|(id, _)| *id)
            .collect();
        serde_json::to_string(&ids).expect("ids serialize")
    };
    // What was sent is not kept: a delivered notice is only counted.
    let delivered = c
        .prepare_cached(
            "DELETE FROM webhook_outbox
             WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'pending'",
        )?
        .execute([ids_of(|n| *n == Next::Delivered)])?;
    c.prepare_cached(
        "UPDATE webhook_outbox SET state = 'dead', attempts = attempts + 1, last_status = ?2,
             last_error = ?3
         WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'pending'",
    )?
    .execute(params![
        ids_of(|n| *n == Next::Dead),
        attempt.status,
        attempt.error
    ])?;
    for (id, next) in results {
        if let Next::RetryAt(when) = next {
            c.prepare_cached(
                "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?2,
                     last_status = ?3, last_error = ?4
                 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, ts(*when), attempt.status, attempt.error])?;
        }
    }
    let at = ts(attempt.at);
    match &attempt.error {
        None => {
            let json: Option<String> = c
                .prepare_cached("SELECT recent_latencies FROM webhook_endpoints WHERE id = ?1")?
                .query_row([endpoint], |r| r.get(0))
                .optional()?
                .flatten();
            let mut latencies = parse_latencies(json.as_deref());
            latencies.push(attempt.latency_ms);
            let keep = latencies.len().saturating_sub(LATENCY_SAMPLES);
            latencies.drain(..keep);
            c.prepare_cached(
                "UPDATE webhook_endpoints SET last_success_at = ?2, consecutive_failures = 0,
                     delivered_total = delivered_total + ?3, recent_latencies = ?4
                 WHERE id = ?1",
            )?
            .execute(params![
                endpoint,
                at,
                delivered as i64,
                serde_json::to_string(&latencies).expect("numbers serialize")
            ])?
        }
        Some(error) => c
            .prepare_cached(
                "UPDATE webhook_endpoints SET last_failure_at = ?2, last_error = ?3,
                     consecutive_failures = consecutive_failures + 1
                 WHERE id = ?1",
            )?
            .execute(params![endpoint, at, error])?,
    };
    Ok(())
}

pub fn replay(c: &Connection, endpoint: Option<i64>) -> rusqlite::Result<u64> {
    Ok(c.execute(
        "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_at = ?2
         WHERE state = 'dead' AND (?1 IS NULL OR endpoint_id = ?1)",
        params![endpoint, ts(Utc::now())],
    )? as u64)
}

pub fn deliveries(
    c: &Connection,
    endpoint: i64,
    state: Option<&str>,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<DeliveryRecord>> {
    c.prepare_cached(
        "SELECT id, notice_id, type, occurred_at, state, attempts, next_attempt_at, last_status,
                last_error
         FROM webhook_outbox
         WHERE endpoint_id = ?1 AND (?2 IS NULL OR state = ?2) AND id > ?3
         ORDER BY id LIMIT ?4",
    )?
    .query_map(params![endpoint, state, after, limit as i64], |r| {
        let state: String = r.get(4)?;
        Ok(DeliveryRecord {
            id: r.get(0)?,
            notice_id: r.get(1)?,
            event_type: r.get(2)?,
            occurred_at: parse_ts(&r.get::<_, String>(3)?)?,
            next_attempt_at: if state == "pending" {
                Some(parse_ts(&r.get::<_, String>(6)?)?)
            } else {
                None
            },
            state,
            attempts: r.get(5)?,
            last_status: r.get(7)?,
            last_error: r.get(8)?,
        })
    })?
    .collect()
}
