//! The storage logic shared by both engines: the [`Store`] trait on top of [`Conn`]. An engine
//! (src/store/sqlite.rs, src/store/postgres.rs) opens connections, migrates its schema and runs
//! these closures on a blocking thread; everything else, classification against a message's
//! history, the rollup deltas and the webhook outbox included, is written once here.

mod checks;
mod consent;
mod history;
mod message_row;
pub(crate) mod paging;
mod record_batch;
pub(crate) mod rollups;
mod tokens;
pub(crate) mod webhooks;

use super::sql::{Conn, Row, in_exclusive_tx, in_tx, params};
use super::*;
use crate::analytics::rollup::{
    Delta, Dim, DimCount, Fact, HourCount, LinkCount, contributions, representatives,
};
use crate::classify::replay::{Derived, MessageFacts, StoredEvent, replay};
use crate::classify::rules::{REASON_BURST, burst_members};
use crate::classify::{Class, Prior, StoredHit};
use checks::{check_each_campaign, check_summaries};
use chrono::SubsecRound;
use consent::{anonymize_message, consent_records, opted_out, standing_consents};
use history::History;
use message_row::MessageRow;
use record_batch::record_batch;
use std::future::Future;

/// How an engine runs the shared logic: `f` gets a connection on a blocking thread. `write`
/// connections are for statements that change data (the closure opens its transactions with
/// [`in_tx`]); `read` ones may run beside a writer.
pub trait Engine: Send + Sync + 'static {
    fn write<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static;

    fn read<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static;

    /// Runs `f` on the group commit's write connection on the calling thread, which must be one
    /// that may block (the writer's own): no hand-over to a blocking thread and back per batch.
    fn write_here<T>(&self, f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T>;
}

/// The [`Store`] of one engine.
pub struct SqlStore<E> {
    pub(crate) engine: E,
}

impl<E: Engine> SqlStore<E> {
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static,
    {
        self.engine.write(f).await
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> StoreResult<T> + Send + 'static,
    {
        self.engine.read(f).await
    }
}

fn campaign_from_row(r: &Row) -> StoreResult<Campaign> {
    Ok(Campaign {
        id: r.get(0)?,
        name: r.get(1)?,
        template_html: r.get(2)?,
        created_at: r.get(3)?,
    })
}

/// An earlier click of a burst becomes a scanner click too (rule `burst:links`; which ones,
/// `classify::rules::burst_members` decides).
const BURST_RELABEL: &str = "UPDATE events
    SET class = 'scanner', reasons = trim(reasons || ' burst:links') WHERE id = ?1";

const STORED_EVENT_COLUMNS: &str = "SELECT id, kind, link_no, method, user_agent, client_ip,
        headers, ip_tags, received_at, class, reasons, duplicate, internal, client, os, device,
        ua_reduced
    FROM events WHERE message_id = ?1 ORDER BY id";

fn stored_event_from_row(r: &Row) -> StoreResult<StoredEvent> {
    Ok(StoredEvent {
        id: r.get(0)?,
        kind: parse_kind(&r.get::<String>(1)?),
        link_no: r.get(2)?,
        method: r.get(3)?,
        user_agent: r.get(4)?,
        client_ip: r.get(5)?,
        headers: r.get(6)?,
        ip_tags: r.get(7)?,
        received_at: r.get(8)?,
        ua_reduced: r.get(16)?,
        derived: Derived {
            class: Class::parse(&r.get::<String>(9)?).unwrap_or(Class::Human),
            reasons: r.get(10)?,
            duplicate: r.get(11)?,
            internal: r.get(12)?,
            client: r.get(13)?,
            os: r.get(14)?,
            device: r.get(15)?,
        },
    })
}

pub(crate) fn parse_kind(kind: &str) -> EventKind {
    if kind == "click" {
        EventKind::Click
    } else {
        EventKind::Open
    }
}

const EVENT_COLUMNS: &str = "SELECT e.id, e.kind, e.received_at, e.campaign_id, e.message_id,
        m.recipient_id, l.url, e.method, e.user_agent, e.client_ip, e.class, e.reasons,
        e.duplicate, e.internal, e.client, e.os, e.device, e.country, e.region
    FROM events e
    JOIN messages m ON m.id = e.message_id
    LEFT JOIN links l ON l.message_id = e.message_id AND l.link_no = e.link_no";

fn event_from_row(r: &Row) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        id: r.get(0)?,
        kind: parse_kind(&r.get::<String>(1)?),
        received_at: r.get(2)?,
        campaign_id: r.get(3)?,
        message_id: r.get(4)?,
        recipient_id: r.get(5)?,
        link_url: r.get(6)?,
        method: r.get(7)?,
        user_agent: r.get(8)?,
        client_ip: r.get(9)?,
        class: r.get(10)?,
        reasons: r.get(11)?,
        duplicate: r.get(12)?,
        internal: r.get(13)?,
        client: r.get(14)?,
        os: r.get(15)?,
        device: r.get(16)?,
        country: r.get(17)?,
        region: r.get(18)?,
    })
}

fn events_from_rows(rows: Vec<Row>) -> StoreResult<Vec<EventRecord>> {
    rows.iter().map(event_from_row).collect()
}

#[async_trait]
impl<E: Engine> Store for SqlStore<E> {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| {
            c.query("SELECT count(*) FROM schema_migrations", params![])
                .map(drop)
        })
        .await
    }

    async fn create_campaign(
        &self,
        name: &str,
        template_html: Option<&str>,
    ) -> StoreResult<Campaign> {
        let name = name.to_string();
        let template_html = template_html.map(str::to_string);
        self.write(move |c| {
            in_tx(c, |c| {
                // Stored with microseconds: answer with what a later read will return.
                let created_at = Utc::now().trunc_subsecs(6);
                let id: i64 = c.query_one(
                    "INSERT INTO campaigns (name, template_html, created_at) VALUES (?1, ?2, ?3)
                     RETURNING id",
                    params![&name, template_html.as_deref(), created_at],
                )?;
                rollups::add_sent(c, id, 0)?;
                Ok(Campaign {
                    id,
                    name,
                    template_html,
                    created_at,
                })
            })
        })
        .await
    }

    async fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>> {
        self.read(move |c| {
            c.query_row(
                "SELECT id, name, template_html, created_at FROM campaigns WHERE id = ?1",
                params![id],
            )?
            .as_ref()
            .map(campaign_from_row)
            .transpose()
        })
        .await
    }

    async fn campaigns(&self) -> StoreResult<Vec<Campaign>> {
        self.read(|c| {
            c.query(
                "SELECT id, name, NULL, created_at FROM campaigns ORDER BY id DESC",
                params![],
            )?
            .iter()
            .map(campaign_from_row)
            .collect()
        })
        .await
    }

    async fn insert_messages(
        &self,
        campaign: CampaignId,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<MessageId>> {
        self.write(move |c| {
            in_tx(c, |c| {
                let mut ids = Vec::with_capacity(messages.len());
                let now = Utc::now();
                for m in &messages {
                    let id: i64 = c.query_one(
                        "INSERT INTO messages (campaign_id, recipient_id, tracking_id, sent_at,
                                               created_at, history)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                        params![
                            campaign,
                            &m.recipient_id,
                            m.tracking_id,
                            m.sent_at,
                            now,
                            history::EMPTY
                        ],
                    )?;
                    let link = "INSERT INTO links (message_id, link_no, url) VALUES (?1, ?2, ?3)";
                    for (i, url) in m.links.iter().enumerate() {
                        c.execute(link, params![id, i as i64 + 1, url])?;
                    }
                    if let Some(url) = &m.honeypot {
                        c.execute(link, params![id, 0, url])?;
                    }
                    ids.push(id);
                }
                rollups::add_sent(c, campaign, ids.len() as i64)?;
                Ok(ids)
            })
        })
        .await
    }

    async fn record_events(
        &self,
        batch: Arc<[NewEvent]>,
        classifier: Arc<Classifier>,
    ) -> StoreResult<Vec<RecordOutcome>> {
        self.write(move |c| in_tx(c, |c| record_batch(c, &batch, &classifier)))
            .await
    }

    fn record_journaled(
        &self,
        batch: &[NewEvent],
        classifier: &Classifier,
        journal: &str,
        position: (u64, u64),
    ) -> StoreResult<Vec<RecordOutcome>> {
        self.engine.write_here(|c| {
            in_tx(c, |c| {
                let outcomes = record_batch(c, batch, classifier)?;
                c.execute(
                    "INSERT INTO spool_progress (spool, segment, byte_offset, updated_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (spool) DO UPDATE SET segment = excluded.segment,
                         byte_offset = excluded.byte_offset, updated_at = excluded.updated_at",
                    params![journal, position.0, position.1, Utc::now()],
                )?;
                Ok(outcomes)
            })
        })
    }

    async fn journal_position(&self, journal: String) -> StoreResult<Option<(u64, u64)>> {
        self.read(move |c| {
            c.query_row(
                "SELECT segment, byte_offset FROM spool_progress WHERE spool = ?1",
                params![journal],
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
        })
        .await
    }

    async fn lookup_link(
        &self,
        tracking_id: i64,
        link_no: Option<u16>,
    ) -> StoreResult<Option<(Standing, Option<String>)>> {
        // -1 names no link: a pixel only asks whether the message exists.
        let link_no = link_no.map_or(-1, i64::from);
        self.read(move |c| {
            c.query_row(
                "SELECT l.url, m.recipient_id,
                     EXISTS (SELECT 1 FROM opt_outs o WHERE o.recipient_id = m.recipient_id),
                     EXISTS (SELECT 1 FROM consents k
                             WHERE k.recipient_id = m.recipient_id AND k.withdrawn_at IS NULL)
                 FROM messages m
                 LEFT JOIN links l ON l.message_id = m.id AND l.link_no = ?2
                 WHERE m.tracking_id = ?1",
                params![tracking_id, link_no],
            )?
            .map(|r| {
                let recipient: String = r.get(1)?;
                let standing = Standing {
                    anonymous: recipient.starts_with(ANONYMOUS_RECIPIENT),
                    opted_out: r.get(2)?,
                    consenting: r.get(3)?,
                };
                Ok((standing, r.get(0)?))
            })
            .transpose()
        })
        .await
    }

    async fn reclassify(
        &self,
        campaign: Option<CampaignId>,
        classifier: Arc<Classifier>,
        progress: Progress,
    ) -> StoreResult<ReclassifySummary> {
        self.write(move |c| {
            let total: i64 = c.query_one(
                "SELECT count(*) FROM events WHERE CAST(?1 AS BIGINT) IS NULL OR campaign_id = ?1",
                params![campaign],
            )?;
            let mut summary = ReclassifySummary::default();
            let mut after = 0i64;
            progress(0, total as u64);
            loop {
                // Short transactions, so a running server's writer is never kept waiting long.
                let more = in_exclusive_tx(c, |c| {
                    let messages: Vec<(MessageFacts, CampaignId)> = c
                        .query(
                            "SELECT id, recipient_id, sent_at, first_failed_check_at, campaign_id
                             FROM messages WHERE id > ?1 AND (CAST(?2 AS BIGINT) IS NULL OR campaign_id = ?2)
                             ORDER BY id LIMIT 500",
                            params![after, campaign],
                        )?
                        .iter()
                        .map(|r| {
                            Ok((
                                MessageFacts {
                                    id: r.get(0)?,
                                    recipient_id: r.get(1)?,
                                    sent_at: r.get(2)?,
                                    failed_check_at: r.get(3)?,
                                },
                                r.get(4)?,
                            ))
                        })
                        .collect::<StoreResult<_>>()?;
                    let Some((last, _)) = messages.last() else {
                        return Ok(false);
                    };
                    after = last.id;
                    let mut delta = Delta::default();
                    for (message, campaign) in &messages {
                        let mut events: Vec<StoredEvent> = c
                            .query(STORED_EVENT_COLUMNS, params![message.id])?
                            .iter()
                            .map(stored_event_from_row)
                            .collect::<StoreResult<_>>()?;
                        let changed = replay(&classifier, message, &mut events);
                        if !changed.is_empty() {
                            let before = rollups::message_facts(c, message.id)?;
                            let offset = before.len() - events.len();
                            let mut after = before.clone();
                            for (f, e) in after[offset..].iter_mut().zip(&events) {
                                f.class = e.derived.class;
                                f.client.clone_from(&e.derived.client);
                                f.os.clone_from(&e.derived.os);
                                f.device.clone_from(&e.derived.device);
                            }
                            delta.change(*campaign, &before, &after);
                            c.execute(
                                "UPDATE messages SET history = NULL WHERE id = ?1",
                                params![message.id],
                            )?;
                        }
                        for i in changed {
                            let (e, d) = (&events[i], &events[i].derived);
                            c.execute(
                                "UPDATE events SET class = ?2, reasons = ?3, duplicate = ?4,
                                        internal = ?5, client = ?6, os = ?7, device = ?8
                                 WHERE id = ?1",
                                params![
                                    e.id,
                                    d.class.as_str(),
                                    &d.reasons,
                                    d.duplicate,
                                    d.internal,
                                    d.client.as_deref(),
                                    d.os.as_deref(),
                                    &d.device
                                ],
                            )?;
                            summary.changed += 1;
                        }
                        summary.events += events.len() as u64;
                    }
                    rollups::apply(c, &delta)?;
                    Ok(true)
                })?;
                if !more {
                    break;
                }
                progress(summary.events, total as u64);
            }
            Ok(summary)
        })
        .await
    }

    async fn opt_out(&self, recipient_id: String, source: String) -> StoreResult<DateTime<Utc>> {
        self.write(move |c| {
            in_exclusive_tx(c, |c| {
                let now = Utc::now();
                let added = c.execute(
                    "INSERT INTO opt_outs (recipient_id, opted_out_at, source) VALUES (?1, ?2, ?3)
                     ON CONFLICT (recipient_id) DO NOTHING",
                    params![&recipient_id, now, &source],
                )?;
                if added == 1 {
                    // Copies elsewhere (a CRM) can stop tracking the recipient too.
                    webhooks::enqueue_notice(
                        c,
                        crate::webhooks::NoticeKind::OptOut,
                        now,
                        Some(&recipient_id),
                        &serde_json::json!({
                            "recipient_id": recipient_id,
                            "opted_out_at": now,
                            "source": source,
                        }),
                    )?;
                }
                c.query_one(
                    "SELECT opted_out_at FROM opt_outs WHERE recipient_id = ?1",
                    params![&recipient_id],
                )
            })
        })
        .await
    }

    async fn record_consent(
        &self,
        recipient_id: String,
        source: String,
        text: Option<String>,
        given_at: DateTime<Utc>,
    ) -> StoreResult<ConsentRecord> {
        let given_at = given_at.trunc_subsecs(6);
        self.write(move |c| {
            let id: i64 = c.query_one(
                "INSERT INTO consents (recipient_id, given_at, source, text)
                 VALUES (?1, ?2, ?3, ?4) RETURNING id",
                params![&recipient_id, given_at, &source, text.as_deref()],
            )?;
            Ok(ConsentRecord {
                id,
                recipient_id,
                given_at,
                source,
                text,
                withdrawn_at: None,
            })
        })
        .await
    }

    async fn withdraw_consent(
        &self,
        recipient_id: String,
        anonymize: bool,
    ) -> StoreResult<(u64, u64)> {
        self.write(move |c| {
            in_exclusive_tx(c, |c| {
                let withdrawn = c.execute(
                    "UPDATE consents SET withdrawn_at = ?2
                     WHERE recipient_id = ?1 AND withdrawn_at IS NULL",
                    params![&recipient_id, Utc::now()],
                )?;
                let mut anonymized = 0;
                if anonymize {
                    let messages: Vec<MessageId> = c
                        .query(
                            "SELECT id FROM messages WHERE recipient_id = ?1",
                            params![&recipient_id],
                        )?
                        .iter()
                        .map(|r| r.get(0))
                        .collect::<StoreResult<_>>()?;
                    for message in messages {
                        anonymize_message(c, message)?;
                        anonymized += 1;
                    }
                }
                Ok((withdrawn, anonymized))
            })
        })
        .await
    }

    async fn consents(&self, recipient_id: String) -> StoreResult<Vec<ConsentRecord>> {
        self.read(move |c| consent_records(c, &recipient_id)).await
    }

    async fn consenting(&self, recipients: Vec<String>) -> StoreResult<Vec<String>> {
        self.read(move |c| standing_consents(c, &recipients)).await
    }

    async fn opted_out(&self, recipients: Vec<String>) -> StoreResult<Vec<String>> {
        self.read(move |c| opted_out(c, &recipients)).await
    }

    async fn recipient_of(&self, tracking_id: i64) -> StoreResult<Option<String>> {
        self.read(move |c| {
            c.query_value(
                "SELECT recipient_id FROM messages WHERE tracking_id = ?1",
                params![tracking_id],
            )
        })
        .await
    }

    async fn erase_recipient(&self, recipient_id: String) -> StoreResult<Erasure> {
        self.write(move |c| {
            in_exclusive_tx(c, |c| {
                // Take the recipient out of the rollups too, so reports agree with what is stored.
                let messages: Vec<(MessageId, CampaignId)> = c
                    .query(
                        "SELECT id, campaign_id FROM messages WHERE recipient_id = ?1",
                        params![&recipient_id],
                    )?
                    .iter()
                    .map(|r| Ok((r.get(0)?, r.get(1)?)))
                    .collect::<StoreResult<_>>()?;
                let mut delta = Delta::default();
                for (message, campaign) in &messages {
                    delta.add(
                        *campaign,
                        contributions(&rollups::message_facts(c, *message)?),
                        -1,
                    );
                    rollups::add_sent(c, *campaign, -1)?;
                }
                rollups::apply(c, &delta)?;
                let of_recipient = "SELECT id FROM messages WHERE recipient_id = ?1";
                let erasure = Erasure {
                    events: c.execute(
                        &format!("DELETE FROM events WHERE message_id IN ({of_recipient})"),
                        params![&recipient_id],
                    )?,
                    links: c.execute(
                        &format!("DELETE FROM links WHERE message_id IN ({of_recipient})"),
                        params![&recipient_id],
                    )?,
                    messages: c.execute(
                        "DELETE FROM messages WHERE recipient_id = ?1",
                        params![&recipient_id],
                    )?,
                    opt_outs: c.execute(
                        "DELETE FROM opt_outs WHERE recipient_id = ?1",
                        params![&recipient_id],
                    )?,
                    // Notices about the recipient not sent yet are not sent at all.
                    webhook_notices: webhooks::withdraw_recipient(c, &recipient_id)?,
                    consents: c.execute(
                        "DELETE FROM consents WHERE recipient_id = ?1",
                        params![&recipient_id],
                    )?,
                };
                let now = Utc::now();
                webhooks::enqueue_notice(
                    c,
                    crate::webhooks::NoticeKind::Erasure,
                    now,
                    None,
                    &serde_json::json!({
                        "recipient_id": recipient_id,
                        "erased_at": now,
                        "removed": erasure,
                    }),
                )?;
                Ok(erasure)
            })
            .and_then(|erasure| sql::truncate_log(c).map(|()| erasure))
        })
        .await
    }

    async fn recipient_export(&self, recipient_id: String) -> StoreResult<RecipientExport> {
        self.read(move |c| {
            let opted_out_at: Option<DateTime<Utc>> = c.query_value(
                "SELECT opted_out_at FROM opt_outs WHERE recipient_id = ?1",
                params![&recipient_id],
            )?;
            let mut messages: Vec<RecipientMessage> = c
                .query(
                    "SELECT m.id, m.campaign_id, c.name, m.sent_at FROM messages m
                     JOIN campaigns c ON c.id = m.campaign_id
                     WHERE m.recipient_id = ?1 ORDER BY m.id",
                    params![&recipient_id],
                )?
                .iter()
                .map(|r| {
                    Ok(RecipientMessage {
                        message_id: r.get(0)?,
                        campaign_id: r.get(1)?,
                        campaign_name: r.get(2)?,
                        sent_at: r.get(3)?,
                        links: Vec::new(),
                    })
                })
                .collect::<StoreResult<_>>()?;
            for m in &mut messages {
                m.links = c
                    .query(
                        "SELECT url FROM links WHERE message_id = ?1 AND link_no > 0
                         ORDER BY link_no",
                        params![m.message_id],
                    )?
                    .iter()
                    .map(|r| r.get(0))
                    .collect::<StoreResult<_>>()?;
            }
            let events = events_from_rows(c.query(
                &format!("{EVENT_COLUMNS} WHERE m.recipient_id = ?1 ORDER BY e.id"),
                params![&recipient_id],
            )?)?;
            Ok(RecipientExport {
                consents: consent_records(c, &recipient_id)?,
                recipient_id,
                opted_out_at,
                messages,
                events,
            })
        })
        .await
    }

    async fn address_lists(&self) -> StoreResult<Vec<AddressList>> {
        self.read(|c| {
            c.query(
                "SELECT list, source, format, imported_at, cidrs FROM address_lists ORDER BY list",
                params![],
            )?
            .iter()
            .map(|r| {
                Ok(AddressList {
                    list: r.get(0)?,
                    source: r.get(1)?,
                    format: r.get(2)?,
                    imported_at: r.get(3)?,
                    cidrs: r.get(4)?,
                })
            })
            .collect()
        })
        .await
    }

    async fn save_address_list(&self, list: AddressList) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO address_lists (list, source, format, imported_at, cidrs)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (list) DO UPDATE SET source = excluded.source,
                     format = excluded.format, imported_at = excluded.imported_at,
                     cidrs = excluded.cidrs",
                params![
                    list.list,
                    list.source,
                    list.format,
                    list.imported_at,
                    list.cidrs
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_address_list(&self, name: String) -> StoreResult<bool> {
        self.write(move |c| {
            c.execute("DELETE FROM address_lists WHERE list = ?1", params![name])
                .map(|n| n > 0)
        })
        .await
    }

    async fn campaign_stats(&self, id: CampaignId) -> StoreResult<CampaignStats> {
        self.read(move |c| {
            let t = rollups::totals(c, id)?;
            let mut by_class: std::collections::BTreeMap<&'static str, ClassCounts> = Class::ALL
                .iter()
                .map(|c| (c.as_str(), ClassCounts::default()))
                .collect();
            for row in rollups::dims(c, id, Dim::Class)? {
                if let Some(counts) =
                    Class::parse(&row.value).and_then(|c| by_class.get_mut(c.as_str()))
                {
                    match row.kind {
                        EventKind::Open => counts.opens += row.tally.events,
                        EventKind::Click => counts.clicks += row.tally.events,
                    }
                }
            }
            let click_implied_opens = t.get("reader_opens") - t.get("reader_pixel_opens");
            Ok(CampaignStats {
                campaign_id: id,
                sent: t.sent,
                opens: Counts {
                    total: t.get("opens"),
                    unique: t.get("unique_opens"),
                    total_excluding_machine: t.get("reader_open_events"),
                    unique_excluding_machine: t.get("reader_opens"),
                },
                clicks: Counts {
                    total: t.get("clicks"),
                    unique: t.get("unique_clicks"),
                    total_excluding_machine: t.get("reader_click_events"),
                    unique_excluding_machine: t.get("reader_clicks"),
                },
                first_activity: t.first_at,
                last_activity: t.last_at,
                click_implied_opens,
                by_class,
            })
        })
        .await
    }

    async fn report_hours(
        &self,
        id: CampaignId,
        from_hour: i64,
        to_hour: i64,
    ) -> StoreResult<Vec<HourCount>> {
        self.read(move |c| rollups::hours(c, id, from_hour, to_hour))
            .await
    }

    async fn report_links(&self, id: CampaignId) -> StoreResult<Vec<LinkCount>> {
        self.read(move |c| rollups::links(c, id)).await
    }

    async fn report_breakdown(&self, id: CampaignId, dim: Dim) -> StoreResult<Vec<DimCount>> {
        self.read(move |c| rollups::dims(c, id, dim)).await
    }

    async fn events(&self, query: EventQuery) -> StoreResult<Vec<EventRecord>> {
        self.read(move |c| {
            let rows = match query.campaign {
                Some(campaign) => {
                    let (committed, bound) = paging::committed(c, paging::Ids::Events, "e.id", 4)?;
                    c.query(
                        &format!(
                            "{EVENT_COLUMNS} WHERE e.campaign_id = ?1 AND e.id > ?2 AND {committed}
                             ORDER BY e.id LIMIT ?3"
                        ),
                        params![campaign, query.after, query.limit, bound],
                    )?
                }
                None => {
                    let (committed, bound) = paging::committed(c, paging::Ids::Events, "e.id", 3)?;
                    c.query(
                        &format!(
                            "{EVENT_COLUMNS} WHERE e.id > ?1 AND {committed} ORDER BY e.id LIMIT ?2"
                        ),
                        params![query.after, query.limit, bound],
                    )?
                }
            };
            events_from_rows(rows)
        })
        .await
    }

    async fn export_bound(&self, campaign: CampaignId) -> StoreResult<EventId> {
        // One step down the (campaign_id, id) index.
        self.read(move |c| {
            let (committed, bound) = paging::committed(c, paging::Ids::Events, "id", 2)?;
            c.query_one(
                &format!(
                    "SELECT coalesce(max(id), 0) FROM events WHERE campaign_id = ?1 AND {committed}"
                ),
                params![campaign, bound],
            )
        })
        .await
    }

    async fn export_page(
        &self,
        campaign: CampaignId,
        after: EventId,
        up_to: EventId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        self.read(move |c| {
            events_from_rows(c.query(
                &format!(
                    "{EVENT_COLUMNS} WHERE e.campaign_id = ?1 AND e.id > ?2 AND e.id <= ?3
                     ORDER BY e.id LIMIT ?4"
                ),
                params![campaign, after, up_to, limit],
            )?)
        })
        .await
    }

    async fn signing_keys_or_create(
        &self,
        new_secret: [u8; 32],
    ) -> StoreResult<(Vec<(u8, [u8; 32])>, Option<u8>)> {
        self.write(move |c| {
            in_tx(c, |c| {
                let mut created = None;
                let count: i64 = c.query_one("SELECT count(*) FROM signing_keys", params![])?;
                if count == 0 {
                    c.execute(
                        "INSERT INTO signing_keys (id, secret, created_at) VALUES (1, ?1, ?2)",
                        params![&new_secret, Utc::now()],
                    )?;
                    created = Some(1);
                }
                Ok((read_keys(c)?, created))
            })
        })
        .await
    }

    async fn add_signing_key(&self, secret: [u8; 32]) -> StoreResult<u8> {
        self.write(move |c| {
            in_tx(c, |c| {
                let next: i64 = c.query_one(
                    "SELECT coalesce(max(id), 0) + 1 FROM signing_keys",
                    params![],
                )?;
                c.execute(
                    "INSERT INTO signing_keys (id, secret, created_at) VALUES (?1, ?2, ?3)",
                    params![next, &secret, Utc::now()],
                )?;
                Ok(next as u8)
            })
        })
        .await
    }

    async fn retire_signing_key(&self, id: u8) -> StoreResult<bool> {
        self.write(move |c| {
            in_tx(c, |c| {
                let newest: Option<i64> =
                    c.query_one("SELECT max(id) FROM signing_keys", params![])?;
                if newest == Some(i64::from(id)) {
                    return Err(StoreError::Other(format!(
                        "signing key {id} is the one that signs: rotate first (`mailbeacon key rotate`)"
                    )));
                }
                Ok(c.execute("DELETE FROM signing_keys WHERE id = ?1", params![id])? == 1)
            })
        })
        .await
    }

    async fn create_api_token(
        &self,
        token_hash: [u8; 32],
        scope: Scope,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_tokens (token_hash, scope, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![&token_hash, scope.as_str(), Utc::now(), expires_at],
            )
            .map(drop)
        })
        .await
    }

    async fn api_tokens(&self) -> StoreResult<Vec<ApiTokenInfo>> {
        self.read(tokens::list).await
    }

    async fn revoke_api_token(&self, id: i64) -> StoreResult<bool> {
        self.write(move |c| in_tx(c, |c| tokens::revoke(c, id)))
            .await
    }

    async fn create_first_api_token(
        &self,
        token_hash: [u8; 32],
        scope: Scope,
    ) -> StoreResult<bool> {
        self.write(move |c| {
            in_tx(c, |c| {
                if c.query_one::<i64>("SELECT count(*) FROM api_tokens", params![])? > 0 {
                    return Ok(false);
                }
                c.execute(
                    "INSERT INTO api_tokens (token_hash, scope, created_at) VALUES (?1, ?2, ?3)",
                    params![&token_hash, scope.as_str(), Utc::now()],
                )?;
                Ok(true)
            })
        })
        .await
    }

    async fn api_token_scope(&self, token_hash: [u8; 32]) -> StoreResult<Option<(i64, Scope)>> {
        self.read(move |c| {
            let Some(r) = c.query_row(
                "SELECT id, scope FROM api_tokens
                 WHERE token_hash = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                params![&token_hash, Utc::now()],
            )?
            else {
                return Ok(None);
            };
            Ok(Scope::parse(&r.get::<String>(1)?).map(|scope| (r.get(0).unwrap_or(0), scope)))
        })
        .await
    }

    async fn audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO audit_log (at, actor, scope, action, target) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    entry.at,
                    entry.actor,
                    entry.scope,
                    entry.action,
                    entry.target
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn audit_log(&self, after: i64, limit: usize) -> StoreResult<Vec<(i64, AuditEntry)>> {
        self.read(move |c| {
            c.query(
                "SELECT id, at, actor, scope, action, target FROM audit_log
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
                params![after, limit],
            )?
            .iter()
            .map(|r| {
                Ok((
                    r.get(0)?,
                    AuditEntry {
                        at: r.get(1)?,
                        actor: r.get(2)?,
                        scope: r.get(3)?,
                        action: r.get(4)?,
                        target: r.get(5)?,
                    },
                ))
            })
            .collect()
        })
        .await
    }

    async fn last_audit_target(&self, action: String) -> StoreResult<Option<String>> {
        self.read(move |c| {
            c.query_value(
                "SELECT target FROM audit_log WHERE action = ?1 ORDER BY id DESC LIMIT 1",
                params![action],
            )
        })
        .await
    }

    async fn rebuild_rollups(&self) -> StoreResult<()> {
        self.write(|c| in_exclusive_tx(c, rollups::rebuild)).await
    }

    async fn check_rollups(&self, repair: bool) -> StoreResult<RollupCheck> {
        self.write(move |c| {
            c.begin_exclusive()?;
            let checked = check_each_campaign(c).and_then(|mut check| {
                (check.summaries_checked, check.summaries_wrong) = check_summaries(c)?;
                Ok(check)
            });
            // The rebuilt rows stay only when asked to repair.
            match checked {
                Ok(mut check) if repair => {
                    if !check.summaries_wrong.is_empty() {
                        c.execute(
                            &format!(
                                "UPDATE messages SET history = NULL WHERE id {}",
                                sql::in_json_array(c.dialect(), true)
                            ),
                            params![json_array(&check.summaries_wrong)],
                        )?;
                    }
                    c.commit()?;
                    check.repaired =
                        !check.differences.is_empty() || !check.summaries_wrong.is_empty();
                    Ok(check)
                }
                other => {
                    c.rollback()?;
                    other
                }
            }
        })
        .await
    }

    async fn purge_events(
        &self,
        before: DateTime<Utc>,
        progress: Progress,
    ) -> StoreResult<PurgeSummary> {
        self.write(move |c| {
            let cutoff = sql::ts(before);
            let mut summary = PurgeSummary::default();
            loop {
                // Ids follow arrival, so the oldest events are the first ids: read from the start
                // and stop at the first one young enough to keep.
                let more = in_exclusive_tx(c, |c| {
                    let head: Vec<(MessageId, String)> = c
                        .query(
                            "SELECT message_id, received_at FROM events ORDER BY id LIMIT 2000",
                            params![],
                        )?
                        .iter()
                        .map(|r| Ok((r.get(0)?, r.get(1)?)))
                        .collect::<StoreResult<_>>()?;
                    let mut messages: Vec<MessageId> = head
                        .iter()
                        .take_while(|(_, at)| *at < cutoff)
                        .map(|(m, _)| *m)
                        .collect();
                    messages.sort_unstable();
                    messages.dedup();
                    if messages.is_empty() {
                        return Ok(false);
                    }
                    for message in &messages {
                        let facts = rollups::message_facts(c, *message)?;
                        let old: Vec<Fact> = facts
                            .into_iter()
                            .filter(|f| f.received_at < before)
                            .collect();
                        let seed = serde_json::to_string(&representatives(&old))
                            .map_err(|e| StoreError::Other(e.to_string()))?;
                        c.execute(
                            "UPDATE messages SET purged_facts = ?2, history = NULL WHERE id = ?1",
                            params![*message, seed],
                        )?;
                        summary.events += c.execute(
                            "DELETE FROM events WHERE message_id = ?1 AND received_at < ?2",
                            params![*message, &cutoff],
                        )?;
                    }
                    summary.messages += messages.len() as u64;
                    // Notices of those events, sent or not, hold their data too.
                    c.execute(
                        "DELETE FROM webhook_outbox WHERE occurred_at < ?1",
                        params![&cutoff],
                    )?;
                    Ok(true)
                })?;
                if !more {
                    break;
                }
                progress(summary.events, 0);
            }
            if summary.events > 0 {
                sql::truncate_log(c)?;
            }
            Ok(summary)
        })
        .await
    }

    async fn recent_events(
        &self,
        campaign: CampaignId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        self.read(move |c| {
            events_from_rows(c.query(
                &format!("{EVENT_COLUMNS} WHERE e.campaign_id = ?1 ORDER BY e.id DESC LIMIT ?2"),
                params![campaign, limit],
            )?)
        })
        .await
    }

    async fn set_dashboard_password(&self, scope: Scope, hash: String) -> StoreResult<()> {
        self.write(move |c| {
            in_tx(c, |c| {
                c.execute(
                    "INSERT INTO dashboard_passwords (scope, hash, set_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (scope) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                    params![scope.as_str(), hash, Utc::now()],
                )?;
                // Whoever signed in with the old password is signed out.
                c.execute(
                    "DELETE FROM sessions WHERE token_id IS NULL AND scope = ?1",
                    params![scope.as_str()],
                )
                .map(drop)
            })
        })
        .await
    }

    async fn dashboard_passwords(&self) -> StoreResult<Vec<(Scope, String)>> {
        self.read(|c| {
            let mut out = Vec::new();
            for r in c.query("SELECT scope, hash FROM dashboard_passwords", params![])? {
                if let Some(scope) = Scope::parse(&r.get::<String>(0)?) {
                    out.push((scope, r.get(1)?));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn create_session(&self, session: Session) -> StoreResult<()> {
        self.write(move |c| {
            let now = Utc::now();
            // Expired sessions go as new ones come.
            c.execute("DELETE FROM sessions WHERE expires_at < ?1", params![now])?;
            c.execute(
                "INSERT INTO sessions (session_hash, token_id, scope, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &session.session_hash,
                    session.token_id,
                    session.scope.as_str(),
                    now,
                    session.expires_at
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn session(&self, session_hash: [u8; 32]) -> StoreResult<Option<Session>> {
        self.read(move |c| {
            let Some(r) = c.query_row(
                "SELECT token_id, scope, expires_at FROM sessions s
                 WHERE session_hash = ?1 AND expires_at > ?2
                   AND (token_id IS NULL OR EXISTS (
                        SELECT 1 FROM api_tokens t WHERE t.id = s.token_id
                            AND (t.expires_at IS NULL OR t.expires_at > ?2)))",
                params![&session_hash, Utc::now()],
            )?
            else {
                return Ok(None);
            };
            let Some(scope) = Scope::parse(&r.get::<String>(1)?) else {
                return Ok(None);
            };
            Ok(Some(Session {
                session_hash,
                token_id: r.get(0)?,
                scope,
                expires_at: r.get(2)?,
            }))
        })
        .await
    }

    async fn delete_session(&self, session_hash: [u8; 32]) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM sessions WHERE session_hash = ?1",
                params![&session_hash],
            )
            .map(drop)
        })
        .await
    }

    async fn create_webhook(&self, webhook: NewWebhook) -> StoreResult<Webhook> {
        self.write(move |c| {
            let id = webhooks::create(c, &webhook)?;
            let mut all = webhooks::list(c)?;
            let at = all.iter().position(|w| w.id == id).expect("just stored");
            Ok(all.swap_remove(at))
        })
        .await
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.read(webhooks::list).await
    }

    async fn delete_webhook(&self, id: i64) -> StoreResult<bool> {
        self.write(move |c| {
            Ok(c.execute("DELETE FROM webhook_endpoints WHERE id = ?1", params![id])? > 0)
        })
        .await
    }

    async fn due_webhooks(&self) -> StoreResult<Vec<DueEndpoint>> {
        self.read(webhooks::due).await
    }

    async fn claim_webhook_deliveries(
        &self,
        endpoint: i64,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Delivery>> {
        self.write(move |c| in_tx(c, |c| webhooks::claim(c, endpoint, limit, now, lease_until)))
            .await
    }

    async fn finish_webhook_deliveries(
        &self,
        endpoint: i64,
        results: Vec<(i64, Next)>,
        attempt: Attempt,
    ) -> StoreResult<()> {
        self.write(move |c| in_tx(c, |c| webhooks::finish(c, endpoint, &results, &attempt)))
            .await
    }

    async fn replay_webhooks(&self, endpoint: Option<i64>) -> StoreResult<u64> {
        self.write(move |c| webhooks::replay(c, endpoint)).await
    }

    async fn webhook_deliveries(
        &self,
        endpoint: i64,
        state: Option<String>,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.read(move |c| webhooks::deliveries(c, endpoint, state.as_deref(), after, limit))
            .await
    }
}

fn json_array<T: Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("plain values serialize")
}

fn read_keys(c: &mut dyn Conn) -> StoreResult<Vec<(u8, [u8; 32])>> {
    c.query("SELECT id, secret FROM signing_keys ORDER BY id", params![])?
        .iter()
        .map(|r| {
            let secret: [u8; 32] = r
                .get(1)
                .map_err(|_| StoreError::Other("a signing key is not 32 bytes".into()))?;
            Ok((r.get(0)?, secret))
        })
        .collect()
}

#[cfg(test)]
mod tests;
