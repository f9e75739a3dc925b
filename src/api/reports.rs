//! Campaign reports, read from the rollups: the headline figures, the time series, per-link
//! clicks, breakdowns, the hour-of-week grid and the side-by-side comparison; and a recipient's
//! timeline (per-recipient data, so not for viewers). Each answers in JSON, NDJSON or CSV.

use super::auth::Caller;
use super::campaigns::existing_campaign;
use super::error::{ApiError, Invalid};
use super::format::{self, Format, negotiate};
use crate::analytics::report::{self, Interval, Window};
use crate::analytics::rollup::Dim;
use crate::analytics::{CampaignReport, Metric};
use crate::app::AppState;
use crate::store::{Campaign, CampaignStats, EventRecord, Store};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Duration, NaiveDate, Utc};
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

/// The reports of one campaign, for the API and `mailbeacon report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Headline,
    Timeseries,
    Links,
    Breakdown(Dim),
    HourOfWeek,
}

impl Which {
    pub fn parse(s: &str) -> Option<Which> {
        Some(match s {
            "report" | "headline" => Which::Headline,
            "timeseries" => Which::Timeseries,
            "links" => Which::Links,
            "hour-of-week" => Which::HourOfWeek,
            other => Which::Breakdown(Dim::parse(other.strip_prefix("breakdown/")?)?),
        })
    }

    fn name(self) -> String {
        match self {
            Which::Headline => "report".into(),
            Which::Timeseries => "timeseries".into(),
            Which::Links => "links".into(),
            Which::Breakdown(dim) => dim.as_str().into(),
            Which::HourOfWeek => "hour-of-week".into(),
        }
    }
}

/// Options some reports take.
#[derive(Debug, Default)]
pub struct Options {
    pub interval: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// UTC offset in minutes, for the hour of week.
    pub offset_minutes: i32,
}

/// A report, encoded: (file name without extension, bytes).
pub async fn render(
    store: &dyn Store,
    campaign: &Campaign,
    which: Which,
    options: &Options,
    format: Format,
) -> Result<(String, Vec<u8>), ApiError> {
    fn enc<J: Serialize, R: Serialize + Default>(
        format: Format,
        json: &J,
        rows: &[R],
    ) -> Result<Vec<u8>, ApiError> {
        format::encode(format, json, rows).map_err(ApiError::Internal)
    }
    let id = campaign.id;
    let bytes = match which {
        Which::Headline => {
            let report = CampaignReport::from(store.campaign_stats(id).await?);
            enc(format, &report, &report.metrics())?
        }
        Which::Timeseries => {
            let stats = store.campaign_stats(id).await?;
            let window = series_window(campaign, &stats, options)?;
            let rows = store
                .report_hours(id, window.from_hour, window.to_hour)
                .await?;
            let points = report::series(&rows, &window);
            let hour = |h: i64| DateTime::from_timestamp(h * 3600, 0).unwrap_or_default();
            let series = Series {
                campaign_id: id,
                interval: window.interval,
                from: hour(window.from_hour),
                to: hour(window.to_hour),
                points,
            };
            enc(format, &series, &series.points)?
        }
        Which::Links => {
            let links = Links {
                campaign_id: id,
                links: report::links(store.report_links(id).await?),
            };
            enc(format, &links, &links.links)?
        }
        Which::Breakdown(dim) => {
            let breakdown = Breakdown {
                campaign_id: id,
                by: dim.as_str(),
                rows: report::breakdown(store.report_breakdown(id, dim).await?),
            };
            enc(format, &breakdown, &breakdown.rows)?
        }
        Which::HourOfWeek => {
            let rows = store.report_hours(id, i64::MIN, i64::MAX).await?;
            let grid = HourOfWeek {
                campaign_id: id,
                utc_offset_minutes: options.offset_minutes,
                cells: report::hour_of_week(&rows, options.offset_minutes),
            };
            enc(format, &grid, &grid.cells)?
        }
    };
    Ok((format!("campaign-{id}-{}", which.name()), bytes))
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
            offset_minutes: 0,
        }
    }
}

#[derive(Serialize)]
struct Series {
    campaign_id: i64,
    interval: Interval,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    points: Vec<report::SeriesPoint>,
}

/// An RFC 3339 time or a date (midnight UTC).
fn parse_time(name: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            ApiError::Invalid(
                Invalid::Time,
                format!("{name} '{s}' is not a time: use 2026-11-23 or 2026-11-23T09:00:00Z"),
            )
        })
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

/// The window a time series covers: the one asked for, or the campaign's activity (hourly up to
/// 72 hours, else daily). Shared with the dashboard.
pub fn series_window(
    campaign: &Campaign,
    stats: &CampaignStats,
    p: &Options,
) -> Result<Window, ApiError> {
    let from = match p.from.as_deref() {
        Some(s) => parse_time("from", s)?,
        None => stats.first_activity.unwrap_or(campaign.created_at),
    };
    let to = match p.to.as_deref() {
        Some(s) => parse_time("to", s)?,
        None => stats.last_activity.unwrap_or_else(Utc::now) + Duration::hours(1),
    };
    if to <= from {
        return Err(ApiError::Invalid(
            Invalid::Window,
            format!("to ({to}) must be after from ({from})"),
        ));
    }
    let interval = match p.interval.as_deref() {
        Some(s) => Interval::parse(s).ok_or_else(|| {
            ApiError::Invalid(
                Invalid::Interval,
                format!("interval '{s}' is not one of hour, day"),
            )
        })?,
        None if to - from <= Duration::hours(72) => Interval::Hour,
        None => Interval::Day,
    };
    Window::new(from, to, interval).ok_or_else(|| {
        ApiError::Invalid(
            Invalid::Window,
            format!(
                "the window from {from} to {to} has more than {} {interval:?} buckets: \
             ask for interval=day or a shorter window",
                report::MAX_BUCKETS
            ),
        )
    })
}

#[derive(Serialize)]
struct Links {
    campaign_id: i64,
    links: Vec<report::LinkReport>,
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

#[derive(Serialize)]
struct Breakdown {
    campaign_id: i64,
    by: &'static str,
    rows: Vec<report::BreakdownRow>,
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
    /// `tz` in minutes east of UTC (0 when absent).
    pub fn offset_minutes(&self) -> Result<i32, ApiError> {
        match self.tz.as_deref() {
            None => Ok(0),
            Some(tz) => report::parse_offset(tz).ok_or_else(|| {
                ApiError::Invalid(
                    Invalid::Timezone,
                    format!("tz '{tz}' is not a UTC offset such as +02:00, -05:30 or Z"),
                )
            }),
        }
    }
}

#[derive(Serialize)]
struct HourOfWeek {
    campaign_id: i64,
    utc_offset_minutes: i32,
    cells: Vec<report::HourOfWeekCell>,
}

/// `GET /api/campaigns/{id}/hour-of-week?tz=+02:00`: when recipients open and click, as 7 x 24
/// cells (Monday first) in the given UTC offset.
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
        offset_minutes: p.offset_minutes()?,
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
    format::report(format, "comparison", Comparison { campaigns }, &rows)
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
        .audit(&app, "read_timeline", &super::recipient_ref(&id))
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
