//! One message of a group commit: what the batch read of it, and its history as the batch's
//! events are added (kept bounded inside the batch, see [`MessageRow::compact_when_long`]).

use super::history::History;
use crate::analytics::rollup::{Fact, Seen};
use crate::classify::Prior;
use crate::store::{CampaignId, EventKind, MessageId};
use chrono::{DateTime, Utc};

/// The message an event names, as the group commit needs it.
pub(super) struct MessageRow {
    pub(super) id: MessageId,
    pub(super) campaign_id: CampaignId,
    pub(super) recipient_id: String,
    pub(super) sent_at: DateTime<Utc>,
    pub(super) failed_check_at: Option<DateTime<Utc>>,
    /// Its events so far, oldest first (earlier events of the batch included).
    pub(super) prior: Vec<Prior>,
    /// What the rollups know of them: representatives of deleted events, then the stored ones.
    pub(super) facts: Vec<Fact>,
    /// Facts before the stored events (retention's representatives).
    pub(super) offset: usize,
    /// The first `older` of `prior` (and of `facts` after `offset`) stand for events its history
    /// summary folded ([`History`]); the rest are events with their ids.
    pub(super) older: usize,
    /// The summary's cutoff ([`History::cutoff`]).
    pub(super) cutoff: Option<DateTime<Utc>>,
    /// The summary's latest arrivals ([`History::last`]).
    pub(super) last: Vec<(EventKind, Option<u16>, DateTime<Utc>)>,
    /// When its earliest event of this batch arrived.
    pub(super) batch_from: DateTime<Utc>,
    /// Events held in full after the last compaction inside this batch (at most
    /// [`history::MAX_RECENT`]): the next comes when that many and 64 more have been added.
    pub(super) kept: usize,
    /// `prior` came from the summary; otherwise from the event log (and the summary is rebuilt).
    pub(super) summarised: bool,
    /// Events of this batch were stored for it.
    pub(super) stored: bool,
    /// What `facts` have shown the rollups, built at the first event of the batch and kept
    /// current as events are added (`None` again whenever `facts` change otherwise).
    pub(super) seen: Option<Seen>,
}

impl MessageRow {
    /// The summary of its events as they stand; with `until`, one that still covers hits from
    /// then on ([`History::compact_until`]).
    pub(super) fn history(&self, until: Option<DateTime<Utc>>) -> History {
        let events = &self.facts[self.offset..];
        let recent = self.prior[self.older..]
            .iter()
            .map(|p| p.id)
            .zip(events[self.older..].iter().cloned())
            .collect();
        History::compact_until(
            self.cutoff,
            &events[..self.older],
            &self.last,
            recent,
            until,
        )
    }

    /// Keeps each event's work bounded inside a batch too (the rules and the rollup delta look at
    /// every earlier event held): once the events held in full have doubled since the last
    /// compaction (and grown by 64), they are compacted as at the end of a batch. A batch of
    /// thousands of hits on one message then costs about what as many hits on different
    /// messages do.
    pub(super) fn compact_when_long(&mut self) {
        if self.prior.len() - self.older <= 2 * self.kept + 64 {
            return;
        }
        // Every event of the batch must still be classified exactly: keep what its windows see.
        let h = self.history(Some(self.batch_from));
        self.facts.truncate(self.offset);
        self.facts.extend(h.older.iter().cloned());
        self.facts.extend(h.recent.iter().map(|(_, f)| f.clone()));
        self.prior = h.priors();
        self.older = h.older.len();
        self.cutoff = h.cutoff;
        self.last = h.last;
        self.kept = h.recent.len();
        self.seen = None;
    }
}
