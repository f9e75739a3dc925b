//! Storing conversions; each tells the webhook receivers that take them (`email.converted`).

use super::*;
use crate::webhooks::NoticeKind;

#[async_trait]
impl<E: Engine> Conversions for SqlStore<E> {
    async fn record_conversion(&self, new: NewConversion) -> StoreResult<ConversionOutcome> {
        self.write(move |c| {
            in_tx(c, |c| {
                let Some(message) = c.query_row(
                    "SELECT m.id, m.campaign_id, m.recipient_id, l.url FROM messages m
                     LEFT JOIN links l ON l.message_id = m.id AND l.link_no = ?2
                     WHERE m.tracking_id = ?1",
                    params![new.tracking_id, new.link_no],
                )?
                else {
                    return Ok(ConversionOutcome::UnknownMessage);
                };
                let message_id: MessageId = message.get(0)?;
                let campaign: CampaignId = message.get(1)?;
                let recipient: String = message.get(2)?;
                let url: Option<String> = message.get(3)?;
                let stored: i64 = c.query_one(
                    "SELECT count(*) FROM conversions WHERE message_id = ?1",
                    params![message_id],
                )?;
                if stored >= MAX_CONVERSIONS_PER_MESSAGE {
                    return Ok(ConversionOutcome::TooMany);
                }
                let (value, currency) = match &new.value {
                    Some((v, c)) => (Some(*v), Some(c.as_str())),
                    None => (None, None),
                };
                let id: Option<i64> = c.query_value(
                    "INSERT INTO conversions (campaign_id, message_id, link_no, goal, value_micros,
                                              currency, dedupe_key, clicked_at, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (message_id, goal, dedupe_key) DO NOTHING RETURNING id",
                    params![
                        campaign,
                        message_id,
                        new.link_no,
                        &new.goal,
                        value,
                        currency,
                        &new.dedupe_key,
                        new.clicked_at,
                        new.received_at
                    ],
                )?;
                let Some(id) = id else {
                    return Ok(ConversionOutcome::Duplicate);
                };
                let named = !recipient.starts_with(ANONYMOUS_RECIPIENT);
                webhooks::enqueue_notice(
                    c,
                    NoticeKind::Conversion,
                    new.received_at,
                    named.then_some(recipient.as_str()),
                    Some(campaign),
                    &serde_json::json!({
                        "id": id,
                        "campaign_id": campaign,
                        "message_id": message_id,
                        "recipient_id": named.then_some(&recipient),
                        // Anonymous mail's random name: stable per message, it points to no one.
                        "anonymous_id": (!named).then_some(&recipient),
                        "link_no": new.link_no,
                        "link_url": url,
                        "goal": new.goal,
                        "value": value.map(|v| v as f64 / 1e6),
                        "currency": currency,
                        "clicked_at": new.clicked_at,
                        "received_at": new.received_at,
                    }),
                )?;
                Ok(ConversionOutcome::Stored)
            })
        })
        .await
    }

    async fn conversion_page(
        &self,
        campaign: CampaignId,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<ConversionRecord>> {
        self.read(move |c| {
            c.query(
                "SELECT v.id, v.received_at, v.campaign_id, v.message_id, m.recipient_id,
                        v.link_no, l.url, v.goal, v.value_micros, v.currency, v.clicked_at
                 FROM conversions v JOIN messages m ON m.id = v.message_id
                 LEFT JOIN links l ON l.message_id = v.message_id AND l.link_no = v.link_no
                 WHERE v.campaign_id = ?1 AND v.id > ?2 ORDER BY v.id LIMIT ?3",
                params![campaign, after, limit],
            )?
            .iter()
            .map(|r| {
                let recipient: String = r.get(4)?;
                Ok(ConversionRecord {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    campaign_id: r.get(2)?,
                    message_id: r.get(3)?,
                    recipient_id: (!recipient.starts_with(ANONYMOUS_RECIPIENT))
                        .then_some(recipient),
                    link_no: r.get(5)?,
                    link_url: r.get(6)?,
                    goal: r.get(7)?,
                    value: r.get::<Option<i64>>(8)?.map(|v| v as f64 / 1e6),
                    currency: r.get(9)?,
                    clicked_at: r.get(10)?,
                })
            })
            .collect()
        })
        .await
    }
}
