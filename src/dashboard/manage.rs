//! The campaign page's "Manage" card and the forms it posts: rename, subject and tags, archive or
//! bring back (analysts and admins), delete (admins, after typing the campaign's id). Every form
//! posts to this site only and goes through the same checks as the API (`crate::campaigns`).

use super::{SignedIn, error_page, same_origin};
use crate::app::{AppState, existing_campaign};
use crate::campaigns::{self, valid_name, valid_subject, valid_tags};
use crate::domain::Scope;
use crate::error::{ApiError, Invalid};
use crate::html::esc;
use crate::store::{Campaign, CampaignEdit, TrackingDomain};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;

/// The card, or nothing for viewers.
pub fn card(campaign: &Campaign, scope: Scope, domains: &[TrackingDomain]) -> String {
    if scope == Scope::Viewer {
        return String::new();
    }
    let id = campaign.id;
    let archive = match campaign.archived_at {
        None => {
            "<input type=\"hidden\" name=\"archived\" value=\"true\">\
                 <button type=\"submit\">Archive</button>\
                 <span class=\"hint\">Archived campaigns leave the list; their tracking goes on.</span>"
        }
        Some(_) => {
            "<input type=\"hidden\" name=\"archived\" value=\"false\">\
                    <button type=\"submit\">Bring back from the archive</button>"
        }
    };
    let delete = if scope == Scope::Admin {
        format!(
            "<form class=\"manage danger\" method=\"post\" action=\"/campaigns/{id}/delete\">\
             <label for=\"confirm-{id}\">Delete this campaign with its messages, links and events \
             for good: type its id ({id})</label>\
             <input id=\"confirm-{id}\" name=\"confirm\" autocomplete=\"off\" inputmode=\"numeric\" required>\
             <button type=\"submit\">Delete</button></form>"
        )
    } else {
        String::new()
    };
    format!(
        "<section class=\"card\"><h2>Manage</h2>\
         <form class=\"manage\" method=\"post\" action=\"/campaigns/{id}/edit\">\
         <label for=\"name-{id}\">Name</label>\
         <input id=\"name-{id}\" name=\"name\" value=\"{name}\" maxlength=\"200\" required>\
         <label for=\"subject-{id}\">Subject</label>\
         <input id=\"subject-{id}\" name=\"subject\" value=\"{subject}\" maxlength=\"998\">\
         <label for=\"tags-{id}\">Tags (comma separated)</label>\
         <input id=\"tags-{id}\" name=\"tags\" value=\"{tags}\">\
         <label for=\"domain-{id}\">Links of mail registered from now on under</label>\
         <select id=\"domain-{id}\" name=\"tracking_domain\">{domain_options}</select>\
         <button type=\"submit\">Save</button></form>\
         <form class=\"manage\" method=\"post\" action=\"/campaigns/{id}/archive\">{archive}</form>\
         {delete}</section>",
        name = esc(&campaign.name),
        subject = esc(campaign.subject.as_deref().unwrap_or("")),
        tags = esc(&campaign.tags.join(", ")),
        domain_options = super::domains::options(domains, campaign.tracking_domain.as_deref()),
    )
}

#[derive(Deserialize)]
pub struct EditForm {
    name: String,
    subject: String,
    tags: String,
    /// Empty: the public URL. Left out (an older form): unchanged.
    tracking_domain: Option<String>,
}

#[derive(Deserialize)]
pub struct ArchiveForm {
    archived: bool,
}

#[derive(Deserialize)]
pub struct DeleteForm {
    confirm: String,
}

/// A posted form: from this site, by someone who may change campaigns, about one that exists.
async fn checked<T>(
    app: &AppState,
    user: SignedIn,
    headers: &HeaderMap,
    id: &str,
    form: Result<Form<T>, FormRejection>,
) -> Result<(Campaign, T), ApiError> {
    if !same_origin(headers) {
        return Err(ApiError::Invalid(
            Invalid::CrossSite,
            "changes must come from this site's own forms".into(),
        ));
    }
    if user.scope == Scope::Viewer {
        return Err(ApiError::Forbidden(user.scope.as_str()));
    }
    let campaign = existing_campaign(app, id).await?;
    let Form(form) = form.map_err(|e| ApiError::Invalid(Invalid::Body, e.body_text()))?;
    Ok((campaign, form))
}

fn done(result: Result<String, ApiError>, scope: Scope) -> Response {
    match result {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => error_page(Some(scope), e),
    }
}

pub async fn edit(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<EditForm>, FormRejection>,
) -> Response {
    let result = async {
        let (campaign, form) = checked(&app, user, &headers, &id, form).await?;
        let tags: Vec<&str> = form
            .tags
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .collect();
        let edit = CampaignEdit {
            name: Some(valid_name(&form.name)?),
            subject: Some(match form.subject.trim() {
                "" => None,
                s => Some(valid_subject(s)?),
            }),
            tags: Some(valid_tags(&tags)?),
            tracking_domain: match form.tracking_domain.as_deref().map(str::trim) {
                None => None,
                Some("") => Some(None),
                Some(d) if campaign.tracking_domain.as_deref() == Some(d) => None,
                Some(d) => Some(Some(
                    crate::tracking_domains::usable(app.store.as_ref(), d).await?,
                )),
            },
            ..CampaignEdit::default()
        };
        app.store.edit_campaign(campaign.id, edit).await?;
        Ok(format!("/campaigns/{}", campaign.id))
    };
    done(result.await, user.scope)
}

pub async fn archive(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<ArchiveForm>, FormRejection>,
) -> Response {
    let result = async {
        let (campaign, form) = checked(&app, user, &headers, &id, form).await?;
        let edit = CampaignEdit {
            archived: Some(form.archived),
            ..CampaignEdit::default()
        };
        app.store.edit_campaign(campaign.id, edit).await?;
        Ok(format!("/campaigns/{}", campaign.id))
    };
    done(result.await, user.scope)
}

pub async fn delete(
    State(app): State<Arc<AppState>>,
    user: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<DeleteForm>, FormRejection>,
) -> Response {
    let result = async {
        let (campaign, form) = checked(&app, user, &headers, &id, form).await?;
        if form.confirm.trim() != campaign.id.to_string() {
            return Err(ApiError::Invalid(
                Invalid::Body,
                format!(
                    "type the campaign's id ({}) to delete it; nothing was deleted",
                    campaign.id
                ),
            ));
        }
        campaigns::delete(&app, user.actor, user.scope, campaign.id).await?;
        Ok("/".to_string())
    };
    done(result.await, user.scope)
}
