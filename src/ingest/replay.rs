//! The writer's side of the local spool: appending batches the database could not take, and
//! replaying them in order when it takes writes again. Each replayed chunk is stored together with
//! the spool position it reaches ([`Store::record_spooled`]), so a replay cut off anywhere (the
//! database going away again, a crash) resumes from what the database says, and no event is
//! stored twice. Segments are deleted once the database has recorded a position past them.

use super::spool::{Position, Spool, SpooledEvent};
use crate::classify::Classifier;
use crate::store::{NewEvent, Store};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records (appended batches) stored per replay transaction.
const RECORDS_PER_CHUNK: usize = 16;
/// A replay gives way to live traffic after this long (new events queue behind it meanwhile).
const REPLAY_SLICE: Duration = Duration::from_millis(250);

pub struct Replay {
    spool: Arc<Mutex<Spool>>,
    dir: PathBuf,
    /// Names this spool in the database's `spool_progress`.
    id: String,
    /// Where the database says the replay stands, once read; `None` after a failed write (its
    /// outcome is read back from the database).
    position: Option<Position>,
    pending: AtomicBool,
    /// Events appended since the spool was last empty (for /readyz).
    waiting: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Held while the process runs: two processes must not share one spool.
    _lock: std::fs::File,
}

impl Replay {
    /// Opens (creating) the spool directory. Whatever an earlier run left there is replayed first.
    pub fn open(dir: &Path) -> anyhow::Result<Replay> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the spool directory {}", dir.display()))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .with_context(|| format!("cannot open {}", dir.join("lock").display()))?;
        lock.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "the spool directory {} is in use by another mailbeacon process (give each process \
                 its own --spool-dir)",
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
        let spool = Spool::open(dir)
            .with_context(|| format!("cannot open the spool in {}", dir.display()))?;
        if spool.torn_tail_bytes() > 0 {
            tracing::warn!(
                "the spool in {} ended in a torn write ({} bytes, never acknowledged): cut off",
                dir.display(),
                spool.torn_tail_bytes()
            );
        }
        // Anything on disk may be unreplayed; the first replay asks the database.
        let pending = spool.pending_bytes(spool.start()) > 0;
        Ok(Replay {
            spool: Arc::new(Mutex::new(spool)),
            dir: dir.to_path_buf(),
            id,
            position: None,
            pending: AtomicBool::new(pending),
            waiting: AtomicU64::new(0),
            last_error: Mutex::new(None),
            _lock: lock,
        })
    }

    /// Events wait in the spool: new ones go behind them.
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// For /readyz while events wait.
    pub fn describe(&self) -> Option<String> {
        self.pending().then(|| {
            let error = self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let waiting = match self.waiting.load(Ordering::Relaxed) {
                // Left by an earlier run: not counted until read.
                0 => "events".to_string(),
                n => format!("{n} event(s)"),
            };
            format!(
                "the database could not be written; {waiting} wait in the local spool {}, to be stored when it returns{}",
                self.dir.display(),
                error.map(|e| format!(" (last error: {e})")).unwrap_or_default()
            )
        })
    }

    /// Why the database refused, for /readyz (replay attempts update it too).
    pub fn note_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    /// Appends one batch and syncs it to disk.
    pub async fn append(&self, events: Vec<SpooledEvent>) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let n = events.len() as u64;
        let spool = self.spool.clone();
        tokio::task::spawn_blocking(move || {
            spool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .append(&events)
        })
        .await
        .map_err(std::io::Error::other)??;
        self.waiting.fetch_add(n, Ordering::Relaxed);
        self.pending.store(true, Ordering::Release);
        Ok(())
    }

    /// Stores what waits, chunk by chunk, for up to [`REPLAY_SLICE`]. `Err` when the database
    /// refused; the spool is left as it was after the last stored chunk.
    pub async fn replay(
        &mut self,
        store: &dyn Store,
        classifier: &Arc<Classifier>,
    ) -> Result<(), String> {
        let started = Instant::now();
        let result = self.replay_slice(store, classifier, started).await;
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = result.clone().err();
        result
    }

    async fn replay_slice(
        &mut self,
        store: &dyn Store,
        classifier: &Arc<Classifier>,
        started: Instant,
    ) -> Result<(), String> {
        loop {
            let position = match self.position {
                Some(p) => p,
                None => {
                    let stored = store
                        .spool_position(self.id.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                    let spool = self.spool.lock().unwrap_or_else(|e| e.into_inner());
                    stored.map_or_else(
                        || spool.start(),
                        |(segment, offset)| Position { segment, offset },
                    )
                }
            };
            self.position = Some(position);
            let spool = self.spool.clone();
            let (events, next) = tokio::task::spawn_blocking(move || {
                spool
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .read_from(position, RECORDS_PER_CHUNK)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read the spool: {e}"))?;
            if events.is_empty() && next == position {
                // Drained. New appends can only come from the writer, which is here.
                self.release(position).await?;
                self.pending.store(false, Ordering::Release);
                self.waiting.store(0, Ordering::Relaxed);
                tracing::info!("the local spool is replayed: every spooled event is stored");
                return Ok(());
            }
            if !events.is_empty() {
                let n = events.len() as u64;
                let batch: Arc<[NewEvent]> =
                    events.into_iter().map(SpooledEvent::into_event).collect();
                if let Err(e) = store
                    .record_spooled(
                        batch,
                        classifier.clone(),
                        self.id.clone(),
                        (next.segment, next.offset),
                    )
                    .await
                {
                    self.position = None;
                    return Err(e.to_string());
                }
                metrics::counter!("mailbeacon_ingest_replayed_total").increment(n);
                let left = self.waiting.load(Ordering::Relaxed).saturating_sub(n);
                self.waiting.store(left, Ordering::Relaxed);
            }
            self.position = Some(next);
            self.release(next).await?;
            if started.elapsed() >= REPLAY_SLICE {
                return Ok(());
            }
        }
    }

    async fn release(&self, upto: Position) -> Result<(), String> {
        let spool = self.spool.clone();
        tokio::task::spawn_blocking(move || {
            spool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(upto)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot release the spool: {e}"))
    }
}
