//! The journal writer: the one place tracking events are written before they are answered.
//!
//! Request handlers hold an [`EventSender`]. Each hands over one event with a reply slot and waits.
//! A single writer thread takes everything queued (up to `max_group`), appends it to the journal
//! as one record and only then answers every waiting handler: one `write` (and with `--fsync` one
//! `fdatasync`) serves many requests.
//!
//! Back-pressure: the queue is bounded. When it is full, handlers wait for room (nothing is
//! dropped); the wait shows up as latency and in `mailbeacon_ingest_queue_full_total`. When the
//! journal is at its cap or the disk refuses the write, the group's handlers get an error (503).
//!
//! Shutdown: [`JournalWriter::shutdown`] closes the queue, appends everything already in it,
//! answers those handlers, and then the thread ends. Events offered after that get `WriterClosed`.

use super::journal::{Journal, JournaledEvent};
use super::status::JournalStatus;
use crate::store::NewEvent;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Events waiting for the writer beyond this are held back by back-pressure.
const QUEUE_CAPACITY: usize = 16_384;
/// Most events appended as one record.
const MAX_GROUP: usize = 4096;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("the event writer has shut down")]
    WriterClosed,
    #[error("{0}")]
    JournalFull(String),
    #[error("the journal cannot be written: {0}")]
    Journal(String),
}

struct Pending {
    event: NewEvent,
    reply: oneshot::Sender<Result<(), IngestError>>,
}

/// The handlers' end of the queue. Cheap to clone.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::Sender<Pending>,
    status: Arc<JournalStatus>,
}

impl EventSender {
    pub fn status(&self) -> &JournalStatus {
        &self.status
    }

    /// Queues the event and waits until it is in the journal.
    pub async fn record(&self, event: NewEvent) -> Result<(), IngestError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { event, reply };
        let pending = match self.tx.try_send(pending) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(p)) => {
                metrics::counter!("mailbeacon_ingest_queue_full_total").increment(1);
                Some(p)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(IngestError::WriterClosed),
        };
        if let Some(p) = pending {
            self.tx
                .send(p)
                .await
                .map_err(|_| IngestError::WriterClosed)?;
        }
        answer.await.unwrap_or(Err(IngestError::WriterClosed))
    }
}

/// Owns the writer thread; see the module documentation.
pub struct JournalWriter {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JournalWriter {
    /// Starts the writer on a thread of its own, from inside the runtime.
    pub fn start(
        journal: Arc<Mutex<Journal>>,
        status: Arc<JournalStatus>,
    ) -> (JournalWriter, EventSender) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let sender = EventSender {
            tx,
            status: status.clone(),
        };
        let runtime = tokio::runtime::Handle::current();
        let thread = std::thread::Builder::new()
            .name("mailbeacon-journal".into())
            .spawn(move || run(runtime, journal, status, rx, stopped))
            .expect("the journal writer thread starts");
        let writer = JournalWriter {
            stop: Some(stop),
            thread: Some(thread),
        };
        (writer, sender)
    }

    /// Closes the queue, appends what is in it and waits for the thread to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                _ => tracing::error!("the journal writer thread failed"),
            }
        }
    }
}

/// The writer thread's loop: it waits for work through the runtime and writes on this thread.
fn run(
    runtime: tokio::runtime::Handle,
    journal: Arc<Mutex<Journal>>,
    status: Arc<JournalStatus>,
    mut rx: mpsc::Receiver<Pending>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut buf: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
    let mut stopping = false;
    loop {
        let received = runtime.block_on(async {
            tokio::select! {
                n = rx.recv_many(&mut buf, MAX_GROUP) => Some(n),
                _ = &mut stop, if !stopping => None,
            }
        });
        match received {
            Some(0) => break, // closed and empty
            Some(_) => append(&journal, &status, &mut buf),
            None => {
                // From here on senders are refused; what is already queued is still written.
                rx.close();
                stopping = true;
            }
        }
    }
    tracing::debug!("journal writer drained and stopped");
}

/// Appends the group and answers its handlers.
fn append(journal: &Mutex<Journal>, status: &JournalStatus, buf: &mut Vec<Pending>) {
    let group: Vec<JournaledEvent> = buf.iter().map(|p| JournaledEvent::from(&p.event)).collect();
    let n = group.len() as u64;
    let written = match status.full() {
        Some(full) => {
            metrics::counter!("mailbeacon_ingest_refused_total", "reason" => "journal_full")
                .increment(n);
            Err(IngestError::JournalFull(full))
        }
        None => {
            let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
            match journal.append(&group) {
                Ok(bytes) => {
                    status.appended(n, bytes);
                    Ok(())
                }
                Err(e) => {
                    metrics::counter!("mailbeacon_ingest_refused_total", "reason" => "journal_error")
                        .increment(n);
                    tracing::error!("could not append {n} event(s) to the journal: {e}");
                    status.append_failed(e.to_string());
                    Err(IngestError::Journal(e.to_string()))
                }
            }
        }
    };
    metrics::histogram!("mailbeacon_journal_group_size").record(n as f64);
    for pending in buf.drain(..) {
        // A handler whose client went away no longer listens; its event is journaled anyway.
        let _ = pending.reply.send(written.clone());
    }
}
