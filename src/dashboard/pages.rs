//! The pages: sign-in, the campaigns list, a campaign, the comparison. Each reads the same reports
//! the API serves (src/analytics) and writes HTML; figures carry `data-metric` / `data-value`
//! attributes so tests (and scrapers) read the number without its formatting.

use super::charts;
use crate::analytics::CampaignReport;
use crate::analytics::report::{self, BreakdownRow, Interval};
use crate::analytics::rollup::Dim;
use crate::app::AppState;
use crate::error::{ApiError, Invalid};
use crate::html::{esc, num, page, pct};
use crate::reports;
use crate::store::{Archived, Campaign, EventRecord, Scope};
use axum::response::sse::Event;
use std::fmt::Write;

pub fn login(next: &str, problem: Option<&str>) -> String {
    let problem = problem.map_or(String::new(), |p| {
        format!("<p class=\"problem\" role=\"alert\">{}</p>", esc(p))
    });
    page(
        "Sign in",
        None,
        &format!(
            "<section class=\"signin\"><h1>Sign in</h1>{problem}\
             <form method=\"post\" action=\"/login\">\
             <label for=\"secret\">API token or dashboard password</label>\
             <input id=\"secret\" name=\"secret\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
             <input type=\"hidden\" name=\"next\" value=\"{}\">\
             <button type=\"submit\">Sign in</button></form>\
             <p class=\"hint\">An admin creates tokens with <code>mailbeacon token create --scope viewer</code> \
             and sets a password with <code>mailbeacon dashboard-password --scope viewer</code>.</p></section>",
            esc(next)
        ),
    )
}

/// The campaign list; `archived`: the archived ones instead.
pub async fn campaigns(app: &AppState, scope: Scope, archived: bool) -> Result<String, ApiError> {
    let which = if archived {
        Archived::Only
    } else {
        Archived::Exclude
    };
    let list = app.store.campaigns(which).await?;
    let mut rows = String::new();
    for listed in &list {
        let c = &listed.campaign;
        let r = CampaignReport::from(app.store.campaign_stats(c.id).await?);
        let _ = write!(
            rows,
            "<tr><td><input type=\"checkbox\" name=\"campaigns\" value=\"{id}\" \
             aria-label=\"compare {name}\"></td>\
             <td><a href=\"/campaigns/{id}\">{name}</a>{details}</td><td>{sent_on}</td>\
             <td class=\"n\">{sent}</td>\
             <td class=\"n\">{floor} – {ceiling}</td><td class=\"n\">{click}</td>\
             <td class=\"n\">{ctor}</td><td>{last}</td></tr>",
            id = c.id,
            name = esc(&c.name),
            details = campaign_details(c),
            sent_on = c
                .sent_at
                .map_or("–".into(), |t| t.format("%Y-%m-%d").to_string()),
            sent = num(r.stats.sent),
            floor = pct(r.open_rate_range.floor),
            ceiling = pct(r.open_rate_range.ceiling),
            click = pct(r.reader_click_rate),
            ctor = pct(r.reader_click_to_open_rate),
            last = r
                .stats
                .last_activity
                .map_or("–".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        );
    }
    let (title, other) = if archived {
        (
            "Archived campaigns",
            "<p><a href=\"/\">Campaigns in use</a></p>",
        )
    } else {
        (
            "Campaigns",
            "<p><a href=\"/?archived=only\">Archived campaigns</a></p>",
        )
    };
    let body = if list.is_empty() && archived {
        format!("<h1>{title}</h1><p>No archived campaigns.</p>{other}")
    } else if list.is_empty() {
        format!(
            "<h1>{title}</h1><p>No campaigns yet. Create one with <code>mailbeacon campaign create \
             --name NAME</code> or <code>POST /api/campaigns</code>.</p>{other}"
        )
    } else {
        format!(
            "<h1>{title}</h1><form method=\"get\" action=\"/compare\">\
             <div class=\"scroll\" tabindex=\"0\"><table class=\"campaigns\"><thead><tr><th><span class=\"visually-hidden\">Compare</span></th><th>Campaign</th>\
             <th>Sent on</th><th class=\"n\">Sent</th><th class=\"n\" title=\"readers (floor) – every fetch or click (ceiling)\">Open rate</th>\
             <th class=\"n\">Click rate</th><th class=\"n\">Click-to-open</th><th>Last activity</th>\
             </tr></thead><tbody>{rows}</tbody></table></div>\
             <button type=\"submit\">Compare selected</button></form>\
             <p class=\"hint\">Open rate: readers' opens (and click-implied opens) – every pixel fetch or click. \
             Click rates leave out scanners and bots.</p>{other}"
        )
    };
    let hooks = if scope == Scope::Admin {
        webhooks_table(&app.store.webhooks().await?)
    } else {
        String::new()
    };
    let certs = match app.settings.acme {
        Some(_) => Some(app.store.certificates().await?),
        None => None,
    };
    let domains = super::domains::card(
        &app.store.tracking_domains().await?,
        certs.as_deref(),
        scope,
    );
    Ok(page(
        "Campaigns",
        Some(scope),
        &format!("{body}{domains}{hooks}"),
    ))
}

/// A campaign's subject, tags and archive state, under its name.
fn campaign_details(c: &Campaign) -> String {
    let mut out = String::new();
    if let Some(subject) = &c.subject {
        let _ = write!(out, "<br><small class=\"subject\">{}</small>", esc(subject));
    }
    for tag in &c.tags {
        let _ = write!(out, " <span class=\"tag\">{}</span>", esc(tag));
    }
    if c.archived_at.is_some() {
        out.push_str(" <span class=\"tag\">archived</span>");
    }
    if let Some(domain) = &c.tracking_domain {
        let _ = write!(out, " · links under {}", esc(domain));
    }
    out
}

/// Admins see how delivery to each webhook endpoint is going.
fn webhooks_table(hooks: &[crate::webhooks::Webhook]) -> String {
    if hooks.is_empty() {
        return String::new();
    }
    let mut rows = String::new();
    for h in hooks {
        let s = &h.status;
        let health = if s.consecutive_failures > 0 {
            format!(
                "failing ({} in a row): {}",
                s.consecutive_failures,
                esc(s.last_error.as_deref().unwrap_or(""))
            )
        } else {
            "ok".into()
        };
        let _ = write!(
            rows,
            "<tr data-webhook=\"{id}\"><td>{id}</td><td class=\"url\">{url}</td><td>{kinds}</td>\
             <td class=\"n\" data-metric=\"pending\" data-value=\"{pending}\">{pending_s}</td>\
             <td class=\"n\" data-metric=\"delivered\" data-value=\"{delivered}\">{delivered_s}</td>\
             <td class=\"n\" data-metric=\"dead\" data-value=\"{dead}\">{dead_s}</td>\
             <td class=\"n\">{latency}</td><td>{last}</td><td>{health}</td></tr>",
            id = h.id,
            url = esc(&h.url),
            kinds = esc(&format!(
                "{}{}",
                crate::webhooks::kinds_text(&h.kinds),
                match h.protocol {
                    crate::webhooks::Protocol::Segment => " (Segment track calls)",
                    crate::webhooks::Protocol::StandardWebhooks => "",
                }
            )),
            pending = s.pending,
            pending_s = num(s.pending),
            delivered = s.delivered,
            delivered_s = num(s.delivered),
            dead = s.dead,
            dead_s = num(s.dead),
            latency = s.latency_ms_p50.map_or("–".into(), |ms| format!("{ms} ms")),
            last = s.last_success_at.map_or("–".into(), |t| t
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()),
        );
    }
    format!(
        "<h2>Webhooks</h2><div class=\"scroll\" tabindex=\"0\"><table class=\"webhooks\"><thead><tr><th>#</th>\
         <th>Receiver</th><th>Sends</th><th class=\"n\">Pending</th><th class=\"n\">Delivered</th>\
         <th class=\"n\">Dead</th><th class=\"n\">Latency p50</th><th>Last delivered</th>\
         <th>Status</th></tr></thead><tbody>{rows}</tbody></table></div>\
         <p class=\"hint\">Dead letters are sent again with <code>mailbeacon webhooks replay ID</code> \
         or <code>POST /api/webhooks/ID/replay</code>.</p>"
    )
}

fn breakdown_table(base: &str, title: &str, dim: &str, rows: &[BreakdownRow]) -> String {
    let mut out = format!(
        "<section class=\"breakdown\" data-breakdown=\"{dim}\"><h3>{title}</h3>\
         <div class=\"scroll\" tabindex=\"0\"><table><thead><tr><th>{title}</th><th class=\"n\">Opened</th>\
         <th class=\"n\">by readers</th><th class=\"n\">Clicked</th></tr></thead><tbody>"
    );
    for r in rows.iter().take(10) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(r.value.as_deref().unwrap_or("unknown")),
            num(r.unique_opens),
            num(r.reader_unique_opens),
            num(r.unique_clicks)
        );
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"4\">No activity yet.</td></tr>");
    }
    let _ = write!(
        out,
        "</tbody></table></div><a class=\"download\" download href=\"{base}/breakdown/{dim}?format=csv\">CSV</a></section>"
    );
    out
}

pub async fn campaign(
    app: &AppState,
    scope: Scope,
    id: &str,
    interval: Option<String>,
) -> Result<String, ApiError> {
    let campaign = crate::app::existing_campaign(app, id).await?;
    let report = CampaignReport::from(app.store.campaign_stats(campaign.id).await?);
    let s = &report.stats;
    let options = reports::Options {
        interval,
        ..reports::Options::default()
    };
    let window = reports::series_window(&campaign, s, &options)?;
    let interval = window.interval;
    let hours = app
        .store
        .report_hours(campaign.id, i64::MIN, i64::MAX)
        .await?;
    let points = report::series(&hours, &window);
    let cells = report::hour_of_week(&hours, report::Zone::default());
    let links = report::links(app.store.report_links(campaign.id).await?);
    let base = format!("/api/campaigns/{}", campaign.id);

    let figures = super::figures::cards(&report);
    let definitions: String = report
        .definitions
        .iter()
        .map(|(k, v)| format!("<dt>{}</dt><dd>{}</dd>", esc(&k.replace('_', " ")), esc(v)))
        .collect();

    let mut link_rows = String::new();
    for l in &links {
        let _ = write!(
            link_rows,
            "<tr><td class=\"n\">{}</td><td class=\"url\">{}{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            l.link_no,
            esc(l.url.as_deref().unwrap_or("")),
            if l.honeypot {
                " <em>(honeypot)</em>"
            } else {
                ""
            },
            num(l.reader_unique_clicks),
            num(l.unique_clicks),
            num(l.clicks)
        );
    }
    if links.is_empty() {
        link_rows.push_str("<tr><td colspan=\"5\">No clicks yet.</td></tr>");
    }

    let mut breakdowns = String::new();
    for (dim, title) in [
        (Dim::Client, "Client"),
        (Dim::Device, "Device"),
        (Dim::Os, "Operating system"),
        (Dim::Class, "Class"),
        (Dim::Country, "Country"),
    ] {
        let rows = report::breakdown(app.store.report_breakdown(campaign.id, dim).await?);
        breakdowns.push_str(&breakdown_table(&base, title, dim.as_str(), &rows));
    }

    let segments = super::segments::cards(app, scope, &campaign).await?;
    let recent = app.store.recent_events(campaign.id, 20).await?;
    let feed: String = recent.iter().map(feed_item).collect();
    let raw_export = if scope == Scope::Viewer {
        String::new()
    } else {
        format!(
            "<a class=\"download\" download href=\"{base}/events/export?format=csv\">Raw events (CSV)</a> \
             <a class=\"download\" download href=\"{base}/events/export?format=parquet\">Raw events \
             (Parquet)</a>"
        )
    };
    let other = match interval {
        Interval::Hour => "day",
        Interval::Day => "hour",
    };
    let body = format!(
        "<h1>{name}</h1><p class=\"sub\">Campaign {id} · created {created}{sent_on}{details}</p>\
         <section class=\"figures\">{figures}</section>\
         <details class=\"definitions\"><summary>What these figures mean</summary><dl>{definitions}</dl></details>\
         <section class=\"card\"><h2>Opens and clicks over time</h2>\
         <p class=\"legend\"><span class=\"key reader\"></span>readers' opens \
         <span class=\"key machine\"></span>machine opens <span class=\"key click\"></span>clicks \
         · per {interval_name} (UTC) · <a href=\"/campaigns/{id}?interval={other}\">per {other}</a></p>\
         {chart}<a class=\"download\" download href=\"{base}/timeseries?interval={interval_name}&amp;format=csv\">CSV</a></section>\
         <section class=\"card\"><h2>Links</h2><div class=\"scroll\" tabindex=\"0\"><table class=\"links\"><thead><tr>\
         <th class=\"n\">#</th><th>Destination</th><th class=\"n\">Readers</th><th class=\"n\">Messages</th>\
         <th class=\"n\">Clicks</th></tr></thead><tbody>{link_rows}</tbody></table></div>\
         <a class=\"download\" download href=\"{base}/links?format=csv\">CSV</a></section>\
         {click_map}{segments}<section class=\"card\"><h2>Who opened, with what</h2><div class=\"grid\">{breakdowns}</div></section>\
         <section class=\"card\"><h2>When readers open (UTC)</h2>{heatmap}\
         <a class=\"download\" download href=\"{base}/hour-of-week?format=csv\">CSV</a></section>\
         <section class=\"card\"><h2>Live <span id=\"live-status\" class=\"status\">connecting…</span></h2>\
         <p class=\"hint\"><span id=\"live-count\">0</span> new since this page was opened.</p>\
         <ol id=\"live-feed\" tabindex=\"0\" aria-label=\"Latest events\" data-source=\"/campaigns/{id}/live\">{feed}</ol></section>\
         <section class=\"card downloads\"><h2>Downloads</h2>\
         <a class=\"download\" id=\"download-report\" download href=\"{base}/report?format=csv\">Headline figures (CSV)</a>\
         <a class=\"download\" download href=\"{base}/report?format=ndjson\">Headline figures (NDJSON)</a>\
         <a class=\"download\" download href=\"{base}/report?format=parquet\">Headline figures (Parquet)</a>\
         <a class=\"download\" download href=\"{base}/timeseries?interval={interval_name}&amp;format=parquet\">Time series (Parquet)</a>{raw_export}</section>{manage}",
        name = esc(&campaign.name),
        id = campaign.id,
        created = campaign.created_at.format("%Y-%m-%d %H:%M UTC"),
        sent_on = campaign.sent_at.map_or(String::new(), |t| t
            .format(" · sent %Y-%m-%d %H:%M UTC")
            .to_string()),
        details = campaign_details(&campaign),
        manage = super::manage::card(&campaign, scope, &app.store.tracking_domains().await?),
        click_map = super::click_map::card(&campaign),
        interval_name = match interval {
            Interval::Hour => "hour",
            Interval::Day => "day",
        },
        chart = charts::activity(&points, interval),
        heatmap = charts::hour_of_week(&cells),
    );
    Ok(page(&campaign.name, Some(scope), &body))
}

fn feed_item(e: &EventRecord) -> String {
    format!(
        "<li data-id=\"{}\"><time>{}</time> <b>{}</b> <span class=\"class {}\">{}</span>{} {}</li>",
        e.id,
        e.received_at.format("%H:%M:%S"),
        e.kind.as_str(),
        esc(&e.class),
        esc(&e.class.replace('_', " ")),
        reasons(&e.reasons),
        esc(&[
            e.client.as_deref(),
            Some(e.device.as_str()),
            e.country.as_deref()
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · "))
    )
}

/// Why an event got its class, after the class: ` (ua:apple-mpp)`; nothing for a plain reader.
fn reasons(reasons: &str) -> String {
    match reasons.trim() {
        "" => String::new(),
        r => format!(" <small class=\"reasons\">({})</small>", esc(r)),
    }
}

/// One event for the live feed: what the page shows, without the recipient.
pub fn live_event(e: &EventRecord) -> Event {
    let data = serde_json::json!({
        "id": e.id,
        "kind": e.kind,
        "received_at": e.received_at,
        "class": e.class,
        "reasons": e.reasons,
        "client": e.client,
        "device": e.device,
        "country": e.country,
    });
    Event::default()
        .event("hit")
        .id(e.id.to_string())
        .data(data.to_string())
}

pub async fn compare(app: &AppState, scope: Scope, ids: &[String]) -> Result<String, ApiError> {
    if ids.len() < 2 {
        return Err(ApiError::Invalid(
            Invalid::CampaignList,
            "pick two or more campaigns to compare".into(),
        ));
    }
    let mut columns = Vec::new();
    for id in ids.iter().take(20) {
        let c = crate::app::existing_campaign(app, id).await?;
        let r = CampaignReport::from(app.store.campaign_stats(c.id).await?);
        columns.push((c, r));
    }
    let mut head = String::from("<th></th>");
    for (c, _) in &columns {
        let _ = write!(
            head,
            "<th class=\"n\"><a href=\"/campaigns/{}\">{}</a></th>",
            c.id,
            esc(&c.name)
        );
    }
    type Cell = fn(&CampaignReport) -> String;
    let rows: [(&str, Cell); 9] = [
        ("Sent", |r| num(r.stats.sent)),
        ("Opened by readers", |r| num(r.stats.opened_by_readers)),
        ("Open rate, readers", |r| pct(r.open_rate_range.floor)),
        ("Open rate, every fetch or click", |r| {
            pct(r.open_rate_range.ceiling)
        }),
        ("Clicked by readers", |r| {
            num(r.stats.clicks.unique_excluding_machine)
        }),
        ("Click rate, readers", |r| pct(r.reader_click_rate)),
        ("Click-to-open, readers", |r| {
            pct(r.reader_click_to_open_rate)
        }),
        ("Machine opens", |r| {
            num(r.stats.opens.total - r.stats.opens.total_excluding_machine)
        }),
        ("Last activity", |r| {
            r.stats
                .last_activity
                .map_or("–".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
        }),
    ];
    let mut body = String::new();
    for (label, cell) in rows {
        let _ = write!(body, "<tr><th>{label}</th>");
        for (_, r) in &columns {
            let _ = write!(body, "<td class=\"n\">{}</td>", cell(r));
        }
        body.push_str("</tr>");
    }
    let reports: Vec<&CampaignReport> = columns.iter().map(|(_, r)| r).collect();
    let mut winners = String::new();
    for v in crate::analytics::ab_test::winners(&reports) {
        let metric = match v.metric {
            "readers_opened" => "Readers who opened",
            _ => "Readers who clicked",
        };
        let name = |id| {
            columns
                .iter()
                .find(|(c, _)| c.id == id)
                .map(|(c, _)| esc(&c.name))
        };
        let said = match v.outcome {
            "winner" => format!(
                "<b>{}</b> wins: {}",
                name(v.leader).unwrap_or_default(),
                esc(v.summary.split_once(": ").map_or("", |(_, rest)| rest))
            ),
            _ => esc(&v.summary),
        };
        let _ = write!(
            winners,
            "<li data-winner=\"{}\" data-outcome=\"{}\">{metric}: {said}</li>",
            v.metric, v.outcome
        );
    }
    let ids: Vec<String> = columns.iter().map(|(c, _)| c.id.to_string()).collect();
    Ok(page(
        "Compare",
        Some(scope),
        &format!(
            "<h1>Side by side</h1><div class=\"scroll\" tabindex=\"0\"><table class=\"compare\"><thead><tr>{head}</tr></thead>\
             <tbody>{body}</tbody></table></div>\
             <section class=\"card\"><h2>Which one wins</h2><ul class=\"winners\">{winners}</ul>\
             <p class=\"hint\">The two best on each, by a two-proportion z-test at 95% confidence.</p></section>\
             <a class=\"download\" download href=\"/api/compare?campaigns={}&amp;format=csv\">CSV</a>",
            ids.join(",")
        ),
    ))
}
