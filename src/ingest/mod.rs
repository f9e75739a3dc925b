//! The group-commit writer: the one place tracking events enter the database.
//!
//! Request handlers hold an [`EventSender`]. Each hands over one event with a reply slot and waits.
//! A single writer thread takes everything queued (up to `max_batch`), stores it in one transaction,
//! and only after the commit returns answers every waiting handler. So a pixel or click is never
//! answered before its event is durable, and under load one commit serves many requests.
//!
//! Back-pressure: the queue is bounded. When it is full, handlers wait for room (they are not
//! dropped and nothing is lost); the wait shows up as latency, and in `mailbeacon_ingest_queue_full_total`.
//!
//! Shutdown: [`GroupCommitWriter::shutdown`] closes the queue, commits everything already in it,
//! answers those handlers, and then the thread ends. Events offered after that get `WriterClosed`.
//!
//! When the database cannot be written (unreachable, full), a batch goes to the local spool
//! instead ([`replay`]): appended and synced to disk before anyone is answered, then replayed in
//! order, exactly once, when the database takes writes again. While anything waits in the spool,
//! new batches are appended behind it, so events reach the database in the order they came.

pub mod destinations;
pub mod replay;
pub mod spool;

use crate::classify::Classifier;
use crate::store::{EventKind, NewEvent, RecordOutcome, Store, StoreError};
use crate::webhooks::delivery::Wake;
use destinations::Destinations;
use replay::Replay;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Events waiting for the writer beyond this are held back by back-pressure.
const QUEUE_CAPACITY: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event writer has shut down")]
    WriterClosed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Pending {
    event: NewEvent,
    reply: oneshot::Sender<Result<RecordOutcome, StoreError>>,
}

/// The handlers' end of the queue. Cheap to clone.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::Sender<Pending>,
    failing: Failing,
    spooled: Arc<std::sync::Mutex<Option<String>>>,
}

/// Why the last commit failed and when, until one succeeds again (for `/readyz`).
type Failing = Arc<std::sync::Mutex<Option<(String, Instant)>>>;

/// How long a failed commit keeps `/readyz` degraded when nothing is committed after it.
pub const FAILURE_REPORTED_FOR: std::time::Duration = std::time::Duration::from_secs(30);

impl EventSender {
    /// Why the writer's last commit failed, if it did in the last [`FAILURE_REPORTED_FOR`] and
    /// none has succeeded since. It lapses on its own so that an instance a load balancer took out
    /// of rotation (and so gets no events to commit) is tried again.
    pub fn failing(&self) -> Option<String> {
        if let Some(spooled) = self
            .spooled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Some(spooled);
        }
        let failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        failing
            .as_ref()
            .filter(|(_, at)| at.elapsed() < FAILURE_REPORTED_FOR)
            .map(|(reason, _)| reason.clone())
    }

    /// After a batch: why the database refused it (`None`: it was stored) and what waits in the
    /// spool, for `/readyz`.
    fn note(&self, failed: Option<String>, spool: Option<&Replay>) {
        if let Some(spool) = spool {
            *self.spooled.lock().unwrap_or_else(|e| e.into_inner()) = spool.describe();
        }
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) =
            failed.map(|r| (r, Instant::now()));
    }

    /// Queues the event and waits until its batch is committed.
    pub async fn record(&self, event: NewEvent) -> Result<RecordOutcome, IngestError> {
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
        match answer.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(IngestError::WriterClosed),
        }
    }
}

/// Owns the writer thread; see the module documentation.
pub struct GroupCommitWriter {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the writer works with besides its queue.
pub struct WriterSetup {
    pub store: Arc<dyn Store>,
    pub classifier: Arc<Classifier>,
    pub max_batch: usize,
    pub webhooks: Wake,
    /// Where batches go when the database cannot be written; `None`: they are refused (503).
    pub spool: Option<Replay>,
    pub destinations: Arc<Destinations>,
}

impl GroupCommitWriter {
    /// Starts the writer on a thread of its own (it blocks on the database; the async runtime
    /// only wakes it and its handlers), from inside the runtime.
    pub fn start(setup: WriterSetup) -> (GroupCommitWriter, EventSender) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let sender = EventSender {
            tx,
            failing: Failing::default(),
            // Said before the thread first runs, so /readyz never reports ready over a full spool.
            spooled: Arc::new(std::sync::Mutex::new(
                setup.spool.as_ref().and_then(Replay::describe),
            )),
        };
        let runtime = tokio::runtime::Handle::current();
        let status = sender.clone();
        let thread = std::thread::Builder::new()
            .name("mailbeacon-writer".into())
            .spawn(move || run(runtime, setup, rx, stopped, status))
            .expect("the writer thread starts");
        (
            GroupCommitWriter {
                stop: Some(stop),
                thread: Some(thread),
            },
            sender,
        )
    }

    /// Closes the queue, commits what is in it and waits for the thread to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                _ => tracing::error!("the event writer thread failed"),
            }
        }
    }
}

/// How often the spool's replay is tried while the database refuses writes.
const REPLAY_RETRY: Duration = Duration::from_secs(1);

/// What woke the writer.
enum Woken {
    /// This many events were received (0: the queue is closed and empty).
    Events(usize),
    Stop,
    RetryReplay,
}

/// The writer thread's loop. It waits for work through the runtime (`block_on` of one wait at a
/// time) and stores each batch on this thread.
fn run(
    runtime: tokio::runtime::Handle,
    mut setup: WriterSetup,
    mut rx: mpsc::Receiver<Pending>,
    mut stop: oneshot::Receiver<()>,
    status: EventSender,
) {
    let max_batch = setup.max_batch.max(1);
    let mut buf: Vec<Pending> = Vec::with_capacity(max_batch);
    let mut stopping = false;
    let mut next_replay = Instant::now();
    loop {
        let pending = setup.spool.as_ref().is_some_and(Replay::pending);
        let retry_in = next_replay.saturating_duration_since(Instant::now());
        let woken = runtime.block_on(async {
            tokio::select! {
                n = rx.recv_many(&mut buf, max_batch) => Woken::Events(n),
                _ = &mut stop, if !stopping => Woken::Stop,
                _ = tokio::time::sleep(retry_in), if pending && !stopping => Woken::RetryReplay,
            }
        });
        let received = match woken {
            Woken::Events(0) => break, // closed and empty
            Woken::Events(n) => n,
            Woken::Stop => {
                // From here on senders are refused; what is already queued is still drained.
                rx.close();
                stopping = true;
                continue;
            }
            Woken::RetryReplay => 0,
        };
        if let Some(spool) = setup.spool.as_mut()
            && spool.pending()
            && Instant::now() >= next_replay
        {
            if let Err(e) = runtime.block_on(spool.replay(&*setup.store, &setup.classifier)) {
                next_replay = Instant::now() + REPLAY_RETRY;
                tracing::debug!("spool replay waits: {e}");
            }
            *status.spooled.lock().unwrap_or_else(|e| e.into_inner()) = spool.describe();
            setup.webhooks.wake();
        }
        if received == 0 {
            continue;
        }
        commit(&runtime, &setup, &status, &mut buf);
        // The batch may have queued webhook notices.
        setup.webhooks.wake();
    }
    if let Some(spool) = setup.spool.as_ref().and_then(Replay::describe) {
        tracing::warn!("stopping with events in the local spool: {spool}");
    }
    tracing::debug!("event writer drained and stopped");
}

/// Stores the batch (or spools it) and answers its handlers. What `/readyz` reports is updated
/// before anyone is answered, so a client that got its answer never reads an older state.
fn commit(
    runtime: &tokio::runtime::Handle,
    setup: &WriterSetup,
    status: &EventSender,
    buf: &mut Vec<Pending>,
) {
    let started = Instant::now();
    let (events, replies): (Vec<NewEvent>, Vec<_>) =
        buf.drain(..).map(|p| (p.event, p.reply)).unzip();
    let answers = match setup.spool.as_ref().filter(|s| s.pending()) {
        // Behind what waits in the spool, so that the order holds.
        Some(spool) => {
            let answers = runtime.block_on(spool_batch(spool, &setup.destinations, &events, None));
            status.note(None, Some(spool));
            answers
        }
        None => store_batch(runtime, setup, status, &events, started),
    };
    for (reply, answer) in replies.into_iter().zip(answers) {
        // A handler whose client went away no longer listens; its event is stored anyway.
        let _ = reply.send(answer);
    }
}

/// Stores the batch, or spools it when the database is unavailable: the answer for each event.
fn store_batch(
    runtime: &tokio::runtime::Handle,
    setup: &WriterSetup,
    status: &EventSender,
    events: &[NewEvent],
    started: Instant,
) -> Vec<Result<RecordOutcome, StoreError>> {
    // A panic in the storage code fails this batch (503), not the writer.
    let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        setup.store.record_events_here(events, &setup.classifier)
    }))
    .unwrap_or_else(|_| Err(StoreError::Other("the group commit panicked".into())));
    match stored {
        Ok(outcomes) => {
            metrics::histogram!("mailbeacon_ingest_batch_size").record(events.len() as f64);
            metrics::histogram!("mailbeacon_ingest_commit_seconds")
                .record(started.elapsed().as_secs_f64());
            for (outcome, event) in outcomes.iter().zip(events) {
                if let (
                    RecordOutcome::Recorded {
                        destination: Some(url),
                        ..
                    },
                    Some(no),
                ) = (outcome, event.link_no)
                {
                    setup.destinations.remember(event.tracking_id, no, url);
                }
            }
            status.note(None, setup.spool.as_ref());
            outcomes.into_iter().map(Ok).collect()
        }
        Err(e) => {
            metrics::counter!("mailbeacon_ingest_commit_failures_total").increment(1);
            tracing::error!(batch = events.len(), "could not commit events: {e}");
            let answers = match (&e, &setup.spool) {
                // Certainly not stored (the database was not reached, or refused before COMMIT):
                // safe to keep for later. A COMMIT whose outcome is unknown is answered 503.
                (StoreError::Unavailable(_), Some(spool)) => {
                    spool.note_error(e.to_string());
                    runtime.block_on(spool_batch(spool, &setup.destinations, events, Some(&e)))
                }
                _ => events.iter().map(|_| Err(e.clone())).collect(),
            };
            status.note(Some(e.to_string()), setup.spool.as_ref());
            answers
        }
    }
}

/// Appends the batch to the spool: for each event `Spooled`, or an error for a click whose
/// destination this process does not know (it cannot be redirected, so it is not taken).
async fn spool_batch(
    spool: &Replay,
    destinations: &Destinations,
    events: &[NewEvent],
    cause: Option<&StoreError>,
) -> Vec<Result<RecordOutcome, StoreError>> {
    let mut taken = Vec::with_capacity(events.len());
    let mut answers = Vec::with_capacity(events.len());
    for event in events {
        let destination = match (event.kind, event.link_no, event.failed_check) {
            (EventKind::Click, Some(no), false) => match destinations.get(event.tracking_id, no) {
                Some(url) => Some(url),
                None => {
                    answers.push(Err(StoreError::Unavailable(format!(
                        "the database is unavailable and this process does not know where link {no} \
                         of that message leads{}",
                        cause.map(|c| format!(" ({c})")).unwrap_or_default()
                    ))));
                    continue;
                }
            },
            _ => None,
        };
        taken.push(spool::SpooledEvent::from(event));
        answers.push(Ok(RecordOutcome::Spooled { destination }));
    }
    let n = taken.len();
    if let Err(e) = spool.append(taken).await {
        tracing::error!("could not write {n} event(s) to the local spool: {e}");
        let e = StoreError::Unavailable(format!("the local spool cannot be written: {e}"));
        for answer in &mut answers {
            if answer.is_ok() {
                *answer = Err(e.clone());
            }
        }
    } else {
        metrics::counter!("mailbeacon_ingest_spooled_total").increment(n as u64);
    }
    answers
}
