//! Segment-compatible destinations: notices sent as track calls to an HTTP tracking API's
//! `/v1/batch` (Segment, RudderStack, Jitsu and others take the same shape), with the write key as
//! basic auth.
//!
//! Opens, clicks and opt-outs are the email spec's semantic events ("Email Opened", "Email Link
//! Clicked", "Unsubscribed") with its property names; a conversion, which the spec has no event
//! for, is "Email Converted" with the spec's `revenue` and `currency`. mailbeacon's own findings
//! (class, reasons, machine) ride along as extra properties. Each call's `messageId` is the
//! endpoint's [`message_id_prefix`] and the notice's id, the same on every retry, so the receiver
//! drops a copy sent again after a lost answer.

use super::{Delivery, NoticeKind};
use crate::domain::ANONYMOUS_RECIPIENT;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// What a segment destination can be sent: the kinds that have an event.
pub const KINDS: [NoticeKind; 4] = [
    NoticeKind::Open,
    NoticeKind::Click,
    NoticeKind::OptOut,
    NoticeKind::Conversion,
];

/// Calls per request unless the endpoint says otherwise: what Segment's own libraries send.
pub const DEFAULT_BATCH: u32 = 100;

/// Segment refuses a batch request over 500 KB and a call in it over 32 KB (with a 400).
pub const MAX_REQUEST_BYTES: usize = 500 * 1000;
pub const MAX_CALL_BYTES: usize = 32 * 1000;

/// How many requests a claimed batch of `batch_size` notices may take at most: each call under
/// [`MAX_CALL_BYTES`], each request under [`MAX_REQUEST_BYTES`] (the envelope counted generously).
pub fn requests_at_most(batch_size: u32) -> u32 {
    let per_request = (MAX_REQUEST_BYTES - 100) / (MAX_CALL_BYTES + 1);
    batch_size.max(1).div_ceil(per_request as u32)
}

/// The start of every `messageId` an endpoint sends: `mailbeacon-` and 12 hex digits of a hash of
/// the endpoint's id and creation time. Notice ids (`evt_42`) are unique in one database only; with
/// this, two installations (or two endpoints) sending into one source do not have each other's
/// calls dropped as copies, and a retry keeps its id.
pub fn message_id_prefix(endpoint: i64, created_at: DateTime<Utc>) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(format!("{endpoint}:{}", created_at.timestamp_micros()));
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("mailbeacon-{hex}")
}

/// The batch endpoint of a data plane given by its address alone (`https://api.segment.io`).
pub fn batch_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if matches!(parsed.path(), "" | "/") => {
            parsed.set_path("/v1/batch");
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// A write key goes into basic auth as the user name: printable, no colon, not empty.
pub fn check_write_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty() {
        return Err("empty; give the write key of the source events should arrive in".into());
    }
    if key.len() > 256 {
        return Err("longer than 256 characters; is it a write key?".into());
    }
    if let Some(c) = key.chars().find(|c| !c.is_ascii_graphic() || *c == ':') {
        return Err(format!(
            "may not contain {c:?}: a write key is letters, digits and punctuation other than ':'"
        ));
    }
    Ok(key.to_string())
}

/// The campaigns a batch's notices name, whose names the calls carry.
pub fn campaign_ids(batch: &[Delivery]) -> Vec<i64> {
    #[derive(serde::Deserialize)]
    struct Named {
        campaign_id: Option<i64>,
    }
    let mut ids: Vec<i64> = batch
        .iter()
        .filter_map(|d| serde_json::from_str::<Named>(&d.payload).ok()?.campaign_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// One HTTP request: the batch's positions it carries, and its body.
#[derive(Debug)]
pub struct Request {
    pub notices: Vec<usize>,
    pub body: String,
}

/// The requests that send `batch`, each under [`MAX_REQUEST_BYTES`], and the notices that cannot
/// be sent at all (with why). `names`: campaign names by id.
pub fn requests(
    batch: &[Delivery],
    names: &HashMap<i64, String>,
    prefix: &str,
    sent_at: DateTime<Utc>,
) -> (Vec<Request>, Vec<(usize, String)>) {
    let sent_at = Value::from(time(sent_at)).to_string();
    let envelope = r#"{"batch":[],"sentAt":}"#.len() + sent_at.len();
    let mut requests: Vec<Request> = Vec::new();
    let mut refused = Vec::new();
    let mut calls: Vec<String> = Vec::new();
    let mut notices: Vec<usize> = Vec::new();
    let mut size = envelope;
    let mut flush = |calls: &mut Vec<String>, notices: &mut Vec<usize>| {
        if !calls.is_empty() {
            requests.push(Request {
                notices: std::mem::take(notices),
                body: format!(
                    r#"{{"batch":[{}],"sentAt":{sent_at}}}"#,
                    std::mem::take(calls).join(",")
                ),
            });
        }
    };
    for (i, d) in batch.iter().enumerate() {
        let call = match track(d, names, prefix) {
            Ok(call) => call.to_string(),
            Err(why) => {
                refused.push((i, why));
                continue;
            }
        };
        if call.len() > MAX_CALL_BYTES {
            refused.push((
                i,
                format!(
                    "{} is {} bytes as a track call, over the 32 KB a call may have",
                    d.notice_id,
                    call.len()
                ),
            ));
            continue;
        }
        if size + call.len() + 1 > MAX_REQUEST_BYTES {
            flush(&mut calls, &mut notices);
            size = envelope;
        }
        size += call.len() + 1;
        calls.push(call);
        notices.push(i);
    }
    flush(&mut calls, &mut notices);
    (requests, refused)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The track call of one notice; `prefix` starts its `messageId`.
pub fn track(d: &Delivery, names: &HashMap<i64, String>, prefix: &str) -> Result<Value, String> {
    let data: Value = serde_json::from_str(&d.payload)
        .map_err(|e| format!("{}: the stored notice is not JSON ({e})", d.notice_id))?;
    let text = |key: &str| data.get(key).and_then(Value::as_str);
    let mut properties = Map::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            properties.insert(key.to_string(), value);
        }
    };
    let campaign = data.get("campaign_id").and_then(Value::as_i64);
    if let Some(id) = campaign {
        put("campaign_id", id.to_string().into());
        put("campaign_name", names.get(&id).cloned().into());
    }
    if let Some(message) = data.get("message_id").and_then(Value::as_i64) {
        put("email_id", message.to_string().into());
    }
    let mut context = Map::new();
    let event = match d.event_type.as_str() {
        "email.opened" | "email.clicked" => {
            if d.event_type == "email.clicked" {
                put("link_url", text("link_url").into());
            }
            let class = text("class").unwrap_or_default();
            let machine = crate::classify::Class::parse(class).is_some_and(|c| c.is_machine());
            put("class", class.into());
            put(
                "reasons",
                text("reasons")
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .into(),
            );
            put("machine", machine.into());
            for key in [
                "first_for_reader",
                "implied_by_click",
                "duplicate",
                "client",
                "os",
                "device",
            ] {
                put(key, data.get(key).cloned().unwrap_or(Value::Null));
            }
            // A platform may take the request's own address when a call names none, which would
            // place every reader at mailbeacon's server: 0.0.0.0 names no address.
            context.insert("ip".into(), text("client_ip").unwrap_or("0.0.0.0").into());
            if let Some(agent) = text("user_agent") {
                context.insert("userAgent".into(), agent.into());
            }
            let mut location = Map::new();
            for key in ["country", "region"] {
                if let Some(v) = text(key) {
                    location.insert(key.into(), v.into());
                }
            }
            if !location.is_empty() {
                context.insert("location".into(), location.into());
            }
            if d.event_type == "email.opened" {
                "Email Opened"
            } else {
                "Email Link Clicked"
            }
        }
        "recipient.opted_out" => {
            put("source", data.get("source").cloned().unwrap_or(Value::Null));
            context.insert("ip".into(), "0.0.0.0".into());
            "Unsubscribed"
        }
        "email.converted" => {
            put(
                "link_url",
                data.get("link_url").cloned().unwrap_or(Value::Null),
            );
            put("goal", data.get("goal").cloned().unwrap_or(Value::Null));
            put("revenue", data.get("value").cloned().unwrap_or(Value::Null));
            put(
                "currency",
                data.get("currency").cloned().unwrap_or(Value::Null),
            );
            put(
                "clicked_at",
                data.get("clicked_at").cloned().unwrap_or(Value::Null),
            );
            context.insert("ip".into(), "0.0.0.0".into());
            "Email Converted"
        }
        other => return Err(format!("{}: {other} has no Segment event", d.notice_id)),
    };
    context.insert(
        "library".into(),
        json!({"name": "mailbeacon", "version": env!("CARGO_PKG_VERSION")}),
    );
    let mut call = json!({
        "type": "track",
        "event": event,
        "messageId": format!("{prefix}-{}", d.notice_id),
        "timestamp": time(d.occurred_at),
        "properties": properties,
        "context": context,
    });
    match text("recipient_id") {
        Some(r) if !r.starts_with(ANONYMOUS_RECIPIENT) => call["userId"] = r.into(),
        Some(anonymous) => call["anonymousId"] = anonymous.into(),
        None => {
            // Anonymous mail's conversion: the message's anonymous name, or (queued by an
            // earlier build) one made from the message.
            let id = text("anonymous_id").map(str::to_string).or_else(|| {
                let message = data.get("message_id").and_then(Value::as_i64)?;
                Some(format!("{ANONYMOUS_RECIPIENT}message-{message}"))
            });
            call["anonymousId"] = id
                .ok_or_else(|| format!("{}: the notice names no one", d.notice_id))?
                .into();
        }
    }
    Ok(call)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: i64, event_type: &str, payload: Value) -> Delivery {
        Delivery {
            id,
            notice_id: format!("evt_{id}"),
            event_type: event_type.into(),
            occurred_at: "2026-12-07T10:00:00.123456Z".parse().unwrap(),
            payload: payload.to_string(),
            attempts: 0,
        }
    }

    fn click(id: i64, url: &str) -> Delivery {
        delivery(
            id,
            "email.clicked",
            json!({"id": id, "kind": "click", "campaign_id": 7, "message_id": 70,
                   "recipient_id": "r-1", "link_url": url, "class": "scanner",
                   "reasons": "burst known_scanner_ip", "duplicate": false, "device": "desktop",
                   "client_ip": null, "user_agent": null, "first_for_reader": false}),
        )
    }

    #[test]
    fn an_open_is_email_opened_with_the_specs_properties() {
        let open = delivery(
            1,
            "email.opened",
            json!({"id": 1, "kind": "open", "campaign_id": 7, "message_id": 70,
                   "recipient_id": "anonymous:00ff", "class": "human", "reasons": "",
                   "client_ip": "203.0.113.9", "user_agent": "Thunderbird", "country": "DE",
                   "first_for_reader": true, "implied_by_click": false}),
        );
        let names = HashMap::from([(7, "Winter sale".to_string())]);
        let call = track(&open, &names, "mailbeacon-0a1b2c3d4e5f").unwrap();
        assert_eq!(call["type"], "track");
        assert_eq!(call["event"], "Email Opened");
        assert_eq!(call["messageId"], "mailbeacon-0a1b2c3d4e5f-evt_1");
        assert_eq!(call["timestamp"], "2026-12-07T10:00:00.123456Z");
        assert_eq!(call["anonymousId"], "anonymous:00ff");
        assert!(call.get("userId").is_none());
        assert_eq!(call["properties"]["campaign_id"], "7");
        assert_eq!(call["properties"]["campaign_name"], "Winter sale");
        assert_eq!(call["properties"]["email_id"], "70");
        assert_eq!(call["properties"]["machine"], false);
        assert_eq!(call["properties"]["reasons"], json!([]));
        assert_eq!(call["context"]["ip"], "203.0.113.9");
        assert_eq!(call["context"]["userAgent"], "Thunderbird");
        assert_eq!(call["context"]["location"]["country"], "DE");
    }

    #[test]
    fn a_scanners_click_is_marked_machine_and_names_no_address() {
        let call = track(&click(2, "https://shop.example/a"), &HashMap::new(), "p").unwrap();
        assert_eq!(call["event"], "Email Link Clicked");
        assert_eq!(call["userId"], "r-1");
        assert_eq!(call["properties"]["link_url"], "https://shop.example/a");
        assert_eq!(call["properties"]["machine"], true);
        assert_eq!(
            call["properties"]["reasons"],
            json!(["burst", "known_scanner_ip"])
        );
        assert_eq!(call["context"]["ip"], "0.0.0.0");
        assert!(call["properties"].get("campaign_name").is_none());
    }

    #[test]
    fn requests_stay_under_the_batch_limit_and_oversized_calls_are_refused() {
        let long = format!("https://shop.example/?q={}", "a".repeat(8000));
        let mut batch: Vec<Delivery> = (1..=100).map(|i| click(i, &long)).collect();
        batch.push(click(101, &"b".repeat(40_000)));
        batch.push(delivery(
            102,
            "recipient.erased",
            json!({"recipient_id": "r"}),
        ));
        let (requests, refused) = requests(&batch, &HashMap::new(), "p", Utc::now());
        assert!(requests.len() >= 2, "{} requests", requests.len());
        let mut carried: Vec<usize> = Vec::new();
        for r in &requests {
            assert!(r.body.len() <= MAX_REQUEST_BYTES, "{}", r.body.len());
            let doc: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(doc["batch"].as_array().unwrap().len(), r.notices.len());
            assert!(doc["sentAt"].as_str().is_some());
            carried.extend(&r.notices);
        }
        assert_eq!(carried, (0..100).collect::<Vec<_>>());
        assert_eq!(refused.len(), 2);
        assert!(refused[0].1.contains("over the 32 KB"), "{}", refused[0].1);
        assert!(
            refused[1].1.contains("no Segment event"),
            "{}",
            refused[1].1
        );
    }

    #[test]
    fn a_lease_covers_the_most_requests_a_batch_can_take() {
        assert_eq!(requests_at_most(1), 1);
        assert_eq!(requests_at_most(15), 1);
        assert_eq!(requests_at_most(100), 7);
        assert_eq!(requests_at_most(1000), 67);
    }

    #[test]
    fn message_ids_differ_between_endpoints_and_stay_for_one() {
        let at: DateTime<Utc> = "2026-12-07T10:00:00.123456Z".parse().unwrap();
        let one = message_id_prefix(1, at);
        assert_eq!(one, message_id_prefix(1, at));
        assert!(one.starts_with("mailbeacon-") && one.len() == "mailbeacon-".len() + 12);
        assert_ne!(one, message_id_prefix(2, at));
        assert_ne!(
            one,
            message_id_prefix(1, at + chrono::Duration::microseconds(1))
        );
    }

    #[test]
    fn write_keys_and_batch_urls() {
        assert_eq!(
            batch_url("https://api.segment.io/"),
            "https://api.segment.io/v1/batch"
        );
        assert_eq!(
            batch_url("https://hosted.rudderlabs.com/v1/batch"),
            "https://hosted.rudderlabs.com/v1/batch"
        );
        assert_eq!(check_write_key(" abc123 ").unwrap(), "abc123");
        assert!(check_write_key("a:b").unwrap_err().contains("':'"));
        assert!(check_write_key("").is_err());
    }
}
