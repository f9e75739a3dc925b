//! How long after sending readers open and click: per hour since each message was sent, the
//! messages whose first reader open (or click) came then. Its shape says when a follow-up is due
//! and how long a campaign keeps being read.

use super::segments::MessageActivity;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Hours shown one by one; later ones are counted together in the last row.
pub const HOURS: i64 = 72;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SinceSendRow {
    /// Hours after sending (0: within the first hour); the last row, `HOURS`, holds every later
    /// one.
    pub hours_since_send: i64,
    /// Messages whose first reader open (or click, which implies one) came in this hour.
    pub first_reads: u64,
    pub first_clicks: u64,
}

/// The curve of a campaign, added to a message at a time.
#[derive(Debug, Clone)]
pub struct SinceSend {
    rows: Vec<SinceSendRow>,
}

impl Default for SinceSend {
    fn default() -> Self {
        SinceSend {
            rows: (0..=HOURS)
                .map(|h| SinceSendRow {
                    hours_since_send: h,
                    ..SinceSendRow::default()
                })
                .collect(),
        }
    }
}

impl SinceSend {
    pub fn add(&mut self, m: &MessageActivity) {
        // A reader's event before the recorded send time (a clock that was off) counts as hour 0.
        let hour = |at: DateTime<Utc>| ((at - m.sent_at).num_hours()).clamp(0, HOURS) as usize;
        if let Some(at) = m.first_read_at {
            self.rows[hour(at)].first_reads += 1;
        }
        if let Some(at) = m.first_click_at {
            self.rows[hour(at)].first_clicks += 1;
        }
    }

    pub fn rows(self) -> Vec<SinceSendRow> {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn first_reads_and_clicks_fall_in_their_hour_and_late_ones_in_the_last() {
        let sent = DateTime::UNIX_EPOCH;
        let message = |read: Option<i64>, click: Option<i64>| MessageActivity {
            sent_at: sent,
            first_read_at: read.map(|m| sent + Duration::minutes(m)),
            first_click_at: click.map(|m| sent + Duration::minutes(m)),
            ..MessageActivity::default()
        };
        let mut curve = SinceSend::default();
        curve.add(&message(Some(5), None));
        curve.add(&message(Some(59), Some(61)));
        curve.add(&message(Some(10 * 24 * 60), None));
        curve.add(&message(Some(-3), None));
        curve.add(&message(None, None));
        let rows = curve.rows();
        assert_eq!(rows.len(), HOURS as usize + 1);
        assert_eq!((rows[0].first_reads, rows[0].first_clicks), (3, 0));
        assert_eq!((rows[1].first_reads, rows[1].first_clicks), (0, 1));
        assert_eq!(rows[HOURS as usize].first_reads, 1);
    }
}
