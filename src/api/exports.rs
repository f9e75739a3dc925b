//! `GET /api/campaigns/{id}/events/export?format=csv|ndjson|parquet`: every event of a campaign as one
//! download, streamed as it is read (see [`crate::export`]): memory stays flat whatever the size,
//! and a slow client only slows the reads down. Per-recipient data: analysts and admins, audited.
//!
//! The body is sent in chunked encoding. Should the database fail half-way, the response is broken
//! off (no final chunk) rather than ended: a client sees an error, never a short file that looks
//! complete.

use super::auth::Caller;
use super::error::{ApiError, Invalid};
use super::format::{Format, content_headers, negotiate};
use crate::app::AppState;
use crate::app::existing_campaign;
use crate::domain::AuditAction;
use crate::export::{Chunk, EventExport, ExportError, ExportFormat};
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use serde::Deserialize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    format: Option<String>,
}

impl ExportParams {
    /// The export's format: `?format=`, else NDJSON when `Accept` asks for it, else CSV.
    pub fn format(&self, headers: &HeaderMap) -> Result<ExportFormat, ApiError> {
        Ok(match self.format.as_deref() {
            Some(f) => ExportFormat::parse(f).ok_or_else(|| {
                ApiError::Invalid(
                    Invalid::Format,
                    format!("format '{f}' is not one of csv, ndjson, parquet"),
                )
            })?,
            // A download link says nothing (or */*): CSV.
            None => match negotiate(headers, None) {
                Ok(Format::Ndjson) => ExportFormat::Ndjson,
                Ok(Format::Parquet) => ExportFormat::Parquet,
                _ => ExportFormat::Csv,
            },
        })
    }
}

pub async fn events(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_recipient_data()?;
    let Query(params) = q.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let format = params.format(&headers)?;
    let campaign = existing_campaign(&app, &id).await?;
    caller
        .audit(
            &app,
            AuditAction::ExportEvents,
            &format!("campaign {}", campaign.id),
        )
        .await?;
    let export = EventExport::start(app.store.clone(), campaign.id, format).await?;
    let up_to = export.up_to();
    let mut response = Body::new(Chunks(export.spawn())).into_response();
    let h = response.headers_mut();
    content_headers(
        h,
        format.into(),
        &format!("campaign-{}-events", campaign.id),
    );
    // Where `GET /api/events?campaign=ID&after=...` picks up the events that came later.
    h.insert(
        "next-cursor",
        HeaderValue::from_str(&up_to.to_string()).expect("digits"),
    );
    Ok(response)
}

/// The export's chunks as an HTTP body; an error ends it with an error, which makes the server
/// break the response off.
struct Chunks(mpsc::Receiver<Result<Chunk, ExportError>>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = ExportError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExportError>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(|chunk| Frame::data(Bytes::from(chunk.bytes)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[tokio::test]
    async fn an_error_breaks_the_body_off() {
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(Chunk {
            bytes: b"id,kind\n1,open\n".to_vec(),
            events: 1,
        }))
        .await
        .unwrap();
        tx.send(Err(ExportError::Store(StoreError::Unavailable(
            "gone".into(),
        ))))
        .await
        .unwrap();
        drop(tx);
        let body = Body::new(Chunks(rx));
        assert!(axum::body::to_bytes(body, usize::MAX).await.is_err());

        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(Chunk {
            bytes: b"id,kind\n".to_vec(),
            events: 0,
        }))
        .await
        .unwrap();
        drop(tx);
        let body = axum::body::to_bytes(Body::new(Chunks(rx)), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], b"id,kind\n");
    }
}
