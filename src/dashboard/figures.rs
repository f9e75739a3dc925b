//! The campaign page's headline cards, defined once: drawn into the page, and sent to it over the
//! live feed (`figures` events) so that the cards follow new events without a reload.

use crate::analytics::CampaignReport;
use crate::html::{esc, num, pct};
use axum::response::sse::Event;
use serde_json::{Value, json};

enum Shown {
    Count(i64),
    Rate(Option<f64>),
    /// The open rate as a range: readers' opens (floor) to every fetch or click (ceiling).
    Range(Option<f64>, Option<f64>),
}

struct Figure {
    metric: &'static str,
    label: &'static str,
    shown: Shown,
    note: String,
}

fn figures(report: &CampaignReport) -> Vec<Figure> {
    let s = &report.stats;
    let f = |metric, label, shown, note: String| Figure {
        metric,
        label,
        shown,
        note,
    };
    use Shown::*;
    let worth: Vec<String> = (s.conversions.value.iter())
        .map(|v| format!("{:.2} {}", v.value, v.currency))
        .collect();
    let conversions = f(
        "conversions_unique",
        "Converted",
        Count(s.conversions.unique),
        match worth.is_empty() {
            true => format!("{} rate", pct(report.conversion_rate)),
            false => format!(
                "{} rate, worth {}",
                pct(report.conversion_rate),
                worth.join(" + ")
            ),
        },
    );
    let mut all = vec![
        f("sent", "Sent", Count(s.sent), "messages".into()),
        f(
            "opened_by_readers",
            "Opened by readers",
            Count(s.opened_by_readers),
            format!("{} implied by a click", num(s.click_implied_opens)),
        ),
        f(
            "opens_unique",
            "Pixel fetched",
            Count(s.opens.unique),
            "messages, any fetch".into(),
        ),
        f(
            "open_rate_range",
            "Open rate",
            Range(report.open_rate_range.floor, report.open_rate_range.ceiling),
            "readers – every fetch or click".into(),
        ),
        f(
            "clicks_unique_excluding_machine",
            "Clicked by readers",
            Count(s.clicks.unique_excluding_machine),
            format!("{} clicks in all", num(s.clicks.total)),
        ),
        f(
            "reader_click_rate",
            "Click rate",
            Rate(report.reader_click_rate),
            "readers' clicks / sent".into(),
        ),
        f(
            "reader_click_to_open_rate",
            "Click-to-open",
            Rate(report.reader_click_to_open_rate),
            "readers".into(),
        ),
        f(
            "machine_opens",
            "Machine opens",
            Count(s.opens.total - s.opens.total_excluding_machine),
            "Apple prefetch, scanners, bots".into(),
        ),
        f(
            "machine_clicks",
            "Machine clicks",
            Count(s.clicks.total - s.clicks.total_excluding_machine),
            "link scanners, bots".into(),
        ),
    ];
    // Only for campaigns with conversions: a card of zeros says nothing to the others.
    if s.conversions.total > 0 {
        all.push(conversions);
    }
    all
}

fn rate_value(rate: Option<f64>) -> String {
    rate.map_or(String::new(), |r| format!("{r:.6}"))
}

impl Figure {
    /// The attributes tests and scripts read the number from, and the text a person reads.
    fn data_and_text(&self) -> (Value, String) {
        match self.shown {
            Shown::Count(n) => (json!({ "value": n.to_string() }), num(n)),
            Shown::Rate(r) => (json!({ "value": rate_value(r) }), pct(r)),
            Shown::Range(floor, ceiling) => (
                json!({ "floor": rate_value(floor), "ceiling": rate_value(ceiling) }),
                format!("{} – {}", pct(floor), pct(ceiling)),
            ),
        }
    }

    fn html(&self) -> String {
        let (data, text) = self.data_and_text();
        let attributes: String = (data.as_object().expect("an object").iter())
            .map(|(k, v)| format!(" data-{k}=\"{}\"", esc(v.as_str().unwrap_or_default())))
            .collect();
        let wide = match self.shown {
            Shown::Range(..) => " wide",
            _ => "",
        };
        format!(
            "<div class=\"figure{wide}\" data-metric=\"{}\"{attributes}>\
             <span class=\"value\">{}</span><span class=\"label\">{}</span>\
             <span class=\"note\">{}</span></div>",
            self.metric,
            esc(&text),
            self.label,
            esc(&self.note)
        )
    }
}

/// The cards, as the page draws them.
pub fn cards(report: &CampaignReport) -> String {
    figures(report).iter().map(Figure::html).collect()
}

/// The cards' new values, for the live feed: per metric, its data attributes, text and note.
pub fn live_update(report: &CampaignReport) -> Event {
    let data: serde_json::Map<String, Value> = figures(report)
        .iter()
        .map(|f| {
            let (attributes, text) = f.data_and_text();
            let update = json!({ "data": attributes, "text": text, "note": f.note });
            (f.metric.to_string(), update)
        })
        .collect();
    Event::default()
        .event("figures")
        .data(Value::Object(data).to_string())
}
