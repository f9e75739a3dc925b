//! The hot path: the pixel (`/o/{token}.gif|png`) and the click redirect (`/c/{token}`).
//!
//! Per request: verify the token (no allocation), make sure the message exists and, for a click,
//! where it leads (a cache, a read on a miss: `ingest::directory`), read the few request facts we
//! keep, hand the event to the journal writer and answer once it is in the journal. No logging
//! per request; outcomes are counted in metrics (labels are fixed words, never tokens or
//! recipients).

pub mod acme_challenge;
pub mod conversion;
pub mod domain_check;
mod images;
pub mod stop;

use crate::app::AppState;
use crate::domain::{Keep, Standing};
use crate::ingest::directory::Found;
use crate::store::{EventKind, NewEvent};
use crate::token::TokenError;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;

/// User agents longer than this are cut (at a character boundary) before they are stored.
const MAX_USER_AGENT: usize = 512;
/// Request headers kept with each event because classification reads them.
const KEPT_HEADERS: [&str; 6] = [
    "sec-purpose",
    "purpose",
    "x-purpose",
    "x-moz",
    "via",
    "from",
];

const NO_CACHE: HeaderValue =
    HeaderValue::from_static("no-store, no-cache, must-revalidate, private");

/// Takes the request whole: the method, URI and header extractors would each copy theirs.
pub async fn pixel(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (method, uri, headers) = (request.method(), request.uri(), request.headers());
    let file = uri.path().strip_prefix("/o/").unwrap_or_default();
    let (token, gif) = match (file.strip_suffix(".gif"), file.strip_suffix(".png")) {
        (Some(t), _) => (t, true),
        (_, Some(t)) => (t, false),
        _ => return refused("pixel", "malformed"),
    };
    let token = match app.keys.verify_open(token) {
        Ok(t) => t,
        Err(e) => {
            note_failed_check(&app, e, token, false, method, peer, headers);
            return refused("pixel", e.label());
        }
    };
    let standing = match app.directory.lookup(token.tracking_id, None).await {
        Ok(Found::Message { standing, .. }) => Some(standing),
        Ok(_) => return refused("pixel", "unknown_message"),
        // The database cannot say: the pixel is answered all the same, and the store worker
        // drops the event later if the message is unknown (or keeps only what the recipient's
        // standing allows).
        Err(_) => None,
    };
    let mut event = event(
        &app,
        EventKind::Open,
        token.tracking_id,
        None,
        method,
        peer,
        headers,
    );
    if let Some(standing) = standing {
        minimise(standing, &mut event);
    }
    match app.events.record(event).await {
        Ok(()) => {
            metrics::counter!("mailbeacon_track_requests_total", "route" => "pixel", "result" => "recorded")
                .increment(1);
            let (body, content_type): (&'static [u8], _) = if gif {
                (&images::GIF, HeaderValue::from_static("image/gif"))
            } else {
                (&images::PNG, HeaderValue::from_static("image/png"))
            };
            let mut response = Response::new(Body::from(body));
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, content_type);
            no_cache(h);
            response
        }
        Err(e) => unavailable("pixel", &e.to_string()),
    }
}

/// Takes the request whole: the method, URI and header extractors would each copy theirs.
pub async fn click(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (method, uri, headers) = (request.method(), request.uri(), request.headers());
    let token = uri.path().strip_prefix("/c/").unwrap_or_default();
    let token = match app.keys.verify_click(token) {
        Ok(t) => t,
        Err(e) => {
            note_failed_check(&app, e, token, true, method, peer, headers);
            return refused("click", e.label());
        }
    };
    let (standing, url, conversions) = match app
        .directory
        .lookup(token.tracking_id, Some(token.link_no))
        .await
    {
        Ok(Found::UnknownMessage) => return refused("click", "unknown_message"),
        Ok(Found::Message {
            standing,
            url: Some(url),
            conversions,
        }) => (standing, url, conversions),
        Ok(_) => return refused("click", "unknown_link"),
        Err(e) => {
            let why = format!("the database cannot say where this link leads: {e}");
            return unavailable("click", &why);
        }
    };
    let mut event = event(
        &app,
        EventKind::Click,
        token.tracking_id,
        Some(token.link_no),
        method,
        peer,
        headers,
    );
    minimise(standing, &mut event);
    // A conversion is tracked as the click is: not for someone whose clicks are not stored.
    let reference = (conversions && standing.keeps_conversions(event.without_consent)).then(|| {
        let minute = (event.received_at.timestamp() / 60) as u32;
        app.keys
            .sign_reference(token.tracking_id, token.link_no, minute)
    });
    match app.events.record(event).await {
        Ok(()) => match reference {
            Some(r) => redirect(&crate::domain::with_reference(&url, &r)),
            None => redirect(&url),
        },
        Err(e) => unavailable("click", &e.to_string()),
    }
}

/// A hit takes no more of the reader into the journal than the store will keep (the store
/// worker decides again on what the database says then, and drops or minimises the same way).
fn minimise(standing: Standing, event: &mut NewEvent) {
    match standing.keep(event.without_consent) {
        Keep::Nothing => {
            // Not stored: only that the mail was loaded or clicked, for the worker to confirm.
            for_anonymous(event);
            event.user_agent = None;
            event.headers = None;
            event.ip_tags.clear();
        }
        // Stored anonymous (`--without-consent anonymous` renames the message first).
        Keep::Anonymous => for_anonymous(event),
        Keep::Everything => {}
    }
}

/// An anonymous message's hit keeps nothing that points to the reader, already in the journal:
/// no address, place or proxy headers' values beyond what classification reads (sealed with
/// the agent: see ingest/sealed.rs), only the address lists the address fell in.
fn for_anonymous(event: &mut NewEvent) {
    event.keep_user_agent = false;
    event.client_ip = None;
    event.country = None;
    event.region = None;
}

fn event(
    app: &AppState,
    kind: EventKind,
    tracking_id: i64,
    link_no: Option<u16>,
    method: &Method,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> NewEvent {
    let addr = crate::client_addr::client_addr(peer.ip(), headers, &app.settings.trusted_proxies);
    let place = app.geo.as_ref().map(|g| g.lookup(addr)).unwrap_or_default();
    NewEvent {
        kind,
        tracking_id,
        link_no,
        // Microseconds, as the database keeps it: the API, exports and webhooks give one time.
        received_at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
        method: if method == Method::HEAD {
            "HEAD"
        } else {
            "GET"
        },
        user_agent: headers.get(header::USER_AGENT).map(|v| {
            let ua = String::from_utf8_lossy(v.as_bytes());
            truncate(&ua, MAX_USER_AGENT).to_string()
        }),
        keep_user_agent: app.settings.user_agent == crate::config::UserAgentMode::Full,
        without_consent: app
            .settings
            .require_consent
            .then_some(app.settings.without_consent),
        client_ip: crate::client_addr::stored_addr(addr, app.settings.client_ip, &app.ip_salt),
        headers: kept_headers(headers),
        ip_tags: {
            let mut tags = app.classifier.ranges.tags(addr);
            // Decided on the full address: the stored one may be truncated, hashed or absent.
            if app
                .classifier
                .internal
                .networks
                .iter()
                .any(|n| n.contains(&addr))
            {
                tags.push(crate::classify::INTERNAL_NETWORK_TAG);
            }
            if crate::classify::is_private_address(addr) {
                tags.push(crate::classify::PRIVATE_ADDRESS_TAG);
            }
            tags
        },
        failed_check: false,
        country: place.country,
        region: place.region,
    }
}

/// The classification-relevant headers as a JSON object, or `None` (the usual case) when absent.
pub fn kept_headers(headers: &HeaderMap) -> Option<String> {
    let mut kept = serde_json::Map::new();
    for name in KEPT_HEADERS {
        if let Some(v) = headers.get(name) {
            let v = String::from_utf8_lossy(v.as_bytes());
            kept.insert(name.into(), truncate(&v, 256).into());
        }
    }
    (!kept.is_empty()).then(|| serde_json::Value::Object(kept).to_string())
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(crate) fn no_cache(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, NO_CACHE);
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
}

/// A Location header for a stored destination. Destinations come from HTML and may hold characters
/// a header cannot (spaces, non-ASCII): those are percent-encoded, everything else is kept as is.
pub fn location(url: &str) -> HeaderValue {
    if !url.contains(' ')
        && let Ok(v) = HeaderValue::from_str(url)
    {
        return v;
    }
    let mut encoded = String::with_capacity(url.len() + 16);
    for b in url.bytes() {
        if b.is_ascii_graphic() {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&encoded).expect("percent-encoded ASCII is a valid header value")
}

/// The click's 302 to its stored destination.
fn redirect(url: &str) -> Response {
    metrics::counter!("mailbeacon_track_requests_total", "route" => "click", "result" => "recorded")
        .increment(1);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    let h = response.headers_mut();
    h.insert(header::LOCATION, location(url));
    no_cache(h);
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A well-formed token with a bad signature still names a message (if it was only altered, not
/// forged from nothing): note it, since scanners probe altered links before following the real one.
fn note_failed_check(
    app: &AppState,
    error: TokenError,
    token: &str,
    click: bool,
    method: &Method,
    peer: SocketAddr,
    headers: &HeaderMap,
) {
    if error != TokenError::BadSignature {
        return;
    }
    let Some(tracking_id) = app.keys.claimed_tracking_id(token, click) else {
        return;
    };
    let kind = if click {
        EventKind::Click
    } else {
        EventKind::Open
    };
    let mut note = event(app, kind, tracking_id, None, method, peer, headers);
    note.failed_check = true;
    // Nothing is answered differently, so a note that does not fit is only logged.
    if !app.events.status().note_failed_check(note) {
        tracing::debug!("too many failed token checks wait to be noted; this one is not");
    }
}

/// 404 for anything that is not a genuine token of a known message: no event, one counter.
fn refused(route: &'static str, reason: &'static str) -> Response {
    metrics::counter!("mailbeacon_track_refused_total", "route" => route, "reason" => reason)
        .increment(1);
    let mut response = Response::new(Body::from("not found\n"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    no_cache(response.headers_mut());
    response
}

fn unavailable(route: &'static str, e: &str) -> Response {
    metrics::counter!("mailbeacon_track_requests_total", "route" => route, "result" => "unavailable")
        .increment(1);
    tracing::warn!(route, "event not recorded: {e}");
    let mut response = Response::new(Body::from("temporarily unavailable\n"));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = response.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    no_cache(h);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_keep_valid_urls_and_encode_the_rest() {
        assert_eq!(
            location("https://x.test/a?b=1&c=2"),
            "https://x.test/a?b=1&c=2"
        );
        assert_eq!(
            location("https://x.test/grüße now"),
            "https://x.test/gr%C3%BC%C3%9Fe%20now"
        );
    }

    #[test]
    fn long_user_agents_are_cut_at_a_character() {
        let ua = "é".repeat(300);
        let cut = truncate(&ua, MAX_USER_AGENT);
        assert!(cut.len() <= MAX_USER_AGENT && cut.chars().all(|c| c == 'é'));
    }
}
