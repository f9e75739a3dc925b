//! Campaign figures as reports show them: the stored counts plus the rates derived from them.

pub mod ab_test;
pub mod engagement;
pub mod provider_drop;
pub mod providers;
pub mod report;
pub mod rollup;
pub mod segments;
pub mod send_time;
pub mod since_send;
mod stats;

use crate::domain::CampaignId;
use serde::Serialize;
pub use stats::{CampaignStats, ClassCounts, ConversionCounts, ConversionValue, Counts};

#[derive(Debug, Serialize)]
pub struct CampaignReport {
    #[serde(flatten)]
    pub stats: CampaignStats,
    /// Messages opened in the widest sense / sent (what most tools show): the ceiling.
    pub open_rate: Option<f64>,
    /// Unique clicks / sent.
    pub click_rate: Option<f64>,
    /// Unique clicks / messages opened in the widest sense (a click implies an open): at most 1.
    pub click_to_open_rate: Option<f64>,
    /// The open rate as an honest range.
    pub open_rate_range: RateRange,
    /// Clicks by readers (machine activity left out) / sent.
    pub reader_click_rate: Option<f64>,
    /// Messages clicked by readers / messages opened by readers (click-implied included).
    pub reader_click_to_open_rate: Option<f64>,
    /// Messages with a conversion / sent.
    pub conversion_rate: Option<f64>,
    /// What each figure means, to show beside it.
    pub definitions: std::collections::BTreeMap<&'static str, &'static str>,
}

#[derive(Debug, Serialize)]
pub struct RateRange {
    /// Messages opened by readers (Apple's prefetch, scanners and bots left out), click-implied
    /// opens included, / sent.
    pub floor: Option<f64>,
    /// Messages whose pixel was fetched or a link clicked at all, / sent. Never below the floor.
    pub ceiling: Option<f64>,
}

pub const DEFINITIONS: &[(&str, &str)] = &[
    (
        "open_rate_floor",
        "Messages opened by a reader (image proxies count, Apple Mail Privacy Protection prefetch, \
         security scanners and bots do not) or clicked by one (a click implies an open), divided by \
         messages sent. At least this many people opened the mail.",
    ),
    (
        "open_rate_ceiling",
        "Messages whose tracking pixel was fetched or a link clicked at all, by anyone or \
         anything, divided by messages sent. This is what most email platforms call the open \
         rate (`open_rate`); it is never below the floor.",
    ),
    (
        "click_rate",
        "Messages with at least one click divided by messages sent; the reader click rate leaves \
         out clicks by scanners and bots.",
    ),
    (
        "click_to_open_rate",
        "Messages clicked divided by messages opened in the same sense as the ceiling (a click \
         implies an open, so it is at most 100%); the reader variant divides messages readers \
         clicked by messages readers opened, click-implied opens included.",
    ),
    (
        "conversion_rate",
        "Messages whose recipient converted (a goal the sender's site reported back with the \
         click's reference) divided by messages sent.",
    ),
    (
        "unique_and_total",
        "A total counts events, unique counts messages (each once, however often it was opened \
         or clicked); `excluding_machine` leaves out machine activity in both, so unique is never \
         above total and the reader figure never above the figure for everything.",
    ),
    (
        "machine_activity",
        "Apple Mail Privacy Protection prefetch, security scanners and bots: counted in totals, \
         labelled, never deleted, and left out of every reader figure.",
    ),
];

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl From<CampaignStats> for CampaignReport {
    fn from(stats: CampaignStats) -> Self {
        CampaignReport {
            open_rate: ratio(stats.opened, stats.sent),
            click_rate: ratio(stats.clicks.unique, stats.sent),
            click_to_open_rate: ratio(stats.clicks.unique, stats.opened),
            open_rate_range: RateRange {
                floor: ratio(stats.opened_by_readers, stats.sent),
                ceiling: ratio(stats.opened, stats.sent),
            },
            reader_click_rate: ratio(stats.clicks.unique_excluding_machine, stats.sent),
            reader_click_to_open_rate: ratio(
                stats.clicks.unique_excluding_machine,
                stats.opened_by_readers,
            ),
            conversion_rate: ratio(stats.conversions.unique, stats.sent),
            definitions: DEFINITIONS.iter().copied().collect(),
            stats,
        }
    }
}

/// One figure of a campaign report, as the CSV and NDJSON exports of the headline list them.
#[derive(Debug, Default, Serialize)]
pub struct Metric {
    pub campaign_id: CampaignId,
    pub metric: &'static str,
    pub value: Option<f64>,
}

impl CampaignReport {
    /// The headline figures as (name, value) rows.
    pub fn metrics(&self) -> Vec<Metric> {
        let s = &self.stats;
        let n = |v: i64| Some(v as f64);
        let rows: [(&'static str, Option<f64>); 23] = [
            ("sent", n(s.sent)),
            ("opens_total", n(s.opens.total)),
            ("opens_unique", n(s.opens.unique)),
            (
                "opens_total_excluding_machine",
                n(s.opens.total_excluding_machine),
            ),
            (
                "opens_unique_excluding_machine",
                n(s.opens.unique_excluding_machine),
            ),
            ("opened", n(s.opened)),
            ("opened_by_readers", n(s.opened_by_readers)),
            ("click_implied_opens", n(s.click_implied_opens)),
            ("clicks_total", n(s.clicks.total)),
            ("clicks_unique", n(s.clicks.unique)),
            (
                "clicks_total_excluding_machine",
                n(s.clicks.total_excluding_machine),
            ),
            (
                "clicks_unique_excluding_machine",
                n(s.clicks.unique_excluding_machine),
            ),
            ("open_rate", self.open_rate),
            ("open_rate_floor", self.open_rate_range.floor),
            ("open_rate_ceiling", self.open_rate_range.ceiling),
            ("click_rate", self.click_rate),
            ("reader_click_rate", self.reader_click_rate),
            ("click_to_open_rate", self.click_to_open_rate),
            ("reader_click_to_open_rate", self.reader_click_to_open_rate),
            (
                "machine_opens",
                n(s.opens.total - s.opens.total_excluding_machine),
            ),
            ("conversions_total", n(s.conversions.total)),
            ("conversions_unique", n(s.conversions.unique)),
            ("conversion_rate", self.conversion_rate),
        ];
        rows.into_iter()
            .map(|(metric, value)| Metric {
                campaign_id: s.campaign_id,
                metric,
                value,
            })
            .collect()
    }
}

impl std::fmt::Display for CampaignReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0));
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or("-".to_string(), |t| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
        };
        let s = &self.stats;
        writeln!(f, "sent            {}", s.sent)?;
        writeln!(
            f,
            "opens           {} total, {} unique, open rate {} – {} (readers – every fetch or click)",
            s.opens.total,
            s.opens.unique,
            pct(self.open_rate_range.floor),
            pct(self.open_rate_range.ceiling)
        )?;
        writeln!(
            f,
            "clicks          {} total, {} unique, click rate {}, click-to-open {}",
            s.clicks.total,
            s.clicks.unique,
            pct(self.click_rate),
            pct(self.click_to_open_rate)
        )?;
        writeln!(
            f,
            "readers         {} opened ({} implied by a click), {} clicked (machine activity left out)",
            s.opened_by_readers, s.click_implied_opens, s.clicks.unique_excluding_machine
        )?;
        let classes: Vec<String> = s
            .by_class
            .iter()
            .filter(|(_, c)| c.opens + c.clicks > 0)
            .map(|(class, c)| format!("{class} {}/{}", c.opens, c.clicks))
            .collect();
        if !classes.is_empty() {
            writeln!(f, "by class        {} (opens/clicks)", classes.join(", "))?;
        }
        if s.conversions.total > 0 {
            let values: Vec<String> = (s.conversions.value.iter())
                .map(|v| format!("{:.2} {}", v.value, v.currency))
                .collect();
            writeln!(
                f,
                "conversions     {} total, {} unique, conversion rate {}{}",
                s.conversions.total,
                s.conversions.unique,
                pct(self.conversion_rate),
                match values.is_empty() {
                    true => String::new(),
                    false => format!(", worth {}", values.join(" + ")),
                }
            )?;
        }
        writeln!(f, "first activity  {}", time(s.first_activity))?;
        write!(f, "last activity   {}", time(s.last_activity))
    }
}
