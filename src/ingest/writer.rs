//! The journal writer: the one place tracking events are written before they are answered.
//!
//! Request handlers hold an [`EventSender`]. Each puts its event in a shared queue and then tries
//! to become the writer (flat combining): the handler that gets the writer's lock appends
//! everything queued as one record (one `write`, and with `--fsync` one `fdatasync`), marks every
//! event of the group done, wakes their handlers, and goes on while more is queued. A handler
//! that finds the lock taken waits to be woken: its event is in a group the writer takes. So
//! under load one `write` serves many requests, as a group commit does, and without load a
//! request writes its own event with no hand-over to another thread (measured with `perf`: the
//! hand-over's context switches and futex wake-ups were about a fifth of the request workers'
//! samples).
//!
//! Back-pressure: the queue holds at most one event per request in flight. When the journal is
//! at its cap or the disk refuses the write, the group's handlers get an error (503).
//!
//! Shutdown: [`JournalWriter::shutdown`] refuses new events (`WriterClosed`) and writes what is
//! still queued; the server has by then finished the requests in flight.

use super::journal::{EncodedEvent, Journal};
use super::status::JournalStatus;
use crate::store::NewEvent;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Groups one writer appends before it hands the rest to a task of its own, so that a request
/// does not write for others for long.
const MAX_ROUNDS: usize = 16;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("the event writer has shut down")]
    WriterClosed,
    #[error("{0}")]
    JournalFull(String),
    #[error("the journal cannot be written: {0}")]
    Journal(String),
}

/// Where a waiting handler's answer is left.
#[derive(Default)]
struct Slot {
    result: Mutex<Option<Result<(), IngestError>>>,
    written: tokio::sync::Notify,
}

struct Pending {
    event: EncodedEvent,
    slot: Arc<Slot>,
}

struct Shared {
    queue: Mutex<Vec<Pending>>,
    /// Held by the handler that writes (the journal itself is also read by the store worker).
    writing: Mutex<()>,
    journal: Arc<Mutex<Journal>>,
    status: Arc<JournalStatus>,
    closed: AtomicBool,
    /// Appends sync to disk: they may take milliseconds, so the runtime is told it blocks.
    fsync: bool,
}

/// The handlers' end. Cheap to clone.
#[derive(Clone)]
pub struct EventSender {
    shared: Arc<Shared>,
}

impl EventSender {
    pub fn status(&self) -> &JournalStatus {
        &self.shared.status
    }

    /// Queues the event and returns once it is in the journal.
    pub async fn record(&self, event: NewEvent) -> Result<(), IngestError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(IngestError::WriterClosed);
        }
        let slot = Arc::new(Slot::default());
        let event = EncodedEvent::new(&event);
        lock(&self.shared.queue).push(Pending {
            event,
            slot: slot.clone(),
        });
        combine(&self.shared);
        loop {
            if let Some(result) = lock(&slot.result).take() {
                return result;
            }
            // A wake-up given before this wait starts is kept (Notify stores one permit).
            slot.written.notified().await;
        }
    }
}

/// Owns the writer's state for shutdown; see the module documentation.
pub struct JournalWriter {
    shared: Arc<Shared>,
}

impl JournalWriter {
    pub fn start(
        journal: Arc<Mutex<Journal>>,
        status: Arc<JournalStatus>,
        fsync: bool,
    ) -> (JournalWriter, EventSender) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            writing: Mutex::new(()),
            journal,
            status,
            closed: AtomicBool::new(false),
            fsync,
        });
        let sender = EventSender {
            shared: shared.clone(),
        };
        (JournalWriter { shared }, sender)
    }

    /// Refuses new events and writes what is queued.
    pub async fn shutdown(self) {
        self.shared.closed.store(true, Ordering::Release);
        combine(&self.shared);
    }
}

/// Becomes the writer if nobody is, and appends what is queued until the queue is empty (or
/// [`MAX_ROUNDS`] groups, then a task goes on). Returns at once when another handler writes: it
/// looks at the queue again after it lets go of the lock, so nothing queued is left behind.
fn combine(shared: &Arc<Shared>) {
    loop {
        let Ok(writing) = shared.writing.try_lock() else {
            return;
        };
        for _ in 0..MAX_ROUNDS {
            let group = std::mem::take(&mut *lock(&shared.queue));
            if group.is_empty() {
                break;
            }
            let written = if shared.fsync
                && tokio::runtime::Handle::try_current()
                    .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
            {
                tokio::task::block_in_place(|| append(shared, &group))
            } else {
                append(shared, &group)
            };
            for pending in group {
                *lock(&pending.slot.result) = Some(written.clone());
                pending.slot.written.notify_one();
            }
        }
        drop(writing);
        if lock(&shared.queue).is_empty() {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let shared = shared.clone();
            handle.spawn(async move { combine(&shared) });
            return;
        }
    }
}

/// Appends one group as one record.
fn append(shared: &Shared, group: &[Pending]) -> Result<(), IngestError> {
    let n = group.len() as u64;
    metrics::histogram!("mailbeacon_journal_group_size").record(n as f64);
    let status = &shared.status;
    if let Some(full) = status.full() {
        metrics::counter!("mailbeacon_ingest_refused_total", "reason" => "journal_full")
            .increment(n);
        return Err(IngestError::JournalFull(full));
    }
    let mut journal = lock(&shared.journal);
    match journal.append(group.iter().map(|p| &p.event)) {
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
