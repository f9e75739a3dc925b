//! The rollup tables: reading a message's facts, writing a [`Delta`], rebuilding from the event
//! log, and the report reads.

use super::{parse_class, parse_kind};
use crate::analytics::rollup::{
    Delta, Dim, DimCount, Fact, HourCount, LinkCount, Row, TOTALS, Tally, contributions,
};
use crate::store::sql::{self, Conn, Value, params};
use crate::store::{CampaignId, MessageId, StoreResult};

/// The columns a [`Fact`] is read from ([`fact_from_row`]), in this order.
macro_rules! fact_columns {
    () => {
        "kind, link_no, received_at, class, client, os, device, country"
    };
}
pub const FACT_COLUMNS: &str = fact_columns!();

/// The facts of one message, in arrival order.
pub const FACT_QUERY: &str = concat!(
    "SELECT ",
    fact_columns!(),
    " FROM events WHERE message_id = ?1 ORDER BY id"
);

pub fn fact_from_row(r: &sql::Row) -> StoreResult<Fact> {
    Ok(Fact {
        kind: parse_kind(&r.get::<String>(0)?)?,
        link_no: r.get(1)?,
        received_at: r.get(2)?,
        class: parse_class(&r.get::<String>(3)?)?,
        client: r.get(4)?,
        os: r.get(5)?,
        device: r.get(6)?,
        country: r.get(7)?,
    })
}

/// The facts of a message's stored events, after the representatives of its deleted ones.
pub fn message_facts(c: &mut dyn Conn, message: MessageId) -> StoreResult<Vec<Fact>> {
    let mut facts = purged_facts(c, message)?;
    for r in c.query(FACT_QUERY, params![message])? {
        facts.push(fact_from_row(&r)?);
    }
    Ok(facts)
}

/// Representatives of the message's events that retention deleted (see migration 0011).
pub fn purged_facts(c: &mut dyn Conn, message: MessageId) -> StoreResult<Vec<Fact>> {
    let json: Option<String> = c
        .query_value::<Option<String>>(
            "SELECT purged_facts FROM messages WHERE id = ?1",
            params![message],
        )?
        .flatten();
    Ok(parse_purged(json.as_deref()))
}

pub fn parse_purged(json: Option<&str>) -> Vec<Fact> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// The rollup upserts of a [`Delta`], one multi-row statement per table and row count, each row
/// adding its counters to the stored ones. Built once: the writer runs them in every group commit.
struct Upserts {
    /// Campaign id, then the counters in [`TOTALS`] order.
    totals: sql::MultiRow,
    hours: sql::MultiRow,
    links: sql::MultiRow,
    dims: sql::MultiRow,
}

static UPSERTS: std::sync::LazyLock<Upserts> = std::sync::LazyLock::new(|| {
    use sql::Column::{Int, Text};
    Upserts {
    totals: sql::MultiRow::new(
        &format!(
            "INSERT INTO campaign_totals (campaign_id, {})",
            TOTALS.join(", ")
        ),
        &[sql::Column::Int; TOTALS.len() + 1],
        &format!(
            "ON CONFLICT (campaign_id) DO UPDATE SET {}",
            TOTALS
                .iter()
                .map(|c| format!("{c} = campaign_totals.{c} + excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ),
    hours: sql::MultiRow::new(
        "INSERT INTO rollup_hours (campaign_id, hour, kind, class, events, firsts)",
        &[Int, Int, Text, Text, Int, Int],
        "ON CONFLICT (campaign_id, hour, kind, class) DO UPDATE SET
             events = rollup_hours.events + excluded.events,
             firsts = rollup_hours.firsts + excluded.firsts",
    ),
    links: sql::MultiRow::new(
        "INSERT INTO rollup_links (campaign_id, link_no, clicks, reader_clicks, messages,
                                   reader_messages)",
        &[Int; 6],
        "ON CONFLICT (campaign_id, link_no) DO UPDATE SET
             clicks = rollup_links.clicks + excluded.clicks,
             reader_clicks = rollup_links.reader_clicks + excluded.reader_clicks,
             messages = rollup_links.messages + excluded.messages,
             reader_messages = rollup_links.reader_messages + excluded.reader_messages",
    ),
    dims: sql::MultiRow::new(
        "INSERT INTO rollup_dims (campaign_id, dim, value, kind, events, reader_events, messages,
                                  reader_messages)",
        &[Int, Text, Text, Text, Int, Int, Int, Int],
        "ON CONFLICT (campaign_id, dim, value, kind) DO UPDATE SET
             events = rollup_dims.events + excluded.events,
             reader_events = rollup_dims.reader_events + excluded.reader_events,
             messages = rollup_dims.messages + excluded.messages,
             reader_messages = rollup_dims.reader_messages + excluded.reader_messages",
    ),
}
});

/// Writes the changed counters (and widened activity spans) of `delta`: table by table, each
/// table's rows in the delta's (sorted) order, so concurrent writers take row locks in one order.
/// A delta holds each row once, as one statement's rows must be distinct for ON CONFLICT.
pub fn apply(c: &mut dyn Conn, delta: &Delta) -> StoreResult<()> {
    let (mut totals, mut hours, mut links, mut dims) = (vec![], vec![], vec![], vec![]);
    for (campaign, row, n) in delta.rows() {
        let counts = n.iter().map(|v| Value::Int(*v));
        let mut values: Vec<Value> = vec![campaign.into()];
        match row {
            Row::Totals => {
                values.extend(counts);
                totals.push(values);
            }
            Row::Hour { hour, kind, class } => {
                values.extend([(*hour).into(), kind.as_str().into(), class.as_str().into()]);
                values.extend(counts.take(2));
                hours.push(values);
            }
            Row::Link { link_no } => {
                values.push((*link_no).into());
                values.extend(counts.take(4));
                links.push(values);
            }
            Row::Dim { dim, value, kind } => {
                values.extend([
                    dim.as_str().into(),
                    value.as_str().into(),
                    kind.as_str().into(),
                ]);
                values.extend(counts.take(4));
                dims.push(values);
            }
        }
    }
    // Rows are locked in one order by every writer, campaigns' totals first, so that two
    // processes storing into the same campaigns wait for each other instead of in a circle
    // (every campaign with totals has activity, so this comes first).
    for (campaign, first, last) in delta.activity_spans() {
        c.execute(
            "INSERT INTO campaign_totals (campaign_id, first_at, last_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (campaign_id) DO UPDATE SET
                 first_at = CASE WHEN campaign_totals.first_at IS NULL
                                      OR excluded.first_at < campaign_totals.first_at
                                 THEN excluded.first_at ELSE campaign_totals.first_at END,
                 last_at = CASE WHEN campaign_totals.last_at IS NULL
                                     OR excluded.last_at > campaign_totals.last_at
                                THEN excluded.last_at ELSE campaign_totals.last_at END",
            params![campaign, first, last],
        )?;
    }
    UPSERTS.totals.execute(c, totals)?;
    UPSERTS.hours.execute(c, hours)?;
    UPSERTS.links.execute(c, links)?;
    UPSERTS.dims.execute(c, dims)?;
    Ok(())
}

/// Adds `n` (negative to take away) to the campaign's count of messages sent.
pub fn add_sent(c: &mut dyn Conn, campaign: CampaignId, n: i64) -> StoreResult<()> {
    c.execute(
        "INSERT INTO campaign_totals (campaign_id, sent) VALUES (?1, ?2)
         ON CONFLICT (campaign_id) DO UPDATE SET sent = campaign_totals.sent + excluded.sent",
        params![campaign, n],
    )
    .map(drop)
}

/// Recomputes every rollup from the messages and the event log (after the migration that adds
/// them, and to check the incremental upkeep in tests).
pub fn rebuild(c: &mut dyn Conn) -> StoreResult<()> {
    let campaigns: Vec<CampaignId> = c
        .query("SELECT id FROM campaigns ORDER BY id", params![])?
        .iter()
        .map(|r| r.get(0))
        .collect::<StoreResult<_>>()?;
    for table in ROLLUP_TABLES {
        c.execute(&format!("DELETE FROM {table}"), params![])?;
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

/// Deletes every rollup row of a campaign.
pub fn forget_campaign(c: &mut dyn Conn, campaign: CampaignId) -> StoreResult<()> {
    for table in ROLLUP_TABLES {
        c.execute(
            &format!("DELETE FROM {table} WHERE campaign_id = ?1"),
            params![campaign],
        )?;
    }
    Ok(())
}

/// Recomputes one campaign's rollups from its messages and events.
pub fn rebuild_campaign(c: &mut dyn Conn, campaign: CampaignId) -> StoreResult<()> {
    forget_campaign(c, campaign)?;
    c.execute(
        "INSERT INTO campaign_totals (campaign_id, sent, first_at, last_at)
         SELECT CAST(?1 AS BIGINT), (SELECT count(*) FROM messages WHERE campaign_id = ?1),
                (SELECT min(received_at) FROM events WHERE campaign_id = ?1),
                (SELECT max(received_at) FROM events WHERE campaign_id = ?1)",
        params![campaign],
    )?;
    let messages: Vec<MessageId> = c
        .query(
            // Also those whose events retention deleted all of: their facts are kept.
            "SELECT id FROM messages WHERE campaign_id = ?1
               AND (purged_facts IS NOT NULL
                    OR EXISTS (SELECT 1 FROM events e WHERE e.message_id = messages.id))
             ORDER BY id",
            params![campaign],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect::<StoreResult<_>>()?;
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
pub fn dump(c: &mut dyn Conn, campaign: CampaignId) -> StoreResult<Vec<String>> {
    let totals = format!("sent, {}, first_at, last_at", TOTALS.join(", "));
    let mut rows = Vec::new();
    for (table, keys, counters, order) in [
        (
            "campaign_totals",
            "campaign_id",
            totals.as_str(),
            "campaign_id",
        ),
        (
            "rollup_hours",
            "hour, kind, class",
            "events, firsts",
            "hour, kind, class",
        ),
        (
            "rollup_links",
            "link_no",
            "clicks, reader_clicks, messages, reader_messages",
            "link_no",
        ),
        (
            "rollup_dims",
            "dim, value, kind",
            "events, reader_events, messages, reader_messages",
            "dim, value, kind",
        ),
    ] {
        let names: Vec<&str> = keys.split(", ").chain(counters.split(", ")).collect();
        let n_keys = keys.split(", ").count();
        for r in c.query(
            &format!(
                "SELECT {keys}, {counters} FROM {table} WHERE campaign_id = ?1 ORDER BY {order}"
            ),
            params![campaign],
        )? {
            let values: Vec<String> =
                r.0.iter()
                    .map(|v| match v {
                        Value::Text(t) => t.clone(),
                        Value::Int(i) => i.to_string(),
                        Value::Null => "null".into(),
                        other => format!("{other:?}"),
                    })
                    .collect();
            if table != "campaign_totals" && values[n_keys..].iter().all(|v| v == "0") {
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
    pub counters: [i64; TOTALS.len()],
    pub first_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Totals {
    pub fn get(&self, column: &str) -> i64 {
        TOTALS
            .iter()
            .position(|c| *c == column)
            .map_or(0, |i| self.counters[i])
    }
}

pub fn totals(c: &mut dyn Conn, campaign: CampaignId) -> StoreResult<Totals> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT sent, first_at, last_at, {} FROM campaign_totals WHERE campaign_id = ?1",
            TOTALS.join(", ")
        )
    });
    let Some(r) = c.query_row(&SQL, params![campaign])? else {
        return Ok(Totals {
            sent: 0,
            counters: [0; TOTALS.len()],
            first_at: None,
            last_at: None,
        });
    };
    let mut counters = [0; TOTALS.len()];
    for (i, n) in counters.iter_mut().enumerate() {
        *n = r.get(3 + i)?;
    }
    Ok(Totals {
        sent: r.get(0)?,
        first_at: r.get(1)?,
        last_at: r.get(2)?,
        counters,
    })
}

pub fn hours(
    c: &mut dyn Conn,
    campaign: CampaignId,
    from_hour: i64,
    to_hour: i64,
) -> StoreResult<Vec<HourCount>> {
    c.query(
        "SELECT hour, kind, class, events, firsts FROM rollup_hours
         WHERE campaign_id = ?1 AND hour >= ?2 AND hour < ?3 AND (events <> 0 OR firsts <> 0)
         ORDER BY hour",
        params![campaign, from_hour, to_hour],
    )?
    .iter()
    .map(|r| {
        Ok(HourCount {
            hour: r.get(0)?,
            kind: parse_kind(&r.get::<String>(1)?)?,
            class: parse_class(&r.get::<String>(2)?)?,
            events: r.get(3)?,
            firsts: r.get(4)?,
        })
    })
    .collect()
}

fn tally(r: &sql::Row, from: usize) -> StoreResult<Tally> {
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
pub fn links(c: &mut dyn Conn, campaign: CampaignId) -> StoreResult<Vec<LinkCount>> {
    c.query(
        "SELECT r.link_no,
                (SELECT l.url FROM messages m
                 JOIN links l ON l.message_id = m.id AND l.link_no = r.link_no
                 WHERE m.campaign_id = r.campaign_id
                 ORDER BY m.id LIMIT 1),
                r.clicks, r.reader_clicks, r.messages, r.reader_messages,
                (SELECT count(*) FROM conversions v
                 WHERE v.campaign_id = r.campaign_id AND v.link_no = r.link_no),
                (SELECT count(DISTINCT v.message_id) FROM conversions v
                 WHERE v.campaign_id = r.campaign_id AND v.link_no = r.link_no)
         FROM rollup_links r WHERE r.campaign_id = ?1 AND r.clicks <> 0 ORDER BY r.link_no",
        params![campaign],
    )?
    .iter()
    .map(|r| {
        Ok(LinkCount {
            link_no: r.get(0)?,
            url: r.get(1)?,
            tally: tally(r, 2)?,
            conversions: r.get(6)?,
            converted_messages: r.get(7)?,
        })
    })
    .collect()
}

/// One breakdown, most messages first.
pub fn dims(c: &mut dyn Conn, campaign: CampaignId, dim: Dim) -> StoreResult<Vec<DimCount>> {
    c.query(
        "SELECT value, kind, events, reader_events, messages, reader_messages FROM rollup_dims
         WHERE campaign_id = ?1 AND dim = ?2 AND events <> 0
         ORDER BY messages DESC, value",
        params![campaign, dim.as_str()],
    )?
    .iter()
    .map(|r| {
        Ok(DimCount {
            value: r.get(0)?,
            kind: parse_kind(&r.get::<String>(1)?)?,
            tally: tally(r, 2)?,
        })
    })
    .collect()
}
