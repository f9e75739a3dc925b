//! Campaign reports, read from the rollups: the headline figures, the time series, per-link
//! clicks, breakdowns, the hour-of-week grid and the side-by-side comparison; and a recipient's
//! timeline (per-recipient data, so not for viewers). Each answers in JSON, NDJSON or CSV.

use super::auth::Caller;
use super::error::{ApiError, Invalid};
use super::format::{self, Format, negotiate};
use crate::analytics::rollup::Dim;
use crate::analytics::{CampaignReport, Metric};
use crate::analytics::{ab_test, report};
use crate::app::AppState;
use crate::app::existing_campaign;
use crate::domain::AuditAction;
pub use crate::reports::{Options, Which, render, series_window};
use crate::store::{Campaign, EventRecord};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Query parameters, with a rejection that names what was wrong.
fn params<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FormatOnly {
    format: Option<String>,
}

#[derive(Serialize)]
struct Named<T> {
    campaign: Campaign,
    #[serde(flatten)]
    report: T,
}

async fn serve(
    app: &AppState,
    id: &str,
    which: Which,
    options: Options,
    format: Format,
) -> Result<Response, ApiError> {
    let campaign = existing_campaign(app, id).await?;
    let (name, body) = render(&*app.store, &campaign, which, &options, format).await?;
    let mut response = format::respond(format, &name, body);
    // Read after the figures: what is still pending now was surely not in them.
    let pending = app.events.status().pending_events();
    format::pending_header(response.headers_mut(), pending);
    Ok(response)
}

/// `GET /api/campaigns/{id}/report` (also `/stats`): the headline figures with their definitions.
pub async fn headline(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<FormatOnly>, QueryRejection>,
) -> Result<Response, ApiError> {
    let format = negotiate(&headers, params(q)?.format.as_deref())?;
    serve(&app, &id, Which::Headline, Options::default(), format).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SeriesParams {
    interval: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

impl From<SeriesParams> for Options {
    fn from(p: SeriesParams) -> Options {
        Options {
            interval: p.interval,
            from: p.from,
            to: p.to,
            zone: Default::default(),
        }
    }
}

/// `GET /api/campaigns/{id}/timeseries?interval=hour|day&from=&to=`: opens and clicks per bucket
/// (UTC), readers and machines apart. Without a window: the campaign's activity.
pub async fn timeseries(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let format = negotiate(&headers, p.format.as_deref())?;
    serve(&app, &id, Which::Timeseries, Options::from(p), format).await
}

/// `GET /api/campaigns/{id}/links`: clicks per tracked link.
pub async fn links(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<FormatOnly>, QueryRejection>,
) -> Result<Response, ApiError> {
    let format = negotiate(&headers, params(q)?.format.as_deref())?;
    serve(&app, &id, Which::Links, Options::default(), format).await
}

/// `GET /api/campaigns/{id}/breakdown/{by}`: opens and clicks per client, os, device, country or
/// class.
pub async fn breakdown(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path((id, by)): Path<(String, String)>,
    headers: HeaderMap,
    q: Result<Query<FormatOnly>, QueryRejection>,
) -> Result<Response, ApiError> {
    let format = negotiate(&headers, params(q)?.format.as_deref())?;
    let dim = Dim::parse(&by).ok_or_else(|| {
        ApiError::Invalid(
            Invalid::Breakdown,
            format!("'{by}' is not a breakdown: use client, os, device, country or class"),
        )
    })?;
    serve(&app, &id, Which::Breakdown(dim), Options::default(), format).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HourOfWeekParams {
    tz: Option<String>,
    format: Option<String>,
}

impl HourOfWeekParams {
    /// `tz`: a UTC offset or an IANA zone (UTC when absent).
    pub fn zone(&self) -> Result<report::Zone, ApiError> {
        zone(self.tz.as_deref())
    }
}

/// `tz`: a UTC offset or an IANA zone (UTC when absent).
pub fn zone(tz: Option<&str>) -> Result<report::Zone, ApiError> {
    let Some(tz) = tz else {
        return Ok(report::Zone::default());
    };
    report::Zone::parse(tz).ok_or_else(|| {
        ApiError::Invalid(
            Invalid::Timezone,
            format!(
                "tz '{tz}' is neither a UTC offset such as +02:00, -05:30 or Z nor a time zone \
                 name such as Europe/Berlin"
            ),
        )
    })
}

/// `GET /api/campaigns/{id}/hour-of-week?tz=+02:00`: when recipients open and click, as 7 x 24
/// cells (Monday first) in the given UTC offset or time zone (`tz=Europe/Berlin`).
pub async fn hour_of_week(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<HourOfWeekParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let format = negotiate(&headers, p.format.as_deref())?;
    let options = Options {
        zone: p.zone()?,
        ..Options::default()
    };
    serve(&app, &id, Which::HourOfWeek, options, format).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CompareParams {
    campaigns: Option<String>,
    format: Option<String>,
}

impl CompareParams {
    /// The campaign ids of `campaigns=1,2` (2 to 20 of them), not yet checked to exist.
    pub fn ids(&self) -> Result<Vec<&str>, ApiError> {
        let ids: Vec<&str> = self
            .campaigns
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if !(2..=20).contains(&ids.len()) {
            return Err(ApiError::Invalid(
                Invalid::CampaignList,
                "campaigns must list 2 to 20 campaign ids, comma separated: campaigns=1,2".into(),
            ));
        }
        Ok(ids)
    }
}

#[derive(Serialize)]
struct Comparison {
    campaigns: Vec<Named<CampaignReport>>,
    /// Which campaign wins on readers who opened and on readers who clicked, or "not yet".
    winners: Vec<ab_test::Verdict>,
}

/// `GET /api/compare?campaigns=1,2`: two or more campaigns' headline figures side by side.
pub async fn compare(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    headers: HeaderMap,
    q: Result<Query<CompareParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let format = negotiate(&headers, p.format.as_deref())?;
    let ids = p.ids()?;
    let mut campaigns = Vec::with_capacity(ids.len());
    let mut rows: Vec<Metric> = Vec::new();
    for id in ids {
        let campaign = existing_campaign(&app, id).await?;
        let report = CampaignReport::from(app.store.campaign_stats(campaign.id).await?);
        rows.extend(report.metrics());
        campaigns.push(Named { campaign, report });
    }
    let reports: Vec<&CampaignReport> = campaigns.iter().map(|c| &c.report).collect();
    let winners = ab_test::winners(&reports);
    format::report(
        format,
        "comparison",
        Comparison { campaigns, winners },
        &rows,
    )
}

#[derive(Serialize)]
struct Timeline {
    recipient_id: String,
    events: Vec<EventRecord>,
}

/// `GET /api/recipients/{id}/timeline`: every open and click of one recipient across campaigns,
/// oldest first. Per-recipient data: analysts and admins, audited.
pub async fn timeline(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<FormatOnly>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_recipient_data()?;
    let format = negotiate(&headers, params(q)?.format.as_deref())?;
    let id = super::recipients::valid_recipient(id)?;
    caller
        .audit(&app, AuditAction::ReadTimeline, &super::recipient_ref(&id))
        .await?;
    let events = app.store.recipient_export(id.clone()).await?.events;
    format::report(
        format,
        "recipient-timeline",
        Timeline {
            recipient_id: id,
            events: events.clone(),
        },
        &events,
    )
}
