//! Tokens whose signature failed, to be noted on the message they claim (classification takes a
//! message whose token was tampered with into account). Kept in memory for the store worker's
//! next step, not journaled: a flood of forged tokens must not fill the journal and push out the
//! hits that are answered. At most [`MAX_PENDING`] messages wait at once (later ones are not
//! noted until the worker has taken them), and a crash forgets them: they were answered 404,
//! nothing was promised about them.

use crate::store::NewEvent;
use std::collections::HashMap;
use std::sync::Mutex;

pub const MAX_PENDING: usize = 10_000;

#[derive(Default)]
pub struct FailedChecks {
    pending: Mutex<HashMap<i64, NewEvent>>,
}

impl FailedChecks {
    /// Notes a failed check (the first per message counts); `false` when too many wait.
    pub fn note(&self, note: NewEvent) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() >= MAX_PENDING && !pending.contains_key(&note.tracking_id) {
            return false;
        }
        pending.entry(note.tracking_id).or_insert(note);
        true
    }

    /// Everything noted since the last call.
    pub fn take(&self) -> Vec<NewEvent> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *pending).into_values().collect()
    }
}
