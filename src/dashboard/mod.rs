//! The dashboard at `/`: server-rendered pages that read the same reports as the API, SVG charts
//! drawn here, one small script of our own for the live feed, and nothing fetched from anywhere
//! else. Pages need a session (sign in with an API token or a dashboard password) and obey the
//! scope the same way the API does: viewers see aggregates only.

mod charts;
mod click_map;
mod domains;
mod figures;
mod manage;
mod pages;
mod segments;

use crate::analytics::CampaignReport;
use crate::app::AppState;
use crate::credentials::sessions as session;
use crate::domain::Actor;
use crate::error::{ApiError, Invalid};
use crate::html::{self, answer as html};
use crate::store::{EventId, EventQuery, Scope};
use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

const STYLE: &str = include_str!("assets/style.css");
const LIVE_JS: &str = include_str!("assets/live.js");

/// Only our own files; no inline script or style, no other origin.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(campaigns))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/campaigns/{id}", get(campaign))
        .route("/campaigns/{id}/live", get(live))
        .route("/campaigns/{id}/click-map", get(click_map::document))
        .route("/campaigns/{id}/edit", post(manage::edit))
        .route("/campaigns/{id}/archive", post(manage::archive))
        .route("/campaigns/{id}/delete", post(manage::delete))
        .route("/campaigns/{id}/segments/{segment}", get(segment))
        .route("/tracking-domains", post(domains::add))
        .route("/tracking-domains/{domain}/retire", post(domains::retire))
        .route("/tracking-domains/{domain}/remove", post(domains::remove))
        .route("/tracking-domains/{domain}/check", post(domains::check))
        .route("/compare", get(compare))
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/assets/live.js",
            get(|| async { asset("text/javascript; charset=utf-8", LIVE_JS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A page failed: the API's error, as a page.
fn error_page(scope: Option<Scope>, e: ApiError) -> Response {
    let status = e.status();
    html(
        status,
        html::page(
            "Error",
            scope,
            &format!(
                "<h1>{}</h1><p>{}</p><p><a href=\"/\">All campaigns</a></p>",
                status.as_u16(),
                html::esc(&e.to_string())
            ),
        ),
    )
}

/// A signed-in dashboard user; without a session, pages redirect to the sign-in form.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn {
    pub scope: Scope,
    /// Who the audit log names: the API token signed in with, or the password.
    pub actor: Actor,
}

impl FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, Response> {
        match session::from_headers(app, &parts.headers).await {
            Ok(Some(s)) => Ok(SignedIn {
                scope: s.scope,
                actor: s.token_id.map_or(Actor::DashboardPassword, Actor::Token),
            }),
            Ok(None) => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                let next = if here == "/" {
                    String::new()
                } else {
                    format!("?next={}", urlencode(&here))
                };
                Err(Redirect::to(&format!("/login{next}")).into_response())
            }
            Err(e) => Err(error_page(None, e)),
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path on this site only (no `//evil.example`).
pub fn safe_next(next: Option<&str>) -> String {
    // Browsers drop tabs and newlines from a URL and read a backslash as a slash, so
    // `/\t/evil.example` leads off-site: only a path that stays on this origin once resolved,
    // without such characters, is followed.
    const HOST: &str = "dashboard.invalid";
    let Some(n) = next.filter(|n| {
        n.starts_with('/')
            && !n
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    }) else {
        return "/".into();
    };
    let base = url::Url::parse(&format!("http://{HOST}/")).expect("a valid URL");
    match base.join(n) {
        // `/.//evil.example` resolves to the path `//evil.example`: a link to another host.
        Ok(u) if u.scheme() == "http" && u.host_str() == Some(HOST) && u.port().is_none() => {
            let path = &u[url::Position::BeforePath..];
            match path.starts_with("//") {
                true => "/".into(),
                false => path.to_string(),
            }
        }
        _ => "/".into(),
    }
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
}

async fn login_form(axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> Response {
    html(
        StatusCode::OK,
        pages::login(&safe_next(q.next.as_deref()), None),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    secret: String,
    next: Option<String>,
}

async fn login(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let client =
        crate::client_addr::client_addr(peer.ip(), &headers, &app.settings.trusted_proxies);
    if let Err(wait) = app.sign_in.attempt(client) {
        let mut r = html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::login(
                "/",
                Some(&format!(
                    "Too many failed sign-ins from your address: try again in {} minutes.",
                    wait.as_secs().div_ceil(60)
                )),
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    if !same_origin(&headers) {
        return error_page(
            None,
            ApiError::Invalid(
                Invalid::CrossSite,
                "sign-in must come from this site's own form".into(),
            ),
        );
    }
    let Ok(Form(form)) = form else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::login("/", Some("Enter an API token or the dashboard password.")),
        );
    };
    let next = safe_next(form.next.as_deref());
    match session::check_secret(&app, &form.secret).await {
        Ok(Some((token_id, scope))) => {
            app.sign_in.succeeded(client);
            // Served over https directly, or behind a proxy at an https address.
            let secure = app.tls.is_some()
                || app.settings.acme.is_some()
                || app
                    .settings
                    .public_url
                    .as_ref()
                    .is_some_and(|u| u.as_str().starts_with("https://"));
            match session::start(&app, token_id, scope, secure).await {
                Ok(cookie) => {
                    let mut r = Redirect::to(&next).into_response();
                    if let Ok(v) = HeaderValue::from_str(&cookie) {
                        r.headers_mut().insert(header::SET_COOKIE, v);
                    }
                    r
                }
                Err(e) => error_page(None, e),
            }
        }
        Ok(None) => html(
            StatusCode::UNAUTHORIZED,
            pages::login(&next, Some("That is not a valid API token or password.")),
        ),
        Err(e) => error_page(None, e),
    }
}

/// A form post from another site carries its own Origin; browsers always send one on POST.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => {
            let origin_host = origin.split("://").nth(1).unwrap_or("");
            Some(origin_host) == host
        }
    }
}

async fn logout(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return error_page(
            None,
            ApiError::Invalid(
                Invalid::CrossSite,
                "sign-out must come from this site".into(),
            ),
        );
    }
    match session::end(&app, &headers).await {
        Ok(cookie) => {
            let mut r = Redirect::to("/login").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => error_page(None, e),
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    archived: Option<String>,
}

async fn campaigns(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    q: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let archived = q.is_ok_and(|q| q.0.archived.as_deref() == Some("only"));
    match pages::campaigns(&app, user.scope, archived).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => error_page(Some(user.scope), e),
    }
}

#[derive(Deserialize, Default)]
pub struct CampaignQuery {
    interval: Option<String>,
}

async fn campaign(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path(id): Path<String>,
    q: Result<axum::extract::Query<CampaignQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let interval = q.ok().and_then(|q| q.0.interval);
    match pages::campaign(&app, user.scope, &id, interval).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => error_page(Some(user.scope), e),
    }
}

#[derive(Deserialize, Default)]
pub struct SegmentQuery {
    after: Option<String>,
}

async fn segment(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path((id, name)): Path<(String, String)>,
    q: Result<axum::extract::Query<SegmentQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let after = q.ok().and_then(|q| q.0.after);
    match segments::list(&app, user.scope, user.actor, &id, &name, after.as_deref()).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => error_page(Some(user.scope), e),
    }
}

async fn compare(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let ids = compare_ids(query.as_deref());
    match pages::compare(&app, user.scope, &ids).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => error_page(Some(user.scope), e),
    }
}

/// The campaign ids of the compare page's query: `campaigns=1&campaigns=2` (the list's
/// checkboxes) or `campaigns=1,2`.
pub fn compare_ids(query: Option<&str>) -> Vec<String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("campaigns="))
        .flat_map(|v| v.split("%2C").flat_map(|v| v.split(',')))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// Server-sent events: each new event of the campaign as it is stored (no recipient data, so
/// every scope may watch). The feed reads the database once a second, so it shows events taken
/// by any process that shares it; `Last-Event-ID` resumes after a reconnect.
async fn live(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let campaign = match crate::app::existing_campaign(&app, &id).await {
        Ok(c) => c.id,
        Err(e) => return error_page(Some(user.scope), e),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<EventId>().ok());
    let after = match resume {
        Some(id) => id,
        None => match app.store.recent_events(campaign, 1).await {
            Ok(latest) => latest.first().map_or(EventId(0), |e| e.id),
            Err(e) => return error_page(Some(user.scope), e.into()),
        },
    };
    let closing = app.closing.subscribe();
    let state = (app, after, closing, Vec::<Event>::new());
    let stream = futures_util::stream::unfold(
        state,
        move |(app, mut after, mut closing, mut ready)| async move {
            loop {
                if let Some(event) = ready.pop() {
                    return Some((
                        Ok::<Event, std::convert::Infallible>(event),
                        (app, after, closing, ready),
                    ));
                }
                if *closing.borrow() {
                    return None;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = closing.changed() => return None,
                }
                let query = EventQuery {
                    campaign: Some(campaign),
                    after,
                    limit: 100,
                };
                let Ok(events) = app.store.events(query).await else {
                    continue;
                };
                // The headline cards' new values after the events (popped last): the rollups
                // were written in the same transactions as the events.
                if !events.is_empty()
                    && let Ok(stats) = app.store.campaign_stats(campaign).await
                {
                    ready.push(figures::live_update(&CampaignReport::from(stats)));
                }
                for e in events.iter().rev() {
                    ready.push(pages::live_event(e));
                }
                if let Some(last) = events.last() {
                    after = last.id;
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn after_sign_in_only_paths_of_this_site_are_followed() {
        for (next, want) in [
            ("/campaigns/3", "/campaigns/3"),
            ("/campaigns/3?tab=links#top", "/campaigns/3?tab=links#top"),
            ("/a/../b", "/b"),
            ("//evil.example", "/"),
            ("/.//evil.example", "/"),
            ("/a/..//evil.example", "/"),
            ("/\t/evil.example", "/"),
            ("/\n/evil.example", "/"),
            ("/\\evil.example", "/"),
            ("/ /evil.example", "/"),
            ("https://evil.example/", "/"),
            ("evil.example", "/"),
            ("", "/"),
        ] {
            assert_eq!(safe_next(Some(next)), want, "{next:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
