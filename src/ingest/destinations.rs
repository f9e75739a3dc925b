//! Click destinations this process has seen (registered here or clicked here), so that a click
//! can still be redirected while the database cannot be read. Bounded: two generations of at most
//! [`GENERATION`] links each; when the newer one is full the older is dropped.

use std::collections::HashMap;
use std::sync::Mutex;

const GENERATION: usize = 20_000;

/// (tracking id, link number) to destination.
type Generation = HashMap<(i64, u16), String>;

#[derive(Default)]
pub struct Destinations {
    /// The newer generation, then the older.
    maps: Mutex<(Generation, Generation)>,
}

impl Destinations {
    pub fn remember(&self, tracking_id: i64, link_no: u16, url: &str) {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if maps
            .0
            .get(&(tracking_id, link_no))
            .is_some_and(|u| u == url)
        {
            return;
        }
        if maps.0.len() >= GENERATION {
            maps.1 = std::mem::take(&mut maps.0);
        }
        maps.0.insert((tracking_id, link_no), url.to_string());
    }

    pub fn get(&self, tracking_id: i64, link_no: u16) -> Option<String> {
        let maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        maps.0
            .get(&(tracking_id, link_no))
            .or_else(|| maps.1.get(&(tracking_id, link_no)))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_generations_only() {
        let d = Destinations::default();
        d.remember(1, 1, "https://a.example/");
        assert_eq!(d.get(1, 1).as_deref(), Some("https://a.example/"));
        assert_eq!(d.get(1, 2), None);
        for i in 0..(2 * GENERATION as i64) {
            d.remember(100 + i, 1, "https://b.example/");
        }
        assert_eq!(d.get(1, 1), None);
        assert!(d.get(100 + 2 * GENERATION as i64 - 1, 1).is_some());
    }
}
