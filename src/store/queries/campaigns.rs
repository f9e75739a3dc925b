//! Campaigns and the messages registered in them, and what the tracker looks up of a message.

use super::*;

#[async_trait]
impl<E: Engine> Campaigns for SqlStore<E> {
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
                let id: CampaignId = c.query_one(
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
                    let id: MessageId = c.query_one(
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
}
