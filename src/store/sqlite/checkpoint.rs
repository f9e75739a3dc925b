//! WAL checkpoints kept off the group-commit writer.
//!
//! Left to itself SQLite checkpoints inside the COMMIT that takes the WAL past 1,000 pages: the
//! writer copies every page of the WAL into the database file and syncs both before the batch is
//! answered, a stall that under load decides the p99 latency. Here a thread with a connection of
//! its own copies the pages in the background (a passive checkpoint never blocks the writer),
//! woken by the writer's commits. Background passes alone never let the WAL start over under a
//! steady load: each finishes only the frames that were there when it began, and by then the
//! writer has added more, so the WAL would grow without end. So when a pass finds the WAL past
//! [`RESTART_FRAMES`], the writer is asked to checkpoint what is left itself, between two
//! transactions ([`Checkpoints::before_write`]): only the frames written since that pass began.
//! With nothing left to copy, the writer's next transaction writes from the start of the WAL again.

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// WAL size (in pages) from which the writer is asked to finish a checkpoint, so that the WAL
/// starts over: SQLite's own default mark.
const RESTART_FRAMES: i32 = 1_000;

/// The background thread is woken after commits that leave at least this many pages in the WAL.
const COPY_FROM_FRAMES: i32 = 200;

/// The writer copies the whole WAL by itself, as SQLite would, only past this: a net for when the
/// background thread cannot keep up (a reader holding an old snapshot stops both alike).
const WRITER_FALLBACK_FRAMES: i32 = 10 * RESTART_FRAMES;

/// The writer's side; the background thread ends when this and the writer's connection are gone.
pub struct Checkpoints {
    finish_wanted: Arc<AtomicBool>,
}

impl Checkpoints {
    /// Starts the background thread on a connection of its own (opened by `connect`) and hooks
    /// the writer's commits to it; this replaces SQLite's automatic checkpoint on `writer`.
    pub fn start(
        path: &Path,
        writer: &mut Connection,
        connect: impl FnOnce(&Path) -> rusqlite::Result<Connection>,
    ) -> anyhow::Result<Checkpoints> {
        let conn = connect(path)?;
        let finish_wanted = Arc::new(AtomicBool::new(false));
        // Holds at most one wake-up: commits while a pass runs ask for one more pass, not many.
        let (wake, woken) = mpsc::sync_channel(1);
        let wanted = finish_wanted.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(conn, &wanted, &woken))?;
        // An error returned from here would fail the COMMIT that has already happened: none is.
        writer.wal_hook(Some(move |wal: &mut Wal, frames| {
            if frames >= WRITER_FALLBACK_FRAMES {
                if let Err(e) = wal.checkpoint() {
                    tracing::debug!("the writer's fallback checkpoint did not run: {e}");
                }
            } else if frames >= COPY_FROM_FRAMES {
                let _ = wake.try_send(());
            }
            Ok(())
        }))?;
        Ok(Checkpoints { finish_wanted })
    }

    /// Called by the writer before each transaction, on its connection: finishes the checkpoint
    /// the background thread asked for. Its failure (a reader holding an old snapshot, another
    /// process checkpointing) only means the WAL starts over a little later.
    pub fn before_write(&self, writer: &Connection) {
        if self.finish_wanted.swap(false, Ordering::AcqRel)
            && let Err(e) = passive(writer)
        {
            tracing::debug!("the writer's checkpoint did not run: {e}");
        }
    }
}

fn run(conn: Connection, finish_wanted: &AtomicBool, woken: &mpsc::Receiver<()>) {
    // Ends when the writer's connection, which holds the sending end, is closed.
    while woken.recv().is_ok() {
        // While the writer has not taken its turn, another pass would only race it for the lock.
        if finish_wanted.load(Ordering::Acquire) {
            continue;
        }
        match passive(&conn) {
            Ok(in_wal) if in_wal >= RESTART_FRAMES => finish_wanted.store(true, Ordering::Release),
            Ok(_) => {}
            Err(e) => tracing::debug!("background checkpoint: {e}"),
        }
    }
}

/// A passive checkpoint: copies what it can without waiting; the number of pages in the WAL.
fn passive(conn: &Connection) -> rusqlite::Result<i32> {
    conn.wal_checkpoint_v2(
        Some(rusqlite::MAIN_DB),
        rusqlite::wal::CheckpointMode::PASSIVE,
    )
    .map(|(in_wal, _)| in_wal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queries::Engine;
    use crate::store::sqlite::SqliteStore;
    use std::io::Read;
    use std::time::{Duration, Instant};

    /// The WAL file's page size and checkpoint sequence number (its header: SQLite counts each
    /// time the WAL starts over).
    fn wal_header(wal: &Path) -> (u64, u32) {
        let mut header = [0u8; 16];
        std::fs::File::open(wal)
            .and_then(|mut f| f.read_exact(&mut header))
            .unwrap();
        let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().unwrap());
        (u64::from(word(8)), word(12))
    }

    #[test]
    fn under_steady_writes_the_wal_starts_over_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (store, _) = SqliteStore::open(&path, false).unwrap();
        let write = |sql: &str| store.engine.write_here(|c| c.execute_batch(sql)).unwrap();
        write("CREATE TABLE filler (b BLOB)");
        let wal = dir.path().join("t.db-wal");
        let started = Instant::now();
        let (page_size, mut sequence) = wal_header(&wal);
        let (mut restarts, mut inserts) = (0, 0);
        while restarts < 5 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the WAL started over {restarts} times in a minute of writes"
            );
            write(
                "BEGIN IMMEDIATE; INSERT INTO filler VALUES (randomblob(3000)), (randomblob(3000)), \
                 (randomblob(3000)), (randomblob(3000)); COMMIT",
            );
            inserts += 4;
            let now = wal_header(&wal).1;
            if now != sequence {
                (restarts, sequence) = (restarts + 1, now);
            }
        }
        // The file is as long as the WAL ever was: it is written from its start again, not cut.
        // How far past RESTART_FRAMES it got depends on how often the background thread ran (on
        // a busy machine, rarely: one CI run saw 6,240 pages); the writer's own fallback is what
        // bounds it whatever the scheduling, plus the one transaction that crossed the mark.
        let pages = (std::fs::metadata(&wal).unwrap().len() - 32) / (page_size + 24);
        assert!(
            pages <= WRITER_FALLBACK_FRAMES as u64 + 8,
            "the WAL grew to {pages} pages (the writer copies it itself past {WRITER_FALLBACK_FRAMES})"
        );
        let rows: i64 = store
            .engine
            .write_here(|c| c.query("SELECT count(*) FROM filler", &[])?[0].get(0))
            .unwrap();
        assert_eq!(rows, inserts);
    }
}
