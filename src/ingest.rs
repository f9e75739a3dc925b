//! The group-commit writer: the one place tracking events enter the database.
//!
//! Request handlers hold an [`EventSender`]. Each hands over one event with a reply slot and waits.
//! A single writer task takes everything queued (up to `max_batch`), stores it in one transaction,
//! and only after the commit returns answers every waiting handler. So a pixel or click is never
//! answered before its event is durable, and under load one commit serves many requests.
//!
//! Back-pressure: the queue is bounded. When it is full, handlers wait for room (they are not
//! dropped and nothing is lost); the wait shows up as latency, and in `mailbeacon_ingest_queue_full_total`.
//!
//! Shutdown: [`GroupCommitWriter::shutdown`] closes the queue, commits everything already in it,
//! answers those handlers, and then the task ends. Events offered after that get `WriterClosed`.

use crate::classify::Classifier;
use crate::store::{NewEvent, RecordOutcome, Store, StoreError};
use crate::webhooks::delivery::Wake;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

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
        let failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        failing
            .as_ref()
            .filter(|(_, at)| at.elapsed() < FAILURE_REPORTED_FOR)
            .map(|(reason, _)| reason.clone())
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

/// Owns the writer task; see the module documentation.
pub struct GroupCommitWriter {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl GroupCommitWriter {
    pub fn start(
        store: Arc<dyn Store>,
        classifier: Arc<Classifier>,
        max_batch: usize,
        webhooks: Wake,
    ) -> (GroupCommitWriter, EventSender) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let failing = Failing::default();
        let task = tokio::spawn(run(
            store,
            classifier,
            rx,
            stopped,
            max_batch.max(1),
            webhooks,
            failing.clone(),
        ));
        (
            GroupCommitWriter {
                stop: Some(stop),
                task,
            },
            EventSender { tx, failing },
        )
    }

    /// Closes the queue, commits what is in it and waits for the task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = (&mut self.task).await {
            tracing::error!("event writer task failed: {e}");
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    classifier: Arc<Classifier>,
    mut rx: mpsc::Receiver<Pending>,
    mut stop: oneshot::Receiver<()>,
    max_batch: usize,
    webhooks: Wake,
    failing: Failing,
) {
    let mut buf: Vec<Pending> = Vec::with_capacity(max_batch);
    let mut stopping = false;
    loop {
        let received = if stopping {
            rx.recv_many(&mut buf, max_batch).await
        } else {
            tokio::select! {
                n = rx.recv_many(&mut buf, max_batch) => n,
                _ = &mut stop => {
                    // From here on senders are refused; what is already queued is still drained.
                    rx.close();
                    stopping = true;
                    continue;
                }
            }
        };
        if received == 0 {
            break; // closed and empty
        }
        let failed = commit(&*store, &classifier, &mut buf).await;
        *failing.lock().unwrap_or_else(|e| e.into_inner()) = failed.map(|r| (r, Instant::now()));
        // The batch may have queued webhook notices.
        webhooks.wake();
    }
    tracing::debug!("event writer drained and stopped");
}

/// Returns why the commit failed, if it did.
async fn commit(
    store: &dyn Store,
    classifier: &Arc<Classifier>,
    buf: &mut Vec<Pending>,
) -> Option<String> {
    let started = Instant::now();
    let (events, replies): (Vec<NewEvent>, Vec<_>) =
        buf.drain(..).map(|p| (p.event, p.reply)).unzip();
    let size = events.len();
    match store.record_events(events, classifier.clone()).await {
        Ok(outcomes) => {
            metrics::histogram!("mailbeacon_ingest_batch_size").record(size as f64);
            metrics::histogram!("mailbeacon_ingest_commit_seconds")
                .record(started.elapsed().as_secs_f64());
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A handler whose client went away no longer listens; its event is stored anyway.
                let _ = reply.send(Ok(outcome));
            }
            None
        }
        Err(e) => {
            metrics::counter!("mailbeacon_ingest_commit_failures_total").increment(1);
            tracing::error!(batch = size, "could not commit events: {e}");
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
            Some(e.to_string())
        }
    }
}
