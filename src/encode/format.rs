//! JSON, NDJSON, CSV or Parquet: chosen by `?format=` (what a download link can say) or else by
//! the `Accept` header, and the one way every report answers in each.

use crate::error::{ApiError, Invalid};
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
    /// Report tables and event exports (not the event log's pages).
    Parquet,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

pub fn negotiate(headers: &HeaderMap, query: Option<&str>) -> Result<Format, ApiError> {
    if let Some(format) = query {
        return match format {
            "json" => Ok(Format::Json),
            "ndjson" => Ok(Format::Ndjson),
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            other => Err(ApiError::Invalid(
                Invalid::Format,
                format!("format '{other}' is not one of json, ndjson, csv, parquet"),
            )),
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
            "application/vnd.apache.parquet" => return Ok(Format::Parquet),
            "application/json" | "application/*" | "*/*" => return Ok(Format::Json),
            _ => {}
        }
    }
    Err(ApiError::Invalid(
        Invalid::Accept,
        format!(
            "cannot answer in '{accept}': ask for application/json, application/x-ndjson, text/csv or application/vnd.apache.parquet"
        ),
    ))
}

/// A report's bytes: `json` is the whole answer; NDJSON and CSV list `rows` (flat structs), one
/// per line, CSV with a header row (also when there are no rows); Parquet has the CSV's columns,
/// typed.
pub fn encode<J: Serialize, R: Serialize + Default>(
    format: Format,
    json: &J,
    rows: &[R],
) -> Result<Vec<u8>, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match format {
        Format::Json => serde_json::to_vec(json).map_err(|e| text(&e)),
        Format::Ndjson => {
            let mut body = Vec::new();
            for row in rows {
                serde_json::to_writer(&mut body, row).map_err(|e| text(&e))?;
                body.push(b'\n');
            }
            Ok(body)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for row in rows {
                w.serialize(super::csv_safe::Cells(row))
                    .map_err(|e| text(&e))?;
            }
            let mut body = w.into_inner().map_err(|e| text(&e))?;
            if rows.is_empty() {
                // The header row alone: the one written before an empty row's values.
                let mut w = csv::Writer::from_writer(body);
                w.write_record(csv_header::<R>()?).map_err(|e| text(&e))?;
                body = w.into_inner().map_err(|e| text(&e))?;
            }
            Ok(body)
        }
        Format::Parquet => super::parquet::table(rows),
    }
}

/// The column names of rows of `R`, as a CSV header row has them (flat structs' field names).
pub fn csv_header<R: Serialize + Default>() -> Result<Vec<String>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(R::default()).map_err(|e| e.to_string())?;
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    Ok(reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_string)
        .collect())
}

/// A report as a response; `name` becomes the download's file name.
pub fn report<J: Serialize, R: Serialize + Default>(
    format: Format,
    name: &str,
    json: J,
    rows: &[R],
) -> Result<Response, ApiError> {
    if format == Format::Json {
        return Ok(Json(json).into_response());
    }
    let body = encode(format, &json, rows).map_err(ApiError::Internal)?;
    Ok(respond(format, name, body))
}

/// Encoded report bytes as a response: a download (with a file name), unless JSON.
pub fn respond(format: Format, name: &str, body: Vec<u8>) -> Response {
    let mut r = body.into_response();
    content_headers(r.headers_mut(), format, name);
    r
}

/// `pending-events`: events this process has answered that were not yet in the database when the
/// answer was made, so at least that many are missing from its figures or log (the journal's
/// backlog; usually 0 within a second).
/// `Next-Cursor`: where the next page starts (`after=`); none on the last page.
pub fn cursor_header(h: &mut HeaderMap, cursor: Option<impl ToString>) {
    if let Some(c) = cursor.and_then(|c| HeaderValue::from_str(&c.to_string()).ok()) {
        h.insert("next-cursor", c);
    }
}

pub fn pending_header(h: &mut HeaderMap, pending: u64) {
    h.insert("pending-events", HeaderValue::from(pending));
}

/// The content type, and (but for JSON) the download's file name `NAME.EXTENSION`.
pub fn content_headers(h: &mut HeaderMap, format: Format, name: &str) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if format != Format::Json
        && let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{name}.{}\"",
            format.extension()
        ))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
}
