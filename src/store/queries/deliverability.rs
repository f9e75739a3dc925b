//! Provider checks: the campaigns due, the trailing figures, the checks recorded (claimed once
//! per campaign, so that several processes on one database check each campaign once).

use super::*;
use crate::analytics::provider_drop::{FirstDay, ProviderCheck};
use crate::webhooks::NoticeKind;

#[async_trait]
impl<E: Engine> Deliverability for SqlStore<E> {
    async fn campaigns_due_for_provider_check(
        &self,
        sent_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Campaign>> {
        let ids: Vec<CampaignId> = self
            .read(move |c| {
                c.query(
                    "SELECT id FROM campaigns
                     WHERE providers_checked_at IS NULL AND sent_at IS NOT NULL AND sent_at <= ?1
                     ORDER BY sent_at, id LIMIT ?2",
                    params![sent_before, limit],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect()
            })
            .await?;
        let mut due = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(campaign) = self.campaign(id).await? {
                due.push(campaign);
            }
        }
        Ok(due)
    }

    async fn provider_trailing(
        &self,
        provider: String,
        before: DateTime<Utc>,
        min_sent: u64,
        limit: usize,
    ) -> StoreResult<Vec<FirstDay>> {
        self.read(move |c| {
            c.query(
                "SELECT sent, read_in_window FROM provider_checks
                 WHERE provider = ?1 AND sent_at < ?2 AND sent >= ?3
                 ORDER BY sent_at DESC LIMIT ?4",
                params![&provider, before, min_sent, limit],
            )?
            .iter()
            .map(|r| {
                Ok(FirstDay {
                    provider: provider.clone(),
                    sent: r.get::<i64>(0)? as u64,
                    read_in_window: r.get::<i64>(1)? as u64,
                })
            })
            .collect()
        })
        .await
    }

    async fn record_provider_checks(
        &self,
        campaign: Campaign,
        checks: Vec<ProviderCheck>,
        notify: bool,
    ) -> StoreResult<bool> {
        let Some(sent_at) = campaign.sent_at else {
            return Ok(false);
        };
        self.write(move |c| {
            in_tx(c, |c| {
                let now = Utc::now();
                let claimed = c.execute(
                    "UPDATE campaigns SET providers_checked_at = ?2
                     WHERE id = ?1 AND providers_checked_at IS NULL",
                    params![campaign.id, now],
                )?;
                if claimed == 0 {
                    return Ok(false);
                }
                for k in &checks {
                    c.execute(
                        "INSERT INTO provider_checks (campaign_id, provider, sent_at, sent,
                             read_in_window, trailing_campaigns, trailing_sent, trailing_read,
                             dropped)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            campaign.id,
                            &k.provider,
                            sent_at,
                            k.sent,
                            k.read_in_window,
                            k.trailing_campaigns,
                            k.trailing_sent,
                            k.trailing_read,
                            k.dropped
                        ],
                    )?;
                    if notify && k.dropped {
                        webhooks::enqueue_notice(
                            c,
                            NoticeKind::ProviderDrop,
                            now,
                            None,
                            Some(campaign.id),
                            &serde_json::json!({
                                "campaign_id": campaign.id,
                                "campaign_name": campaign.name,
                                "sent_at": sent_at,
                                "check": k,
                            }),
                        )?;
                    }
                }
                Ok(true)
            })
        })
        .await
    }

    async fn provider_history(
        &self,
        provider: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<ProviderHistoryRow>> {
        self.read(move |c| {
            let (which, params) = match &provider {
                Some(p) => ("WHERE p.provider = ?2", params![limit, p]),
                None => ("", params![limit]),
            };
            c.query(
                &format!(
                    "SELECT c.name, p.sent_at, p.campaign_id, p.provider, p.sent, p.read_in_window,
                            p.trailing_campaigns, p.trailing_sent, p.trailing_read, p.dropped
                     FROM provider_checks p JOIN campaigns c ON c.id = p.campaign_id
                     {which} ORDER BY p.sent_at DESC, p.campaign_id DESC, p.sent DESC LIMIT ?1"
                ),
                params,
            )?
            .iter()
            .map(|r| {
                let n = |i: usize| -> StoreResult<u64> { Ok(r.get::<i64>(i)? as u64) };
                let maybe = |i: usize| -> StoreResult<Option<u64>> {
                    Ok(r.get::<Option<i64>>(i)?.map(|v| v as u64))
                };
                let rate = |read: u64, sent: u64| (sent > 0).then(|| read as f64 / sent as f64);
                let (sent, read) = (n(4)?, n(5)?);
                let (trailing_sent, trailing_read) = (maybe(7)?, maybe(8)?);
                let check = ProviderCheck {
                    campaign_id: r.get(2)?,
                    provider: r.get(3)?,
                    sent,
                    read_in_window: read,
                    open_rate: rate(read, sent),
                    trailing_campaigns: n(6)?,
                    trailing_sent,
                    trailing_read,
                    trailing_open_rate: trailing_sent
                        .zip(trailing_read)
                        .and_then(|(s, r)| rate(r, s)),
                    dropped: r.get(9)?,
                };
                Ok(ProviderHistoryRow::new(r.get(0)?, r.get(1)?, check))
            })
            .collect()
        })
        .await
    }
}
