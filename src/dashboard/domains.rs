//! The tracking domains on the campaigns page: listed for everyone signed in; admins add, retire,
//! take back and remove them with forms that go through the same checks and audit entries as the
//! API (`crate::tracking_domains`). The campaign page's Manage card chooses one for a campaign.

use super::{SignedIn, error_page, same_origin};
use crate::app::AppState;
use crate::domain::Scope;
use crate::error::{ApiError, Invalid};
use crate::html::esc;
use crate::store::TrackingDomain;
use crate::tracking_domains::{self as domains, Changer};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

/// The list, with the admins' forms.
pub fn card(list: &[TrackingDomain], scope: Scope) -> String {
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
            "<tr><td>{name}</td><td>{url}</td><td>{added}</td><td>{state}</td><td>{reaches}</td>{actions_cell}</tr>",
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
             <th>Links under</th><th>Added</th><th>State</th><th>DNS</th>{actions}</tr></thead><tbody>{rows}</tbody></table></div>",
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
