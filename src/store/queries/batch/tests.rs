//! The group commit's decisions, without a database: what a batch read is built by hand, and
//! `admit` and `decide` are asked what to store.

use super::decide::{Admission, admit, decide};
use super::load::Loaded;
use super::message_row::MessageRow;
use crate::analytics::rollup::Fact;
use crate::classify::rules::REASON_BURST;
use crate::classify::{Class, Classifier, Internal, Prior};
use crate::store::{
    ANONYMOUS_RECIPIENT, CampaignId, EventId, EventKind, MessageId, NewEvent, RecordOutcome,
    WithoutConsent,
};
use chrono::{DateTime, Duration, TimeZone, Utc};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const LINK: &str = "https://shop.example/sale";

fn sent() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// A message of campaign 1 with id `tracking_id * 10`, sent at [`sent`], no events yet.
fn message(tracking_id: i64, recipient: &str) -> MessageRow {
    MessageRow {
        id: MessageId(tracking_id * 10),
        campaign_id: CampaignId(1),
        recipient_id: recipient.into(),
        sent_at: sent(),
        failed_check_at: None,
        prior: Vec::new(),
        facts: Vec::new(),
        offset: 0,
        older: 0,
        cutoff: None,
        last: Vec::new(),
        batch_from: sent(),
        kept: 0,
        summarised: true,
        stored: false,
        seen: None,
    }
}

/// What a batch read of the messages, each with links 1 and 2.
fn loaded(messages: Vec<(i64, MessageRow)>) -> Loaded {
    let mut loaded = Loaded::default();
    for (tracking_id, m) in messages {
        for no in [1, 2] {
            loaded.links.insert((m.id, no), format!("{LINK}/{no}"));
        }
        loaded.messages.insert(tracking_id, m);
    }
    loaded
}

/// A reader's hit `millis` after two hours past the sending (a click when it names a link).
fn hit(tracking_id: i64, link_no: Option<u16>, millis: i64) -> NewEvent {
    NewEvent {
        kind: match link_no {
            Some(_) => EventKind::Click,
            None => EventKind::Open,
        },
        tracking_id,
        link_no,
        received_at: sent() + Duration::hours(2) + Duration::milliseconds(millis),
        method: "GET",
        user_agent: Some(CHROME.into()),
        keep_user_agent: true,
        client_ip: Some("192.0.2.7".into()),
        headers: Some(r#"{"accept-language":"de"}"#.into()),
        ip_tags: Vec::new(),
        failed_check: false,
        country: Some("DE".into()),
        region: Some("DE-BE".into()),
        without_consent: None,
    }
}

fn ids(range: std::ops::RangeInclusive<i64>) -> Vec<EventId> {
    range.map(EventId).collect()
}

fn classifier() -> Classifier {
    Classifier::builtin(Internal::default())
}

#[test]
fn admission_answers_each_kind_of_event_it_does_not_store() {
    let mut loaded = loaded(vec![
        (1, message(1, "reader@example.com")),
        (2, message(2, "gone@example.com")),
    ]);
    loaded.opted_out.insert("gone@example.com".into());
    let failed = NewEvent {
        failed_check: true,
        ..hit(1, None, 0)
    };
    let batch = [
        hit(1, Some(7), 0),
        hit(9, None, 0),
        failed,
        hit(2, Some(1), 0),
        hit(1, Some(1), 0),
    ];
    let admission = admit(&batch, &loaded);
    assert_eq!(
        admission.outcomes[..4],
        [
            RecordOutcome::UnknownLink,
            RecordOutcome::UnknownMessage,
            RecordOutcome::FailedCheckNoted,
            RecordOutcome::NotStored {
                destination: Some(format!("{LINK}/1"))
            },
        ]
    );
    assert_eq!(admission.stored, [4]);
    assert!(admission.anonymize.is_empty());
}

#[test]
fn without_standing_consent_a_message_is_renamed_once_or_nothing_is_kept() {
    let loaded = loaded(vec![
        (1, message(1, "lapsed@example.com")),
        (2, message(2, "asked@example.com")),
        (3, message(3, &format!("{ANONYMOUS_RECIPIENT}0123"))),
    ]);
    let asking = |tracking_id, without| NewEvent {
        without_consent: Some(without),
        ..hit(tracking_id, None, 0)
    };
    let batch = [
        asking(1, WithoutConsent::Anonymous),
        asking(1, WithoutConsent::Anonymous),
        asking(2, WithoutConsent::None),
        asking(3, WithoutConsent::None),
    ];
    let Admission {
        outcomes,
        stored,
        anonymize,
    } = admit(&batch, &loaded);
    assert_eq!(anonymize, [1], "renamed once, for both of its hits");
    assert_eq!(
        stored,
        [0, 1, 3],
        "mail registered anonymous needs no consent"
    );
    assert_eq!(outcomes[2], RecordOutcome::NotStored { destination: None });
}

#[test]
fn a_burst_relabels_the_clicks_before_it_in_the_batch_and_in_the_store() {
    // A click stored by an earlier batch, its repeat in this batch, then a click on another link
    // within the burst window: both earlier clicks become a scanner's.
    let mut m = message(1, "reader@example.com");
    let earlier = hit(1, Some(1), -400);
    m.prior.push(Prior {
        id: EventId(41),
        kind: EventKind::Click,
        link_no: Some(1),
        received_at: earlier.received_at,
        class: Class::Human,
    });
    m.facts.push(Fact {
        kind: EventKind::Click,
        link_no: Some(1),
        received_at: earlier.received_at,
        class: Class::Human,
        client: Some("Chrome".into()),
        os: None,
        device: "desktop".into(),
        country: None,
    });
    let loaded = loaded(vec![(1, m)]);
    let batch = [hit(1, Some(1), -200), hit(1, Some(2), 0)];
    let admission = admit(&batch, &loaded);
    let decision = decide(
        &batch,
        loaded,
        admission,
        &ids(42..=43),
        &classifier(),
        true,
    );

    assert_eq!(
        decision.relabel,
        ids(41..=41),
        "the click stored before is updated"
    );
    let classes: Vec<_> = decision.rows.iter().map(|r| r.class).collect();
    assert_eq!(classes, [Class::Scanner, Class::Scanner]);
    assert!(decision.rows[0].reasons.ends_with(REASON_BURST));
    assert_eq!(decision.notices[1].withdraw, ids(41..=42));
    assert_eq!(
        decision.outcomes[1],
        RecordOutcome::Recorded {
            event_id: EventId(43),
            destination: Some(format!("{LINK}/2"))
        }
    );
    assert_eq!(
        decision.histories.len(),
        1,
        "the message's summary is rewritten"
    );
}

#[test]
fn a_readers_first_click_is_their_first_and_implies_an_open() {
    let loaded = loaded(vec![(1, message(1, "reader@example.com"))]);
    let batch = [
        hit(1, Some(1), 0),
        hit(1, None, 60_000),
        hit(1, Some(1), 120_000),
    ];
    let admission = admit(&batch, &loaded);
    let decision = decide(&batch, loaded, admission, &ids(1..=3), &classifier(), true);
    let flags: Vec<_> = (decision.notices.iter())
        .map(|n| (n.event.kind, n.first_for_reader, n.implied_open))
        .collect();
    assert_eq!(
        flags,
        [
            (EventKind::Click, true, true),
            (EventKind::Open, false, false),
            (EventKind::Click, false, false),
        ]
    );
    assert!(decision.rows.iter().all(|r| r.class == Class::Human));
}

#[test]
fn an_anonymous_messages_rows_keep_nothing_of_the_reader() {
    let loaded = loaded(vec![
        (1, message(1, &format!("{ANONYMOUS_RECIPIENT}0123"))),
        (2, message(2, "reader@example.com")),
    ]);
    let batch = [hit(1, None, 0), hit(2, None, 0)];
    let admission = admit(&batch, &loaded);
    let decision = decide(&batch, loaded, admission, &ids(1..=2), &classifier(), false);
    let anonymous = &decision.rows[0];
    assert_eq!(
        (anonymous.user_agent, anonymous.client_ip, anonymous.headers),
        (None, None, None)
    );
    assert_eq!((anonymous.country, anonymous.region), (None, None));
    assert!(anonymous.ua_reduced);
    assert_eq!(anonymous.client.as_deref(), Some("Chrome"), "parsed, kept");
    let named = &decision.rows[1];
    assert_eq!(named.user_agent, Some(CHROME));
    assert_eq!(named.country, Some("DE"));
    assert!(decision.notices.is_empty(), "no endpoint, no notices");
}

#[test]
fn the_postgres_sequence_hands_out_the_block_the_group_commit_expects() {
    let migration = include_str!("../../../../migrations/postgres/0011_event_id_blocks.sql");
    assert!(
        migration.contains(&format!("INCREMENT BY {}", super::EVENT_ID_BLOCK)),
        "{migration}"
    );
}
