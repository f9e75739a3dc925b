//! The rollup tables in SQLite: reading a message's facts, writing a [`Delta`], rebuilding from
//! the event log, and the report reads.

use super::{parse_kind, parse_ts, ts};
use crate::analytics::rollup::{
    Delta, Dim, DimCount, Fact, HourCount, LinkCount, Row, TOTALS, Tally, contributions,
};
use crate::classify::Class;
use crate::store::{CampaignId, MessageId};
use rusqlite::{Connection, OptionalExtension, params};

/// The columns a [`Fact`] is read from, for one message in arrival order.
pub const FACT_QUERY: &str = "SELECT kind, link_no, received_at, class, client, os, device, country
    FROM events WHERE message_id = ?1 ORDER BY id";

pub fn fact_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Fact> {
    Ok(Fact {
        kind: parse_kind(&r.get::<_, String>(0)?),
        link_no: r.get(1)?,
        received_at: parse_ts(&r.get::<_, String>(2)?)?,
        class: Class::parse(&r.get::<_, String>(3)?).unwrap_or(Class::Human),
        client: r.get(4)?,
        os: r.get(5)?,
        device: r.get(6)?,
        country: r.get(7)?,
    })
}

/// The facts of a message's stored events, after the representatives of its deleted ones.
pub fn message_facts(c: &Connection, message: MessageId) -> rusqlite::Result<Vec<Fact>> {
    let mut facts = purged_facts(c, message)?;
    for f in c
        .prepare_cached(FACT_QUERY)?
        .query_map([message], fact_from_row)?
    {
        facts.push(f?);
    }
    Ok(facts)
}

/// Representatives of the message's events that retention deleted (see migration 0011).
pub fn purged_facts(c: &Connection, message: MessageId) -> rusqlite::Result<Vec<Fact>> {
    let json: Option<String> = c
        .prepare_cached("SELECT purged_facts FROM messages WHERE id = ?1")?
        .query_row([message], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(parse_purged(json.as_deref()))
}

pub fn parse_purged(json: Option<&str>) -> Vec<Fact> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// Adds a [`Row::Totals`] delta: campaign id, then the counters in [`TOTALS`] order. Built once:
/// the writer runs it in every group commit.
static TOTALS_UPSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO campaign_totals (campaign_id, {cols}) VALUES (?1, {params})
         ON CONFLICT (campaign_id) DO UPDATE SET {sets}",
        cols = TOTALS.join(", "),
        params = (2..=TOTALS.len() + 1)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", "),
        sets = TOTALS
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
});

/// Writes the changed counters (and widened activity spans) of `delta`.
pub fn apply(c: &Connection, delta: &Delta) -> rusqlite::Result<()> {
    let mut totals = c.prepare_cached(&TOTALS_UPSERT)?;
    let mut hours = c.prepare_cached(
        "INSERT INTO rollup_hours (campaign_id, hour, kind, class, events, firsts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (campaign_id, hour, kind, class) DO UPDATE SET
             events = events + excluded.events, firsts = firsts + excluded.firsts",
    )?;
    let mut links = c.prepare_cached(
        "INSERT INTO rollup_links (campaign_id, link_no, clicks, reader_clicks, messages,
                                   reader_messages)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (campaign_id, link_no) DO UPDATE SET
             clicks = clicks + excluded.clicks, reader_clicks = reader_clicks + excluded.reader_clicks,
             messages = messages + excluded.messages,
             reader_messages = reader_messages + excluded.reader_messages",
    )?;
    let mut dims = c.prepare_cached(
        "INSERT INTO rollup_dims (campaign_id, dim, value, kind, events, reader_events, messages,
                                  reader_messages)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (campaign_id, dim, value, kind) DO UPDATE SET
             events = events + excluded.events, reader_events = reader_events + excluded.reader_events,
             messages = messages + excluded.messages,
             reader_messages = reader_messages + excluded.reader_messages",
    )?;
    for (campaign, row, n) in delta.rows() {
        match row {
            Row::Totals => {
                let mut values: Vec<i64> = vec![campaign];
                values.extend_from_slice(n);
                totals.execute(rusqlite::params_from_iter(values))?;
            }
            Row::Hour { hour, kind, class } => {
                hours.execute(params![
                    campaign,
                    hour,
                    kind.as_str(),
                    class.as_str(),
                    n[0],
                    n[1]
                ])?;
            }
            Row::Link { link_no } => {
                links.execute(params![campaign, link_no, n[0], n[1], n[2], n[3]])?;
            }
            Row::Dim { dim, value, kind } => {
                dims.execute(params![
                    campaign,
                    dim.as_str(),
                    value,
                    kind.as_str(),
                    n[0],
                    n[1],
                    n[2],
                    n[3]
                ])?;
            }
        }
    }
    let mut activity = c.prepare_cached(
        "INSERT INTO campaign_totals (campaign_id, first_at, last_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (campaign_id) DO UPDATE SET
             first_at = CASE WHEN first_at IS NULL OR excluded.first_at < first_at
                             THEN excluded.first_at ELSE first_at END,
             last_at = CASE WHEN last_at IS NULL OR excluded.last_at > last_at
                            THEN excluded.last_at ELSE last_at END",
    )?;
    for (campaign, first, last) in delta.activity_spans() {
        activity.execute(params![campaign, ts(first), ts(last)])?;
    }
    Ok(())
}

/// Adds `n` (negative to take away) to the campaign's count of messages sent.
pub fn add_sent(c: &Connection, campaign: CampaignId, n: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO campaign_totals (campaign_id, sent) VALUES (?1, ?2)
         ON CONFLICT (campaign_id) DO UPDATE SET sent = sent + excluded.sent",
    )?
    .execute(params![campaign, n])
    .map(drop)
}

/// Recomputes every rollup from the messages and the event log (after the migration that adds
/// them, and to check the incremental upkeep in tests).
pub fn rebuild(c: &Connection) -> rusqlite::Result<()> {
    let campaigns: Vec<CampaignId> = c
        .prepare("SELECT id FROM campaigns ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for table in ROLLUP_TABLES {
        c.execute(&format!("DELETE FROM {table}"), [])?;
    }
    for campaign in campaigns {
        rebuild_campaign(c, campaign)?;
    }
    Ok(())
}

const ROLLUP_TABLES: [&str; 4] = [
    "campaign_totals",
    "rollup_hours",
    "rollup_links",
    "rollup_dims",
];

/// Recomputes one campaign's rollups from its messages and events.
pub fn rebuild_campaign(c: &Connection, campaign: CampaignId) -> rusqlite::Result<()> {
    for table in ROLLUP_TABLES {
        c.execute(
            &format!("DELETE FROM {table} WHERE campaign_id = ?1"),
            [campaign],
        )?;
    }
    c.execute(
        "INSERT INTO campaign_totals (campaign_id, sent, first_at, last_at)
         SELECT ?1, (SELECT count(*) FROM messages WHERE campaign_id = ?1),
                (SELECT min(received_at) FROM events WHERE campaign_id = ?1),
                (SELECT max(received_at) FROM events WHERE campaign_id = ?1)",
        [campaign],
    )?;
    let messages: Vec<MessageId> = c
        .prepare_cached(
            "SELECT DISTINCT message_id FROM events WHERE campaign_id = ?1 ORDER BY message_id",
        )?
        .query_map([campaign], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for chunk in messages.chunks(1000) {
        let mut delta = Delta::default();
        for message in chunk {
            delta.add(campaign, contributions(&message_facts(c, *message)?), 1);
        }
        apply(c, &delta)?;
    }
    Ok(())
}

/// Every rollup row of a campaign, as text in a stable order; rows whose counters are all zero
/// are left out (they mean the same as no row).
pub fn dump(c: &Connection, campaign: CampaignId) -> rusqlite::Result<Vec<String>> {
    let mut rows = Vec::new();
    for (table, order, keys) in [
        ("campaign_totals", "campaign_id", 1),
        ("rollup_hours", "hour, kind, class", 4),
        ("rollup_links", "link_no", 2),
        ("rollup_dims", "dim, value, kind", 4),
    ] {
        let mut stmt = c.prepare(&format!(
            "SELECT * FROM {table} WHERE campaign_id = ?1 ORDER BY {order}"
        ))?;
        let n = stmt.column_count();
        let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let mut q = stmt.query([campaign])?;
        while let Some(r) = q.next()? {
            let values: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i) {
                    Ok(rusqlite::types::ValueRef::Text(t)) => String::from_utf8_lossy(t).into(),
                    Ok(rusqlite::types::ValueRef::Integer(i)) => i.to_string(),
                    Ok(rusqlite::types::ValueRef::Null) => "null".into(),
                    Ok(other) => format!("{other:?}"),
                    Err(e) => e.to_string(),
                })
                .collect();
            if table != "campaign_totals" && values[keys..].iter().all(|v| v == "0") {
                continue;
            }
            let row: Vec<String> = names
                .iter()
                .zip(&values)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            rows.push(format!("{table} {}", row.join(" ")));
        }
    }
    Ok(rows)
}

/// `campaign_totals` as (column, value) in [`TOTALS`] order plus sent, first_at, last_at.
pub struct Totals {
    pub sent: i64,
    pub counters: [i64; 9],
    pub first_at: Option<String>,
    pub last_at: Option<String>,
}

impl Totals {
    pub fn get(&self, column: &str) -> i64 {
        TOTALS
            .iter()
            .position(|c| *c == column)
            .map_or(0, |i| self.counters[i])
    }
}

pub fn totals(c: &Connection, campaign: CampaignId) -> rusqlite::Result<Totals> {
    let sql = format!(
        "SELECT sent, first_at, last_at, {} FROM campaign_totals WHERE campaign_id = ?1",
        TOTALS.join(", ")
    );
    let row = OptionalExtension::optional(c.prepare_cached(&sql)?.query_row([campaign], |r| {
        let mut counters = [0; 9];
        for (i, n) in counters.iter_mut().enumerate() {
            *n = r.get(3 + i)?;
        }
        Ok(Totals {
            sent: r.get(0)?,
            first_at: r.get(1)?,
            last_at: r.get(2)?,
            counters,
        })
    }))?;
    Ok(row.unwrap_or(Totals {
        sent: 0,
        counters: [0; 9],
        first_at: None,
        last_at: None,
    }))
}

pub fn hours(
    c: &Connection,
    campaign: CampaignId,
    from_hour: i64,
    to_hour: i64,
) -> rusqlite::Result<Vec<HourCount>> {
    c.prepare_cached(
        "SELECT hour, kind, class, events, firsts FROM rollup_hours
         WHERE campaign_id = ?1 AND hour >= ?2 AND hour < ?3 AND (events <> 0 OR firsts <> 0)
         ORDER BY hour",
    )?
    .query_map(params![campaign, from_hour, to_hour], |r| {
        Ok(HourCount {
            hour: r.get(0)?,
            kind: parse_kind(&r.get::<_, String>(1)?),
            class: Class::parse(&r.get::<_, String>(2)?).unwrap_or(Class::Human),
            events: r.get(3)?,
            firsts: r.get(4)?,
        })
    })?
    .collect()
}

fn tally(r: &rusqlite::Row<'_>, from: usize) -> rusqlite::Result<Tally> {
    Ok(Tally {
        events: r.get(from)?,
        reader_events: r.get(from + 1)?,
        messages: r.get(from + 2)?,
        reader_messages: r.get(from + 3)?,
    })
}

/// Clicks per link; the destination shown is the link's in the campaign's first message. (Ordered
/// by `m.id`, the campaign's messages come in `messages_by_campaign` order and the first match
/// ends the search; ordered by `l.message_id`, SQLite sorted every message of the campaign for
/// each link: 2 s at a million messages.)
pub fn links(c: &Connection, campaign: CampaignId) -> rusqlite::Result<Vec<LinkCount>> {
    c.prepare_cached(
        "SELECT r.link_no,
                (SELECT l.url FROM messages m
                 JOIN links l ON l.message_id = m.id AND l.link_no = r.link_no
                 WHERE m.campaign_id = r.campaign_id
                 ORDER BY m.id LIMIT 1),
                r.clicks, r.reader_clicks, r.messages, r.reader_messages
         FROM rollup_links r WHERE r.campaign_id = ?1 AND r.clicks <> 0 ORDER BY r.link_no",
    )?
    .query_map([campaign], |r| {
        Ok(LinkCount {
            link_no: r.get(0)?,
            url: r.get(1)?,
            tally: tally(r, 2)?,
        })
    })?
    .collect()
}

/// One breakdown, most messages first.
pub fn dims(c: &Connection, campaign: CampaignId, dim: Dim) -> rusqlite::Result<Vec<DimCount>> {
    c.prepare_cached(
        "SELECT value, kind, events, reader_events, messages, reader_messages FROM rollup_dims
         WHERE campaign_id = ?1 AND dim = ?2 AND events <> 0
         ORDER BY messages DESC, value",
    )?
    .query_map(params![campaign, dim.as_str()], |r| {
        Ok(DimCount {
            value: r.get(0)?,
            kind: parse_kind(&r.get::<_, String>(1)?),
            tally: tally(r, 2)?,
        })
    })?
    .collect()
}
