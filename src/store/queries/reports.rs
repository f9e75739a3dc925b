//! Reading what was stored: campaign counts, report rollups, events and export pages.

use super::*;

#[async_trait]
impl<E: Engine> Reports for SqlStore<E> {
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
                    unique_excluding_machine: t.get("reader_pixel_opens"),
                },
                clicks: Counts {
                    total: t.get("clicks"),
                    unique: t.get("unique_clicks"),
                    total_excluding_machine: t.get("reader_click_events"),
                    unique_excluding_machine: t.get("reader_clicks"),
                },
                first_activity: t.first_at,
                last_activity: t.last_at,
                opened: t.get("opened"),
                opened_by_readers: t.get("reader_opens"),
                click_implied_opens,
                by_class,
                conversions: conversion_counts(c, id)?,
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

    async fn message_activity(
        &self,
        campaign: CampaignId,
        after: MessageId,
        limit: usize,
    ) -> StoreResult<Vec<MessageActivity>> {
        self.read(move |c| segments::message_activity(c, campaign, after, limit))
            .await
    }

    async fn recipient_activity(
        &self,
        recipients: Vec<String>,
    ) -> StoreResult<Vec<MessageActivity>> {
        self.read(move |c| segments::recipient_activity(c, &recipients))
            .await
    }

    async fn recipients_after(&self, after: String, limit: usize) -> StoreResult<Vec<String>> {
        self.read(move |c| segments::recipients_after(c, &after, limit))
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
}

/// A campaign's conversions: counted from their own table (a campaign has few next to its
/// events), values summed per currency in millionths, so the sums are exact.
fn conversion_counts(c: &mut dyn Conn, id: CampaignId) -> StoreResult<ConversionCounts> {
    let (total, unique): (i64, i64) = c
        .query_row(
            "SELECT count(*), count(DISTINCT message_id) FROM conversions WHERE campaign_id = ?1",
            params![id],
        )?
        .map(|r| Ok::<_, StoreError>((r.get(0)?, r.get(1)?)))
        .transpose()?
        .unwrap_or((0, 0));
    let value = c
        .query(
            "SELECT currency, sum(value_micros) FROM conversions
             WHERE campaign_id = ?1 AND currency IS NOT NULL
             GROUP BY currency ORDER BY sum(value_micros) DESC, currency",
            params![id],
        )?
        .iter()
        .map(|r| {
            Ok(ConversionValue {
                currency: r.get(0)?,
                value: r.get::<i64>(1)? as f64 / 1e6,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(ConversionCounts {
        total,
        unique,
        value,
    })
}
