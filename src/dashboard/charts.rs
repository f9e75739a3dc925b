//! Charts drawn on the server as SVG: no script, no library, nothing fetched. Colours and sizes are
//! SVG attributes (the page's Content-Security-Policy allows no inline styles), and the SVG scales
//! with its container through its viewBox.

use crate::analytics::report::{HourOfWeekCell, Interval, SeriesPoint};
use crate::html::esc;
use std::fmt::Write;

pub const READER: &str = "#2563eb";
pub const MACHINE: &str = "#cbd5e1";
pub const CLICK: &str = "#d97706";

/// Opens per bucket as bars, readers at the bottom and machine activity stacked above in grey;
/// clicks as a line.
pub fn activity(points: &[SeriesPoint], interval: Interval) -> String {
    let (w, h, left, bottom, top) = (720.0, 240.0, 44.0, 24.0, 12.0);
    let plot_w = w - left - 8.0;
    let plot_h = h - bottom - top;
    let max = points
        .iter()
        .map(|p| (p.reader_opens + p.machine_opens).max(p.clicks))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = points.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.8).max(1.0);
    let y = |v: i64| top + plot_h - v as f64 / max * plot_h;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"Opens and clicks over time\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    // Axis: zero line, the maximum, and the first and last bucket.
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#94a3b8\"/>\
         <text x=\"{2}\" y=\"{3}\" text-anchor=\"end\" font-size=\"11\" fill=\"#475569\">{max}</text>\
         <text x=\"{2}\" y=\"{0}\" text-anchor=\"end\" font-size=\"11\" fill=\"#475569\">0</text>",
        top + plot_h,
        w - 8.0,
        left - 6.0,
        top + 10.0,
    );
    let label = |p: &SeriesPoint| match interval {
        Interval::Hour => p.start.format("%Y-%m-%d %H:00").to_string(),
        Interval::Day => p.start.format("%Y-%m-%d").to_string(),
    };
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            "<text x=\"{left}\" y=\"{0}\" font-size=\"11\" fill=\"#475569\">{1}</text>\
             <text x=\"{2}\" y=\"{0}\" text-anchor=\"end\" font-size=\"11\" fill=\"#475569\">{3}</text>",
            h - 6.0,
            esc(&label(first)),
            w - 8.0,
            esc(&label(last)),
        );
    }
    let mut line = String::new();
    for (i, p) in points.iter().enumerate() {
        let x = left + i as f64 * slot + (slot - bar) / 2.0;
        let reader_top = y(p.reader_opens);
        let machine_top = y(p.reader_opens + p.machine_opens);
        let _ = write!(
            svg,
            "<g><title>{} UTC: {} reader opens, {} machine opens, {} clicks</title>\
             <rect x=\"{x:.1}\" y=\"{reader_top:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{READER}\"/>\
             <rect x=\"{x:.1}\" y=\"{machine_top:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{MACHINE}\"/></g>",
            esc(&label(p)),
            p.reader_opens,
            p.machine_opens,
            p.clicks,
            top + plot_h - reader_top,
            reader_top - machine_top,
        );
        let _ = write!(line, "{:.1},{:.1} ", x + bar / 2.0, y(p.clicks));
    }
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{CLICK}\" stroke-width=\"2\"/></svg>",
        line.trim_end()
    );
    svg
}

/// The 7 x 24 grid of readers' opens, darker where more.
pub fn hour_of_week(cells: &[HourOfWeekCell]) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let (cell, left, top) = (26.0, 34.0, 16.0);
    let max = cells
        .iter()
        .map(|c| c.reader_opens)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut svg = format!(
        "<svg class=\"heatmap\" viewBox=\"0 0 {} {}\" role=\"img\" \
         aria-label=\"Readers' opens by hour of the week\" xmlns=\"http://www.w3.org/2000/svg\">",
        left + 24.0 * cell,
        top + 7.0 * cell,
    );
    for hour in (0..24).step_by(3) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"11\" font-size=\"10\" fill=\"#475569\">{hour:02}</text>",
            left + hour as f64 * cell + 4.0
        );
    }
    for (d, day) in DAYS.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"11\" fill=\"#475569\">{day}</text>",
            top + d as f64 * cell + 17.0
        );
    }
    for c in cells {
        let opacity = if c.reader_opens == 0 {
            0.0
        } else {
            0.15 + 0.85 * c.reader_opens as f64 / max
        };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{READER}\" \
             fill-opacity=\"{opacity:.2}\" stroke=\"#e2e8f0\"><title>{} {:02}:00: {} reader opens, \
             {} clicks</title></rect>",
            left + c.hour as f64 * cell,
            top + c.weekday as f64 * cell,
            cell,
            cell,
            DAYS[c.weekday as usize],
            c.hour,
            c.reader_opens,
            c.reader_clicks,
        );
    }
    svg.push_str("</svg>");
    svg
}
