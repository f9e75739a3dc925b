//! Rollups: per-campaign counters that storage keeps current in the same transaction as the raw
//! events, so a report reads a few rows whatever the number of events behind it.
//!
//! What one message contributes to the rollups is a pure function of its events
//! ([`contributions`]). Every change is applied as the difference between a message's
//! contributions before and after it: a new event, the earlier clicks a burst relabels, a
//! reclassification, an erasure. So unique counts (first seen per message) stay exact however the
//! classes of past events change, and the writer never has to re-read a campaign.

use crate::classify::Class;
use crate::domain::{CampaignId, EventKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

mod seen;
pub use seen::Seen;

/// What the rollups need to know of one stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub kind: EventKind,
    pub link_no: Option<u16>,
    pub received_at: DateTime<Utc>,
    pub class: Class,
    pub client: Option<String>,
    pub os: Option<String>,
    pub device: String,
    pub country: Option<String>,
}

/// A breakdown the dimension rollup keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Client,
    Os,
    Device,
    Country,
    Class,
}

impl Dim {
    pub const ALL: [Dim; 5] = [Dim::Client, Dim::Os, Dim::Device, Dim::Country, Dim::Class];

    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Client => "client",
            Dim::Os => "os",
            Dim::Device => "device",
            Dim::Country => "country",
            Dim::Class => "class",
        }
    }

    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The fact's value for this breakdown; "" when unknown.
    fn value(self, fact: &Fact) -> &str {
        match self {
            Dim::Client => fact.client.as_deref().unwrap_or(""),
            Dim::Os => fact.os.as_deref().unwrap_or(""),
            Dim::Device => &fact.device,
            Dim::Country => fact.country.as_deref().unwrap_or(""),
            Dim::Class => fact.class.as_str(),
        }
    }
}

/// One row of one rollup table (the campaign is kept beside it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Row {
    /// `campaign_totals`; counters in the order of [`TOTALS`].
    Totals,
    /// `rollup_hours`: events of one kind and class in one hour (hours since the Unix epoch).
    /// Counters: events, firsts (messages whose first event of this kind this was).
    Hour {
        hour: i64,
        kind: EventKind,
        class: Class,
    },
    /// `rollup_links`. Counters: clicks, reader clicks, messages, reader messages.
    Link { link_no: u16 },
    /// `rollup_dims`. Counters: events, reader events, messages, reader messages.
    Dim {
        dim: Dim,
        value: String,
        kind: EventKind,
    },
}

/// Counter deltas of one row; rows use as many leading counters as their table has.
pub type Counters = [i64; TOTALS.len()];

/// The columns of `campaign_totals` that are counters, in [`Row::Totals`] order. "Reader" means
/// any class but machine activity (see `Class::is_machine`).
pub const TOTALS: [&str; 10] = [
    "opens",
    "clicks",
    "reader_open_events",
    "reader_click_events",
    "unique_opens",
    "unique_clicks",
    // Messages with a reader's open or a reader's click (a click implies the mail was opened).
    "reader_opens",
    // Messages with a reader's open (pixel loaded).
    "reader_pixel_opens",
    "reader_clicks",
    // Messages with any open or click, by anyone or anything (the open rate's ceiling: a click
    // implies the mail was opened, as most email platforms count it).
    "opened",
];

/// Counters that start with `leading` and are zero after it.
fn lead(leading: &[i64]) -> Counters {
    let mut counters = [0; TOTALS.len()];
    counters[..leading.len()].copy_from_slice(leading);
    counters
}

fn add_counters(sum: &mut Counters, counters: &Counters, sign: i64) {
    for (s, c) in sum.iter_mut().zip(counters) {
        *s += sign * c;
    }
}

/// What one message's events (in arrival order) add to the rollups.
pub fn contributions(facts: &[Fact]) -> BTreeMap<Row, Counters> {
    // Each fact touches each of its rows once, with all of that row's counters at a time: the
    // writer runs this for every event, so it allocates as little as it can.
    let mut rows: BTreeMap<Row, Counters> = BTreeMap::new();
    let mut add = |row: Row, counters: Counters| {
        add_counters(rows.entry(row).or_insert([0; TOTALS.len()]), &counters, 1);
    };
    let one = |flag: bool| i64::from(flag);
    let mut first_of_kind = BTreeSet::new();
    let mut links_seen = BTreeSet::new();
    let mut dims_seen = BTreeSet::new();
    let (mut opened, mut clicked) = (false, false);
    let (mut reader_opened, mut reader_clicked) = (false, false);
    for f in facts {
        let reader = !f.class.is_machine();
        let click = f.kind == EventKind::Click;
        let mut totals = [0; TOTALS.len()];
        totals[usize::from(click)] = 1;
        totals[2 + usize::from(click)] = one(reader);
        add(Row::Totals, totals);
        if click {
            clicked = true;
            reader_clicked |= reader;
        } else {
            opened = true;
            reader_opened |= reader;
        }
        let first = first_of_kind.insert(f.kind);
        add(
            Row::Hour {
                hour: f.received_at.timestamp().div_euclid(3600),
                kind: f.kind,
                class: f.class,
            },
            lead(&[1, one(first)]),
        );
        if let (true, Some(link_no)) = (click, f.link_no) {
            let new = links_seen.insert((link_no, false));
            let new_reader = reader && links_seen.insert((link_no, true));
            add(
                Row::Link { link_no },
                lead(&[1, one(reader), one(new), one(new_reader)]),
            );
        }
        for dim in Dim::ALL {
            let value = dim.value(f);
            let new = dims_seen.insert((dim, value, f.kind, false));
            let new_reader = reader && dims_seen.insert((dim, value, f.kind, true));
            add(
                Row::Dim {
                    dim,
                    value: value.to_string(),
                    kind: f.kind,
                },
                lead(&[1, one(reader), one(new), one(new_reader)]),
            );
        }
    }
    let mut totals = [0; TOTALS.len()];
    for (flag, counter) in [
        (opened, 4),
        (clicked, 5),
        (reader_opened || reader_clicked, 6),
        (reader_opened, 7),
        (reader_clicked, 8),
        (opened || clicked, 9),
    ] {
        totals[counter] = one(flag);
    }
    add(Row::Totals, totals);
    rows
}

/// The few facts that stand for a message's deleted events in later contributions: one per
/// distinct combination of what [`contributions`] looks at, so "seen before" stays true for every
/// kind, link, breakdown value and reader flag. (Their counts do not matter: only differences of
/// contributions are ever applied.)
pub fn representatives(facts: &[Fact]) -> Vec<Fact> {
    let mut seen = BTreeSet::new();
    facts
        .iter()
        .filter(|f| {
            seen.insert((
                f.kind,
                f.link_no,
                f.class.is_machine(),
                f.class,
                f.client.clone(),
                f.os.clone(),
                f.device.clone(),
                f.country.clone(),
            ))
        })
        .cloned()
        .collect()
}

/// Counter changes across campaigns, summed over a batch and written once per row.
#[derive(Debug, Default)]
pub struct Delta {
    rows: BTreeMap<(CampaignId, Row), Counters>,
    /// Earliest and latest activity seen per campaign in this batch.
    activity: BTreeMap<CampaignId, (DateTime<Utc>, DateTime<Utc>)>,
}

impl Delta {
    /// Adds `after - before` for one message of `campaign`.
    pub fn change(&mut self, campaign: CampaignId, before: &[Fact], after: &[Fact]) {
        self.add(campaign, contributions(after), 1);
        if !before.is_empty() {
            self.add(campaign, contributions(before), -1);
        }
    }

    /// Adds (sign 1) or takes away (sign -1) a message's contributions.
    pub fn add(&mut self, campaign: CampaignId, rows: BTreeMap<Row, Counters>, sign: i64) {
        for (row, counters) in rows {
            add_counters(
                self.rows
                    .entry((campaign, row))
                    .or_insert([0; TOTALS.len()]),
                &counters,
                sign,
            );
        }
    }

    /// Notes that `campaign` had activity at `at` (first and last activity only grow outwards).
    pub fn activity(&mut self, campaign: CampaignId, at: DateTime<Utc>) {
        let span = self.activity.entry(campaign).or_insert((at, at));
        span.0 = span.0.min(at);
        span.1 = span.1.max(at);
    }

    /// The rows whose counters changed.
    pub fn rows(&self) -> impl Iterator<Item = (CampaignId, &Row, &Counters)> {
        self.rows
            .iter()
            .filter(|(_, c)| c.iter().any(|n| *n != 0))
            .map(|((campaign, row), c)| (*campaign, row, c))
    }

    pub fn activity_spans(
        &self,
    ) -> impl Iterator<Item = (CampaignId, DateTime<Utc>, DateTime<Utc>)> {
        self.activity.iter().map(|(c, (a, b))| (*c, *a, *b))
    }
}

/// One `rollup_hours` row: events of one kind and class in one hour.
#[derive(Debug, Clone)]
pub struct HourCount {
    /// Whole hours since the Unix epoch.
    pub hour: i64,
    pub kind: EventKind,
    pub class: Class,
    pub events: i64,
    /// Messages whose first event of this kind this was.
    pub firsts: i64,
}

/// Events and distinct messages, all and leaving out machine activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub events: i64,
    pub reader_events: i64,
    pub messages: i64,
    pub reader_messages: i64,
}

/// Clicks on one link number of a campaign.
#[derive(Debug, Clone)]
pub struct LinkCount {
    pub link_no: u16,
    /// The destination in the campaign's first message that has this link.
    pub url: Option<String>,
    pub tally: Tally,
    /// Conversions reported with this link's clicks' references, and the messages they came from.
    pub conversions: i64,
    pub converted_messages: i64,
}

/// One value of a breakdown (client, OS, device, country, class) for one kind of event.
#[derive(Debug, Clone)]
pub struct DimCount {
    /// "" when unknown.
    pub value: String,
    pub kind: EventKind,
    pub tally: Tally,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(kind: EventKind, link_no: Option<u16>, minute: i64, class: Class) -> Fact {
        Fact {
            kind,
            link_no,
            received_at: DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap(),
            class,
            client: Some("Apple Mail".into()),
            os: None,
            device: "desktop".into(),
            country: None,
        }
    }

    fn totals(rows: &BTreeMap<Row, Counters>) -> BTreeMap<&'static str, i64> {
        let t = rows.get(&Row::Totals).copied().unwrap_or_default();
        TOTALS.iter().copied().zip(t).collect()
    }

    #[test]
    fn a_machine_open_then_a_reader_click_counts_as_a_reader_open_implied_by_the_click() {
        let facts = [
            fact(EventKind::Open, None, 0, Class::AppleMpp),
            fact(EventKind::Open, None, 1, Class::AppleMpp),
            fact(EventKind::Click, Some(2), 90, Class::Human),
        ];
        let t = totals(&contributions(&facts));
        assert_eq!(t["opens"], 2);
        assert_eq!(t["unique_opens"], 1);
        assert_eq!(t["reader_open_events"], 0);
        assert_eq!(t["reader_opens"], 1, "the click implies a reader opened it");
        assert_eq!(t["reader_pixel_opens"], 0);
        assert_eq!(t["reader_clicks"], 1);
        assert_eq!(t["opened"], 1);
    }

    #[test]
    fn a_scanners_click_alone_counts_the_message_as_opened_only_in_the_widest_sense() {
        let t = totals(&contributions(&[fact(
            EventKind::Click,
            Some(1),
            0,
            Class::Scanner,
        )]));
        assert_eq!(
            (t["opened"], t["unique_opens"], t["reader_opens"]),
            (1, 0, 0)
        );
    }

    #[test]
    fn firsts_and_unique_messages_are_counted_once_per_message() {
        let facts = [
            fact(EventKind::Click, Some(1), 0, Class::Human),
            fact(EventKind::Click, Some(1), 1, Class::Human),
            fact(EventKind::Click, Some(2), 70, Class::Human),
        ];
        let rows = contributions(&facts);
        assert_eq!(rows[&Row::Link { link_no: 1 }][..4], [2, 2, 1, 1]);
        assert_eq!(rows[&Row::Link { link_no: 2 }][..4], [1, 1, 1, 1]);
        let hour0 = facts[0].received_at.timestamp().div_euclid(3600);
        let first = Row::Hour {
            hour: hour0,
            kind: EventKind::Click,
            class: Class::Human,
        };
        assert_eq!(rows[&first][..2], [2, 1]);
        let client = Row::Dim {
            dim: Dim::Client,
            value: "Apple Mail".into(),
            kind: EventKind::Click,
        };
        assert_eq!(rows[&client][..4], [3, 3, 1, 1]);
    }

    #[test]
    fn representatives_of_deleted_events_keep_later_events_from_counting_as_firsts() {
        let old = [
            fact(EventKind::Open, None, 0, Class::Human),
            fact(EventKind::Open, None, 1, Class::Human),
            fact(EventKind::Click, Some(1), 2, Class::Human),
            fact(EventKind::Click, Some(1), 3, Class::Human),
        ];
        let seed = representatives(&old);
        assert_eq!(seed.len(), 2);
        let new = fact(EventKind::Open, None, 600, Class::Human);
        let mut full = old.to_vec();
        full.push(new.clone());
        let mut seeded = seed.clone();
        seeded.push(new);
        let diff = |before: &[Fact], after: &[Fact]| {
            let mut d = Delta::default();
            d.change(CampaignId(1), before, after);
            d.rows()
                .map(|(_, r, c)| (r.clone(), *c))
                .collect::<Vec<_>>()
        };
        assert_eq!(diff(&old, &full), diff(&seed, &seeded));
    }

    proptest::proptest! {
        /// `append_seen` is the shortcut the writer takes for a new event: it must add exactly what
        /// recomputing the message's contributions with and without the event differs by.
        #[test]
        fn appending_an_event_adds_the_difference_of_contributions(
            seq in proptest::collection::vec(
                (0u8..2, 0u16..3, 0i64..180, 0usize..4, 0usize..3, 0usize..2), 1..12)
        ) {
            let classes = [Class::Human, Class::AppleMpp, Class::Scanner, Class::GmailProxy];
            let clients = [None, Some("Apple Mail"), Some("Gmail")];
            let facts: Vec<Fact> = seq
                .iter()
                .map(|&(kind, link, minute, class, client, country)| {
                    let click = kind == 1;
                    Fact {
                        kind: if click { EventKind::Click } else { EventKind::Open },
                        link_no: click.then_some(link),
                        received_at: DateTime::from_timestamp(1_700_000_000 + minute * 60, 0)
                            .unwrap(),
                        class: classes[class],
                        client: clients[client].map(str::to_string),
                        os: None,
                        device: if country == 0 { "desktop" } else { "phone" }.into(),
                        country: (country == 1).then(|| "DE".to_string()),
                    }
                })
                .collect();
            let rows = |d: &Delta| d.rows().map(|(c, r, n)| (c, r.clone(), *n)).collect::<Vec<_>>();
            let mut full = Delta::default();
            full.change(CampaignId(3), &facts[..facts.len() - 1], &facts);
            let mut quick = Delta::default();
            let (new, earlier) = facts.split_last().unwrap();
            quick.append_seen(CampaignId(3), &Seen::of(earlier), new);
            proptest::prop_assert_eq!(rows(&quick), rows(&full));
            let mut scanned = Delta::default();
            scanned.append(CampaignId(3), &facts);
            proptest::prop_assert_eq!(rows(&scanned), rows(&full));
        }
    }

    #[test]
    fn relabelling_an_event_moves_it_between_classes_and_keeps_uniques_exact() {
        let before = [
            fact(EventKind::Click, Some(1), 0, Class::Human),
            fact(EventKind::Click, Some(2), 0, Class::Human),
        ];
        let mut after = before.clone();
        after[0].class = Class::Scanner;
        after[1].class = Class::Scanner;
        let mut delta = Delta::default();
        delta.change(CampaignId(7), &before, &after);
        let totals: Vec<_> = delta
            .rows()
            .filter(|(_, r, _)| **r == Row::Totals)
            .collect();
        let t: BTreeMap<_, _> = TOTALS.iter().copied().zip(*totals[0].2).collect();
        assert_eq!(t["clicks"], 0, "still two clicks");
        assert_eq!(t["unique_clicks"], 0);
        assert_eq!(t["reader_click_events"], -2);
        assert_eq!(t["reader_clicks"], -1);
        assert_eq!(t["reader_opens"], -1);
    }
}
