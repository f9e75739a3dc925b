//! Campaigns and the messages registered in them, and what the tracker looks up of a message.

use super::*;

/// A registration's messages, one statement whatever their number (see `sql::MultiRow`); their
/// ids come back by tracking id.
static MESSAGE_INSERT: std::sync::LazyLock<sql::MultiRow> = std::sync::LazyLock::new(|| {
    use sql::Column::{Int, Text};
    sql::MultiRow::new(
        "INSERT INTO messages (campaign_id, recipient_id, tracking_id, sent_at, created_at, history)",
        &[Int, Text, Int, Text, Text, Text],
        "RETURNING id, tracking_id",
    )
});

static LINK_INSERT: std::sync::LazyLock<sql::MultiRow> = std::sync::LazyLock::new(|| {
    use sql::Column::{Int, Text};
    sql::MultiRow::new(
        "INSERT INTO links (message_id, link_no, url)",
        &[Int, Int, Text],
        "",
    )
});

#[async_trait]
impl<E: Engine> Campaigns for SqlStore<E> {
    async fn create_campaign(&self, new: NewCampaign) -> StoreResult<Campaign> {
        self.write(move |c| {
            in_tx(c, |c| {
                // Stored with microseconds: answer with what a later read will return.
                let created_at = Utc::now().trunc_subsecs(6);
                let sent_at = new.sent_at.map(|t| t.trunc_subsecs(6));
                let id: CampaignId = c.query_one(
                    "INSERT INTO campaigns (name, template_html, created_at, subject, sent_at, tags,
                                            utm, conversions, tracking_domain)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
                    params![
                        &new.name,
                        new.template_html.as_deref(),
                        created_at,
                        new.subject.as_deref(),
                        sent_at,
                        tags_json(&new.tags),
                        utm_json(new.utm.as_ref()),
                        new.conversions,
                        new.tracking_domain.as_deref()
                    ],
                )?;
                rollups::add_sent(c, id, 0)?;
                Ok(Campaign {
                    id,
                    name: new.name,
                    template_html: new.template_html,
                    subject: new.subject,
                    sent_at,
                    tags: new.tags,
                    archived_at: None,
                    utm: new.utm,
                    conversions: new.conversions,
                    tracking_domain: new.tracking_domain,
                    created_at,
                })
            })
        })
        .await
    }

    async fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>> {
        self.read(move |c| read_campaign(c, id)).await
    }

    async fn campaigns(&self, archived: Archived) -> StoreResult<Vec<ListedCampaign>> {
        let which = match archived {
            Archived::Exclude => "WHERE c.archived_at IS NULL",
            Archived::Include => "",
            Archived::Only => "WHERE c.archived_at IS NOT NULL",
        };
        self.read(move |c| {
            c.query(
                &format!(
                    "SELECT c.id, c.name, NULL, c.created_at, c.subject, c.sent_at, c.tags,
                            c.archived_at, c.utm, c.conversions, c.tracking_domain, t.sent,
                            t.reader_opens, t.reader_clicks
                     FROM campaigns c LEFT JOIN campaign_totals t ON t.campaign_id = c.id
                     {which} ORDER BY c.id DESC"
                ),
                params![],
            )?
            .iter()
            .map(|r| {
                let sent: Option<i64> = r.get(11)?;
                let sent = sent.unwrap_or(0);
                let reader_opens = r.get::<Option<i64>>(12)?.unwrap_or(0);
                let reader_clicks = r.get::<Option<i64>>(13)?.unwrap_or(0);
                let rate = |n: i64| (sent > 0).then(|| n as f64 / sent as f64);
                Ok(ListedCampaign {
                    campaign: campaign_from_row(r)?,
                    sent,
                    reader_opens,
                    reader_clicks,
                    reader_open_rate: rate(reader_opens),
                    reader_click_rate: rate(reader_clicks),
                })
            })
            .collect()
        })
        .await
    }

    async fn edit_campaign(
        &self,
        id: CampaignId,
        edit: CampaignEdit,
    ) -> StoreResult<Option<Campaign>> {
        self.write(move |c| {
            in_tx(c, |c| {
                let Some(mut campaign) = read_campaign(c, id)? else {
                    return Ok(None);
                };
                if let Some(name) = edit.name {
                    campaign.name = name;
                }
                if let Some(html) = edit.template_html {
                    campaign.template_html = html;
                }
                if let Some(subject) = edit.subject {
                    campaign.subject = subject;
                }
                if let Some(sent_at) = edit.sent_at {
                    campaign.sent_at = sent_at.map(|t| t.trunc_subsecs(6));
                }
                if let Some(tags) = edit.tags {
                    campaign.tags = tags;
                }
                if let Some(utm) = edit.utm {
                    campaign.utm = utm;
                }
                if let Some(conversions) = edit.conversions {
                    campaign.conversions = conversions;
                }
                if let Some(domain) = edit.tracking_domain {
                    campaign.tracking_domain = domain;
                }
                match edit.archived {
                    Some(true) if campaign.archived_at.is_none() => {
                        campaign.archived_at = Some(Utc::now().trunc_subsecs(6));
                    }
                    Some(false) => campaign.archived_at = None,
                    _ => {}
                }
                c.execute(
                    "UPDATE campaigns SET name = ?2, subject = ?3, sent_at = ?4, tags = ?5,
                                          archived_at = ?6, template_html = ?7, utm = ?8,
                                          conversions = ?9, tracking_domain = ?10
                     WHERE id = ?1",
                    params![
                        id,
                        &campaign.name,
                        campaign.subject.as_deref(),
                        campaign.sent_at,
                        tags_json(&campaign.tags),
                        campaign.archived_at,
                        campaign.template_html.as_deref(),
                        utm_json(campaign.utm.as_ref()),
                        campaign.conversions,
                        campaign.tracking_domain.as_deref()
                    ],
                )?;
                Ok(Some(campaign))
            })
        })
        .await
    }

    async fn delete_campaign(&self, id: CampaignId) -> StoreResult<Option<CampaignDeletion>> {
        self.write(move |c| {
            in_exclusive_tx(c, |c| {
                let Some(campaign) = read_campaign(c, id)? else {
                    return Ok(None);
                };
                let of_campaign = "SELECT id FROM messages WHERE campaign_id = ?1";
                c.execute(
                    "DELETE FROM conversions WHERE campaign_id = ?1",
                    params![id],
                )?;
                let deletion = CampaignDeletion {
                    // Before the events they name are gone.
                    webhook_notices: webhooks::withdraw_campaign(c, id)?,
                    events: c.execute("DELETE FROM events WHERE campaign_id = ?1", params![id])?,
                    links: c.execute(
                        &format!("DELETE FROM links WHERE message_id IN ({of_campaign})"),
                        params![id],
                    )?,
                    messages: c
                        .execute("DELETE FROM messages WHERE campaign_id = ?1", params![id])?,
                };
                rollups::forget_campaign(c, id)?;
                c.execute(
                    "DELETE FROM provider_checks WHERE campaign_id = ?1",
                    params![id],
                )?;
                c.execute("DELETE FROM campaigns WHERE id = ?1", params![id])?;
                let now = Utc::now();
                webhooks::enqueue_notice(
                    c,
                    crate::webhooks::NoticeKind::CampaignDeleted,
                    now,
                    None,
                    Some(id),
                    &serde_json::json!({
                        "campaign_id": id,
                        "name": campaign.name,
                        "deleted_at": now,
                        "removed": deletion,
                    }),
                )?;
                Ok(Some(deletion))
            })
            .and_then(|deletion| sql::truncate_log(c).map(|()| deletion))
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
                let now = Utc::now();
                let rows = (messages.iter())
                    .map(|m| {
                        vec![
                            campaign.into(),
                            (&m.recipient_id).into(),
                            m.tracking_id.into(),
                            m.sent_at.into(),
                            now.into(),
                            history::EMPTY.into(),
                        ]
                    })
                    .collect();
                let by_tracking: std::collections::HashMap<i64, MessageId> =
                    (MESSAGE_INSERT.query(c, rows)?.iter())
                        .map(|r| Ok((r.get(1)?, r.get(0)?)))
                        .collect::<StoreResult<_>>()?;
                let ids: Vec<MessageId> = (messages.iter())
                    .map(|m| by_tracking[&m.tracking_id])
                    .collect();
                let mut links = Vec::new();
                for (m, id) in messages.iter().zip(&ids) {
                    for (i, url) in m.links.iter().enumerate() {
                        links.push(vec![(*id).into(), (i as i64 + 1).into(), url.into()]);
                    }
                    if let Some(url) = &m.honeypot {
                        links.push(vec![(*id).into(), 0.into(), url.into()]);
                    }
                }
                LINK_INSERT.execute(c, links)?;
                if let Some(first) = messages.iter().map(|m| m.sent_at).min() {
                    c.execute(
                        "UPDATE campaigns SET sent_at = ?2 WHERE id = ?1 AND sent_at IS NULL",
                        params![campaign, first.trunc_subsecs(6)],
                    )?;
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
    ) -> StoreResult<Option<LinkLookup>> {
        // -1 names no link: a pixel only asks whether the message exists.
        let link_no = link_no.map_or(-1, i64::from);
        self.read(move |c| {
            c.query_row(
                "SELECT l.url, m.recipient_id,
                     EXISTS (SELECT 1 FROM opt_outs o WHERE o.recipient_id = m.recipient_id),
                     EXISTS (SELECT 1 FROM consents k
                             WHERE k.recipient_id = m.recipient_id AND k.withdrawn_at IS NULL),
                     c.conversions
                 FROM messages m
                 JOIN campaigns c ON c.id = m.campaign_id
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
                Ok(LinkLookup {
                    standing,
                    url: r.get(0)?,
                    conversions: r.get(4)?,
                })
            })
            .transpose()
        })
        .await
    }
}

const CAMPAIGN_COLUMNS: &str = "SELECT id, name, template_html, created_at, subject, sent_at, tags,
                                       archived_at, utm, conversions, tracking_domain FROM campaigns";

fn read_campaign(c: &mut dyn Conn, id: CampaignId) -> StoreResult<Option<Campaign>> {
    c.query_row(&format!("{CAMPAIGN_COLUMNS} WHERE id = ?1"), params![id])?
        .as_ref()
        .map(campaign_from_row)
        .transpose()
}

/// The first eleven columns of [`CAMPAIGN_COLUMNS`].
fn campaign_from_row(r: &Row) -> StoreResult<Campaign> {
    let id: CampaignId = r.get(0)?;
    let tags: String = r.get(6)?;
    Ok(Campaign {
        id,
        name: r.get(1)?,
        template_html: r.get(2)?,
        created_at: r.get(3)?,
        subject: r.get(4)?,
        sent_at: r.get(5)?,
        tags: serde_json::from_str(&tags)
            .map_err(|e| StoreError::Other(format!("campaign {id}: tags: {e}")))?,
        archived_at: r.get(7)?,
        utm: r
            .get::<Option<String>>(8)?
            .map(|u| serde_json::from_str(&u))
            .transpose()
            .map_err(|e| StoreError::Other(format!("campaign {id}: utm: {e}")))?,
        conversions: r.get(9)?,
        tracking_domain: r.get(10)?,
    })
}

fn utm_json(utm: Option<&crate::domain::Utm>) -> Option<String> {
    utm.map(|u| serde_json::to_string(u).expect("strings serialize"))
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).expect("strings serialize")
}
