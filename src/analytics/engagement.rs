//! Per-recipient engagement, for "engaged in 90 days" and sunset lists: when a reader last opened
//! or clicked their mail, and how many of their latest messages a reader opened or clicked.
//! Machine activity (Apple's prefetch, scanners, bots) never counts as engagement: a recipient
//! whose mail only machines touched is not engaged. Mail not tracked individually (anonymous, or
//! sent untracked) names no one, so such a recipient is `tracked: false`: unknown, not unengaged.

use super::segments::MessageActivity;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// How many of a recipient's latest messages the `recent_*` figures look at, by default and at
/// most.
pub const DEFAULT_RECENT: usize = 5;
pub const MAX_RECENT: usize = 100;
/// "Engaged" means a reader's open or click within this many days, by default.
pub const DEFAULT_DAYS: i64 = 90;
/// The longest "engaged within" window, in days (a hundred years).
pub const MAX_DAYS: i64 = 36_500;

/// One recipient, flat so that it is one CSV row.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Engagement {
    pub recipient_id: String,
    /// Some mail to them was tracked individually. `false`: nothing is known either way.
    pub tracked: bool,
    /// Their individually tracked messages, in every campaign.
    pub messages: u64,
    pub last_sent_at: Option<DateTime<Utc>>,
    /// The latest pixel load by a reader.
    pub last_reader_open_at: Option<DateTime<Utc>>,
    /// The latest click by a reader.
    pub last_reader_click_at: Option<DateTime<Utc>>,
    /// A reader's open or click within `days` days of now.
    pub engaged: bool,
    pub days: i64,
    /// Their latest messages looked at (at most the `recent` asked for), newest first.
    pub recent_messages: u64,
    /// Of those, the ones a reader opened (a click implies an open).
    pub recent_opened: u64,
    /// Of those, the ones a reader clicked.
    pub recent_clicked: u64,
    /// Of those, the ones only machines touched.
    pub recent_machine_only: u64,
}

/// From every message of one recipient (in any order).
pub fn engagement(
    recipient_id: &str,
    messages: &[MessageActivity],
    recent: usize,
    days: i64,
    now: DateTime<Utc>,
) -> Engagement {
    let latest =
        |f: fn(&MessageActivity) -> Option<DateTime<Utc>>| messages.iter().filter_map(f).max();
    let last_reader_open_at = latest(|m| m.last_open_at);
    let last_reader_click_at = latest(|m| m.last_click_at);
    let mut newest: Vec<&MessageActivity> = messages.iter().collect();
    newest.sort_by_key(|m| std::cmp::Reverse((m.sent_at, m.message_id)));
    newest.truncate(recent);
    let count = |f: fn(&MessageActivity) -> bool| newest.iter().filter(|m| f(m)).count() as u64;
    let since = now - Duration::days(days);
    Engagement {
        recipient_id: recipient_id.to_string(),
        tracked: !messages.is_empty(),
        messages: messages.len() as u64,
        last_sent_at: latest(|m| Some(m.sent_at)),
        last_reader_open_at,
        last_reader_click_at,
        engaged: last_reader_open_at.max(last_reader_click_at) >= Some(since),
        days,
        recent_messages: newest.len() as u64,
        recent_opened: count(|m| m.first_read_at.is_some()),
        recent_clicked: count(|m| m.clicked),
        recent_machine_only: count(|m| m.first_read_at.is_none() && m.last_event_at.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageId;

    fn message(id: i64, sent_days_ago: i64, read_days_ago: Option<i64>) -> MessageActivity {
        let now = Utc::now();
        let read = read_days_ago.map(|d| now - Duration::days(d));
        MessageActivity {
            message_id: MessageId(id),
            recipient_id: "r".into(),
            sent_at: now - Duration::days(sent_days_ago),
            first_read_at: read,
            last_open_at: read,
            last_event_at: read,
            ..MessageActivity::default()
        }
    }

    #[test]
    fn a_reader_within_the_window_is_engaged_and_machines_are_not() {
        let now = Utc::now();
        let read = [message(1, 200, Some(199)), message(2, 30, Some(29))];
        let e = engagement("r", &read, 5, 90, now);
        assert!(e.tracked && e.engaged);
        assert_eq!((e.recent_messages, e.recent_opened), (2, 2));
        let mut prefetched = message(3, 10, None);
        prefetched.last_event_at = Some(now - Duration::days(10));
        let e = engagement("r", &[message(1, 200, Some(199)), prefetched], 1, 90, now);
        assert!(!e.engaged, "only Apple's prefetch in 90 days: {e:?}");
        assert_eq!((e.recent_messages, e.recent_machine_only), (1, 1));
    }

    #[test]
    fn no_tracked_mail_is_unknown_not_unengaged() {
        let e = engagement("r", &[], 5, 90, Utc::now());
        assert!(!e.tracked && !e.engaged && e.last_sent_at.is_none());
    }
}
