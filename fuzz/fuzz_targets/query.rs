//! Query-string and body parsers of the API and the dashboard. The input is a query string,
//! optionally followed by a newline and an Accept header; it goes through axum's `Query` into
//! every parameter type, then through the checks each handler makes (time series window from /
//! to / interval, the hour-of-week `tz`, event and audit cursors and limits, compared campaigns,
//! export format, the dashboard's compare list and `next`). The whole input is also tried as the
//! JSON body of message registration and of webhook registration.
#![no_main]

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use mailbeacon::analytics::report::{self, MAX_BUCKETS};
use mailbeacon::analytics::rollup::HourCount;
use mailbeacon::api::parsers::{AuditParams, EventsParams, ExportParams, parse_messages};
use mailbeacon::api::reports::{
    CompareParams, HourOfWeekParams, Options, SeriesParams, Which, series_window,
};
use mailbeacon::api::webhooks::CreateWebhook;
use mailbeacon::classify::Class;
use mailbeacon::store::{Campaign, CampaignId, CampaignStats, Counts, EventKind};
use mailbeacon::webhooks::{self, destination, signature};

fn stats() -> CampaignStats {
    let counts = Counts {
        total: 0,
        unique: 0,
        total_excluding_machine: 0,
        unique_excluding_machine: 0,
    };
    CampaignStats {
        campaign_id: CampaignId(1),
        sent: 1,
        opens: counts.clone(),
        clicks: counts,
        first_activity: Some(Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0).unwrap()),
        last_activity: Some(Utc.with_ymd_and_hms(2026, 11, 4, 17, 0, 0).unwrap()),
        click_implied_opens: 0,
        ..CampaignStats::default()
    }
}

fn row(hour: i64) -> HourCount {
    HourCount {
        hour,
        kind: EventKind::Open,
        class: Class::Human,
        events: 1,
        firsts: 1,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(messages) = parse_messages(data, 100) {
        assert!((1..=100).contains(&messages.len()));
    }
    // The same bytes as a webhook registration body, and its fields through their checks.
    if let Ok(hook) = serde_json::from_slice::<CreateWebhook>(data) {
        if let Ok(url) = destination::check_url(&hook.url, false) {
            assert!(
                url.starts_with("http://") || url.starts_with("https://"),
                "{url}"
            );
        }
        if let Some(secret) = &hook.secret
            && let Ok(key) = signature::parse_secret(secret)
        {
            assert!((24..=64).contains(&key.len()));
        }
        if let Some(classes) = &hook.classes
            && let Ok(list) = webhooks::parse_class_list(classes)
        {
            assert!(!list.is_empty());
        }
    }

    let text = String::from_utf8_lossy(data);
    let (query, accept) = text.split_once('\n').unwrap_or((&text, ""));
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(accept) {
        headers.insert(header::ACCEPT, v);
    }

    let _ = Which::parse(query);
    let next = mailbeacon::dashboard::safe_next(Some(query));
    assert!(next.starts_with('/') && !next.starts_with("//") && !next.contains('\\'));
    for id in mailbeacon::dashboard::compare_ids(Some(query)) {
        assert!(!id.is_empty() && !id.contains(','));
    }
    if let Some(minutes) = report::parse_offset(query) {
        assert!(minutes.abs() <= 14 * 60 + 59);
    }

    // What hyper would accept as a request target.
    let Ok(uri) = Uri::try_from(format!("/api/x?{query}")) else {
        return;
    };

    if let Ok(Query(p)) = Query::<SeriesParams>::try_from_uri(&uri) {
        let campaign = Campaign {
            id: CampaignId(1),
            name: "fuzz".into(),
            created_at: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            ..Campaign::default()
        };
        if let Ok(w) = series_window(&campaign, &stats(), &Options::from(p)) {
            let step = w.interval.hours();
            assert!((1..=MAX_BUCKETS).contains(&w.buckets()));
            assert!(w.from_hour.rem_euclid(step) == 0 && w.to_hour.rem_euclid(step) == 0);
            let rows = [row(w.from_hour), row(w.to_hour - 1), row(w.to_hour)];
            let points = report::series(&rows, &w);
            assert_eq!(points.len() as i64, w.buckets());
            assert_eq!(points.iter().map(|p| p.opens).sum::<i64>(), 2);
        }
    }
    if let Ok(Query(p)) = Query::<HourOfWeekParams>::try_from_uri(&uri)
        && let Ok(zone) = p.zone()
    {
        // Stored hours: from real event times, before and after 1970.
        let rows = [row(0), row(-500_000), row(493_000), row(493_023)];
        let cells = report::hour_of_week(&rows, zone);
        assert_eq!(cells.len(), 168);
        assert_eq!(cells.iter().map(|c| c.opens).sum::<i64>(), 4);
    }
    if let Ok(Query(p)) = Query::<EventsParams>::try_from_uri(&uri)
        && let Ok((after, limit)) = p.page()
    {
        assert!(after >= 0 && (1..=10_000).contains(&limit));
    }
    if let Ok(Query(p)) = Query::<AuditParams>::try_from_uri(&uri)
        && let Ok((_, limit)) = p.page()
    {
        assert!((1..=10_000).contains(&limit));
    }
    if let Ok(Query(p)) = Query::<CompareParams>::try_from_uri(&uri)
        && let Ok(ids) = p.ids()
    {
        assert!((2..=20).contains(&ids.len()));
        assert!(ids.iter().all(|id| !id.is_empty() && id.trim() == *id));
    }
    if let Ok(Query(p)) = Query::<ExportParams>::try_from_uri(&uri) {
        let _ = p.format(&headers);
    }
    let _ = mailbeacon::dashboard::compare_ids(uri.query());
});
