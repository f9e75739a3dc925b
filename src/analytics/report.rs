//! Reports built from rollup rows: the time series, per-link clicks, breakdowns and the
//! hour-of-week grid. Pure functions, shared by the API, the dashboard and the CLI. Every row type
//! is flat, so each report also exports as CSV.

use super::rollup::{DimCount, HourCount, LinkCount};
use crate::domain::EventKind;
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// The most buckets one time series answers with.
pub const MAX_BUCKETS: i64 = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Hour,
    Day,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Interval> {
        match s {
            "hour" => Some(Interval::Hour),
            "day" => Some(Interval::Day),
            _ => None,
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            Interval::Hour => 1,
            Interval::Day => 24,
        }
    }
}

/// Whole hours since the Unix epoch, rounded down.
pub fn hour_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(3600)
}

fn start_of(hour: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default()
}

/// A time window cut into buckets: `[from, to)` in whole hours, aligned to the interval (days
/// start at 00:00 UTC).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from_hour: i64,
    pub to_hour: i64,
    pub interval: Interval,
}

impl Window {
    /// The window covering `[from, to)`, widened to whole buckets; `None` when it would need more
    /// than [`MAX_BUCKETS`] buckets.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, interval: Interval) -> Option<Window> {
        let step = interval.hours();
        let from_hour = hour_of(from).div_euclid(step) * step;
        let end = hour_of(to - Duration::microseconds(1)).max(from_hour);
        let to_hour = (end.div_euclid(step) + 1) * step;
        ((to_hour - from_hour) / step <= MAX_BUCKETS).then_some(Window {
            from_hour,
            to_hour,
            interval,
        })
    }

    pub fn buckets(&self) -> i64 {
        (self.to_hour - self.from_hour) / self.interval.hours()
    }
}

/// Opens and clicks in one bucket of a time series. "reader" leaves out machine activity;
/// `machine_*` is the rest; `first_*` counts messages whose first open (click) fell here.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub start: DateTime<Utc>,
    pub opens: i64,
    pub reader_opens: i64,
    pub machine_opens: i64,
    pub clicks: i64,
    pub reader_clicks: i64,
    pub machine_clicks: i64,
    pub first_opens: i64,
    pub first_clicks: i64,
}

/// Every bucket of the window, with zeros where nothing happened.
pub fn series(rows: &[HourCount], window: &Window) -> Vec<SeriesPoint> {
    let step = window.interval.hours();
    let mut points: Vec<SeriesPoint> = (0..window.buckets())
        .map(|i| SeriesPoint {
            start: start_of(window.from_hour + i * step),
            ..SeriesPoint::default()
        })
        .collect();
    for r in rows {
        if r.hour < window.from_hour || r.hour >= window.to_hour {
            continue;
        }
        let p = &mut points[((r.hour - window.from_hour) / step) as usize];
        let machine = r.class.is_machine();
        match r.kind {
            EventKind::Open => {
                p.opens += r.events;
                p.first_opens += r.firsts;
                if machine {
                    p.machine_opens += r.events;
                } else {
                    p.reader_opens += r.events;
                }
            }
            EventKind::Click => {
                p.clicks += r.events;
                p.first_clicks += r.firsts;
                if machine {
                    p.machine_clicks += r.events;
                } else {
                    p.reader_clicks += r.events;
                }
            }
        }
    }
    points
}

/// Clicks on one link. `unique_*` counts messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LinkReport {
    pub link_no: u16,
    pub url: Option<String>,
    /// The hidden link only machines follow (`--honeypot-link`).
    pub honeypot: bool,
    pub clicks: i64,
    pub reader_clicks: i64,
    pub unique_clicks: i64,
    pub reader_unique_clicks: i64,
    /// Conversions reported with this link's clicks' references, and their messages.
    pub conversions: i64,
    pub converted_messages: i64,
}

pub fn links(rows: Vec<LinkCount>) -> Vec<LinkReport> {
    rows.into_iter()
        .map(|l| LinkReport {
            link_no: l.link_no,
            url: l.url,
            honeypot: l.link_no == 0,
            clicks: l.tally.events,
            reader_clicks: l.tally.reader_events,
            unique_clicks: l.tally.messages,
            reader_unique_clicks: l.tally.reader_messages,
            conversions: l.conversions,
            converted_messages: l.converted_messages,
        })
        .collect()
}

/// One value of a breakdown. `value` is `None` where the client, OS or country is unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BreakdownRow {
    pub value: Option<String>,
    pub opens: i64,
    pub reader_opens: i64,
    pub unique_opens: i64,
    pub reader_unique_opens: i64,
    pub clicks: i64,
    pub reader_clicks: i64,
    pub unique_clicks: i64,
    pub reader_unique_clicks: i64,
}

/// Opens and clicks side by side per value, the value with the most messages first.
pub fn breakdown(rows: Vec<DimCount>) -> Vec<BreakdownRow> {
    let mut by_value: BTreeMap<String, BreakdownRow> = BTreeMap::new();
    for r in rows {
        let row = by_value
            .entry(r.value.clone())
            .or_insert_with(|| BreakdownRow {
                value: (!r.value.is_empty()).then(|| r.value.clone()),
                ..BreakdownRow::default()
            });
        let t = r.tally;
        match r.kind {
            EventKind::Open => {
                row.opens += t.events;
                row.reader_opens += t.reader_events;
                row.unique_opens += t.messages;
                row.reader_unique_opens += t.reader_messages;
            }
            EventKind::Click => {
                row.clicks += t.events;
                row.reader_clicks += t.reader_events;
                row.unique_clicks += t.messages;
                row.reader_unique_clicks += t.reader_messages;
            }
        }
    }
    let mut rows: Vec<BreakdownRow> = by_value.into_values().collect();
    rows.sort_by_key(|r| std::cmp::Reverse((r.unique_opens + r.unique_clicks, r.opens + r.clicks)));
    rows
}

/// Events in one hour of the week, in the asked time zone. `weekday` 0 is Monday.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HourOfWeekCell {
    pub weekday: u8,
    pub hour: u8,
    pub opens: i64,
    pub reader_opens: i64,
    pub clicks: i64,
    pub reader_clicks: i64,
}

/// The time zone an hour-of-week grid is drawn in: a fixed UTC offset, or a named (IANA) zone,
/// whose offset follows its daylight saving time hour by hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Offset(i32),
    Named(chrono_tz::Tz),
}

impl Default for Zone {
    fn default() -> Self {
        Zone::Offset(0)
    }
}

impl Zone {
    /// A UTC offset as [`parse_offset`] reads it, or an IANA name such as `Europe/Berlin`.
    pub fn parse(s: &str) -> Option<Zone> {
        parse_offset(s)
            .map(Zone::Offset)
            .or_else(|| s.trim().parse().ok().map(Zone::Named))
    }

    /// Minutes east of UTC at `t`.
    pub fn offset_minutes_at(self, t: DateTime<Utc>) -> i32 {
        use chrono::Offset;
        match self {
            Zone::Offset(m) => m,
            Zone::Named(tz) => {
                let offset = t.with_timezone(&tz).offset().fix();
                offset.local_minus_utc() / 60
            }
        }
    }

    /// As a report names it: `+02:00`, or the zone's name.
    pub fn name(self) -> String {
        match self {
            Zone::Offset(m) => format!(
                "{}{:02}:{:02}",
                if m < 0 { '-' } else { '+' },
                m.abs() / 60,
                m.abs() % 60
            ),
            Zone::Named(tz) => tz.name().to_string(),
        }
    }
}

/// The 168 cells, Monday 00:00 first, in `zone`.
pub fn hour_of_week(rows: &[HourCount], zone: Zone) -> Vec<HourOfWeekCell> {
    let mut cells: Vec<HourOfWeekCell> = (0..168)
        .map(|i| HourOfWeekCell {
            weekday: (i / 24) as u8,
            hour: (i % 24) as u8,
            ..HourOfWeekCell::default()
        })
        .collect();
    for r in rows {
        let at = start_of(r.hour);
        let local = at + Duration::minutes(zone.offset_minutes_at(at).into());
        let i = local.weekday().num_days_from_monday() as usize * 24 + local.hour() as usize;
        let cell = &mut cells[i];
        let reader = !r.class.is_machine();
        match r.kind {
            EventKind::Open => {
                cell.opens += r.events;
                if reader {
                    cell.reader_opens += r.events;
                }
            }
            EventKind::Click => {
                cell.clicks += r.events;
                if reader {
                    cell.reader_clicks += r.events;
                }
            }
        }
    }
    cells
}

/// A UTC offset such as `+02:00`, `-0530`, `Z` or `UTC`, in minutes.
pub fn parse_offset(s: &str) -> Option<i32> {
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") || s.is_empty() {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes()[0] {
        // A `+` typed into a URL's query arrives as a space (form encoding): `?tz=+02:00`.
        b'+' | b' ' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn row(t: &str, kind: EventKind, class: Class, events: i64, firsts: i64) -> HourCount {
        HourCount {
            hour: hour_of(at(t)),
            kind,
            class,
            events,
            firsts,
        }
    }

    #[test]
    fn daily_series_fills_empty_days_and_keeps_machines_apart() {
        let rows = [
            row("2026-11-02T09:10:00Z", EventKind::Open, Class::Human, 5, 4),
            row(
                "2026-11-02T23:10:00Z",
                EventKind::Open,
                Class::AppleMpp,
                3,
                3,
            ),
            row("2026-11-04T01:00:00Z", EventKind::Click, Class::Human, 2, 2),
        ];
        let w = Window::new(
            at("2026-11-02T12:00:00Z"),
            at("2026-11-04T12:00:00Z"),
            Interval::Day,
        )
        .unwrap();
        let s = series(&rows, &w);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].start, at("2026-11-02T00:00:00Z"));
        assert_eq!(
            (s[0].opens, s[0].reader_opens, s[0].machine_opens),
            (8, 5, 3)
        );
        assert_eq!(s[0].first_opens, 7);
        assert_eq!(
            s[1],
            SeriesPoint {
                start: at("2026-11-03T00:00:00Z"),
                ..SeriesPoint::default()
            }
        );
        assert_eq!((s[2].clicks, s[2].reader_clicks), (2, 2));
    }

    #[test]
    fn a_window_too_long_for_hours_is_refused() {
        let from = at("2026-01-01T00:00:00Z");
        assert!(Window::new(from, from + Duration::days(90), Interval::Hour).is_none());
        assert!(Window::new(from, from + Duration::days(90), Interval::Day).is_some());
    }

    #[test]
    fn hour_of_week_shifts_to_the_asked_time_zone() {
        // Monday 2026-11-02 23:30 UTC is Tuesday 01:30 in +02:00.
        let rows = [row(
            "2026-11-02T23:30:00Z",
            EventKind::Open,
            Class::Human,
            1,
            1,
        )];
        let cells = hour_of_week(&rows, Zone::parse("+02:00").unwrap());
        let hit: Vec<_> = cells.iter().filter(|c| c.opens > 0).collect();
        assert_eq!((hit[0].weekday, hit[0].hour), (1, 1));
        assert_eq!(parse_offset("-0530"), Some(-330));
        assert_eq!(parse_offset("2:00"), None);
        assert_eq!(
            parse_offset(" 02:00"),
            Some(120),
            "a URL's + decoded as a space"
        );
    }

    #[test]
    fn a_named_zone_follows_its_daylight_saving_time() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.name(), "Europe/Berlin");
        assert_eq!(berlin.offset_minutes_at(at("2026-01-15T08:00:00Z")), 60);
        assert_eq!(berlin.offset_minutes_at(at("2026-07-15T08:00:00Z")), 120);
        // 08:00 UTC on a Thursday in January and in July: 09:00 and 10:00 in Berlin.
        let rows = [
            row("2026-01-15T08:00:00Z", EventKind::Open, Class::Human, 1, 1),
            row("2026-07-16T08:00:00Z", EventKind::Open, Class::Human, 1, 1),
        ];
        let hit: Vec<_> = (hour_of_week(&rows, berlin).into_iter())
            .filter(|c| c.opens > 0)
            .map(|c| (c.weekday, c.hour))
            .collect();
        assert_eq!(hit, [(3, 9), (3, 10)]);
        assert_eq!(Zone::parse("-05:30").unwrap().name(), "-05:30");
        assert_eq!(Zone::parse("Mars/Olympus_Mons"), None);
    }
}
