//! What a message's earlier events have already shown the rollups, which a new event's part of
//! them depends on (a first open, a first click of a link, a new client). Kept per message as its
//! events are added, so that a new event costs a few lookups instead of a pass over every earlier
//! event held: a message loaded by many in one batch holds hundreds.

use super::{CampaignId, Counters, Delta, Dim, Fact, Row, TOTALS, add_counters, lead};
use crate::domain::EventKind;
use std::collections::HashMap;

/// The earlier events' share of what [`super::contributions`] tracks, each with whether a
/// reader's event (not machine activity) had it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seen {
    opened: bool,
    clicked: bool,
    reader: bool,
    reader_opened: bool,
    reader_clicked: bool,
    /// Opens, then clicks.
    kinds: [KindSeen; 2],
}

#[derive(Debug, Default, Clone, PartialEq)]
struct KindSeen {
    any: bool,
    /// Links clicked (clicks only), and whether by a reader.
    links: HashMap<u16, bool>,
    /// Each breakdown's values, in [`Dim::ALL`] order, and whether a reader's event had it.
    dims: [HashMap<String, bool>; 5],
}

impl Seen {
    pub fn of(facts: &[Fact]) -> Seen {
        let mut seen = Seen::default();
        for f in facts {
            seen.add(f);
        }
        seen
    }

    /// Notes one more event (after [`Delta::append_seen`] has counted it).
    pub fn add(&mut self, f: &Fact) {
        let reader = !f.class.is_machine();
        let click = f.kind == EventKind::Click;
        self.opened |= !click;
        self.clicked |= click;
        self.reader |= reader;
        self.reader_opened |= reader && !click;
        self.reader_clicked |= reader && click;
        let kind = &mut self.kinds[usize::from(click)];
        kind.any = true;
        if let Some(link) = f.link_no.filter(|_| click) {
            *kind.links.entry(link).or_default() |= reader;
        }
        for (values, dim) in kind.dims.iter_mut().zip(Dim::ALL) {
            let value = dim.value(f);
            match values.get_mut(value) {
                Some(by_reader) => *by_reader |= reader,
                None => {
                    values.insert(value.to_string(), reader);
                }
            }
        }
    }
}

impl Delta {
    /// Adds what `new` adds to a message's contributions after the events `seen` stands for:
    /// the same as `change(campaign, earlier, earlier + new)`, without looking at them (the
    /// writer does this for every new event).
    pub fn append_seen(&mut self, campaign: CampaignId, seen: &Seen, new: &Fact) {
        let one = |flag: bool| i64::from(flag);
        let reader = !new.class.is_machine();
        let click = new.kind == EventKind::Click;
        let link = new.link_no.filter(|_| click);
        let kind = &seen.kinds[usize::from(click)];
        let mut totals = [0; TOTALS.len()];
        totals[usize::from(click)] = 1;
        totals[2 + usize::from(click)] = one(reader);
        totals[4] = one(!click && !seen.opened);
        totals[5] = one(click && !seen.clicked);
        totals[6] = one(reader && !seen.reader);
        totals[7] = one(reader && !click && !seen.reader_opened);
        totals[8] = one(reader && click && !seen.reader_clicked);
        totals[9] = one(!seen.opened && !seen.clicked);
        let mut add = |row: Row, counters: Counters| {
            add_counters(
                self.rows
                    .entry((campaign, row))
                    .or_insert([0; TOTALS.len()]),
                &counters,
                1,
            );
        };
        add(Row::Totals, totals);
        add(
            Row::Hour {
                hour: new.received_at.timestamp().div_euclid(3600),
                kind: new.kind,
                class: new.class,
            },
            lead(&[1, one(!kind.any)]),
        );
        if let Some(link_no) = link {
            let by_reader = kind.links.get(&link_no).copied();
            add(
                Row::Link { link_no },
                lead(&[
                    1,
                    one(reader),
                    one(by_reader.is_none()),
                    one(reader && by_reader != Some(true)),
                ]),
            );
        }
        for (values, dim) in kind.dims.iter().zip(Dim::ALL) {
            let value = dim.value(new);
            let by_reader = values.get(value).copied();
            add(
                Row::Dim {
                    dim,
                    value: value.to_string(),
                    kind: new.kind,
                },
                lead(&[
                    1,
                    one(reader),
                    one(by_reader.is_none()),
                    one(reader && by_reader != Some(true)),
                ]),
            );
        }
    }
}
