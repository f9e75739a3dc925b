//! What a message's earlier events have already shown the rollups, which a new event's part of
//! them depends on (a first open, a first click of a link, a new client). Kept per message as its
//! events are added, so that a new event costs a few lookups instead of a pass over every earlier
//! event held: a message loaded by many in one batch holds hundreds. A message with a few events
//! is scanned instead ([`Delta::append`]), which allocates nothing.

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

/// What a message's earlier events had of what a new event counts in: the flags that decide
/// its firsts, and for its link and breakdown values whether they were seen, and by a reader.
struct Earlier {
    opened: bool,
    clicked: bool,
    reader: bool,
    reader_opened: bool,
    reader_clicked: bool,
    kind_any: bool,
    link: Option<bool>,
    dims: [Option<bool>; 5],
}

impl Earlier {
    fn in_seen(seen: &Seen, new: &Fact) -> Earlier {
        let click = new.kind == EventKind::Click;
        let kind = &seen.kinds[usize::from(click)];
        let link = new.link_no.filter(|_| click);
        let mut dims = [None; 5];
        for ((slot, values), dim) in dims.iter_mut().zip(&kind.dims).zip(Dim::ALL) {
            *slot = values.get(dim.value(new)).copied();
        }
        Earlier {
            opened: seen.opened,
            clicked: seen.clicked,
            reader: seen.reader,
            reader_opened: seen.reader_opened,
            reader_clicked: seen.reader_clicked,
            kind_any: kind.any,
            link: link.and_then(|l| kind.links.get(&l).copied()),
            dims,
        }
    }

    /// One pass over the earlier facts: cheaper than a [`Seen`] while they are few (it allocates
    /// nothing), dearer once a message holds many.
    fn scan(prior: &[Fact], new: &Fact) -> Earlier {
        let click = new.kind == EventKind::Click;
        let link = new.link_no.filter(|_| click);
        let values = Dim::ALL.map(|d| d.value(new));
        let mut e = Earlier {
            opened: false,
            clicked: false,
            reader: false,
            reader_opened: false,
            reader_clicked: false,
            kind_any: false,
            link: None,
            dims: [None; 5],
        };
        for f in prior {
            let f_reader = !f.class.is_machine();
            let f_click = f.kind == EventKind::Click;
            e.opened |= !f_click;
            e.clicked |= f_click;
            e.reader |= f_reader;
            e.reader_opened |= f_reader && !f_click;
            e.reader_clicked |= f_reader && f_click;
            if f.kind != new.kind {
                continue;
            }
            e.kind_any = true;
            if link.is_some() && f.link_no == link {
                *e.link.get_or_insert(false) |= f_reader;
            }
            for ((slot, value), dim) in e.dims.iter_mut().zip(values).zip(Dim::ALL) {
                if dim.value(f) == value {
                    *slot.get_or_insert(false) |= f_reader;
                }
            }
        }
        e
    }
}

impl Delta {
    /// Adds what `new` adds to a message's contributions after the events `seen` stands for:
    /// the same as `change(campaign, earlier, earlier + new)`, without looking at them (the
    /// writer does this for every new event of a message that holds many).
    pub fn append_seen(&mut self, campaign: CampaignId, seen: &Seen, new: &Fact) {
        self.append_after(campaign, &Earlier::in_seen(seen, new), new);
    }

    /// Adds what the last of `facts` (a message's events, in arrival order) adds to the message's
    /// contributions: the same as `change(campaign, &facts[..n - 1], facts)`, in one pass over the
    /// earlier facts (the writer does this for every new event of a message that holds few).
    pub fn append(&mut self, campaign: CampaignId, facts: &[Fact]) {
        if let Some((new, prior)) = facts.split_last() {
            self.append_after(campaign, &Earlier::scan(prior, new), new);
        }
    }

    fn append_after(&mut self, campaign: CampaignId, seen: &Earlier, new: &Fact) {
        let one = |flag: bool| i64::from(flag);
        let reader = !new.class.is_machine();
        let click = new.kind == EventKind::Click;
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
            lead(&[1, one(!seen.kind_any)]),
        );
        // A first, and a reader's first, of this link or breakdown value.
        let firsts = |by_reader: Option<bool>| {
            lead(&[
                1,
                one(reader),
                one(by_reader.is_none()),
                one(reader && by_reader != Some(true)),
            ])
        };
        if let Some(link_no) = new.link_no.filter(|_| click) {
            add(Row::Link { link_no }, firsts(seen.link));
        }
        for (by_reader, dim) in seen.dims.into_iter().zip(Dim::ALL) {
            let value = dim.value(new).to_string();
            add(
                Row::Dim {
                    dim,
                    value,
                    kind: new.kind,
                },
                firsts(by_reader),
            );
        }
    }
}
