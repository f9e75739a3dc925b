//! Campaign figures as reports show them: the stored counts plus the rates derived from them.

pub mod rollup;

use crate::store::CampaignStats;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct CampaignReport {
    #[serde(flatten)]
    pub stats: CampaignStats,
    /// Unique opens / sent.
    pub open_rate: Option<f64>,
    /// Unique clicks / sent.
    pub click_rate: Option<f64>,
    /// Unique clicks / unique opens.
    pub click_to_open_rate: Option<f64>,
}

impl From<CampaignStats> for CampaignReport {
    fn from(stats: CampaignStats) -> Self {
        let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
        CampaignReport {
            open_rate: ratio(stats.opens.unique, stats.sent),
            click_rate: ratio(stats.clicks.unique, stats.sent),
            click_to_open_rate: ratio(stats.clicks.unique, stats.opens.unique),
            stats,
        }
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
            "opens           {} total, {} unique, open rate {}",
            s.opens.total,
            s.opens.unique,
            pct(self.open_rate)
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
            s.opens.unique_excluding_machine,
            s.click_implied_opens,
            s.clicks.unique_excluding_machine
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
        writeln!(f, "first activity  {}", time(s.first_activity))?;
        write!(f, "last activity   {}", time(s.last_activity))
    }
}
