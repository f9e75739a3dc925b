//! What a journal record's payload holds: one appended group of events.
//!
//! Format 1, written by this build: the byte `0x01`, then each event's [postcard] encoding of
//! [`Wire`], one after the other. postcard writes no field names or tags, so a field added,
//! dropped or moved makes a new format with a first byte of its own, and the reader keeps the old
//! one: a journal may outlive an upgrade. Builds before format 1 wrote the group as a JSON array
//! (first byte `[`), which is still read.
//!
//! Binary because the encoding runs on the request path and the decoding on the store worker's:
//! JSON cost about 1.9 us per event to write and 2.4 to read (perf, `bench/run` pixel load).

use crate::classify::{INTERNAL_NETWORK_TAG, PRIVATE_ADDRESS_TAG, ranges};
use crate::store::{EventKind, NewEvent, WithoutConsent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

const FORMAT_1: u8 = 0x01;
const FORMAT_JSON: u8 = b'[';

/// One event, encoded for the journal before any lock is taken.
#[derive(Debug, Clone)]
pub struct EncodedEvent(Vec<u8>);

impl EncodedEvent {
    /// The agent and its headers go in sealed when they are not to be kept (see `sealed.rs`).
    pub fn new(e: &NewEvent) -> EncodedEvent {
        let sealed = |s: &Option<String>| {
            s.as_deref()
                .filter(|_| !e.keep_user_agent)
                .map(super::super::sealed::seal)
        };
        let (sealed_user_agent, sealed_headers) = (sealed(&e.user_agent), sealed(&e.headers));
        let wire = Wire {
            kind: e.kind,
            tracking_id: e.tracking_id,
            link_no: e.link_no,
            secs: e.received_at.timestamp(),
            nanos: e.received_at.timestamp_subsec_nanos(),
            head: e.method == "HEAD",
            user_agent: e.user_agent.as_deref().filter(|_| e.keep_user_agent),
            keep_user_agent: e.keep_user_agent,
            client_ip: e.client_ip.as_deref(),
            headers: e.headers.as_deref().filter(|_| e.keep_user_agent),
            ip_tags: Cow::Borrowed(&e.ip_tags),
            failed_check: e.failed_check,
            country: e.country.as_deref(),
            region: e.region.as_deref(),
            without_consent: e.without_consent,
            sealed_user_agent: sealed_user_agent.as_deref(),
            sealed_headers: sealed_headers.as_deref(),
        };
        let bytes = postcard::to_extend(&wire, Vec::with_capacity(256))
            .expect("writing to a Vec cannot fail");
        EncodedEvent(bytes)
    }
}

/// The payload of one record holding `events`.
pub fn payload<'e>(events: impl IntoIterator<Item = &'e EncodedEvent>) -> Vec<u8> {
    let mut payload = vec![FORMAT_1];
    for event in events {
        payload.extend_from_slice(&event.0);
    }
    payload
}

/// The events of a record's payload, in order.
pub fn decode(payload: &[u8]) -> Result<Vec<NewEvent>, String> {
    match payload.first() {
        Some(&FORMAT_1) => {
            let mut rest = &payload[1..];
            let mut events = Vec::new();
            while !rest.is_empty() {
                let (wire, after) = postcard::take_from_bytes::<Wire>(rest)
                    .map_err(|e| format!("undecodable event: {e}"))?;
                events.push(wire.into_event()?);
                rest = after;
            }
            Ok(events)
        }
        Some(&FORMAT_JSON) => serde_json::from_slice::<Vec<JsonEvent>>(payload)
            .map(|group| group.into_iter().map(JsonEvent::into_event).collect())
            .map_err(|e| e.to_string()),
        Some(other) => Err(format!("unknown record format {other:#04x}")),
        None => Err("empty record".into()),
    }
}

/// Format 1's fields, in their order on disk.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    kind: EventKind,
    tracking_id: i64,
    link_no: Option<u16>,
    secs: i64,
    nanos: u32,
    head: bool,
    user_agent: Option<&'a str>,
    keep_user_agent: bool,
    client_ip: Option<&'a str>,
    headers: Option<&'a str>,
    ip_tags: Cow<'a, [&'a str]>,
    failed_check: bool,
    country: Option<&'a str>,
    region: Option<&'a str>,
    without_consent: Option<WithoutConsent>,
    sealed_user_agent: Option<&'a str>,
    sealed_headers: Option<&'a str>,
}

impl Wire<'_> {
    fn into_event(self) -> Result<NewEvent, String> {
        let received_at = DateTime::from_timestamp(self.secs, self.nanos)
            .ok_or_else(|| format!("bad time {}.{:09}", self.secs, self.nanos))?;
        Ok(NewEvent {
            kind: self.kind,
            tracking_id: self.tracking_id,
            link_no: self.link_no,
            received_at,
            method: if self.head { "HEAD" } else { "GET" },
            user_agent: unseal(self.user_agent, self.sealed_user_agent),
            keep_user_agent: self.keep_user_agent,
            client_ip: self.client_ip.map(str::to_owned),
            headers: unseal(self.headers, self.sealed_headers),
            ip_tags: self.ip_tags.iter().filter_map(|t| static_tag(t)).collect(),
            failed_check: self.failed_check,
            country: self.country.map(str::to_owned),
            region: self.region.map(str::to_owned),
            without_consent: self.without_consent,
        })
    }
}

fn unseal(kept: Option<&str>, sealed: Option<&str>) -> Option<String> {
    kept.map(str::to_owned)
        .or_else(|| sealed.and_then(super::super::sealed::open))
}

/// The tracker's own constant for a tag: an address list this build no longer ships (the journal
/// may outlive an upgrade) cannot be tested for by the rules anyway.
fn static_tag(tag: &str) -> Option<&'static str> {
    match tag {
        INTERNAL_NETWORK_TAG => Some(INTERNAL_NETWORK_TAG),
        PRIVATE_ADDRESS_TAG => Some(PRIVATE_ADDRESS_TAG),
        name => ranges::known_list(name),
    }
}

/// An event as builds before format 1 wrote it.
#[derive(Deserialize)]
struct JsonEvent {
    kind: EventKind,
    tracking_id: i64,
    link_no: Option<u16>,
    received_at: DateTime<Utc>,
    method: String,
    user_agent: Option<String>,
    keep_user_agent: bool,
    client_ip: Option<String>,
    headers: Option<String>,
    ip_tags: Vec<String>,
    failed_check: bool,
    country: Option<String>,
    region: Option<String>,
    /// Absent in journals of builds that did not know consent.
    #[serde(default)]
    without_consent: Option<WithoutConsent>,
    #[serde(default)]
    sealed_user_agent: Option<String>,
    #[serde(default)]
    sealed_headers: Option<String>,
}

impl JsonEvent {
    fn into_event(self) -> NewEvent {
        NewEvent {
            kind: self.kind,
            tracking_id: self.tracking_id,
            link_no: self.link_no,
            received_at: self.received_at,
            method: if self.method == "HEAD" { "HEAD" } else { "GET" },
            user_agent: unseal(
                self.user_agent.as_deref(),
                self.sealed_user_agent.as_deref(),
            ),
            keep_user_agent: self.keep_user_agent,
            client_ip: self.client_ip,
            headers: unseal(self.headers.as_deref(), self.sealed_headers.as_deref()),
            ip_tags: self.ip_tags.iter().filter_map(|t| static_tag(t)).collect(),
            failed_check: self.failed_check,
            country: self.country,
            region: self.region,
            without_consent: self.without_consent,
        }
    }
}
