//! JSON, NDJSON or CSV: chosen by `?format=` (what a download link can say) or else by the
//! `Accept` header, and the one way every report answers in each.

use super::error::ApiError;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

pub fn negotiate(headers: &HeaderMap, query: Option<&str>) -> Result<Format, ApiError> {
    if let Some(format) = query {
        return match format {
            "json" => Ok(Format::Json),
            "ndjson" => Ok(Format::Ndjson),
            "csv" => Ok(Format::Csv),
            other => Err(ApiError::Invalid(format!(
                "format '{other}' is not one of json, ndjson, csv"
            ))),
        };
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    for media in accept.split(',') {
        let media = media.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                return Ok(Format::Ndjson);
            }
            "text/csv" => return Ok(Format::Csv),
            "application/json" | "application/*" | "*/*" => return Ok(Format::Json),
            _ => {}
        }
    }
    Err(ApiError::Invalid(format!(
        "cannot answer in '{accept}': ask for application/json, application/x-ndjson or text/csv"
    )))
}

/// A report: `json` is the whole answer; NDJSON and CSV list `rows` (flat structs), one per line,
/// CSV with a header row. `name` becomes the download's file name.
pub fn report<J: Serialize, R: Serialize + Default>(
    format: Format,
    name: &str,
    json: J,
    rows: &[R],
) -> Result<Response, ApiError> {
    let internal = |e: &dyn std::fmt::Display| ApiError::Internal(e.to_string());
    let mut response = match format {
        Format::Json => return Ok(Json(json).into_response()),
        Format::Ndjson => {
            let mut body = Vec::new();
            for row in rows {
                serde_json::to_writer(&mut body, row).map_err(|e| internal(&e))?;
                body.push(b'\n');
            }
            body.into_response()
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for row in rows {
                w.serialize(row).map_err(|e| internal(&e))?;
            }
            let mut body = w.into_inner().map_err(|e| internal(&e))?;
            if rows.is_empty() {
                // The header row alone: the one written before an empty row's values.
                let mut w = csv::Writer::from_writer(Vec::new());
                w.serialize(R::default()).map_err(|e| internal(&e))?;
                let header = w.into_inner().map_err(|e| internal(&e))?;
                let end = header.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
                body.extend_from_slice(&header[..end]);
            }
            body.into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{name}.{}\"",
        format.extension()
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
