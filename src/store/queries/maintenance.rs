//! Work over what is stored: reclassifying, purging old events, checking and rebuilding the rollups.

use super::*;

#[async_trait]
impl<E: Engine> Maintenance for SqlStore<E> {
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
            let mut after = MessageId(0);
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
}
