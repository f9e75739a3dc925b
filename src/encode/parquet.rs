//! A campaign's events as an Apache Parquet file, for warehouses and notebooks (DuckDB, pandas and
//! pyarrow, the warehouses' loaders): the columns of the CSV export with their types (timestamps in
//! microseconds UTC, integers, booleans, strings that are null where the CSV cell is empty).
//!
//! Written a row group at a time, one per export page, and handed on as it is written, so memory
//! stays flat; the footer (the file's index of its row groups) comes last. Snappy-compressed.

use crate::store::EventRecord;
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::sync::Arc;

/// The columns, in the CSV export's order and with its names.
const SCHEMA: &str = "message event {
    REQUIRED INT64 id;
    REQUIRED BYTE_ARRAY kind (STRING);
    REQUIRED INT64 received_at (TIMESTAMP(MICROS, true));
    REQUIRED INT64 campaign_id;
    REQUIRED INT64 message_id;
    REQUIRED BYTE_ARRAY recipient_id (STRING);
    OPTIONAL BYTE_ARRAY link_url (STRING);
    REQUIRED BYTE_ARRAY method (STRING);
    OPTIONAL BYTE_ARRAY user_agent (STRING);
    OPTIONAL BYTE_ARRAY client_ip (STRING);
    REQUIRED BYTE_ARRAY class (STRING);
    REQUIRED BYTE_ARRAY reasons (STRING);
    REQUIRED BOOLEAN duplicate;
    REQUIRED BOOLEAN internal;
    OPTIONAL BYTE_ARRAY client (STRING);
    OPTIONAL BYTE_ARRAY os (STRING);
    REQUIRED BYTE_ARRAY device (STRING);
    OPTIONAL BYTE_ARRAY country (STRING);
    OPTIONAL BYTE_ARRAY region (STRING);
}";

/// One column's values for a row group.
enum Column {
    Int(Vec<i64>),
    Bool(Vec<bool>),
    Text(Vec<ByteArray>),
    /// Values of the rows that have one, and per row 1 (a value) or 0 (null).
    Nullable(Vec<ByteArray>, Vec<i16>),
}

fn text(s: &str) -> ByteArray {
    ByteArray::from(s)
}

fn nullable<'e>(values: impl Iterator<Item = Option<&'e str>>) -> Column {
    let (mut present, mut levels) = (Vec::new(), Vec::new());
    for v in values {
        levels.push(i16::from(v.is_some()));
        present.extend(v.map(text));
    }
    Column::Nullable(present, levels)
}

fn columns(events: &[EventRecord]) -> Vec<Column> {
    let int = |f: fn(&EventRecord) -> i64| Column::Int(events.iter().map(f).collect());
    let txt =
        |f: fn(&EventRecord) -> &str| Column::Text(events.iter().map(|e| text(f(e))).collect());
    let opt = |f: fn(&EventRecord) -> Option<&str>| nullable(events.iter().map(f));
    let flag = |f: fn(&EventRecord) -> bool| Column::Bool(events.iter().map(f).collect());
    vec![
        int(|e| e.id.0),
        txt(|e| e.kind.as_str()),
        int(|e| e.received_at.timestamp_micros()),
        int(|e| e.campaign_id.0),
        int(|e| e.message_id.0),
        txt(|e| &e.recipient_id),
        opt(|e| e.link_url.as_deref()),
        txt(|e| &e.method),
        opt(|e| e.user_agent.as_deref()),
        opt(|e| e.client_ip.as_deref()),
        txt(|e| &e.class),
        txt(|e| &e.reasons),
        flag(|e| e.duplicate),
        flag(|e| e.internal),
        opt(|e| e.client.as_deref()),
        opt(|e| e.os.as_deref()),
        txt(|e| &e.device),
        opt(|e| e.country.as_deref()),
        opt(|e| e.region.as_deref()),
    ]
}

/// A Parquet file of events being written.
pub struct ParquetEvents {
    writer: SerializedFileWriter<Vec<u8>>,
}

impl ParquetEvents {
    pub fn new() -> parquet::errors::Result<ParquetEvents> {
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("mailbeacon {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(Vec::new(), schema, Arc::new(properties))?;
        Ok(ParquetEvents { writer })
    }

    /// Writes `events` as one row group (none when empty) and returns the file's bytes written
    /// since the last call.
    pub fn row_group(&mut self, events: &[EventRecord]) -> parquet::errors::Result<Vec<u8>> {
        if !events.is_empty() {
            let mut group = self.writer.next_row_group()?;
            for column in columns(events) {
                let mut writer = group
                    .next_column()?
                    .expect("the schema has a column for each");
                match &column {
                    Column::Int(v) => writer.typed::<Int64Type>().write_batch(v, None, None),
                    Column::Bool(v) => writer.typed::<BoolType>().write_batch(v, None, None),
                    Column::Text(v) => writer.typed::<ByteArrayType>().write_batch(v, None, None),
                    Column::Nullable(v, levels) => {
                        (writer.typed::<ByteArrayType>()).write_batch(v, Some(levels), None)
                    }
                }?;
                writer.close()?;
            }
            group.close()?;
        }
        self.writer.flush()?;
        Ok(std::mem::take(self.writer.inner_mut()))
    }

    /// The rest of the file: its footer.
    pub fn finish(mut self) -> parquet::errors::Result<Vec<u8>> {
        self.writer.finish()?;
        Ok(std::mem::take(self.writer.inner_mut()))
    }
}
