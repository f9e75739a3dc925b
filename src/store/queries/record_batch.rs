//! The group commit: a batch of journaled events classified against their messages' history
//! and stored with the rollups and webhook outbox in one transaction.

use super::*;

/// Columns of an events row as the group commit inserts it; `id` first.
const EVENT_INSERT_COLUMNS: &str = "id, received_at, kind, campaign_id, message_id, link_no,
    method, user_agent, client_ip, headers, class, reasons, duplicate, internal, ip_tags, client,
    os, device, country, region, ua_reduced";
const EVENT_INSERT_WIDTH: usize = 21;
/// Positions of `class` and `reasons` in a row (a burst relabels rows not yet inserted).
const ROW_CLASS: usize = 10;
const ROW_REASONS: usize = 11;
/// The group commit's INSERT of a batch's events.
static EVENT_INSERT: std::sync::LazyLock<sql::MultiRow> = std::sync::LazyLock::new(|| {
    sql::MultiRow::new(
        &format!("INSERT INTO events ({EVENT_INSERT_COLUMNS})"),
        EVENT_INSERT_WIDTH,
        "",
    )
});

/// Ids for `n` new events, in order: above every id the table has had.
fn next_event_ids(c: &mut dyn Conn, n: usize) -> StoreResult<Vec<EventId>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    match c.dialect() {
        sql::Dialect::Sqlite => {
            // AUTOINCREMENT never reuses an id: start above the highest ever given.
            let base: i64 = c.query_one(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
                            coalesce((SELECT max(id) FROM events), 0))",
                params![],
            )?;
            Ok((1..=n as i64).map(|i| base + i).collect())
        }
        sql::Dialect::Postgres => {
            let mut ids: Vec<EventId> = c
                .query(
                    "SELECT nextval(pg_get_serial_sequence('events', 'id'))
                     FROM generate_series(1, CAST(?1 AS BIGINT))",
                    params![n],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect::<StoreResult<_>>()?;
            ids.sort_unstable();
            Ok(ids)
        }
    }
}

/// Two processes must not store events of one message at once on PostgreSQL (each reads the
/// message's history and rewrites it): the batch locks its messages first, in id order, so that
/// two batches never wait for each other in a circle. SQLite writes one transaction at a time.
fn lock_messages(c: &mut dyn Conn, batch: &[NewEvent]) -> StoreResult<()> {
    if c.dialect() == sql::Dialect::Sqlite || batch.is_empty() {
        return Ok(());
    }
    let mut tracking: Vec<i64> = batch.iter().map(|e| e.tracking_id).collect();
    tracking.sort_unstable();
    tracking.dedup();
    let sql = format!(
        "SELECT id FROM messages WHERE tracking_id {} ORDER BY id FOR NO KEY UPDATE",
        sql::in_json_array(c.dialect(), true)
    );
    c.query(&sql, params![json_array(&tracking)]).map(drop)
}

/// The group commit: classifies and stores each event of the batch against its message's
/// history (earlier events of the batch included), keeps the rollups and the outbox in step.
/// The batch's messages, links, opt-outs and histories are read with one statement each, and
/// its events are written with multi-row INSERTs, so the statements do not grow with the batch.
pub(super) fn record_batch(
    c: &mut dyn Conn,
    batch: &[NewEvent],
    classifier: &Classifier,
) -> StoreResult<Vec<RecordOutcome>> {
    use std::collections::{HashMap, HashSet};
    lock_messages(c, batch)?;
    for e in batch.iter().filter(|e| e.failed_check) {
        c.execute(
            "UPDATE messages SET first_failed_check_at = ?2
             WHERE tracking_id = ?1 AND first_failed_check_at IS NULL",
            params![e.tracking_id, e.received_at],
        )?;
    }
    let events: Vec<&NewEvent> = batch.iter().filter(|e| !e.failed_check).collect();
    let mut tracking: Vec<i64> = events.iter().map(|e| e.tracking_id).collect();
    tracking.sort_unstable();
    tracking.dedup();
    // When each message's earliest event of the batch arrived: a summary that covers it covers
    // every later one.
    let mut batch_from: HashMap<i64, DateTime<Utc>> = HashMap::new();
    for e in &events {
        let at = batch_from.entry(e.tracking_id).or_insert(e.received_at);
        *at = (*at).min(e.received_at);
    }
    let mut messages: HashMap<i64, MessageRow> = HashMap::new();
    if !tracking.is_empty() {
        let sql = format!(
            "SELECT tracking_id, id, campaign_id, recipient_id, sent_at, first_failed_check_at,
                    purged_facts, history
             FROM messages WHERE tracking_id {}",
            sql::in_json_array(c.dialect(), true)
        );
        for r in c.query(&sql, params![json_array(&tracking)])? {
            let tracking_id: i64 = r.get(0)?;
            let mut facts = rollups::parse_purged(r.get::<Option<String>>(6)?.as_deref());
            let offset = facts.len();
            // The summary serves when it covers every event of the batch for this message;
            // otherwise the history is read from the log below.
            let history = r
                .get::<Option<String>>(7)?
                .and_then(|text| History::parse(&text))
                .filter(|h| h.covers(batch_from[&tracking_id]));
            let summarised = history.is_some();
            let (prior, older, cutoff, last) = match history {
                Some(h) => {
                    let prior = h.priors();
                    facts.extend(h.older.iter().cloned());
                    facts.extend(h.recent.into_iter().map(|(_, f)| f));
                    (prior, h.older.len(), h.cutoff, h.last)
                }
                None => (Vec::new(), 0, None, Vec::new()),
            };
            messages.insert(
                tracking_id,
                MessageRow {
                    id: r.get(1)?,
                    campaign_id: r.get(2)?,
                    recipient_id: r.get(3)?,
                    sent_at: r.get(4)?,
                    failed_check_at: r.get(5)?,
                    prior,
                    offset,
                    facts,
                    older,
                    cutoff,
                    last,
                    batch_from: batch_from[&tracking_id],
                    kept: 0,
                    summarised,
                    stored: false,
                },
            );
        }
    }
    let ids_of = |want: &dyn Fn(&NewEvent) -> bool| -> Vec<MessageId> {
        let mut ids: Vec<MessageId> = events
            .iter()
            .filter(|e| want(e))
            .filter_map(|e| messages.get(&e.tracking_id).map(|m| m.id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let clicked = ids_of(&|e| e.link_no.is_some());
    let mut links: HashMap<(MessageId, u16), String> = HashMap::new();
    if !clicked.is_empty() {
        let sql = format!(
            "SELECT message_id, link_no, url FROM links WHERE message_id {}",
            sql::in_json_array(c.dialect(), true)
        );
        for r in c.query(&sql, params![json_array(&clicked)])? {
            links.insert((r.get(0)?, r.get(1)?), r.get(2)?);
        }
    }
    let mut recipients: Vec<&str> = messages.values().map(|m| m.recipient_id.as_str()).collect();
    recipients.sort_unstable();
    recipients.dedup();
    let mut opted_out: HashSet<String> = HashSet::new();
    if !recipients.is_empty() {
        let sql = format!(
            "SELECT recipient_id FROM opt_outs WHERE recipient_id {}",
            sql::in_json_array(c.dialect(), false)
        );
        for r in c.query(&sql, params![json_array(&recipients)])? {
            opted_out.insert(r.get(0)?);
        }
    }
    // `--require-consent`: the recipients of this batch whose consent stands, checked at every
    // hit (a withdrawal counts from that moment, for mail sent before too).
    let mut consenting: HashSet<String> = HashSet::new();
    let mut asking: Vec<String> = events
        .iter()
        .filter(|e| e.without_consent.is_some())
        .filter_map(|e| messages.get(&e.tracking_id))
        .map(|m| m.recipient_id.clone())
        .filter(|r| !r.starts_with(ANONYMOUS_RECIPIENT))
        .collect();
    asking.sort_unstable();
    asking.dedup();
    consenting.extend(standing_consents(c, &asking)?);
    let by_id: HashMap<MessageId, i64> = messages.iter().map(|(t, m)| (m.id, *t)).collect();
    let mut wanted: Vec<MessageId> = messages
        .values()
        .filter(|m| !m.summarised)
        .map(|m| m.id)
        .collect();
    wanted.sort_unstable();
    if !wanted.is_empty() {
        let sql = format!(
            "SELECT message_id, kind, link_no, received_at, class, id, client, os, device, country
             FROM events WHERE message_id {} ORDER BY message_id, id",
            sql::in_json_array(c.dialect(), true)
        );
        for r in c.query(&sql, params![json_array(&wanted)])? {
            let m = messages
                .get_mut(&by_id[&r.get::<i64>(0)?])
                .expect("a message of the batch");
            let prior = Prior {
                kind: parse_kind(&r.get::<String>(1)?)?,
                link_no: r.get(2)?,
                received_at: r.get(3)?,
                class: parse_class(&r.get::<String>(4)?)?,
                id: r.get(5)?,
            };
            m.facts.push(Fact {
                kind: prior.kind,
                link_no: prior.link_no,
                received_at: prior.received_at,
                class: prior.class,
                client: r.get(6)?,
                os: r.get(7)?,
                device: r.get(8)?,
                country: r.get(9)?,
            });
            m.prior.push(prior);
        }
    }

    // What becomes of each event, before anything is written.
    let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; batch.len()];
    let mut stored: Vec<usize> = Vec::new();
    for (i, e) in batch.iter().enumerate() {
        if e.failed_check {
            outcomes[i] = Some(RecordOutcome::FailedCheckNoted);
            continue;
        }
        let Some(m) = messages.get(&e.tracking_id) else {
            outcomes[i] = Some(RecordOutcome::UnknownMessage);
            continue;
        };
        let destination = match e.link_no {
            Some(no) => match links.get(&(m.id, no)) {
                Some(url) => Some(url.clone()),
                None => {
                    outcomes[i] = Some(RecordOutcome::UnknownLink);
                    continue;
                }
            },
            None => None,
        };
        let without_consent = e.without_consent.filter(|_| {
            !m.recipient_id.starts_with(ANONYMOUS_RECIPIENT)
                && !consenting.contains(&m.recipient_id)
        });
        if opted_out.contains(&m.recipient_id) || without_consent == Some(WithoutConsent::None) {
            outcomes[i] = Some(RecordOutcome::NotStored { destination });
            continue;
        }
        if without_consent == Some(WithoutConsent::Anonymous) {
            // Recorded from now on under a name that points to no one (see anonymize_message).
            let id = m.id;
            let name = anonymize_message(c, id)?;
            messages
                .get_mut(&e.tracking_id)
                .expect("known message")
                .recipient_id = name;
        }
        outcomes[i] = Some(RecordOutcome::Recorded {
            event_id: 0,
            destination,
        });
        stored.push(i);
    }
    let ids = next_event_ids(c, stored.len())?;

    let routes = webhooks::routes(c)?;
    let mut delta = Delta::default();
    let mut rows: Vec<Vec<sql::Value>> = Vec::with_capacity(stored.len());
    // Rows of this batch by event id, for a burst that relabels one of them.
    let mut row_of: HashMap<EventId, usize> = HashMap::new();
    let mut relabelled: Vec<EventId> = Vec::new();
    for (&i, &event_id) in stored.iter().zip(&ids) {
        let e = &batch[i];
        let Some(RecordOutcome::Recorded {
            event_id: id,
            destination,
        }) = &mut outcomes[i]
        else {
            unreachable!("only recorded events are stored")
        };
        *id = event_id;
        let destination = destination.clone();
        let m = messages.get_mut(&e.tracking_id).expect("known message");
        m.stored = true;
        let hit = StoredHit {
            kind: e.kind,
            link_no: e.link_no,
            method: e.method,
            user_agent: e.user_agent.as_deref(),
            client_ip: e.client_ip.as_deref(),
            headers: e.headers.as_deref(),
            ip_tags: &e.ip_tags.join(" "),
            received_at: e.received_at,
            sent_at: m.sent_at,
            failed_check_at: m.failed_check_at,
            recipient_id: &m.recipient_id,
        };
        let (verdict, info) = hit.classify(classifier, &m.prior);
        // An anonymous message keeps neither the address nor the agent string of its readers
        // (classification above has seen them; the parsed client, OS and device stay).
        let anonymous = m.recipient_id.starts_with(ANONYMOUS_RECIPIENT);
        let user_agent = e
            .user_agent
            .as_deref()
            .filter(|_| e.keep_user_agent && !anonymous);
        let client_ip = e.client_ip.as_deref().filter(|_| !anonymous);
        // Nor the headers (a proxy's `Via`, a `From` address) or where the reader was.
        let headers = e.headers.as_deref().filter(|_| !anonymous);
        let (country, region) = match anonymous {
            true => (None, None),
            false => (e.country.clone(), e.region.clone()),
        };
        row_of.insert(event_id, rows.len());
        rows.push(vec![
            event_id.into(),
            e.received_at.into(),
            e.kind.as_str().into(),
            m.campaign_id.into(),
            m.id.into(),
            e.link_no.into(),
            e.method.into(),
            user_agent.into(),
            client_ip.into(),
            headers.into(),
            verdict.class.as_str().into(),
            verdict.reasons_text().into(),
            verdict.duplicate.into(),
            verdict.internal.into(),
            hit.ip_tags.into(),
            info.client.as_deref().into(),
            info.os.as_deref().into(),
            info.device.as_str().into(),
            country.as_deref().into(),
            region.as_deref().into(),
            (user_agent.is_none() && e.user_agent.is_some()).into(),
        ]);
        // A burst relabels earlier events: then the message's contributions are recomputed from
        // its facts before and after; otherwise the new event's own part is added.
        let relabels = verdict.reasons.contains(&REASON_BURST);
        let before = relabels.then(|| m.facts.clone());
        if relabels {
            for p in burst_members(e.received_at, &m.prior).collect::<Vec<_>>() {
                let id = m.prior[p].id;
                match row_of.get(&id) {
                    Some(&row) => {
                        let r = &mut rows[row];
                        if let sql::Value::Text(reasons) = &r[ROW_REASONS] {
                            let (class, reasons) = burst_relabel(reasons);
                            r[ROW_CLASS] = class.as_str().into();
                            r[ROW_REASONS] = reasons.into();
                        }
                    }
                    None => {
                        let (class, _) = burst_relabel("");
                        c.execute(BURST_RELABEL, params![id, class.as_str(), REASON_BURST])?;
                    }
                }
                m.prior[p].class = Class::Scanner;
                m.facts[m.offset + p].class = Class::Scanner;
                relabelled.push(id);
            }
        }
        if !routes.is_empty() {
            // A reader's click means the mail was opened (images off or not): an open after a
            // reader's click is not a first open.
            let reader_before = |kind: EventKind| {
                m.facts
                    .iter()
                    .any(|f| f.kind == kind && !f.class.is_machine())
            };
            let first_for_reader = !verdict.class.is_machine()
                && !reader_before(e.kind)
                && (e.kind == EventKind::Click || !reader_before(EventKind::Click));
            let implied_open =
                first_for_reader && e.kind == EventKind::Click && !reader_before(EventKind::Open);
            let record = EventRecord {
                id: event_id,
                kind: e.kind,
                received_at: e.received_at,
                campaign_id: m.campaign_id,
                message_id: m.id,
                recipient_id: m.recipient_id.clone(),
                link_url: destination,
                method: e.method.to_string(),
                user_agent: user_agent.map(str::to_string),
                client_ip: client_ip.map(str::to_string),
                class: verdict.class.as_str().to_string(),
                reasons: verdict.reasons_text(),
                duplicate: verdict.duplicate,
                internal: verdict.internal,
                client: info.client.clone(),
                os: info.os.clone(),
                device: info.device.as_str().to_string(),
                country: country.clone(),
                region: region.clone(),
            };
            webhooks::enqueue_event(
                c,
                &routes,
                &record,
                verdict.class,
                first_for_reader,
                implied_open,
            )?;
            webhooks::withdraw_relabelled(c, &routes, &relabelled)?;
        }
        relabelled.clear();
        m.prior.push(Prior {
            id: event_id,
            kind: e.kind,
            link_no: e.link_no,
            received_at: e.received_at,
            class: verdict.class,
        });
        m.facts.push(Fact {
            kind: e.kind,
            link_no: e.link_no,
            received_at: e.received_at,
            class: verdict.class,
            client: info.client,
            os: info.os,
            device: info.device.as_str().to_string(),
            country,
        });
        match before {
            Some(before) => delta.change(m.campaign_id, &before, &m.facts),
            None => delta.append(m.campaign_id, &m.facts),
        }
        delta.activity(m.campaign_id, e.received_at);
        m.compact_when_long();
    }
    EVENT_INSERT.execute(c, rows)?;
    let histories: Vec<(MessageId, String)> = messages
        .values()
        .filter(|m| m.stored || !m.summarised)
        .map(|m| (m.id, m.history(None).to_text()))
        .collect();
    history::write(c, &histories)?;
    // Last: a campaign's rollup rows are the ones other processes' batches wait for.
    rollups::apply(c, &delta)?;
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every event has an outcome"))
        .collect())
}
