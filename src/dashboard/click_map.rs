//! The click map: the campaign's email (its HTML template) as readers saw it, each tracked link
//! marked with the readers who clicked it and their share of all readers' clicks. The mail is
//! served as a document of its own and shown in a sandboxed frame: its scripts never run (the
//! frame has no `allow-scripts`, and the document's policy allows no script), nothing is loaded
//! from elsewhere (only `data:` images), and a link leads nowhere but to its own marker.

use super::{SignedIn, error_page};
use crate::analytics::report::{self, LinkReport};
use crate::app::{AppState, existing_campaign};
use crate::error::ApiError;
use crate::instrument::{InstrumentOptions, instrument};
use crate::store::Campaign;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::Arc;

/// The mail's own document may style itself and show inline images; nothing else, and it may
/// only be framed by the dashboard.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; \
                   form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox";

/// The card on the campaign page.
pub fn card(campaign: &Campaign) -> String {
    let id = campaign.id;
    let body = match campaign.template_html {
        Some(_) => format!(
            "<p class=\"hint\">Each tracked link is marked with the readers who clicked it and \
             their share of all readers' clicks. Images from elsewhere are not loaded.</p>\
             <iframe class=\"click-map\" sandbox src=\"/campaigns/{id}/click-map\" \
             title=\"The email, each link marked with its readers' clicks\"></iframe>"
        ),
        None => format!(
            "<p class=\"hint\">The click map shows the campaign's HTML template, and this campaign \
             has none: give it one with <code>mailbeacon campaign edit {id} --html FILE</code> or \
             <code>PATCH /api/campaigns/{id}</code> with <code>html</code>.</p>"
        ),
    };
    format!("<section class=\"card\"><h2>Click map</h2>{body}</section>")
}

/// `GET /campaigns/{id}/click-map`: the marked mail.
pub async fn document(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match marked(&app, &id).await {
        Ok(html) => {
            let mut r = (StatusCode::OK, html).into_response();
            let h = r.headers_mut();
            for (name, value) in [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
            ] {
                h.insert(name, HeaderValue::from_static(value));
            }
            r
        }
        Err(e) => error_page(Some(user.scope), e),
    }
}

async fn marked(app: &AppState, id: &str) -> Result<String, ApiError> {
    let campaign = existing_campaign(app, id).await?;
    let template = campaign.template_html.as_deref().ok_or(ApiError::NoRoute)?;
    let links = report::links(app.store.report_links(campaign.id).await?);
    mark(template, &links).map_err(|e| ApiError::Internal(format!("the click map: {e}")))
}

/// The template with its links pointing at their own markers, and a style that labels each one.
/// Links are numbered as instrumentation numbers them, so link n of the template is link n of
/// every message made from it.
pub fn mark(
    template: &str,
    links: &[LinkReport],
) -> Result<String, crate::instrument::InstrumentError> {
    let marker = |n: u32| format!("#mb-link-{n}");
    let instrumented = instrument(
        template,
        &InstrumentOptions {
            pixel_url: "data:,",
            click_url: &marker,
            max_links: u32::MAX,
            honeypot_url: None,
            stop_tracking_url: None,
        },
    )?;
    let readers = |n: usize| {
        links
            .iter()
            .find(|l| usize::from(l.link_no) == n)
            .map_or(0, |l| l.reader_unique_clicks)
    };
    let total: i64 = (1..=instrumented.links.len()).map(readers).sum();
    let mut style = String::from(
        "a[href^=\"#mb-link-\"]{outline:2px solid #1d4ed8;outline-offset:1px}\
         a[href^=\"#mb-link-\"]::after{display:inline-block;margin-left:4px;padding:0 5px;\
         border-radius:3px;background:#1d4ed8;color:#fff;font:600 12px/1.5 system-ui,sans-serif;\
         text-decoration:none;white-space:nowrap}",
    );
    for n in 1..=instrumented.links.len() {
        let clicked = readers(n);
        let share = if total > 0 {
            format!("{:.0}%", 100.0 * clicked as f64 / total as f64)
        } else {
            "–".to_string()
        };
        let noun = if clicked == 1 { "reader" } else { "readers" };
        let _ = write!(
            style,
            "a[href=\"#mb-link-{n}\"]::after{{content:\"{clicked} {noun} \\00B7  {share}\"}}"
        );
    }
    Ok(format!(
        "{}<style>{}</style>",
        instrumented.html,
        esc_style(&style)
    ))
}

/// A style element ends at `</style`; nothing written here holds it, but make sure.
fn esc_style(css: &str) -> String {
    css.replace("</", "<\\/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(link_no: u16, readers: i64) -> LinkReport {
        LinkReport {
            link_no,
            url: None,
            honeypot: link_no == 0,
            clicks: readers,
            reader_clicks: readers,
            unique_clicks: readers,
            reader_unique_clicks: readers,
            ..LinkReport::default()
        }
    }

    #[test]
    fn each_tracked_link_is_labelled_with_its_readers_and_share() {
        let html = "<html><body><a href=\"https://a.example\">A</a> \
                    <a href=\"https://b.example\">B</a> <a href=\"mailto:x@example.com\">mail</a>\
                    <script>document.title='ran'</script></body></html>";
        let out = mark(html, &[link(1, 3), link(2, 1), link(0, 5)]).unwrap();
        assert!(out.contains("href=\"#mb-link-1\"") && out.contains("href=\"#mb-link-2\""));
        assert!(
            out.contains("href=\"mailto:x@example.com\""),
            "not tracked, not marked"
        );
        assert!(
            !out.contains("https://a.example"),
            "a marked link leads nowhere"
        );
        assert!(out.contains("content:\"3 readers \\00B7  75%\""), "{out}");
        assert!(out.contains("content:\"1 reader \\00B7  25%\""), "{out}");
    }
}
