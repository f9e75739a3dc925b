//! A campaign's reports, encoded: the headline figures, the time series, links, breakdowns and
//! the hour-of-week grid, in JSON, CSV or NDJSON. The API, the dashboard and `mailbeacon report`
//! all render here; and its segments, read a page of messages at a time.

use crate::analytics::CampaignReport;
use crate::analytics::engagement::{Engagement, engagement};
use crate::analytics::providers::{ProviderRow, ProviderTally};
use crate::analytics::report::{self, Interval, Window};
use crate::analytics::rollup::Dim;
use crate::analytics::segments::{MessageActivity, Segment, SegmentCounts};
use crate::analytics::send_time::{SendTime, send_time};
use crate::analytics::since_send::{SinceSend, SinceSendRow};
use crate::domain::ANONYMOUS_RECIPIENT;
use crate::encode::format::{self, Format};
use crate::error::{ApiError, Invalid};
use crate::store::{Campaign, CampaignId, CampaignStats, MessageId, Store, StoreError};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

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
    /// The hour of week's time zone.
    pub zone: report::Zone,
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
                time_zone: options.zone.name(),
                utc_offset_minutes: options.zone.offset_minutes_at(Utc::now()),
                cells: report::hour_of_week(&rows, options.zone),
            };
            enc(format, &grid, &grid.cells)?
        }
    };
    Ok((format!("campaign-{id}-{}", which.name()), bytes))
}

#[derive(Serialize)]
struct Series {
    campaign_id: CampaignId,
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
        // The hour after the last activity, but not past now: a bucket still to come would be
        // drawn as a fall to zero.
        None => match stats.last_activity {
            Some(last) => {
                (last + Duration::hours(1)).min(Utc::now().max(last + Duration::seconds(1)))
            }
            None => Utc::now() + Duration::hours(1),
        },
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
    campaign_id: CampaignId,
    links: Vec<report::LinkReport>,
}

#[derive(Serialize)]
struct Breakdown {
    campaign_id: CampaignId,
    by: &'static str,
    rows: Vec<report::BreakdownRow>,
}

#[derive(Serialize)]
struct HourOfWeek {
    campaign_id: CampaignId,
    /// `+02:00`, or an IANA name such as `Europe/Berlin`.
    time_zone: String,
    /// The zone's offset now (a named zone's changes with daylight saving time; each cell uses
    /// the offset of its own hour).
    utc_offset_minutes: i32,
    cells: Vec<report::HourOfWeekCell>,
}

/// Messages read from the store at a time, for segments.
const SEGMENT_PAGE: usize = 1000;
/// Most messages one segment page looks at: a sparse segment answers with fewer rows than asked
/// and a cursor to go on from, rather than reading the whole campaign in one request.
pub const SEGMENT_SCAN: usize = 20_000;

/// Every message of the campaign with its activity, a page at a time.
pub(crate) async fn each_message(
    store: &dyn Store,
    campaign: CampaignId,
    mut f: impl FnMut(&MessageActivity),
) -> Result<(), StoreError> {
    let mut after = MessageId(0);
    loop {
        let page = store
            .message_activity(campaign, after, SEGMENT_PAGE)
            .await?;
        page.iter().for_each(&mut f);
        match page.last() {
            Some(last) if page.len() == SEGMENT_PAGE => after = last.message_id,
            _ => return Ok(()),
        }
    }
}

/// How many of the campaign's messages are in each segment.
pub async fn segment_counts(
    store: &dyn Store,
    campaign: CampaignId,
) -> Result<SegmentCounts, StoreError> {
    let mut counts = SegmentCounts {
        campaign_id: campaign,
        ..SegmentCounts::default()
    };
    each_message(store, campaign, |m| counts.add(m)).await?;
    Ok(counts)
}

/// Both of the above from one pass over the messages (the dashboard shows both).
pub async fn segments_and_providers(
    store: &dyn Store,
    campaign: CampaignId,
) -> Result<(SegmentCounts, Vec<ProviderRow>), StoreError> {
    let mut counts = SegmentCounts {
        campaign_id: campaign,
        ..SegmentCounts::default()
    };
    let mut tally = ProviderTally::default();
    each_message(store, campaign, |m| {
        counts.add(m);
        tally.add(m);
    })
    .await?;
    Ok((counts, tally.rows()))
}

/// Per hour since each message was sent, the messages first read and first clicked then.
pub async fn since_send_rows(
    store: &dyn Store,
    campaign: CampaignId,
) -> Result<Vec<SinceSendRow>, StoreError> {
    let mut curve = SinceSend::default();
    each_message(store, campaign, |m| curve.add(m)).await?;
    Ok(curve.rows())
}

/// Readers' open and click rates per mailbox provider of the campaign's recipients.
pub async fn provider_rows(
    store: &dyn Store,
    campaign: CampaignId,
) -> Result<Vec<ProviderRow>, StoreError> {
    let mut tally = ProviderTally::default();
    each_message(store, campaign, |m| tally.add(m)).await?;
    Ok(tally.rows())
}

/// Up to `limit` members of `segment` among the campaign's messages after `after`, looking at
/// no more than `scan` messages; with the cursor to go on from, `None` once every message was
/// looked at.
pub async fn segment_members(
    store: &dyn Store,
    campaign: CampaignId,
    segment: Segment,
    mut after: MessageId,
    limit: usize,
    scan: usize,
) -> Result<(Vec<MessageActivity>, Option<MessageId>), StoreError> {
    let (mut members, mut scanned) = (Vec::new(), 0);
    while scanned < scan {
        let page = store
            .message_activity(campaign, after, SEGMENT_PAGE)
            .await?;
        scanned += page.len();
        let last_page = page.len() < SEGMENT_PAGE;
        for m in page {
            after = m.message_id;
            if m.is_in(segment) {
                members.push(m);
                if members.len() == limit {
                    return Ok((members, Some(after)));
                }
            }
        }
        if last_page {
            return Ok((members, None));
        }
    }
    Ok((members, Some(after)))
}

/// A recipient's best hour of the week to send, from every message of theirs.
pub async fn recipient_send_time(
    store: &dyn Store,
    recipient: String,
    zone: report::Zone,
) -> Result<SendTime, StoreError> {
    let messages = store.recipient_activity(vec![recipient.clone()]).await?;
    Ok(send_time(&recipient, &messages, zone))
}

/// Every message of these recipients, in every campaign, with its activity, by recipient.
async fn activity_by_recipient(
    store: &dyn Store,
    recipients: &[String],
) -> Result<HashMap<String, Vec<MessageActivity>>, StoreError> {
    let mut by_recipient: HashMap<String, Vec<MessageActivity>> = HashMap::new();
    for m in store.recipient_activity(recipients.to_vec()).await? {
        by_recipient
            .entry(m.recipient_id.clone())
            .or_default()
            .push(m);
    }
    Ok(by_recipient)
}

/// One recipient's engagement, from every message of theirs.
pub async fn recipient_engagement(
    store: &dyn Store,
    recipient: String,
    recent: usize,
    days: i64,
) -> Result<Engagement, StoreError> {
    let messages = store.recipient_activity(vec![recipient.clone()]).await?;
    Ok(engagement(&recipient, &messages, recent, days, Utc::now()))
}

/// The engagement of up to `limit` recipients after `after` (in order of their id), those `only`
/// asks for (engaged or not); with the cursor to go on from, `None` once every recipient was
/// looked at.
pub async fn engagement_page(
    store: &dyn Store,
    after: String,
    limit: usize,
    (recent, days): (usize, i64),
    only: Option<bool>,
) -> Result<(Vec<Engagement>, Option<String>), StoreError> {
    let recipients = store.recipients_after(after, limit).await?;
    let next = (recipients.len() == limit)
        .then(|| recipients.last().cloned())
        .flatten();
    let by_recipient = activity_by_recipient(store, &recipients).await?;
    let now = Utc::now();
    let rows = (recipients.iter())
        .map(|r| {
            let messages = by_recipient.get(r).map_or(&[][..], Vec::as_slice);
            engagement(r, messages, recent, days, now)
        })
        .filter(|e| only.is_none_or(|engaged| e.engaged == engaged))
        .collect();
    Ok((rows, next))
}

/// The best hours of the recipients of up to `limit` of the campaign's messages after `after`
/// (each from every message of theirs, in every campaign), with the cursor to go on from; `None`
/// once every message was looked at. Untracked (anonymous) mail names no one and is left out.
pub async fn campaign_send_times(
    store: &dyn Store,
    campaign: CampaignId,
    after: MessageId,
    limit: usize,
    zone: report::Zone,
) -> Result<(Vec<SendTime>, Option<MessageId>), StoreError> {
    let page = store.message_activity(campaign, after, limit).await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|m| m.message_id))
        .flatten();
    // Each named recipient once, in the page's order (a page may hold several of their mails).
    let mut seen = HashSet::with_capacity(page.len());
    let recipients: Vec<String> = (page.into_iter())
        .map(|m| m.recipient_id)
        .filter(|r| !r.starts_with(ANONYMOUS_RECIPIENT) && seen.insert(r.clone()))
        .collect();
    let by_recipient = activity_by_recipient(store, &recipients).await?;
    let rows = recipients
        .iter()
        .map(|r| send_time(r, by_recipient.get(r).map_or(&[], Vec::as_slice), zone))
        .collect();
    Ok((rows, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_series_ends_with_the_hour_now_not_after_it() {
        let now = Utc::now();
        let campaign = Campaign {
            id: CampaignId(1),
            name: "Now".into(),
            created_at: now - Duration::hours(3),
            ..Campaign::default()
        };
        let stats = |last: DateTime<Utc>| CampaignStats {
            first_activity: Some(last - Duration::hours(1)),
            campaign_id: CampaignId(1),
            sent: 1,
            opens: Default::default(),
            clicks: Default::default(),
            last_activity: Some(last),
            click_implied_opens: 0,
            ..CampaignStats::default()
        };
        let hour = |t: DateTime<Utc>| t.timestamp().div_euclid(3600);
        // Active a minute ago: the series ends with the current hour, whatever minute it is.
        let recent = stats(now - Duration::minutes(1));
        let to_hour = series_window(&campaign, &recent, &Options::default())
            .unwrap()
            .to_hour;
        let after = Utc::now();
        assert!(
            hour(now) < to_hour && to_hour <= hour(after) + 1,
            "{to_hour}"
        );
        // Active five hours ago: up to the hour after it, as before.
        let last = now - Duration::hours(5);
        let w = series_window(&campaign, &stats(last), &Options::default()).unwrap();
        let first = last - Duration::hours(1);
        let expected = Window::new(first, last + Duration::hours(1), Interval::Hour);
        assert_eq!(w.to_hour, expected.unwrap().to_hour);
    }
}
