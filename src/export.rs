//! Exports of a campaign's raw events as CSV, NDJSON or Parquet, read and written page by page so that
//! memory stays flat whatever the campaign's size. `GET /api/campaigns/{id}/events/export` and
//! `mailbeacon export` both go through [`EventExport`].
//!
//! An export is a snapshot bounded by event id: it takes the events stored when it starts (ids up
//! to the highest one then) and none of those that arrive while it runs. Each page is a short read
//! of its own, so no transaction stays open however slow the reader is; a recipient erased while
//! an export runs is left out of the pages read after the erasure.

use crate::encode::parquet::ParquetEvents;
use crate::encode::{csv_rows, to_ndjson};
use crate::store::{CampaignId, EventId, EventRecord, Store, StoreError};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Events read (and encoded) at a time.
pub const PAGE: usize = 5_000;

/// Encoded pages an export may run ahead of its consumer: with [`PAGE`] events of ~300 bytes,
/// a few megabytes at most.
pub const AHEAD: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A header row, then one row per event (the columns of `GET /api/events` as CSV).
    Csv,
    /// One JSON object per event and line.
    Ndjson,
    /// Apache Parquet: the CSV's columns, typed (one row group per page of events).
    Parquet,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s {
            "csv" => Some(ExportFormat::Csv),
            "ndjson" => Some(ExportFormat::Ndjson),
            "parquet" => Some(ExportFormat::Parquet),
            _ => None,
        }
    }
}

/// The API's format of the same name (content type, file extension).
impl From<ExportFormat> for crate::encode::format::Format {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Csv => crate::encode::format::Format::Csv,
            ExportFormat::Ndjson => crate::encode::format::Format::Ndjson,
            ExportFormat::Parquet => crate::encode::format::Format::Parquet,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode an event: {0}")]
    Encode(String),
}

/// A piece of the file: the encoding of `events` events (the first one starts with the CSV header).
#[derive(Debug)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub events: u64,
}

/// One export of one campaign's events, from the first to the bound fixed when it started.
pub struct EventExport {
    store: Arc<dyn Store>,
    campaign: CampaignId,
    format: ExportFormat,
    up_to: EventId,
    after: EventId,
    page: usize,
    started: bool,
    finished: bool,
    /// The Parquet file being written, from the first page to the footer.
    parquet: Option<ParquetEvents>,
}

impl EventExport {
    /// Starts an export of the events the campaign has now.
    pub async fn start(
        store: Arc<dyn Store>,
        campaign: CampaignId,
        format: ExportFormat,
    ) -> Result<EventExport, StoreError> {
        let up_to = store.export_bound(campaign).await?;
        let parquet = (format == ExportFormat::Parquet)
            .then(|| ParquetEvents::new().expect("the events' Parquet schema is valid"));
        Ok(EventExport {
            store,
            campaign,
            format,
            up_to,
            after: EventId(0),
            page: PAGE,
            started: false,
            finished: false,
            parquet,
        })
    }

    /// Events per page (tests use small pages).
    pub fn with_page_size(mut self, page: usize) -> EventExport {
        self.page = page.max(1);
        self
    }

    /// The highest event id the export includes (0 when the campaign had no events): where
    /// `GET /api/events?campaign=ID&after=...` continues from.
    pub fn up_to(&self) -> EventId {
        self.up_to
    }

    /// The next piece of the file, `None` after the last. A CSV export always has at least the
    /// header row.
    pub async fn next_chunk(&mut self) -> Result<Option<Chunk>, ExportError> {
        if self.finished {
            return Ok(None);
        }
        let events = if self.after < self.up_to {
            self.store
                .export_page(self.campaign, self.after, self.up_to, self.page)
                .await?
        } else {
            Vec::new()
        };
        self.finished = events.len() < self.page || events.last().map(|e| e.id) == Some(self.up_to);
        if let Some(last) = events.last() {
            self.after = last.id;
        }
        let header = !self.started;
        self.started = true;
        let (format, last) = (self.format, self.finished);
        let count = events.len() as u64;
        let parquet = self.parquet.take();
        // Encoding a page takes milliseconds: not on the runtime's threads.
        let (bytes, parquet) = tokio::task::spawn_blocking(move || match parquet {
            Some(file) => parquet_page(file, &events, last),
            None => (encode(format, &events, header), None),
        })
        .await
        .map_err(|e| ExportError::Encode(e.to_string()))?;
        self.parquet = parquet;
        let bytes = bytes?;
        Ok((!bytes.is_empty()).then_some(Chunk {
            bytes,
            events: count,
        }))
    }

    /// Runs the export in a task of its own, at most [`AHEAD`] chunks ahead of whoever reads the
    /// channel: a slow reader only slows the export down, and memory stays flat. An error is the
    /// last item; a chunk that cannot be delivered (the receiver is gone) stops the task.
    pub fn spawn(mut self) -> mpsc::Receiver<Result<Chunk, ExportError>> {
        let (tx, rx) = mpsc::channel(AHEAD);
        tokio::spawn(async move {
            loop {
                let item = match self.next_chunk().await {
                    Ok(Some(chunk)) => Ok(chunk),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(
                            "export of campaign {} failed after event {}: {e}",
                            self.campaign,
                            self.after
                        );
                        Err(e)
                    }
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        rx
    }
}

/// A page of a Parquet export as a row group, and the footer after the last one; the file, unless
/// it is finished.
fn parquet_page(
    mut file: ParquetEvents,
    events: &[EventRecord],
    last: bool,
) -> (Result<Vec<u8>, ExportError>, Option<ParquetEvents>) {
    let failed = |e: parquet::errors::ParquetError| ExportError::Encode(e.to_string());
    let mut bytes = match file.row_group(events) {
        Ok(bytes) => bytes,
        Err(e) => return (Err(failed(e)), None),
    };
    if !last {
        return (Ok(bytes), Some(file));
    }
    match file.finish() {
        Ok(footer) => {
            bytes.extend(footer);
            (Ok(bytes), None)
        }
        Err(e) => (Err(failed(e)), None),
    }
}

fn encode(
    format: ExportFormat,
    events: &[EventRecord],
    header: bool,
) -> Result<Vec<u8>, ExportError> {
    match format {
        ExportFormat::Csv => {
            csv_rows(events, header).map_err(|e| ExportError::Encode(e.to_string()))
        }
        ExportFormat::Ndjson => to_ndjson(events).map_err(|e| ExportError::Encode(e.to_string())),
        // Its file is written by `parquet_page`, and gone after an error.
        ExportFormat::Parquet => Err(ExportError::Encode(
            "the Parquet file ended at an earlier error".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// A store with `n` events in campaign 1 and one in campaign 2, written straight into the
    /// tables (classification is not what is tested here).
    fn store_with_events(dir: &std::path::Path, n: i64) -> Arc<dyn Store> {
        let path = dir.join("t.db");
        let (store, _) = SqliteStore::open(&path, false).unwrap();
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "INSERT INTO campaigns (id, name, created_at) VALUES (1, 'a', '2026-01-01T00:00:00Z'),
                                                                (2, 'b', '2026-01-01T00:00:00Z');
             INSERT INTO messages (id, campaign_id, recipient_id, tracking_id, sent_at, created_at)
             VALUES (1, 1, 'r1', 11, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
                    (2, 2, 'r2', 12, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
             INSERT INTO links (message_id, link_no, url) VALUES (1, 1, 'https://a.example/');",
        )
        .unwrap();
        for i in 0..n {
            let (kind, link) = if i % 3 == 0 {
                ("click", Some(1))
            } else {
                ("open", None)
            };
            c.execute(
                "INSERT INTO events (received_at, kind, campaign_id, message_id, link_no, method,
                                     user_agent, class, reasons, device)
                 VALUES ('2026-01-02T00:00:00.000000Z', ?1, 1, 1, ?2, 'GET', 'a \"quoted\", agent',
                         'human', '', 'desktop')",
                rusqlite::params![kind, link],
            )
            .unwrap();
            if i == n / 2 {
                c.execute(
                    "INSERT INTO events (received_at, kind, campaign_id, message_id, method, class,
                                         reasons, device)
                     VALUES ('2026-01-02T00:00:00.000000Z', 'open', 2, 2, 'GET', 'human', '',
                             'desktop')",
                    [],
                )
                .unwrap();
            }
        }
        Arc::new(store)
    }

    async fn all(mut export: EventExport) -> Result<(Vec<u8>, usize), ExportError> {
        let (mut bytes, mut chunks) = (Vec::new(), 0);
        while let Some(chunk) = export.next_chunk().await? {
            bytes.extend(chunk.bytes);
            chunks += 1;
        }
        Ok((bytes, chunks))
    }

    #[tokio::test]
    async fn pages_make_the_same_file_as_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_events(dir.path(), 23);
        let whole = store
            .export_page(CampaignId(1), EventId(0), EventId(i64::MAX), 1000)
            .await
            .unwrap();
        assert_eq!(whole.len(), 23);
        for page in [1, 5, 23, 100] {
            let export = EventExport::start(store.clone(), CampaignId(1), ExportFormat::Csv)
                .await
                .unwrap()
                .with_page_size(page);
            let (csv, chunks) = all(export).await.unwrap();
            assert_eq!(csv, crate::encode::to_csv(&whole).unwrap(), "page {page}");
            assert_eq!(chunks, 23usize.div_ceil(page), "page {page}");
            let export = EventExport::start(store.clone(), CampaignId(1), ExportFormat::Ndjson)
                .await
                .unwrap()
                .with_page_size(page);
            assert_eq!(all(export).await.unwrap().0, to_ndjson(&whole).unwrap());
        }
    }

    /// A Parquet export is one file whatever the pages: a row group per page, every row once.
    #[tokio::test]
    async fn a_parquet_export_has_a_row_group_per_page_and_every_row() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_events(dir.path(), 23);
        let empty_dir = tempfile::tempdir().unwrap();
        let empty = store_with_events(empty_dir.path(), 0);
        for (events, page) in [(23, 5), (23, 100), (0, 5)] {
            let store = match events {
                0 => empty.clone(),
                _ => store.clone(),
            };
            let export = EventExport::start(store, CampaignId(1), ExportFormat::Parquet)
                .await
                .unwrap()
                .with_page_size(page);
            let (bytes, _) = all(export).await.unwrap();
            let file = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
            let meta = file.metadata();
            assert_eq!(meta.file_metadata().num_rows(), events, "page {page}");
            assert_eq!(meta.num_row_groups(), (events as usize).div_ceil(page));
            assert_eq!(meta.file_metadata().schema_descr().num_columns(), 19);
        }
    }

    #[tokio::test]
    async fn an_empty_campaign_is_a_header_row_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_events(dir.path(), 0);
        let export = EventExport::start(store.clone(), CampaignId(1), ExportFormat::Csv)
            .await
            .unwrap();
        assert_eq!(export.up_to(), EventId(0));
        let (csv, _) = all(export).await.unwrap();
        assert_eq!(csv, crate::encode::to_csv(&[]).unwrap());
        assert!(String::from_utf8(csv).unwrap().starts_with("id,kind,"));
        let export = EventExport::start(store, CampaignId(1), ExportFormat::Ndjson)
            .await
            .unwrap();
        assert_eq!(all(export).await.unwrap(), (Vec::new(), 0));
    }

    #[tokio::test]
    async fn events_stored_after_the_start_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_events(dir.path(), 10);
        let mut export = EventExport::start(store.clone(), CampaignId(1), ExportFormat::Ndjson)
            .await
            .unwrap()
            .with_page_size(4);
        let first = export.next_chunk().await.unwrap().unwrap();
        assert_eq!(first.events, 4);
        let c = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        c.execute(
            "INSERT INTO events (received_at, kind, campaign_id, message_id, method, class, reasons,
                                 device)
             VALUES ('2026-01-03T00:00:00.000000Z', 'open', 1, 1, 'GET', 'human', '', 'desktop')",
            [],
        )
        .unwrap();
        let (rest, _) = all(export).await.unwrap();
        let lines = first.bytes.split(|b| *b == b'\n').count() - 1
            + rest.split(|b| *b == b'\n').count()
            - 1;
        assert_eq!(lines, 10);
    }

    #[tokio::test]
    async fn a_failing_database_ends_the_export_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_events(dir.path(), 60);
        let export = EventExport::start(store.clone(), CampaignId(1), ExportFormat::Csv)
            .await
            .unwrap()
            .with_page_size(3);
        let mut rx = export.spawn();
        let first = rx.recv().await.unwrap().unwrap();
        assert_eq!(first.events, 3);
        // The table goes away under the export.
        let c = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        c.execute_batch("ALTER TABLE events RENAME TO gone")
            .unwrap();
        let mut rest = Vec::new();
        while let Some(item) = rx.recv().await {
            rest.push(item);
        }
        // At most the chunks read ahead before the rename, and then the error, last.
        assert!(rest.len() <= AHEAD + 2, "{rest:?}");
        assert!(
            matches!(rest.last(), Some(Err(ExportError::Store(_)))),
            "{rest:?}"
        );
    }
}
