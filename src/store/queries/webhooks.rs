//! The webhook tables: endpoints, and the outbox the writer fills in its transactions
//! and the delivery worker empties.

use crate::classify::Class;
use crate::store::sql::{self, Conn, params};
use crate::store::{CampaignId, EventId, EventKind, EventRecord, StoreResult};
use crate::webhooks::{
    self, Attempt, CLICK_HOLD_MS, Delivery, DeliveryRecord, DueEndpoint, NewWebhook, Next,
    NoticeKind, Protocol, Route, Webhook, WebhookStatus,
};
use chrono::{DateTime, Utc};

const INSERT_NOTICE: &str = "INSERT INTO webhook_outbox
    (endpoint_id, notice_id, type, occurred_at, event_id, recipient_id, payload, next_attempt_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The endpoints' filters, read once per group commit (an empty table costs one lookup).
pub fn routes(c: &mut dyn Conn) -> StoreResult<Vec<Route>> {
    c.query(
        "SELECT id, kinds, classes, campaign_id, first_only FROM webhook_endpoints",
        params![],
    )?
    .iter()
    .map(|r| {
        Ok(Route {
            endpoint_id: r.get(0)?,
            kinds: webhooks::parse_kinds_text(&r.get::<String>(1)?),
            classes: r
                .get::<Option<String>>(2)?
                .map(|s| webhooks::parse_classes_text(&s)),
            campaign_id: r.get(3)?,
            first_only: r.get(4)?,
        })
    })
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
    c: &mut dyn Conn,
    routes: &[Route],
    event: &EventRecord,
    class: Class,
    first_for_reader: bool,
    implied_open: bool,
) -> StoreResult<()> {
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
        c.execute(
            INSERT_NOTICE,
            params![
                route.endpoint_id,
                notice_id,
                notice_kind.event_type(),
                event.received_at,
                event.id,
                &event.recipient_id,
                payload,
                due,
            ],
        )?;
    }
    Ok(())
}

/// Takes back held click notices of events a burst just relabelled as a scanner's, from endpoints
/// that would not have wanted them as such.
pub fn withdraw_relabelled(
    c: &mut dyn Conn,
    routes: &[Route],
    events: &[EventId],
) -> StoreResult<()> {
    for route in routes.iter().filter(|r| {
        r.first_only
            || r.classes
                .as_ref()
                .is_some_and(|cs| !cs.contains(&Class::Scanner))
    }) {
        for id in events {
            c.execute(
                "DELETE FROM webhook_outbox
                 WHERE event_id = ?1 AND endpoint_id = ?2 AND state = 'pending'",
                params![*id, route.endpoint_id],
            )?;
        }
    }
    Ok(())
}

/// Queues an opt-out or erasure notice for every endpoint that wants that kind. `about` names
/// the recipient whose erasure withdraws the notice (an erasure's own notice names no one: it
/// is the one left to send).
pub fn enqueue_notice(
    c: &mut dyn Conn,
    kind: NoticeKind,
    at: DateTime<Utc>,
    about: Option<&str>,
    campaign: Option<CampaignId>,
    data: &serde_json::Value,
) -> StoreResult<u64> {
    let routes = routes(c)?;
    let notice_id = webhooks::random_id(match kind {
        NoticeKind::OptOut => "opt",
        NoticeKind::Conversion => "cnv",
        NoticeKind::ProviderDrop => "prv",
        _ => "era",
    });
    let payload = data.to_string();
    let mut n = 0;
    // About one campaign: not for endpoints that take another campaign's only.
    let for_campaign = |r: &&Route| match (campaign, r.campaign_id) {
        (Some(about), Some(only)) => about == only,
        _ => true,
    };
    for route in routes.iter().filter(|r| r.wants(kind)).filter(for_campaign) {
        c.execute(
            INSERT_NOTICE,
            params![
                route.endpoint_id,
                &notice_id,
                kind.event_type(),
                at,
                None::<i64>,
                about,
                &payload,
                at,
            ],
        )?;
        n += 1;
    }
    Ok(n)
}

/// Withdraws every notice about a recipient not delivered yet, pending or dead, those queued
/// before opt-out notices named their recipient included.
pub fn withdraw_recipient(c: &mut dyn Conn, recipient_id: &str) -> StoreResult<u64> {
    let named_in_payload = match c.dialect() {
        sql::Dialect::Sqlite => "json_extract(payload, '$.recipient_id')",
        sql::Dialect::Postgres => "CAST(payload AS json) ->> 'recipient_id'",
    };
    c.execute(
        &format!(
            "DELETE FROM webhook_outbox WHERE recipient_id = ?1
                 OR (recipient_id IS NULL AND type = ?2 AND {named_in_payload} = ?1)"
        ),
        params![recipient_id, NoticeKind::OptOut.event_type()],
    )
}

/// Withdraws the notices of a recipient's opens, clicks and conversions not delivered yet,
/// pending or dead: their consent to being tracked no longer stands. The opt-out notice stays.
pub fn withdraw_recipient_activity(c: &mut dyn Conn, recipient_id: &str) -> StoreResult<u64> {
    c.execute(
        "DELETE FROM webhook_outbox WHERE recipient_id = ?1 AND type <> ?2",
        params![recipient_id, NoticeKind::OptOut.event_type()],
    )
}

/// Withdraws every notice about a campaign's events not delivered yet, pending or dead.
pub fn withdraw_campaign(c: &mut dyn Conn, campaign: crate::store::CampaignId) -> StoreResult<u64> {
    c.execute(
        "DELETE FROM webhook_outbox
         WHERE event_id IN (SELECT id FROM events WHERE campaign_id = ?1)",
        params![campaign],
    )
}

pub fn create(c: &mut dyn Conn, w: &NewWebhook) -> StoreResult<i64> {
    c.query_one(
        "INSERT INTO webhook_endpoints (url, secret, kinds, classes, campaign_id, first_only,
                                        batch_size, rate_limit, description, created_at, protocol)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        params![
            &w.url,
            &w.secret,
            webhooks::kinds_text(&w.kinds),
            w.classes.as_deref().map(webhooks::classes_text),
            w.campaign_id,
            w.first_only,
            w.batch_size,
            w.rate_limit,
            w.description.as_deref(),
            Utc::now(),
            w.protocol.as_str(),
        ],
    )
}

pub fn list(c: &mut dyn Conn) -> StoreResult<Vec<Webhook>> {
    let now = Utc::now();
    let mut hooks: Vec<Webhook> = c
        .query(
            "SELECT id, url, kinds, classes, campaign_id, first_only, batch_size, rate_limit,
                    description, created_at, last_success_at, last_failure_at, last_error,
                    consecutive_failures, delivered_total, recent_latencies, protocol
             FROM webhook_endpoints ORDER BY id",
            params![],
        )?
        .iter()
        .map(|r| {
            Ok(Webhook {
                id: r.get(0)?,
                url: r.get(1)?,
                protocol: protocol(r.get(16)?),
                kinds: webhooks::parse_kinds_text(&r.get::<String>(2)?),
                classes: r.get::<Option<String>>(3)?.map(|s| {
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
                created_at: r.get(9)?,
                status: {
                    let mut latencies = parse_latencies(r.get::<Option<String>>(15)?.as_deref());
                    latencies.sort_unstable();
                    let pick = |q: f64| -> Option<i64> {
                        (!latencies.is_empty())
                            .then(|| latencies[((latencies.len() - 1) as f64 * q).round() as usize])
                    };
                    WebhookStatus {
                        last_success_at: r.get(10)?,
                        last_failure_at: r.get(11)?,
                        last_error: r.get(12)?,
                        consecutive_failures: r.get(13)?,
                        delivered: r.get(14)?,
                        latency_ms_p50: pick(0.5),
                        latency_ms_p95: pick(0.95),
                        ..WebhookStatus::default()
                    }
                },
            })
        })
        .collect::<StoreResult<_>>()?;
    for hook in &mut hooks {
        let s = &mut hook.status;
        s.pending = c.query_one(
            "SELECT count(*) FROM webhook_outbox WHERE endpoint_id = ?1 AND state = 'pending'",
            params![hook.id],
        )?;
        s.dead = c.query_one(
            "SELECT count(*) FROM webhook_outbox WHERE endpoint_id = ?1 AND state = 'dead'",
            params![hook.id],
        )?;
        let oldest: Option<DateTime<Utc>> = c.query_one(
            "SELECT min(occurred_at) FROM webhook_outbox
             WHERE endpoint_id = ?1 AND state = 'pending'",
            params![hook.id],
        )?;
        s.oldest_pending_seconds = oldest.map(|t| (now - t).num_seconds().max(0));
    }
    Ok(hooks)
}

/// A stored protocol name; a name this build does not know is read as the default (a newer
/// build's endpoint is then sent signed notices rather than nothing).
fn protocol(name: String) -> Protocol {
    Protocol::parse(&name).unwrap_or_default()
}

pub fn due(c: &mut dyn Conn) -> StoreResult<Vec<DueEndpoint>> {
    c.query(
        "SELECT * FROM (
             SELECT e.id, e.url, e.secret, e.batch_size, e.rate_limit,
                    (SELECT min(o.next_attempt_at) FROM webhook_outbox o
                     WHERE o.endpoint_id = e.id AND o.state = 'pending') AS next_due,
                    e.protocol, e.created_at
             FROM webhook_endpoints e) d
         WHERE next_due IS NOT NULL",
        params![],
    )?
    .iter()
    .map(|r| {
        Ok(DueEndpoint {
            id: r.get(0)?,
            url: r.get(1)?,
            protocol: protocol(r.get(6)?),
            secret: r.get(2)?,
            batch_size: r.get(3)?,
            rate_limit: r.get(4)?,
            next_due: r.get(5)?,
            created_at: r.get(7)?,
        })
    })
    .collect()
}

pub fn claim(
    c: &mut dyn Conn,
    endpoint: i64,
    limit: usize,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Vec<Delivery>> {
    let mut claimed: Vec<Delivery> = c
        .query(
            "UPDATE webhook_outbox SET next_attempt_at = ?4
             WHERE id IN (SELECT id FROM webhook_outbox
                          WHERE endpoint_id = ?1 AND state = 'pending' AND next_attempt_at <= ?2
                          ORDER BY next_attempt_at, id LIMIT ?3)
             RETURNING id, notice_id, type, occurred_at, payload, attempts",
            params![endpoint, now, limit, lease_until],
        )?
        .iter()
        .map(|r| {
            Ok(Delivery {
                id: r.get(0)?,
                notice_id: r.get(1)?,
                event_type: r.get(2)?,
                occurred_at: r.get(3)?,
                payload: r.get::<Option<String>>(4)?.unwrap_or_default(),
                attempts: r.get(5)?,
            })
        })
        .collect::<StoreResult<_>>()?;
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
    c: &mut dyn Conn,
    endpoint: i64,
    results: &[(i64, Next)],
    attempt: &Attempt,
) -> StoreResult<()> {
    let ids_of = |want: fn(&Next) -> bool| -> String {
        let ids: Vec<i64> = results
            .iter()
            .filter(|(_, n)| want(n))
            .map(|(id, _)| *id)
            .collect();
        serde_json::to_string(&ids).expect("ids serialize")
    };
    let id_in = format!("id {}", sql::in_json_array(c.dialect(), true));
    // What was sent is not kept: a delivered notice is only counted.
    let delivered = c.execute(
        &format!("DELETE FROM webhook_outbox WHERE {id_in} AND state = 'pending'"),
        params![ids_of(|n| *n == Next::Delivered)],
    )?;
    c.execute(
        &format!(
            "UPDATE webhook_outbox SET state = 'dead', attempts = attempts + 1, last_status = ?2,
                 last_error = ?3
             WHERE {id_in} AND state = 'pending'"
        ),
        params![
            ids_of(|n| *n == Next::Dead),
            attempt.status,
            attempt.error.as_deref()
        ],
    )?;
    for (id, next) in results {
        if let Next::RetryAt(when) = next {
            c.execute(
                "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?2,
                     last_status = ?3, last_error = ?4
                 WHERE id = ?1 AND state = 'pending'",
                params![*id, when, attempt.status, attempt.error.as_deref()],
            )?;
        }
    }
    match &attempt.error {
        None => {
            let json: Option<String> = c
                .query_value::<Option<String>>(
                    "SELECT recent_latencies FROM webhook_endpoints WHERE id = ?1",
                    params![endpoint],
                )?
                .flatten();
            let mut latencies = parse_latencies(json.as_deref());
            latencies.push(attempt.latency_ms);
            let keep = latencies.len().saturating_sub(LATENCY_SAMPLES);
            latencies.drain(..keep);
            c.execute(
                "UPDATE webhook_endpoints SET last_success_at = ?2, consecutive_failures = 0,
                     delivered_total = delivered_total + ?3, recent_latencies = ?4
                 WHERE id = ?1",
                params![
                    endpoint,
                    attempt.at,
                    delivered,
                    serde_json::to_string(&latencies).expect("numbers serialize")
                ],
            )?
        }
        Some(error) => c.execute(
            "UPDATE webhook_endpoints SET last_failure_at = ?2, last_error = ?3,
                 consecutive_failures = consecutive_failures + 1
             WHERE id = ?1",
            params![endpoint, attempt.at, error],
        )?,
    };
    Ok(())
}

pub fn replay(c: &mut dyn Conn, endpoint: Option<i64>) -> StoreResult<u64> {
    c.execute(
        "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_at = ?2
         WHERE state = 'dead' AND (CAST(?1 AS BIGINT) IS NULL OR endpoint_id = ?1)",
        params![endpoint, Utc::now()],
    )
}

pub fn deliveries(
    c: &mut dyn Conn,
    endpoint: i64,
    state: Option<&str>,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<DeliveryRecord>> {
    let (committed, bound) = super::paging::committed(c, super::paging::Ids::Outbox, "id", 5)?;
    c.query(
        &format!(
            "SELECT id, notice_id, type, occurred_at, state, attempts, next_attempt_at,
                    last_status, last_error
             FROM webhook_outbox
             WHERE endpoint_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR state = ?2) AND id > ?3
                 AND {committed}
             ORDER BY id LIMIT ?4"
        ),
        params![endpoint, state, after, limit, bound],
    )?
    .iter()
    .map(|r: &sql::Row| {
        let state: String = r.get(4)?;
        Ok(DeliveryRecord {
            id: r.get(0)?,
            notice_id: r.get(1)?,
            event_type: r.get(2)?,
            occurred_at: r.get(3)?,
            next_attempt_at: if state == "pending" {
                Some(r.get(6)?)
            } else {
                None
            },
            state,
            attempts: r.get(5)?,
            last_status: r.get(7)?,
            last_error: r.get(8)?,
        })
    })
    .collect()
}
