//! What is kept per recipient: opt-outs, consent, erasure and the subject access export.

use super::*;

#[async_trait]
impl<E: Engine> Recipients for SqlStore<E> {
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
                        None,
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
                // What was tracked while the consent stood is not sent out after it is withdrawn.
                webhooks::withdraw_recipient_activity(c, &recipient_id)?;
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
        self.read(move |c| consent::opted_out(c, &recipients)).await
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
                c.execute(
                    &format!("DELETE FROM conversions WHERE message_id IN ({of_recipient})"),
                    params![&recipient_id],
                )?;
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
}
