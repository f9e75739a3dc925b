//! A mailbox provider whose readers suddenly open far less (a sign that the mail went to its
//! spam folder). Once a campaign's mail is a day old, each provider's share of messages a reader
//! read within [`WINDOW_HOURS`] of their own send time is compared with the same provider's
//! pooled rate over its last [`TRAILING_CAMPAIGNS`] campaigns: below `ratio` times that, the
//! provider dropped. Comparing first days only keeps a young campaign fair against old ones.

use super::providers::{MIN_DOMAIN_MESSAGES, is_large, provider};
use super::segments::{MessageActivity, Segment};
use crate::domain::CampaignId;
use chrono::Duration;
use serde::Serialize;
use std::collections::BTreeMap;

/// The window after each message's send time in which a read counts.
pub const WINDOW_HOURS: i64 = 24;
/// How many of a provider's earlier campaigns make its trailing average.
pub const TRAILING_CAMPAIGNS: usize = 5;
/// A provider with fewer messages than this in a campaign is neither judged nor part of an
/// average: a handful of addresses says nothing about a folder.
pub const MIN_SENT: u64 = 20;
/// Fewer earlier campaigns than this make no average.
pub const MIN_TRAILING: usize = 2;
/// Campaigns checked later than this after their send time are recorded without a notice.
pub const NOTIFY_WITHIN_DAYS: i64 = 7;

/// One provider's first day in one campaign.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FirstDay {
    pub provider: String,
    pub sent: u64,
    pub read_in_window: u64,
}

/// A campaign's messages per provider, a page at a time; small domains merged into `other`, as
/// the providers report does; untracked mail and ids that are no address left out.
#[derive(Debug, Default)]
pub struct FirstDayTally {
    rows: BTreeMap<String, FirstDay>,
}

impl FirstDayTally {
    pub fn add(&mut self, m: &MessageActivity) {
        if m.segment() == Segment::Untracked {
            return;
        }
        let Some(name) = provider(&m.recipient_id) else {
            return;
        };
        let row = self.rows.entry(name).or_default();
        row.sent += 1;
        let deadline = m.sent_at + Duration::hours(WINDOW_HOURS);
        row.read_in_window += u64::from(m.first_read_at.is_some_and(|t| t <= deadline));
    }

    pub fn rows(self) -> Vec<FirstDay> {
        let mut other = FirstDay {
            provider: "other".into(),
            ..FirstDay::default()
        };
        let mut rows = Vec::new();
        for (name, row) in self.rows {
            if is_large(&name) || row.sent >= MIN_DOMAIN_MESSAGES {
                rows.push(FirstDay {
                    provider: name,
                    ..row
                });
            } else {
                other.sent += row.sent;
                other.read_in_window += row.read_in_window;
            }
        }
        if other.sent > 0 {
            rows.push(other);
        }
        rows
    }
}

/// The verdict on one provider of one campaign.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderCheck {
    pub campaign_id: CampaignId,
    pub provider: String,
    pub sent: u64,
    /// Messages a reader read within 24 hours of their send time.
    pub read_in_window: u64,
    pub open_rate: Option<f64>,
    /// The earlier campaigns (with at least [`MIN_SENT`] of the provider's messages) averaged.
    pub trailing_campaigns: u64,
    pub trailing_sent: Option<u64>,
    pub trailing_read: Option<u64>,
    /// Pooled over those campaigns; `null` with fewer than two.
    pub trailing_open_rate: Option<f64>,
    /// The open rate fell below the ratio setting times the trailing one.
    pub dropped: bool,
}

/// Judges one provider's first day against its earlier campaigns' (newest first, at most
/// [`TRAILING_CAMPAIGNS`], each with at least [`MIN_SENT`] messages). `ratio` 0 judges nothing.
pub fn judge(
    campaign: CampaignId,
    day: &FirstDay,
    trailing: &[FirstDay],
    ratio: f64,
) -> ProviderCheck {
    let rate = |read: u64, sent: u64| (sent > 0).then(|| read as f64 / sent as f64);
    let enough = trailing.len() >= MIN_TRAILING;
    let trailing_sent = enough.then(|| trailing.iter().map(|d| d.sent).sum::<u64>());
    let trailing_read = enough.then(|| trailing.iter().map(|d| d.read_in_window).sum::<u64>());
    let open_rate = rate(day.read_in_window, day.sent);
    let trailing_open_rate = trailing_sent
        .zip(trailing_read)
        .and_then(|(s, r)| rate(r, s));
    let dropped = ratio > 0.0
        && day.sent >= MIN_SENT
        && matches!((open_rate, trailing_open_rate), (Some(now), Some(before)) if before > 0.0 && now < ratio * before);
    ProviderCheck {
        campaign_id: campaign,
        provider: day.provider.clone(),
        sent: day.sent,
        read_in_window: day.read_in_window,
        open_rate,
        trailing_campaigns: if enough { trailing.len() as u64 } else { 0 },
        trailing_sent,
        trailing_read,
        trailing_open_rate,
        dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageId;

    fn day(sent: u64, read: u64) -> FirstDay {
        FirstDay {
            provider: "Gmail".into(),
            sent,
            read_in_window: read,
        }
    }

    #[test]
    fn a_provider_drops_below_the_ratio_of_its_trailing_rate() {
        let trailing = [day(100, 40), day(100, 30)];
        let check = judge(CampaignId(3), &day(100, 10), &trailing, 0.5);
        assert!(check.dropped, "10% against 35%: {check:?}");
        assert_eq!(check.trailing_open_rate, Some(0.35));
        assert!(
            !judge(CampaignId(3), &day(100, 20), &trailing, 0.5).dropped,
            "20% is above 17.5%"
        );
        assert!(
            !judge(CampaignId(3), &day(100, 10), &trailing, 0.0).dropped,
            "0 judges nothing"
        );
        assert!(
            !judge(CampaignId(3), &day(19, 0), &trailing, 0.5).dropped,
            "too few messages"
        );
        let young = judge(CampaignId(3), &day(100, 0), &trailing[..1], 0.5);
        assert!(
            !young.dropped && young.trailing_open_rate.is_none(),
            "one campaign is no average"
        );
    }

    #[test]
    fn only_reads_within_a_day_of_sending_count() {
        let sent_at = "2026-11-02T08:00:00Z".parse().unwrap();
        let message = |id: i64, who: &str, read: Option<&str>| MessageActivity {
            message_id: MessageId(id),
            recipient_id: who.into(),
            sent_at,
            first_read_at: read.map(|t| t.parse().unwrap()),
            ..MessageActivity::default()
        };
        let mut tally = FirstDayTally::default();
        for m in [
            message(1, "a@gmail.com", Some("2026-11-02T09:00:00Z")),
            message(2, "b@gmail.com", Some("2026-11-04T09:00:00Z")),
            message(3, "c@gmail.com", None),
            message(4, "d@small.example", Some("2026-11-02T09:00:00Z")),
            message(5, "crm-42", Some("2026-11-02T09:00:00Z")),
        ] {
            tally.add(&m);
        }
        let rows = tally.rows();
        assert_eq!(
            rows,
            [
                FirstDay {
                    provider: "Gmail".into(),
                    sent: 3,
                    read_in_window: 1
                },
                FirstDay {
                    provider: "other".into(),
                    sent: 1,
                    read_in_window: 1
                },
            ]
        );
    }
}
