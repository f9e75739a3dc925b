//! The provider check (`analytics::provider_drop`), run by the server at start and every ten
//! minutes, and by `mailbeacon providers check`: each campaign whose mail is a day old is
//! checked once (per database, whichever process gets there first), its per-provider figures are
//! kept for the campaigns after it, and a provider that dropped is sent to webhook receivers
//! (`deliverability.provider_drop`) and counted in `/metrics`.

use crate::analytics::provider_drop::{
    FirstDayTally, MIN_SENT, NOTIFY_WITHIN_DAYS, ProviderCheck, TRAILING_CAMPAIGNS, WINDOW_HOURS,
    judge,
};
use crate::reports::each_message;
use crate::store::{Store, StoreError};
use chrono::{Duration, Utc};
use std::sync::Arc;

/// How often the server looks for campaigns due.
const EVERY: std::time::Duration = std::time::Duration::from_secs(600);
/// Campaigns checked per look (a database with years of campaigns catches up over a few looks).
const PER_LOOK: usize = 20;

/// Checks the campaigns due now; the checks this call recorded.
pub async fn check_due(store: &dyn Store, ratio: f64) -> Result<Vec<ProviderCheck>, StoreError> {
    let now = Utc::now();
    let due = store
        .campaigns_due_for_provider_check(now - Duration::hours(WINDOW_HOURS), PER_LOOK)
        .await?;
    let mut recorded = Vec::new();
    for campaign in due {
        let Some(sent_at) = campaign.sent_at else {
            continue;
        };
        let mut tally = FirstDayTally::default();
        each_message(store, campaign.id, |m| tally.add(m)).await?;
        let mut checks = Vec::new();
        for day in tally.rows() {
            let trailing = store
                .provider_trailing(day.provider.clone(), sent_at, MIN_SENT, TRAILING_CAMPAIGNS)
                .await?;
            checks.push(judge(campaign.id, &day, &trailing, ratio));
        }
        let notify = sent_at > now - Duration::days(NOTIFY_WITHIN_DAYS);
        if store
            .record_provider_checks(campaign, checks.clone(), notify)
            .await?
        {
            recorded.extend(checks);
        }
    }
    Ok(recorded)
}

/// The server's loop: a look at start, then every ten minutes, until it stops.
pub async fn run(
    store: Arc<dyn Store>,
    ratio: f64,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match check_due(&*store, ratio).await {
            Ok(checks) => record_metrics(&checks),
            Err(e) => tracing::warn!("provider check: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = closing.changed() => return,
        }
    }
}

fn record_metrics(checks: &[ProviderCheck]) {
    for k in checks {
        if let (Some(now), Some(before)) = (k.open_rate, k.trailing_open_rate)
            && before > 0.0
        {
            metrics::gauge!("mailbeacon_provider_open_rate_ratio", "provider" => k.provider.clone())
                .set(now / before);
        }
        if k.dropped {
            tracing::warn!(
                "campaign {}: readers at {} opened {:.1}% in the first day, against {:.1}% before",
                k.campaign_id,
                k.provider,
                100.0 * k.open_rate.unwrap_or(0.0),
                100.0 * k.trailing_open_rate.unwrap_or(0.0)
            );
            metrics::counter!("mailbeacon_provider_drops_total", "provider" => k.provider.clone())
                .increment(1);
        }
    }
}
