//! A recipient's best hour of the week to send to them: the hour (in a time zone) in which they
//! first read the most of their messages. Each message counts once, at its first read by a reader
//! (an open, or a click, which implies one), so reopening one mail ten times does not outweigh
//! reading ten mails. Ties go to the hour read in most recently: habits change.

use super::report::Zone;
use super::segments::MessageActivity;
use chrono::{Datelike, Duration, Timelike};
use serde::Serialize;

pub const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// One recipient's best hour, flat so that it is one CSV row.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SendTime {
    pub recipient_id: String,
    /// Their messages, in every campaign.
    pub messages: u64,
    /// Of those, the ones a reader read.
    pub messages_read: u64,
    /// 0 for Monday to 6 for Sunday; `null` while nothing was read.
    pub best_weekday: Option<u8>,
    pub best_day: Option<&'static str>,
    /// The hour (0-23) in `time_zone`.
    pub best_hour: Option<u8>,
    /// How many of the reads fell in that hour: how much the advice rests on.
    pub reads_in_best_hour: u64,
    pub time_zone: String,
}

/// From every message of one recipient.
pub fn send_time(recipient_id: &str, messages: &[MessageActivity], zone: Zone) -> SendTime {
    // Per hour of the week: reads, and the latest of them.
    let mut cells = [(0u64, None); 168];
    for read in messages.iter().filter_map(|m| m.first_read_at) {
        let local = read + Duration::minutes(zone.offset_minutes_at(read).into());
        let i = local.weekday().num_days_from_monday() as usize * 24 + local.hour() as usize;
        let cell = &mut cells[i];
        cell.0 += 1;
        cell.1 = cell.1.max(Some(read));
    }
    let best = (0..168)
        .filter(|&i| cells[i].0 > 0)
        .max_by_key(|&i| (cells[i].0, cells[i].1));
    SendTime {
        recipient_id: recipient_id.to_string(),
        messages: messages.len() as u64,
        messages_read: messages
            .iter()
            .filter(|m| m.first_read_at.is_some())
            .count() as u64,
        best_weekday: best.map(|i| (i / 24) as u8),
        best_day: best.map(|i| DAYS[i / 24]),
        best_hour: best.map(|i| (i % 24) as u8),
        reads_in_best_hour: best.map_or(0, |i| cells[i].0),
        time_zone: zone.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageId;
    use chrono::{DateTime, Utc};

    fn read(id: i64, at: Option<&str>) -> MessageActivity {
        let at = at.map(|t| t.parse::<DateTime<Utc>>().unwrap());
        MessageActivity {
            message_id: MessageId(id),
            recipient_id: "ada@example.com".into(),
            sent_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            first_read_at: at,
            last_event_at: at,
            ..MessageActivity::default()
        }
    }

    #[test]
    fn the_hour_with_the_most_first_reads_wins_in_the_asked_zone() {
        let messages = [
            // Tuesdays 07:xx UTC, 08:xx in Berlin (winter).
            read(1, Some("2026-11-03T07:10:00Z")),
            read(2, Some("2026-11-10T07:50:00Z")),
            read(3, Some("2026-11-06T19:00:00Z")),
            read(4, None),
        ];
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let best = send_time("ada@example.com", &messages, berlin);
        assert_eq!(
            (best.best_day, best.best_hour, best.reads_in_best_hour),
            (Some("Tuesday"), Some(8), 2)
        );
        assert_eq!((best.messages, best.messages_read), (4, 3));
        assert_eq!(best.time_zone, "Europe/Berlin");
        let utc = send_time("ada@example.com", &messages, Zone::default());
        assert_eq!((utc.best_weekday, utc.best_hour), (Some(1), Some(7)));
    }

    #[test]
    fn a_tie_goes_to_the_latest_habit_and_nothing_read_gives_no_advice() {
        let messages = [
            read(1, Some("2026-11-02T09:00:00Z")),
            read(2, Some("2026-11-12T18:00:00Z")),
        ];
        let best = send_time("ada@example.com", &messages, Zone::default());
        assert_eq!(
            (best.best_day, best.best_hour),
            (Some("Thursday"), Some(18))
        );
        let none = send_time("ada@example.com", &[read(1, None)], Zone::default());
        assert_eq!(
            (none.best_weekday, none.best_hour, none.messages_read),
            (None, None, 0)
        );
    }
}
