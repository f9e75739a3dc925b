//! Answers in the formats users download: CSV (with formula cells neutralised), NDJSON and Parquet, and
//! which format a request asks for. The API, the dashboard, the exports and the CLI encode here.

pub mod csv_safe;
pub mod format;
pub mod parquet;

use crate::store::EventRecord;

pub fn to_csv(events: &[EventRecord]) -> csv::Result<Vec<u8>> {
    csv_rows(events, true)
}

/// CSV of `events`, with the header row (also when there are none) or without it: the pages of an
/// export after its first.
pub fn csv_rows(events: &[EventRecord], header: bool) -> csv::Result<Vec<u8>> {
    // Columns and names follow the JSON fields.
    let mut w = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::with_capacity(events.len() * 250));
    for e in events {
        w.serialize(csv_safe::Cells(e))?;
    }
    if header && events.is_empty() {
        w.write_record(EVENT_CSV_COLUMNS)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// One JSON object per event and line.
pub fn to_ndjson(events: &[EventRecord]) -> serde_json::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(events.len() * 256);
    for e in events {
        serde_json::to_writer(&mut body, e)?;
        body.push(b'\n');
    }
    Ok(body)
}

/// The header of an empty CSV export (with events, it comes from [`EventRecord`]'s fields).
const EVENT_CSV_COLUMNS: [&str; 19] = [
    "id",
    "kind",
    "received_at",
    "campaign_id",
    "message_id",
    "recipient_id",
    "link_url",
    "method",
    "user_agent",
    "client_ip",
    "class",
    "reasons",
    "duplicate",
    "internal",
    "client",
    "os",
    "device",
    "country",
    "region",
];
