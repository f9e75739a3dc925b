//! A campaign's events as an Apache Parquet file, for warehouses and notebooks (DuckDB, pandas and
//! pyarrow, the warehouses' loaders): the columns of the CSV export with their types (timestamps in
//! microseconds UTC, integers, booleans, strings that are null where the CSV cell is empty).
//!
//! Written a row group at a time, one per export page, and handed on as it is written, so memory
//! stays flat; the footer (the file's index of its row groups) comes last. Snappy-compressed.
//!
//! Report tables ([`table`]) are small and held whole already: one row group, the columns typed
//! from their values.

use crate::store::EventRecord;
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::{WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type;
use serde::Serialize;
use serde_json::{Map, Value};
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
enum Values {
    Int(Vec<i64>),
    Double(Vec<f64>),
    Bool(Vec<bool>),
    Text(Vec<ByteArray>),
}

/// A column of a row group: the values of the rows that have one and, for an optional column,
/// per row 1 (a value) or 0 (null).
struct Column {
    values: Values,
    levels: Option<Vec<i16>>,
}

impl Column {
    fn required(values: Values) -> Column {
        Column {
            values,
            levels: None,
        }
    }
}

/// Writes `columns`, in the schema's order, as one row group.
fn write_group(
    writer: &mut SerializedFileWriter<Vec<u8>>,
    columns: Vec<Column>,
) -> parquet::errors::Result<()> {
    let mut group = writer.next_row_group()?;
    for Column { values, levels } in columns {
        let mut column = group
            .next_column()?
            .expect("the schema has a column for each");
        let levels = levels.as_deref();
        match &values {
            Values::Int(v) => column.typed::<Int64Type>().write_batch(v, levels, None),
            Values::Double(v) => column.typed::<DoubleType>().write_batch(v, levels, None),
            Values::Bool(v) => column.typed::<BoolType>().write_batch(v, levels, None),
            Values::Text(v) => column.typed::<ByteArrayType>().write_batch(v, levels, None),
        }?;
        column.close()?;
    }
    group.close()?;
    Ok(())
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
    Column {
        values: Values::Text(present),
        levels: Some(levels),
    }
}

fn columns(events: &[EventRecord]) -> Vec<Column> {
    let int =
        |f: fn(&EventRecord) -> i64| Column::required(Values::Int(events.iter().map(f).collect()));
    let txt = |f: fn(&EventRecord) -> &str| {
        Column::required(Values::Text(events.iter().map(|e| text(f(e))).collect()))
    };
    let opt = |f: fn(&EventRecord) -> Option<&str>| nullable(events.iter().map(f));
    let flag = |f: fn(&EventRecord) -> bool| {
        Column::required(Values::Bool(events.iter().map(f).collect()))
    };
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

fn properties() -> WriterPropertiesPtr {
    Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("mailbeacon {}", env!("CARGO_PKG_VERSION")))
            .build(),
    )
}

/// A Parquet file of events being written.
pub struct ParquetEvents {
    writer: SerializedFileWriter<Vec<u8>>,
}

impl ParquetEvents {
    pub fn new() -> parquet::errors::Result<ParquetEvents> {
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        let writer = SerializedFileWriter::new(Vec::new(), schema, properties())?;
        Ok(ParquetEvents { writer })
    }

    /// Writes `events` as one row group (none when empty) and returns the file's bytes written
    /// since the last call.
    pub fn row_group(&mut self, events: &[EventRecord]) -> parquet::errors::Result<Vec<u8>> {
        if !events.is_empty() {
            write_group(&mut self.writer, columns(events))?;
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

/// A report table's column type, found from its values: what every value that is not null is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Double,
    Bool,
    Timestamp,
    Text,
}

fn kind_of(values: &[&Value]) -> Option<Kind> {
    let present: Vec<&&Value> = values.iter().filter(|v| !v.is_null()).collect();
    let all = |f: fn(&Value) -> bool| !present.is_empty() && present.iter().all(|v| f(v));
    Some(if present.is_empty() {
        return None;
    } else if all(|v| v.is_i64()) {
        Kind::Int
    } else if all(Value::is_number) {
        Kind::Double
    } else if all(Value::is_boolean) {
        Kind::Bool
    } else if all(|v| v.as_str().is_some_and(|s| timestamp(s).is_some())) {
        Kind::Timestamp
    } else {
        Kind::Text
    })
}

/// An RFC 3339 time, as the reports write them (`2026-11-23T10:00:00Z`), in microseconds.
fn timestamp(s: &str) -> Option<i64> {
    // Dates and times only: not any text a parser would take.
    if s.len() < 20 || s.as_bytes()[10] != b'T' {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// A report column's values as `kind`, every row's level saying whether it has one.
fn typed(kind: Kind, values: &[&Value]) -> Column {
    let levels = values.iter().map(|v| i16::from(!v.is_null())).collect();
    let present = values.iter().filter(|v| !v.is_null());
    let values = match kind {
        Kind::Int => Values::Int(present.filter_map(|v| v.as_i64()).collect()),
        Kind::Double => Values::Double(present.filter_map(|v| v.as_f64()).collect()),
        Kind::Bool => Values::Bool(present.filter_map(|v| v.as_bool()).collect()),
        Kind::Timestamp => Values::Int(present.filter_map(|v| timestamp(v.as_str()?)).collect()),
        Kind::Text => Values::Text(
            present
                .map(|v| match v {
                    Value::String(s) => text(s),
                    other => text(&other.to_string()),
                })
                .collect(),
        ),
    };
    Column {
        values,
        levels: Some(levels),
    }
}

/// A report's rows (flat structs, as for CSV) as a Parquet file of one row group, the columns in
/// the CSV's order. Each column's type is what its values are: integers, doubles, booleans,
/// timestamps (UTC, microseconds) or strings, every one nullable; a column with no value in any row
/// takes the type of `R::default()`'s, and is a string when that is null too.
pub fn table<R: Serialize + Default>(rows: &[R]) -> Result<Vec<u8>, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let to_object = |row: &R| match serde_json::to_value(row) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("a report row is not a record: {other}")),
        Err(e) => Err(text(&e)),
    };
    let default = to_object(&R::default())?;
    let objects: Vec<Map<String, Value>> = rows.iter().map(to_object).collect::<Result<_, _>>()?;
    let names = super::format::csv_header::<R>()?;
    let mut fields = Vec::with_capacity(names.len());
    let mut columns = Vec::with_capacity(names.len());
    for name in &names {
        let values: Vec<&Value> = objects
            .iter()
            .map(|o| o.get(name).unwrap_or(&Value::Null))
            .collect();
        let kind = kind_of(&values)
            .or_else(|| kind_of(&[default.get(name).unwrap_or(&Value::Null)]))
            .unwrap_or(Kind::Text);
        let (physical, logical) = match kind {
            Kind::Int => (PhysicalType::INT64, None),
            Kind::Double => (PhysicalType::DOUBLE, None),
            Kind::Bool => (PhysicalType::BOOLEAN, None),
            Kind::Timestamp => (
                PhysicalType::INT64,
                Some(LogicalType::timestamp(true, TimeUnit::MICROS)),
            ),
            Kind::Text => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        };
        let field = Type::primitive_type_builder(name, physical)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical)
            .build()
            .map_err(|e| text(&e))?;
        fields.push(Arc::new(field));
        columns.push(typed(kind, &values));
    }
    let schema = Type::group_type_builder("report")
        .with_fields(fields)
        .build()
        .map_err(|e| text(&e))?;
    let mut writer = SerializedFileWriter::new(Vec::new(), Arc::new(schema), properties())
        .map_err(|e| text(&e))?;
    if !rows.is_empty() {
        write_group(&mut writer, columns).map_err(|e| text(&e))?;
    }
    writer.into_inner().map_err(|e| text(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    #[derive(Serialize, Default)]
    struct Row {
        start: chrono::DateTime<chrono::Utc>,
        opens: i64,
        rate: Option<f64>,
        name: String,
        unknown: Option<i64>,
    }

    fn columns_of(file: Vec<u8>) -> (Vec<String>, i64) {
        let reader = SerializedFileReader::new(bytes::Bytes::from(file)).unwrap();
        let meta = reader.metadata();
        let schema = meta.file_metadata().schema_descr();
        let columns = schema
            .columns()
            .iter()
            .map(|c| {
                format!(
                    "{} {} {:?}",
                    c.name(),
                    c.physical_type(),
                    c.logical_type_ref()
                )
            })
            .collect();
        (columns, meta.file_metadata().num_rows())
    }

    #[test]
    fn a_report_table_is_typed_from_its_values_and_an_empty_one_from_the_default_row() {
        let rows = vec![
            Row {
                start: "2026-12-07T10:00:00Z".parse().unwrap(),
                opens: 3,
                rate: Some(0.5),
                name: "a".into(),
                unknown: None,
            },
            Row::default(),
        ];
        let (columns, n) = columns_of(table(&rows).unwrap());
        assert_eq!(n, 2);
        assert!(
            columns[0].starts_with("start INT64 Some(Timestamp"),
            "{columns:?}"
        );
        assert_eq!(columns[1], "opens INT64 None");
        assert_eq!(columns[2], "rate DOUBLE None");
        assert_eq!(columns[3], "name BYTE_ARRAY Some(String)");
        // No value anywhere, and null in the default row: a string column of nulls.
        assert_eq!(columns[4], "unknown BYTE_ARRAY Some(String)");
        let (empty, n) = columns_of(table::<Row>(&[]).unwrap());
        assert_eq!(n, 0);
        assert_eq!(empty[..2], columns[..2]);
        assert_eq!(empty[2], "rate BYTE_ARRAY Some(String)");
    }
}
