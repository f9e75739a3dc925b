//! The store worker: applies the journal to the database, in order, behind the answers.
//!
//! One thread reads the journal from the position the database has recorded, in chunks of up to
//! `max_batch` events, and stores each chunk with [`Ingest::record_journaled`](crate::store::Ingest::record_journaled), which records the
//! position reached in the same transaction. A crash or a failed transaction anywhere therefore
//! resumes from what the database says: no event is stored twice or skipped. Segments are deleted
//! once the database has recorded a position past them.
//!
//! While the database refuses writes (unreachable, full, read-only) the worker tries again every
//! [`RETRY`]; the journal grows meanwhile (up to its cap) and `/readyz` says why.
//!
//! Shutdown: after the journal writer has stopped, [`StoreWorker::shutdown`] lets the worker store
//! what is left, until it is caught up, the database refuses, or [`SHUTDOWN_GRACE`] has passed;
//! whatever is left then waits in the journal for the next start.

use super::journal::{Journal, Position};
use super::status::JournalStatus;
use crate::classify::Classifier;
use crate::store::{NewEvent, RecordOutcome, Store, StoreError};
use crate::webhook_delivery::Wake;
use anyhow::Context;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a transaction the database refused is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// How long shutdown waits for the worker to store what the journal still holds.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// A fully stored current segment is closed and deleted once it holds this much.
const ROTATE_FROM: u64 = 4 << 20;
/// Idle this long with everything stored, the current segment goes whatever its size: answered
/// events do not linger on disk once they are in the database.
const IDLE_ROTATE: Duration = Duration::from_secs(10);

/// A journal directory opened for this process: the segments, the id the database records its
/// progress under, and a lock so that two processes never share it.
pub struct JournalDir {
    pub journal: Journal,
    pub id: String,
    /// Held while the process runs.
    pub lock: std::fs::File,
}

impl JournalDir {
    pub fn open(dir: &Path, fsync: bool) -> anyhow::Result<JournalDir> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the journal directory {}", dir.display()))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .with_context(|| format!("cannot open {}", dir.join("lock").display()))?;
        lock.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "the journal directory {} is in use by another mailbeacon process (give each \
                 process its own --journal-dir)",
                dir.display()
            )
        })?;
        let id_file = dir.join("id");
        let id = match std::fs::read_to_string(&id_file) {
            Ok(id) if !id.trim().is_empty() => id.trim().to_string(),
            _ => {
                let mut bytes = [0u8; 12];
                getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
                let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                std::fs::write(&id_file, &id)
                    .with_context(|| format!("cannot write {}", id_file.display()))?;
                id
            }
        };
        let mut journal = Journal::open(dir)
            .with_context(|| format!("cannot open the journal in {}", dir.display()))?;
        journal.set_fsync(fsync);
        if journal.torn_tail_bytes() > 0 {
            tracing::warn!(
                "the journal in {} ended in a torn write ({} bytes, never acknowledged): cut off",
                dir.display(),
                journal.torn_tail_bytes()
            );
        }
        Ok(JournalDir { journal, id, lock })
    }
}

/// What the worker works with.
pub struct WorkerSetup {
    pub store: Arc<dyn Store>,
    pub classifier: Arc<Classifier>,
    pub max_batch: usize,
    pub webhooks: Wake,
    pub journal: Arc<Mutex<Journal>>,
    pub journal_id: String,
    pub status: Arc<JournalStatus>,
}

/// Owns the worker thread; see the module documentation.
pub struct StoreWorker {
    stop: Arc<AtomicBool>,
    status: Arc<JournalStatus>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StoreWorker {
    /// Starts the worker on a thread of its own, from inside the runtime.
    pub fn start(setup: WorkerSetup) -> StoreWorker {
        let stop = Arc::new(AtomicBool::new(false));
        let status = setup.status.clone();
        let runtime = tokio::runtime::Handle::current();
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mailbeacon-store".into())
            .spawn(move || run(runtime, setup, stopping))
            .expect("the store worker thread starts");
        StoreWorker {
            stop,
            status,
            thread: Some(thread),
        }
    }

    /// Call after the journal writer has stopped: stores what is left (see the module
    /// documentation) and waits for the thread to end.
    pub async fn shutdown(mut self) {
        self.stop.store(true, Ordering::Release);
        self.status.appended_wake.notify_one();
        if let Some(thread) = self.thread.take() {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                _ => tracing::error!("the store worker thread failed"),
            }
        }
    }
}

fn run(runtime: tokio::runtime::Handle, setup: WorkerSetup, stop: Arc<AtomicBool>) {
    yield_to_answers();
    let mut position: Option<Position> = None;
    // Where the events counted as stored end (for the backlog), once known.
    let mut applied_to: Option<Position> = None;
    let mut stop_by: Option<Instant> = None;
    let mut idle_since = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) {
            let deadline = *stop_by.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
            if Instant::now() >= deadline {
                break;
            }
        }
        // A panic (a bug) must not stop the storing: the step is tried again from what the
        // database says.
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            step(&runtime, &setup, &mut position, &mut applied_to)
        }));
        let step = stepped.unwrap_or_else(|_| {
            tracing::error!("the store worker failed a step; it starts again from the database");
            position = None;
            Step::Failed
        });
        setup.status.publish();
        let wait = match step {
            Step::Stored => {
                setup.webhooks.wake();
                idle_since = Instant::now();
                continue;
            }
            Step::Again => continue,
            Step::CaughtUp if stop_by.is_some() => break,
            Step::CaughtUp => {
                if setup.status.take_forget() || idle_since.elapsed() >= IDLE_ROTATE {
                    release(&setup, position, 0);
                    idle_since = Instant::now();
                }
                IDLE_ROTATE
            }
            Step::Failed if stop_by.is_some() => break,
            Step::Failed => {
                // New events do not make the database take writes: wait the full interval.
                runtime.block_on(async { tokio::time::sleep(RETRY).await });
                continue;
            }
        };
        runtime.block_on(async {
            let _ = tokio::time::timeout(wait, setup.status.appended_wake.notified()).await;
        });
    }
    let left = setup.status.pending_events();
    if left > 0 {
        tracing::warn!(
            "stopping with {left} event(s) in the journal, to be stored at the next start"
        );
    }
    tracing::debug!("store worker stopped");
}

enum Step {
    Stored,
    /// Nothing stored, to be tried again at once.
    Again,
    CaughtUp,
    Failed,
}

/// Stores the next chunk of the journal, if there is one.
fn step(
    runtime: &tokio::runtime::Handle,
    setup: &WorkerSetup,
    position: &mut Option<Position>,
    applied_to: &mut Option<Position>,
) -> Step {
    let pos = match *position {
        Some(p) => p,
        None => match runtime.block_on(setup.store.journal_position(setup.journal_id.clone())) {
            Ok(stored) => {
                let start = setup
                    .journal
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .start();
                let p = stored.map_or(start, |(segment, offset)| Position { segment, offset });
                // A COMMIT whose answer was lost may have gone through: what it stored counts.
                if let Some(from) = *applied_to
                    && p > from
                {
                    let n = count_records(&setup.journal, from, p);
                    let pending = setup
                        .journal
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .pending_bytes(p);
                    setup.status.applied(n, pending);
                }
                *position = Some(p);
                *applied_to = Some(p);
                p
            }
            Err(e) => {
                setup.status.store_failed(e.to_string());
                return Step::Failed;
            }
        },
    };
    let view = setup
        .journal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .view();
    let (events, next) = match view.read_from(pos, setup.max_batch) {
        Ok(read) => read,
        Err(e) => {
            tracing::error!("cannot read the journal: {e}");
            setup
                .status
                .store_failed(format!("cannot read the journal: {e}"));
            return Step::Failed;
        }
    };
    let notes = setup.status.failed_checks.take();
    if events.is_empty() && notes.is_empty() {
        if next != pos {
            *position = Some(next);
            *applied_to = Some(next);
            release(setup, Some(next), ROTATE_FROM);
        }
        return Step::CaughtUp;
    }
    let started = Instant::now();
    let n = events.len();
    let mut batch: Vec<NewEvent> = events;
    // Noted on their messages in the same transaction (lost if it fails: see failed_checks).
    batch.extend(notes);
    // A panic in the storage code fails this transaction, not the worker.
    let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        setup.store.record_journaled(
            &batch,
            &setup.classifier,
            &setup.journal_id,
            (next.segment, next.offset),
        )
    }))
    .unwrap_or_else(|_| Err(StoreError::Other("storing a chunk panicked".into())));
    match stored {
        Ok(outcomes) => {
            metrics::histogram!("mailbeacon_ingest_batch_size").record(n as f64);
            metrics::histogram!("mailbeacon_ingest_commit_seconds")
                .record(started.elapsed().as_secs_f64());
            count(&outcomes);
            *position = Some(next);
            *applied_to = Some(next);
            let pending = {
                let mut journal = setup.journal.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = journal.release(next, ROTATE_FROM) {
                    tracing::warn!("cannot delete stored journal segments: {e}");
                }
                journal.pending_bytes(next)
            };
            setup.status.applied(n as u64, pending);
            Step::Stored
        }
        Err(StoreError::Conflict(e)) => {
            // Another process's transaction was in the way and PostgreSQL chose this one to
            // undo: nothing was stored, so the same events are tried again at once.
            tracing::debug!(
                batch = n,
                "storing conflicted with another writer, again: {e}"
            );
            metrics::counter!("mailbeacon_ingest_conflicts_total").increment(1);
            Step::Again
        }
        Err(e) => {
            metrics::counter!("mailbeacon_ingest_commit_failures_total").increment(1);
            // Once per outage in the log; /readyz says it all along.
            if setup.status.store_failure().as_deref() == Some(e.to_string().as_str()) {
                tracing::debug!(batch = n, "could not store events from the journal: {e}");
            } else {
                tracing::error!(batch = n, "could not store events from the journal: {e}");
            }
            setup.status.store_failed(e.to_string());
            // The outcome of a failed COMMIT is unknown: ask the database where it stands.
            *position = None;
            Step::Failed
        }
    }
}

/// Lowers this thread's scheduling priority (nice 5): when the CPU is short, answering requests
/// comes first and storing catches up afterwards (the journal holds the difference, and the lag
/// says how far behind the reports are); with CPU to spare it changes nothing. Measured on the
/// 2-core machine, `bench/run --seconds 8 --backends sqlite`: pixels 34,141/s (0.38x nginx,
/// catch-up 0.01 s) at the same priority, 53,044/s (0.56x, catch-up 3.5 s) at nice 10. Nice 5
/// and 10 alternating: 0.46-0.51x against 0.46-0.54x, catch-up 0.6-2.2 s against 1.8-3.6 s, so 5:
/// the same answers, and other processes on the machine starve the worker less.
fn yield_to_answers() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on this thread's own id; a refusal only leaves the priority.
        let tid = unsafe { libc::gettid() };
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 5) };
    }
}

/// Events in the records from `from` to `to` (record boundaries).
fn count_records(journal: &Mutex<Journal>, from: Position, to: Position) -> u64 {
    let view = journal.lock().unwrap_or_else(|e| e.into_inner()).view();
    let (mut pos, mut n) = (from, 0);
    while pos < to {
        match view.read_from(pos, 1) {
            Ok((events, next)) if next > pos => (pos, n) = (next, n + events.len() as u64),
            _ => break,
        }
    }
    n
}

fn release(setup: &WorkerSetup, position: Option<Position>, rotate_from: u64) {
    let Some(upto) = position else { return };
    let mut journal = setup.journal.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = journal.release(upto, rotate_from) {
        tracing::warn!("cannot delete stored journal segments: {e}");
    }
}

fn count(outcomes: &[RecordOutcome]) {
    let (mut recorded, mut not_stored, mut unknown) = (0u64, 0u64, 0u64);
    for outcome in outcomes {
        match outcome {
            RecordOutcome::Recorded { .. } => recorded += 1,
            RecordOutcome::NotStored { .. } => not_stored += 1,
            RecordOutcome::UnknownMessage | RecordOutcome::UnknownLink => unknown += 1,
            RecordOutcome::FailedCheckNoted => {}
        }
    }
    for (outcome, n) in [
        ("recorded", recorded),
        ("not_stored", not_stored),
        ("unknown", unknown),
    ] {
        if n > 0 {
            metrics::counter!("mailbeacon_ingest_stored_total", "outcome" => outcome).increment(n);
        }
    }
}
