//! Conversions reported back by the sender's site with a click's signed reference (`mb_ref`,
//! added to the destination when the campaign tracks conversions): server to server as
//! `POST /conversions`, or from the thank-you page as the pixel `GET /v/{ref}.gif?goal=...`.
//! A reference made here, not older than `--conversion-window-days`, is what lets a conversion
//! in: no token is needed, and a forged or expired one is refused with its reason. Consent and
//! opt-outs apply as to the click: a conversion of someone whose clicks are not stored is
//! answered and not stored. Stored in the database before the answer (few, unlike opens).

use super::{images, no_cache};
use crate::api::json_body::JsonBody;
use crate::app::AppState;
use crate::domain::{parse_goal, parse_value};
use crate::error::{ApiError, Invalid};
use crate::ingest::directory::Found;
use crate::store::{ConversionOutcome, MAX_CONVERSIONS_PER_MESSAGE, NewConversion};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionBody {
    #[serde(rename = "ref")]
    reference: String,
    goal: String,
    value: Option<f64>,
    currency: Option<String>,
    /// The sender's own id for it (an order number): sent again, it is stored once.
    id: Option<String>,
}

/// `POST /conversions`: `204` once stored (or once it is known not to be kept).
pub async fn post(
    State(app): State<Arc<AppState>>,
    JsonBody(body): JsonBody<ConversionBody>,
) -> Result<StatusCode, ApiError> {
    accept(&app, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelParams {
    goal: String,
    value: Option<f64>,
    currency: Option<String>,
    id: Option<String>,
}

/// `GET /v/{ref}.gif?goal=purchase&value=12.50&currency=EUR&id=ORDER`: the same, for a page.
pub async fn pixel(
    State(app): State<Arc<AppState>>,
    Path(file): Path<String>,
    q: Result<Query<PixelParams>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(q) = q.map_err(|e| ApiError::Invalid(Invalid::Conversion, e.body_text()))?;
        let reference = file.strip_suffix(".gif").ok_or(ApiError::NoRoute)?;
        accept(
            &app,
            ConversionBody {
                reference: reference.to_string(),
                goal: q.goal,
                value: q.value,
                currency: q.currency,
                id: q.id,
            },
        )
        .await
    };
    match result.await {
        Ok(()) => {
            let mut response = Response::new(Body::from(&images::GIF[..]));
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
            no_cache(h);
            response
        }
        Err(e) => e.into_response(),
    }
}

fn refused(why: String) -> ApiError {
    metrics::counter!("mailbeacon_conversions_total", "result" => "refused").increment(1);
    ApiError::Invalid(Invalid::Conversion, why)
}

async fn accept(app: &AppState, body: ConversionBody) -> Result<(), ApiError> {
    let reference = app
        .keys
        .verify_reference(body.reference.trim())
        .map_err(|_| {
            refused(
            "ref: not a conversion reference of this installation (altered, made up, or signed \
             with a key since removed)"
                .into(),
        )
        })?;
    let now = Utc::now();
    let clicked_at =
        DateTime::from_timestamp(i64::from(reference.clicked_minute) * 60, 0).unwrap_or_default();
    let window = app.settings.conversion_window_days;
    if now - clicked_at > Duration::days(window.into()) {
        return Err(refused(format!(
            "ref: expired: conversions count for {window} days after the click (this click was \
             at {})",
            clicked_at.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    let goal = parse_goal(&body.goal).map_err(refused)?.to_string();
    let value = parse_value(body.value, body.currency.as_deref()).map_err(refused)?;
    let id = match body.id.as_deref().map(str::trim) {
        Some(id) if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) => {
            return Err(refused(
                "id must be 1 to 200 characters without control characters".into(),
            ));
        }
        Some(id) => format!("id:{id}"),
        None => format!("ref:{}", body.reference.trim()),
    };
    let gone =
        || refused("ref: its message no longer exists (erased, or its campaign deleted)".into());
    let standing = match app.directory.lookup(reference.tracking_id, None).await {
        Ok(Found::Message { standing, .. }) => standing,
        Ok(_) => return Err(gone()),
        Err(_) => return Err(ApiError::Unavailable),
    };
    let without_consent = app
        .settings
        .require_consent
        .then_some(app.settings.without_consent);
    if !standing.keeps_conversions(without_consent) {
        metrics::counter!("mailbeacon_conversions_total", "result" => "not_kept").increment(1);
        return Ok(());
    }
    let outcome = app
        .store
        .record_conversion(NewConversion {
            tracking_id: reference.tracking_id,
            link_no: reference.link_no,
            clicked_at,
            goal,
            value,
            dedupe_key: id,
            received_at: chrono::SubsecRound::trunc_subsecs(now, 6),
        })
        .await?;
    let result = match outcome {
        ConversionOutcome::Stored => "stored",
        ConversionOutcome::Duplicate => "duplicate",
        ConversionOutcome::UnknownMessage => return Err(gone()),
        ConversionOutcome::TooMany => {
            return Err(refused(format!(
                "ref: its message has {MAX_CONVERSIONS_PER_MESSAGE} conversions already; more \
                 are refused"
            )));
        }
    };
    metrics::counter!("mailbeacon_conversions_total", "result" => result).increment(1);
    if outcome == ConversionOutcome::Stored {
        app.webhooks.wake();
    }
    Ok(())
}
