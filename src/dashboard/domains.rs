//! The tracking domains on the campaigns page: listed for everyone signed in; admins add, retire,
//! take back and remove them with forms that go through the same checks and audit entries as the
//! API (`crate::tracking_domains`). The campaign page's Manage card chooses one for a campaign.

use super::{SignedIn, error_page, same_origin};
use crate::app::AppState;
use crate::domain::Scope;
use crate::error::{ApiError, Invalid};
use crate::html::esc;
use crate::store::{StoredCertificate, TrackingDomain};
use crate::tracking_domains::{self as domains, Changer};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

/// A domain's certificate as the card shows it, with `--https-listen` only.
fn certificate_cell(d: &TrackingDomain, certs: Option<&[StoredCertificate]>) -> String {
    let Some(certs) = certs else {
        return String::new();
    };
    let text = match certs.iter().find(|c| c.domain == d.domain) {
        None if d.verified_at.is_none() => "after the domain check passes".to_string(),
        None => "being ordered".to_string(),
        Some(c) => {
            let valid = c.issued.as_ref().map_or(String::new(), |i| {
                format!("valid until {}", i.not_after.format("%Y-%m-%d"))
            });
            match (&c.last_error, c.retry_at) {
                (Some(why), Some(at)) => format!(
                    "{valid}{sep}the last order failed: {why} (next try {at})",
                    sep = if valid.is_empty() { "" } else { "; " },
                    why = esc(why),
                    at = at.format("%Y-%m-%d %H:%M UTC"),
                ),
                _ if valid.is_empty() => "being ordered".to_string(),
                _ => valid,
            }
        }
    };
    format!("<td>{text}</td>")
}

/// The list, with the admins' forms; `certs` with `--https-listen`.
pub fn card(list: &[TrackingDomain], certs: Option<&[StoredCertificate]>, scope: Scope) -> String {
    let admin = scope == Scope::Admin;
    let mut rows = String::new();
    for d in list {
        let state = match d.retired_at {
            Some(t) => format!("retired {}", t.format("%Y-%m-%d")),
            None => "in use".into(),
        };
        let reaches = match (&d.check_error, d.checked_at) {
            (_, None) => "not checked".to_string(),
            (None, Some(t)) => format!(
                "reaches this installation (checked {})",
                t.format("%Y-%m-%d %H:%M UTC")
            ),
            (Some(why), Some(_)) => esc(why),
        };
        let check = form(&d.domain, "check", "", "Check");
        let actions = if !admin {
            String::new()
        } else if d.retired_at.is_none() {
            check
                + &form(
                    &d.domain,
                    "retire",
                    "<input type=\"hidden\" name=\"retired\" value=\"true\">",
                    "Retire",
                )
        } else {
            form(
                &d.domain,
                "retire",
                "<input type=\"hidden\" name=\"retired\" value=\"false\">",
                "Take back",
            ) + &form(&d.domain, "remove", "", "Remove")
        };
        let _ = write!(
            rows,
            "<tr><td>{name}</td><td>{url}</td><td>{added}</td><td>{state}</td><td>{reaches}</td>{certificate}{actions_cell}</tr>",
            certificate = certificate_cell(d, certs),
            name = esc(&d.domain),
            url = esc(&d.url),
            added = d.added_at.format("%Y-%m-%d"),
            actions_cell = if admin {
                format!("<td>{actions}</td>")
            } else {
                String::new()
            },
        );
    }
    let table = if list.is_empty() {
        "<p>None: links use the public URL.</p>".to_string()
    } else {
        format!(
            "<div class=\"scroll\" tabindex=\"0\"><table class=\"domains\"><thead><tr><th>Domain</th>\
             <th>Links under</th><th>Added</th><th>State</th><th>DNS</th>{certificate}{actions}</tr></thead><tbody>{rows}</tbody></table></div>",
            certificate = if certs.is_some() {
                "<th>Certificate</th>"
            } else {
                ""
            },
            actions = if admin { "<th>Change</th>" } else { "" },
        )
    };
    let add = if admin {
        "<form class=\"manage\" method=\"post\" action=\"/tracking-domains\">\
         <label for=\"new-domain\">Add a domain (point its DNS at this installation first)</label>\
         <input id=\"new-domain\" name=\"domain\" placeholder=\"t.yourbrand.example\" required>\
         <button type=\"submit\">Add</button></form>"
    } else {
        ""
    };
    format!(
        "<h2>Tracking domains</h2>{table}{add}<p class=\"hint\">A campaign chooses its domain in its \
         Manage card; retired domains keep answering mail already sent.</p>"
    )
}

fn form(domain: &str, action: &str, fields: &str, button: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/tracking-domains/{path}/{action}\">{fields}\
         <button type=\"submit\" aria-label=\"{button} {name}\">{button}</button></form>",
        path = esc(&urlencoding(domain)),
        name = esc(domain),
    )
}

/// Domain names hold letters, digits, dots, hyphens and colons (IPv6): only the colons need care.
fn urlencoding(domain: &str) -> String {
    domain.replace(':', "%3A")
}

/// The options of a campaign's domain choice: the public URL, every domain in use, and the
/// campaign's own even when retired (so that saving the form does not change it).
pub fn options(list: &[TrackingDomain], current: Option<&str>) -> String {
    let mut out = format!(
        "<option value=\"\"{}>the public URL</option>",
        if current.is_none() { " selected" } else { "" }
    );
    for d in list {
        let selected = current == Some(d.domain.as_str());
        if d.retired_at.is_some() && !selected {
            continue;
        }
        let _ = write!(
            out,
            "<option value=\"{name}\"{sel}>{name}{retired}</option>",
            name = esc(&d.domain),
            sel = if selected { " selected" } else { "" },
            retired = if d.retired_at.is_some() {
                " (retired)"
            } else {
                ""
            },
        );
    }
    out
}

#[derive(Deserialize)]
pub struct AddForm {
    domain: String,
}

#[derive(Deserialize)]
pub struct RetireForm {
    retired: bool,
}

/// A change from this site's own forms, by whom the audit log will name.
fn changer(user: &SignedIn, headers: &HeaderMap) -> Result<Changer, ApiError> {
    if !same_origin(headers) {
        return Err(ApiError::Invalid(
            Invalid::CrossSite,
            "changes must come from this site's own forms".into(),
        ));
    }
    Ok(Changer {
        actor: user.actor,
        scope: user.scope,
    })
}

fn done(result: Result<(), ApiError>, scope: Scope) -> Response {
    match result {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => error_page(Some(scope), e),
    }
}

fn body<T>(form: Result<Form<T>, FormRejection>) -> Result<T, ApiError> {
    form.map(|Form(f)| f)
        .map_err(|e| ApiError::Invalid(Invalid::Body, e.body_text()))
}

pub async fn add(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    headers: HeaderMap,
    form: Result<Form<AddForm>, FormRejection>,
) -> Response {
    let result = async {
        let by = changer(&user, &headers)?;
        let domain = body(form)?.domain;
        domains::add(app.store.as_ref(), by, domains::Check::of(&app), &domain).await?;
        Ok(())
    };
    done(result.await, user.scope)
}

pub async fn retire(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path(domain): Path<String>,
    headers: HeaderMap,
    form: Result<Form<RetireForm>, FormRejection>,
) -> Response {
    let result = async {
        let by = changer(&user, &headers)?;
        let retired = body(form)?.retired;
        domains::retire(app.store.as_ref(), by, &domain, retired).await?;
        Ok(())
    };
    done(result.await, user.scope)
}

pub async fn check(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let by = changer(&user, &headers)?;
        domains::check_now(app.store.as_ref(), by, domains::Check::of(&app), &domain).await?;
        Ok(())
    };
    done(result.await, user.scope)
}

pub async fn remove(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let by = changer(&user, &headers)?;
        domains::remove(app.store.as_ref(), by, &domain).await
    };
    done(result.await, user.scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::IssuedCertificate;
    use chrono::{DateTime, Utc};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_card_says_until_when_a_certificate_holds_and_why_an_order_failed() {
        let domain = |name: &str, verified: bool| TrackingDomain {
            domain: name.into(),
            url: format!("https://{name}"),
            added_at: at("2026-12-01T00:00:00Z"),
            retired_at: None,
            checked_at: Some(at("2026-12-01T00:00:00Z")),
            verified_at: verified.then(|| at("2026-12-01T00:00:00Z")),
            check_error: None,
        };
        let list = [
            domain("a.example", true),
            domain("b.example", true),
            domain("c.example", false),
        ];
        let certs = [StoredCertificate {
            domain: "a.example".into(),
            issued: Some(IssuedCertificate {
                chain_pem: String::new(),
                key_pem: String::new(),
                not_before: at("2026-12-01T00:00:00Z"),
                not_after: at("2027-03-01T00:00:00Z"),
                renew_at: at("2027-01-30T00:00:00Z"),
                issued_at: at("2026-12-01T00:00:00Z"),
            }),
            failures: 1,
            last_error: Some("the ACME server <refused>".into()),
            retry_at: Some(at("2026-12-02T10:00:00Z")),
        }];
        let html = card(&list, Some(&certs), Scope::Viewer);
        assert!(html.contains("<th>Certificate</th>"), "{html}");
        assert!(
            html.contains(
                "valid until 2027-03-01; the last order failed: the ACME server &lt;refused&gt; \
                 (next try 2026-12-02 10:00 UTC)"
            ),
            "{html}"
        );
        assert!(html.contains("<td>being ordered</td>"), "{html}");
        assert!(
            html.contains("<td>after the domain check passes</td>"),
            "{html}"
        );
        assert!(!card(&list, None, Scope::Viewer).contains("Certificate"));
    }
}
