//! `mailbeacon check`: the rollups and the history summaries compared with the event log.

use super::*;

/// Compares every message's history summary with its stored events, 500 messages at a time.
/// Returns how many were compared and those that disagree (or cannot be read).
pub(super) fn check_summaries(c: &mut dyn Conn) -> StoreResult<(u64, Vec<MessageId>)> {
    let (mut checked, mut wrong, mut after) = (0, Vec::new(), MessageId(0));
    loop {
        let page: Vec<(MessageId, String)> = c
            .query(
                "SELECT id, history FROM messages WHERE id > ?1 AND history IS NOT NULL
                 ORDER BY id LIMIT 500",
                params![after],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect::<StoreResult<_>>()?;
        let Some(last) = page.last().map(|(id, _)| *id) else {
            break;
        };
        let mut events: std::collections::HashMap<MessageId, Vec<(EventId, Fact)>> =
            Default::default();
        // The columns of `rollups::FACT_QUERY`, then the message and the event.
        for r in c.query(
            "SELECT kind, link_no, received_at, class, client, os, device, country, message_id, id
             FROM events WHERE message_id > ?1 AND message_id <= ?2 ORDER BY message_id, id",
            params![after, last],
        )? {
            let fact = rollups::fact_from_row(&r)?;
            events.entry(r.get(8)?).or_default().push((r.get(9)?, fact));
        }
        for (message, text) in &page {
            checked += 1;
            let log = events.get(message).map(Vec::as_slice).unwrap_or_default();
            if !History::parse(text).is_some_and(|h| h.agrees_with(log)) {
                wrong.push(*message);
            }
        }
        after = last;
    }
    Ok((checked, wrong))
}

/// Rebuilds each campaign's rollups in the open transaction and compares them with the kept ones.
pub(super) fn check_each_campaign(c: &mut dyn Conn) -> StoreResult<RollupCheck> {
    let campaigns: Vec<(CampaignId, bool)> = c
        .query(
            "SELECT c.id, EXISTS (SELECT 1 FROM messages m
                                  WHERE m.campaign_id = c.id AND m.purged_facts IS NOT NULL)
             FROM campaigns c ORDER BY c.id",
            params![],
        )?
        .iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?)))
        .collect::<StoreResult<_>>()?;
    let mut check = RollupCheck::default();
    for (campaign, purged) in campaigns {
        if purged {
            check.campaigns_skipped.push(campaign);
            continue;
        }
        let kept = rollups::dump(c, campaign)?;
        rollups::rebuild_campaign(c, campaign)?;
        let rebuilt = rollups::dump(c, campaign)?;
        check.campaigns_checked += 1;
        if kept != rebuilt {
            let mut rows: Vec<String> = kept
                .iter()
                .filter(|r| !rebuilt.contains(r))
                .map(|r| format!("stored:  {r}"))
                .chain(
                    rebuilt
                        .iter()
                        .filter(|r| !kept.contains(r))
                        .map(|r| format!("from log: {r}")),
                )
                .collect();
            rows.truncate(20);
            check.differences.push((campaign, rows));
        }
    }
    Ok(check)
}
