//! What a tracking request must know before it is answered: whether its message exists (an
//! erased or unknown message's pixel and click get a 404) and where a click leads. Answered from a
//! bounded cache, or by one read on a miss; nothing on the request path writes to the database.
//!
//! It also knows the recipient's [`Standing`] (anonymous, opted out, consenting), so that a hit
//! reaches the journal with no more of the reader than the store will keep.
//!
//! Bounded: two generations of at most [`GENERATION`] entries each (messages and links apart);
//! the newer becomes the older when it is full or [`MAX_AGE`] old, and the older is dropped. So an
//! entry is at most twice that old: a message erased, or a recipient opted out, by another process
//! (or the CLI) is seen so within that time; until then its hits are journaled as before and the
//! store worker drops or minimises them. This process forgets everything at such a change.

use crate::store::{Standing, Store, StoreResult};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GENERATION: usize = 50_000;
const MAX_AGE: Duration = Duration::from_secs(60);

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// No message has this tracking id (never registered here, or erased).
    UnknownMessage,
    /// The message exists and has no link with that number.
    UnknownLink,
    /// The message exists: its recipient's standing; for a link, where it leads; whether its
    /// campaign tracks conversions (its clicks carry a signed reference).
    Message {
        standing: Standing,
        url: Option<Arc<str>>,
        conversions: bool,
    },
}

/// What is kept of a known message.
#[derive(Debug, Clone, Copy)]
struct Known {
    standing: Standing,
    conversions: bool,
}

pub struct Directory {
    store: Arc<dyn Store>,
    /// Known messages, their recipients' standing, and whether they track conversions.
    messages: Mutex<Generations<i64, Known>>,
    links: Mutex<Generations<(i64, u16), Arc<str>>>,
}

impl Directory {
    pub fn new(store: Arc<dyn Store>) -> Directory {
        Directory {
            store,
            messages: Mutex::new(Generations::default()),
            links: Mutex::new(Generations::default()),
        }
    }

    /// The message of `tracking_id`, and with `link_no` where that link leads.
    pub async fn lookup(&self, tracking_id: i64, link_no: Option<u16>) -> StoreResult<Found> {
        let known = lock(&self.messages).get(&tracking_id);
        let found = |k: Known, url| Found::Message {
            standing: k.standing,
            url,
            conversions: k.conversions,
        };
        let cached = match (known, link_no) {
            (Some(k), None) => Some(found(k, None)),
            (Some(k), Some(no)) => lock(&self.links)
                .get(&(tracking_id, no))
                .map(|url| found(k, Some(url))),
            (None, _) => None,
        };
        if let Some(hit) = cached {
            return Ok(hit);
        }
        let (known, url) = match self.store.lookup_link(tracking_id, link_no).await? {
            None => return Ok(Found::UnknownMessage),
            Some(l) if l.url.is_none() && link_no.is_some() => return Ok(Found::UnknownLink),
            Some(l) => (
                Known {
                    standing: l.standing,
                    conversions: l.conversions,
                },
                l.url.map(Arc::<str>::from),
            ),
        };
        lock(&self.messages).insert(tracking_id, known);
        if let (Some(no), Some(url)) = (link_no, &url) {
            lock(&self.links).insert((tracking_id, no), url.clone());
        }
        Ok(found(known, url))
    }

    /// A message registered by this process: its hits need no read. `links[i]` is link i+1.
    pub fn remember(
        &self,
        tracking_id: i64,
        standing: Standing,
        conversions: bool,
        links: &[String],
        honeypot: Option<&str>,
    ) {
        let known = Known {
            standing,
            conversions,
        };
        lock(&self.messages).insert(tracking_id, known);
        let mut cached = lock(&self.links);
        for (i, url) in links.iter().enumerate() {
            cached.insert((tracking_id, i as u16 + 1), Arc::from(url.as_str()));
        }
        if let Some(url) = honeypot {
            cached.insert((tracking_id, 0), Arc::from(url));
        }
    }

    /// After an erasure, an opt-out or a change of consent: every message is looked up again.
    pub fn forget_all(&self) {
        *lock(&self.messages) = Generations::default();
        *lock(&self.links) = Generations::default();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Two maps, the newer first, and when the newer was started.
struct Generations<K, V> {
    newer: HashMap<K, V>,
    older: HashMap<K, V>,
    started: Instant,
}

impl<K, V> Default for Generations<K, V> {
    fn default() -> Self {
        Generations {
            newer: HashMap::new(),
            older: HashMap::new(),
            started: Instant::now(),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Generations<K, V> {
    fn get(&mut self, key: &K) -> Option<V> {
        self.turn_over_when_old();
        self.newer.get(key).or_else(|| self.older.get(key)).cloned()
    }

    fn insert(&mut self, key: K, value: V) {
        self.turn_over_when_old();
        if self.newer.len() >= GENERATION {
            self.turn_over();
        }
        self.newer.insert(key, value);
    }

    fn turn_over_when_old(&mut self) {
        if self.started.elapsed() >= MAX_AGE {
            self.turn_over();
        }
    }

    fn turn_over(&mut self) {
        self.older = std::mem::take(&mut self.newer);
        self.started = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_keep_the_latest_entries_only() {
        let mut g: Generations<i64, i64> = Generations::default();
        g.insert(1, 10);
        assert_eq!(g.get(&1), Some(10));
        assert_eq!(g.get(&2), None);
        for i in 0..(2 * GENERATION as i64) {
            g.insert(100 + i, i);
        }
        assert_eq!(g.get(&1), None);
        assert!(g.get(&(100 + 2 * GENERATION as i64 - 1)).is_some());
        assert!(g.newer.len() + g.older.len() <= 2 * GENERATION);
    }

    #[test]
    fn generations_age_out() {
        let mut g: Generations<i64, i64> = Generations::default();
        g.insert(1, 10);
        g.started -= MAX_AGE;
        assert_eq!(g.get(&1), Some(10), "one turn: in the older generation");
        g.started -= MAX_AGE;
        assert_eq!(g.get(&1), None, "two turns: gone");
    }
}
