//! A campaign's recipients in segments a sender acts on: who read it (to follow up), who clicked,
//! whose mail only machines touched (Apple's prefetch, a scanner: not a sign of a reader), who
//! did not open (to resend), and mail not tracked individually (counted, naming no one).
//!
//! "Read" means what the headline's reader opens mean: a reader's open or click (a click implies
//! the mail was opened, images or not). Every message of the campaign is in exactly one of read,
//! machine-only, not opened and untracked; clicked is part of read.

use super::rollup::Fact;
use crate::domain::{ANONYMOUS_RECIPIENT, CampaignId, EventKind, MessageId};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Opened,
    Clicked,
    MachineOnly,
    NotOpened,
    Untracked,
    /// Messages the sender's site reported a conversion for (`POST /conversions`).
    Converted,
}

impl Segment {
    pub const ALL: [Segment; 6] = [
        Segment::Opened,
        Segment::Clicked,
        Segment::MachineOnly,
        Segment::NotOpened,
        Segment::Untracked,
        Segment::Converted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Opened => "opened",
            Segment::Clicked => "clicked",
            Segment::MachineOnly => "machine_only",
            Segment::NotOpened => "not_opened",
            Segment::Untracked => "untracked",
            Segment::Converted => "converted",
        }
    }

    pub fn parse(name: &str) -> Option<Segment> {
        Segment::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Its members can be listed: untracked mail names no recipient, so only its count is kept.
    pub fn lists_recipients(self) -> bool {
        self != Segment::Untracked
    }
}

/// What one message's events came to, as a segment's list shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MessageActivity {
    pub message_id: MessageId,
    pub recipient_id: String,
    pub sent_at: DateTime<Utc>,
    /// The first open or click of a reader.
    pub first_read_at: Option<DateTime<Utc>>,
    /// A reader clicked a link.
    pub clicked: bool,
    /// The first click of a reader.
    pub first_click_at: Option<DateTime<Utc>>,
    /// The latest pixel load of a reader, and the latest click of one (engagement's; segment
    /// lists keep their columns).
    #[serde(skip)]
    pub last_open_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub last_click_at: Option<DateTime<Utc>>,
    /// The latest event of anyone or anything (a machine's included).
    pub last_event_at: Option<DateTime<Utc>>,
    /// The sender's site reported a conversion of it.
    pub converted: bool,
}

impl MessageActivity {
    /// From a message's facts (retention's representatives of deleted events included).
    pub fn from_facts(
        message_id: MessageId,
        recipient_id: String,
        sent_at: DateTime<Utc>,
        facts: &[Fact],
    ) -> MessageActivity {
        let reader = || facts.iter().filter(|f| !f.class.is_machine());
        MessageActivity {
            message_id,
            recipient_id,
            sent_at,
            first_read_at: reader().map(|f| f.received_at).min(),
            clicked: reader().any(|f| f.kind == EventKind::Click),
            first_click_at: (reader().filter(|f| f.kind == EventKind::Click))
                .map(|f| f.received_at)
                .min(),
            last_open_at: (reader().filter(|f| f.kind == EventKind::Open))
                .map(|f| f.received_at)
                .max(),
            last_click_at: (reader().filter(|f| f.kind == EventKind::Click))
                .map(|f| f.received_at)
                .max(),
            last_event_at: facts.iter().map(|f| f.received_at).max(),
            converted: false,
        }
    }

    /// The one of opened, machine-only, not opened and untracked it is in.
    pub fn segment(&self) -> Segment {
        if self.recipient_id.starts_with(ANONYMOUS_RECIPIENT) {
            Segment::Untracked
        } else if self.first_read_at.is_some() {
            Segment::Opened
        } else if self.last_event_at.is_some() {
            Segment::MachineOnly
        } else {
            Segment::NotOpened
        }
    }

    pub fn is_in(&self, segment: Segment) -> bool {
        match segment {
            Segment::Clicked => self.segment() == Segment::Opened && self.clicked,
            Segment::Converted => self.converted,
            other => self.segment() == other,
        }
    }
}

/// How many of a campaign's messages are in each segment.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SegmentCounts {
    pub campaign_id: CampaignId,
    /// Every message of the campaign: opened + machine_only + not_opened + untracked.
    pub sent: u64,
    pub opened: u64,
    /// Part of `opened`.
    pub clicked: u64,
    pub machine_only: u64,
    pub not_opened: u64,
    pub untracked: u64,
    /// Messages with a conversion (usually part of opened).
    pub converted: u64,
}

impl SegmentCounts {
    pub fn add(&mut self, message: &MessageActivity) {
        self.sent += 1;
        let counter = match message.segment() {
            Segment::Opened => &mut self.opened,
            Segment::MachineOnly => &mut self.machine_only,
            Segment::NotOpened => &mut self.not_opened,
            Segment::Untracked => &mut self.untracked,
            Segment::Clicked | Segment::Converted => unreachable!("not a segment of its own"),
        };
        *counter += 1;
        if message.is_in(Segment::Clicked) {
            self.clicked += 1;
        }
        if message.converted {
            self.converted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Class;

    fn fact(kind: EventKind, class: Class, minute: i64) -> Fact {
        Fact {
            kind,
            link_no: (kind == EventKind::Click).then_some(1),
            received_at: DateTime::UNIX_EPOCH + chrono::Duration::minutes(minute),
            class,
            client: None,
            os: None,
            device: "desktop".into(),
            country: None,
        }
    }

    fn activity(recipient: &str, facts: &[Fact]) -> MessageActivity {
        MessageActivity::from_facts(MessageId(1), recipient.into(), DateTime::UNIX_EPOCH, facts)
    }

    #[test]
    fn each_message_is_in_one_segment_and_the_counts_add_up() {
        use {Class::*, EventKind::*};
        let messages = [
            activity("prefetched", &[fact(Open, AppleMpp, 1)]),
            activity("read", &[fact(Open, AppleMpp, 1), fact(Open, Human, 30)]),
            activity("images-off", &[fact(Click, Human, 40)]),
            activity("scanned", &[fact(Click, Scanner, 2)]),
            activity("quiet", &[]),
            activity(&format!("{ANONYMOUS_RECIPIENT}42"), &[fact(Open, Human, 5)]),
        ];
        let segments: Vec<_> = messages.iter().map(MessageActivity::segment).collect();
        use Segment::*;
        assert_eq!(
            segments,
            [
                MachineOnly,
                Opened,
                Opened,
                MachineOnly,
                NotOpened,
                Untracked
            ]
        );
        assert_eq!(
            messages[1].first_read_at,
            Some(messages[1].sent_at + chrono::Duration::minutes(30))
        );
        let mut counts = SegmentCounts::default();
        messages.iter().for_each(|m| counts.add(m));
        assert_eq!(
            (
                counts.sent,
                counts.opened,
                counts.clicked,
                counts.machine_only
            ),
            (6, 2, 1, 2)
        );
        assert_eq!((counts.not_opened, counts.untracked), (1, 1));
        assert!(messages[2].is_in(Clicked) && !messages[3].is_in(Clicked));
    }

    #[test]
    fn names_parse_back() {
        for s in Segment::ALL {
            assert_eq!(Segment::parse(s.as_str()), Some(s));
        }
        assert_eq!(Segment::parse("openers"), None);
    }
}
