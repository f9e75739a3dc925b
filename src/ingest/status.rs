//! What the journal writer, the store worker and `/readyz` share about the journal: how many
//! events wait to be stored and since when, how many bytes it holds against its cap, and why
//! writing it or storing it last failed.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a failed journal append keeps `/readyz` degraded when no append succeeds after it.
pub const FAILURE_REPORTED_FOR: Duration = Duration::from_secs(30);
/// How long an opt-out or a consent withdrawal waits for the hits answered before it to be
/// stored, so that it applies from its moment on ([`JournalStatus::stored_so_far`]).
pub const DECISION_WAIT: Duration = Duration::from_secs(10);
/// Groups whose append time is kept for the lag; beyond it the lag is measured more coarsely.
const MARKS: usize = 8192;

pub struct JournalStatus {
    dir: PathBuf,
    max_bytes: u64,
    /// Events appended (those found unstored at start-up included) and events applied.
    appended: AtomicU64,
    applied: AtomicU64,
    /// Bytes from the store worker's position to the end of the journal.
    pending_bytes: AtomicU64,
    /// (events appended after a group, when it was appended), oldest first, for groups not yet
    /// wholly stored.
    marks: Mutex<VecDeque<(u64, Instant)>>,
    /// Why the store worker's last transaction failed and when. Reported while events wait, for
    /// [`FAILURE_REPORTED_FOR`] after it even if smaller transactions get through meanwhile (a
    /// full database may take a few events and refuse the rest); forgotten once nothing waits.
    store_failure: Mutex<Option<(String, Instant)>>,
    /// Why the last append failed and when, until one succeeds.
    journal_failure: Mutex<Option<(String, Instant)>>,
    /// Wakes the store worker after an append.
    pub(super) appended_wake: tokio::sync::Notify,
    /// Events stored so far, for those who wait for the backlog ([`JournalStatus::stored_so_far`]).
    applied_watch: tokio::sync::watch::Sender<u64>,
    /// Failed token checks waiting for the store worker (not journaled).
    pub failed_checks: super::failed_checks::FailedChecks,
    /// Set by an erasure or purge: the stored part of the journal is deleted as soon as the
    /// store worker has caught up ([`JournalStatus::forget_stored`]).
    forget_wanted: AtomicBool,
}

impl JournalStatus {
    pub fn new(dir: PathBuf, max_bytes: u64, pending_events: u64, pending_bytes: u64) -> Self {
        let marks = match pending_events {
            0 => VecDeque::new(),
            n => VecDeque::from([(n, Instant::now())]),
        };
        JournalStatus {
            dir,
            max_bytes,
            appended: AtomicU64::new(pending_events),
            applied: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(pending_bytes),
            marks: Mutex::new(marks),
            store_failure: Mutex::default(),
            journal_failure: Mutex::default(),
            appended_wake: tokio::sync::Notify::new(),
            applied_watch: tokio::sync::watch::Sender::new(0),
            forget_wanted: AtomicBool::new(false),
            failed_checks: Default::default(),
        }
    }

    /// Asks the store worker to delete the journal's stored events (the current segment
    /// included) once it has caught up, rather than when the segment is full or idle: after an
    /// erasure, the erased hits' user agents and addresses leave the disk too.
    pub fn forget_stored(&self) {
        self.forget_wanted.store(true, Ordering::Release);
        self.appended_wake.notify_one();
    }

    /// Notes a failed token check for the store worker, and wakes it.
    pub fn note_failed_check(&self, note: crate::store::NewEvent) -> bool {
        let noted = self.failed_checks.note(note);
        self.appended_wake.notify_one();
        noted
    }

    pub(super) fn take_forget(&self) -> bool {
        self.forget_wanted.swap(false, Ordering::AcqRel)
    }

    /// Waits (at most `limit`) until every event journaled before the call is stored: a change
    /// that decides what becomes of events (an opt-out, a consent withdrawn) then applies from
    /// its moment on, not to hits answered before it that are still in the journal. `false`
    /// when the limit passed first (the database is away: those hits are decided later).
    pub async fn stored_so_far(&self, limit: Duration) -> bool {
        let target = self.appended.load(Ordering::Acquire);
        let mut applied = self.applied_watch.subscribe();
        let reached = applied.wait_for(|&n| n >= target);
        tokio::time::timeout(limit, reached)
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Events answered (journaled) and not yet in the database and its reports.
    pub fn pending_events(&self) -> u64 {
        let applied = self.applied.load(Ordering::Acquire);
        self.appended
            .load(Ordering::Acquire)
            .saturating_sub(applied)
    }

    /// How long the oldest event not yet stored has waited (0 when none waits).
    pub fn lag(&self) -> Duration {
        if self.pending_events() == 0 {
            return Duration::ZERO;
        }
        let marks = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        marks.front().map_or(Duration::ZERO, |(_, at)| at.elapsed())
    }

    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes.load(Ordering::Relaxed)
    }

    /// At its cap: new events are refused until the store worker catches up.
    pub fn full(&self) -> Option<String> {
        let bytes = self.pending_bytes();
        (bytes >= self.max_bytes).then(|| {
            format!(
                "the journal {} is full: it holds {} MB of events not yet stored, its cap \
                 (--max-journal-mb)",
                self.dir.display(),
                bytes >> 20
            )
        })
    }

    /// Why tracking events cannot be taken or stored now, for `/readyz`; `None`: all is well.
    pub fn problem(&self) -> Option<String> {
        let store_failure = self
            .store_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|(_, at)| at.elapsed() < FAILURE_REPORTED_FOR)
            .map(|(why, _)| why);
        if let Some(full) = self.full() {
            let why = store_failure.map(|e| format!(" (the database's last error: {e})"));
            return Some(full + &why.unwrap_or_default());
        }
        if let Some((why, at)) = self
            .journal_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && at.elapsed() < FAILURE_REPORTED_FOR
        {
            return Some(format!(
                "the journal {} cannot be written: {why}",
                self.dir.display()
            ));
        }
        let pending = self.pending_events();
        store_failure.filter(|_| pending > 0).map(|why| {
            format!(
                "the database could not be written; {pending} event(s) wait in the journal {}, to \
                 be stored when it takes them (last error: {why})",
                self.dir.display()
            )
        })
    }

    /// After an append of `events` taking `bytes` (called with the journal held).
    pub(super) fn appended(&self, events: u64, bytes: u64) {
        let total = self.appended.fetch_add(events, Ordering::AcqRel) + events;
        self.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut marks = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        let full = marks.len() >= MARKS;
        match marks.back_mut() {
            Some(last) if full => last.0 = total,
            _ => marks.push_back((total, Instant::now())),
        }
        drop(marks);
        *self
            .journal_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        self.appended_wake.notify_one();
    }

    pub(super) fn append_failed(&self, why: String) {
        *self
            .journal_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((why, Instant::now()));
    }

    /// After the store worker stored `events`; `pending_bytes` is what is left (computed with
    /// the journal held).
    pub(super) fn applied(&self, events: u64, pending_bytes: u64) {
        let total = self.applied.fetch_add(events, Ordering::AcqRel) + events;
        self.pending_bytes.store(pending_bytes, Ordering::Relaxed);
        self.applied_watch.send_replace(total);
        let mut marks = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        while marks.front().is_some_and(|(n, _)| *n <= total) {
            marks.pop_front();
        }
        drop(marks);
        if self.pending_events() == 0 {
            *self.store_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    pub(super) fn store_failure(&self) -> Option<String> {
        self.store_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .map(|(why, _)| why)
    }

    pub(super) fn store_failed(&self, why: String) {
        *self.store_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some((why, Instant::now()));
    }

    /// Sets the journal's gauges in `/metrics`.
    pub fn publish(&self) {
        metrics::gauge!("mailbeacon_journal_pending_events").set(self.pending_events() as f64);
        metrics::gauge!("mailbeacon_journal_pending_bytes").set(self.pending_bytes() as f64);
        metrics::gauge!("mailbeacon_journal_lag_seconds").set(self.lag().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_group_not_stored() {
        let s = JournalStatus::new("j".into(), 1 << 20, 0, 0);
        assert_eq!((s.pending_events(), s.lag()), (0, Duration::ZERO));
        s.appended(3, 100);
        s.appended(2, 50);
        assert_eq!(s.pending_events(), 5);
        assert!(s.lag() > Duration::ZERO);
        s.applied(4, 60);
        assert_eq!((s.pending_events(), s.pending_bytes()), (1, 60));
        assert_eq!(s.marks.lock().unwrap().len(), 1);
        s.applied(1, 0);
        assert_eq!((s.pending_events(), s.lag()), (0, Duration::ZERO));
    }

    #[test]
    fn problems_name_the_cap_and_the_database() {
        let s = JournalStatus::new("j".into(), 100, 0, 0);
        s.store_failed("disk full".into());
        assert_eq!(s.problem(), None, "nothing waits");
        s.appended(1, 10);
        assert!(s.problem().unwrap().contains("disk full"));
        s.appended(1, 95);
        assert!(s.problem().unwrap().contains("--max-journal-mb"));
        s.applied(2, 0);
        assert_eq!(s.problem(), None);
    }

    #[tokio::test]
    async fn waiting_for_the_backlog_ends_when_it_is_stored_or_at_the_limit() {
        let s = std::sync::Arc::new(JournalStatus::new("j".into(), 1 << 20, 0, 0));
        assert!(s.stored_so_far(Duration::ZERO).await, "nothing waits");
        s.appended(2, 20);
        assert!(!s.stored_so_far(Duration::from_millis(10)).await);
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.stored_so_far(Duration::from_secs(60)).await }
        });
        tokio::task::yield_now().await; // the wait begins
        s.applied(1, 10);
        s.appended(5, 50); // after the wait began: not waited for
        s.applied(1, 50);
        assert!(waiting.await.unwrap());
    }
}
