//! Keeps the HTTPS listener's certificates current: every two seconds it loads
//! what the database holds, and orders what is missing or due for renewal under a lease, so that
//! of all the processes on one database only one orders a name at a time. A failed order is
//! noted with its reason and tried again after a back-off; the certificate in use keeps serving.

use super::{AcmeSettings, Certs, order};
use crate::store::{IssuedCertificate, Store, StoredCertificate};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How often the database is read for certificates other processes obtained and for due orders.
pub const EVERY: Duration = Duration::from_secs(2);
/// How long an order may take before another process may take it over.
const LEASE: Duration = Duration::from_secs(300);
/// The longest wait between failed orders.
const MOST_BACKOFF: Duration = Duration::from_secs(24 * 3600);

pub struct Manager {
    pub store: Arc<dyn Store>,
    pub certs: Arc<Certs>,
    pub settings: AcmeSettings,
    /// The public URL's host when it is a name (the dashboard's certificate).
    pub own_host: Option<String>,
}

impl Manager {
    pub async fn run(self, mut closing: tokio::sync::watch::Receiver<bool>) {
        let owner = format!(
            "{:016x}",
            getrandom::u64().expect("the operating system's random source failed")
        );
        let mut account = None;
        let mut gauged = Vec::new();
        loop {
            self.round(&owner, &mut account, &mut gauged).await;
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                _ = closing.changed() => return,
            }
        }
    }

    /// The names that should have a certificate: tracking domains that passed their check (retired
    /// ones too: mail sent under them keeps working) and the public URL's host.
    async fn wanted(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.store.tracking_domains().await {
            Ok(domains) => domains
                .into_iter()
                .filter(|d| d.verified_at.is_some())
                .map(|d| d.domain)
                .collect(),
            Err(e) => {
                tracing::warn!("certificates: cannot read the tracking domains: {e}");
                Vec::new()
            }
        };
        names.extend(self.own_host.iter().cloned());
        names.sort();
        names.dedup();
        names
    }

    /// `gauged`: the domains whose expiry is in `/metrics`, kept from round to round.
    async fn round(
        &self,
        owner: &str,
        account: &mut Option<instant_acme::Account>,
        gauged: &mut Vec<String>,
    ) {
        let stored = match self.store.certificates().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!("certificates: cannot read them from the database: {e}");
                return;
            }
        };
        self.serve(&stored);
        blank_gone_gauges(gauged, &stored);
        match self.store.acme_challenges().await {
            Ok(pending) => {
                if let Err(e) = self.certs.set_challenges(&pending) {
                    tracing::warn!("certificates: a TLS-ALPN-01 challenge: {e}");
                }
            }
            Err(e) => tracing::warn!("certificates: cannot read the pending challenges: {e}"),
        }
        for name in self.wanted().await {
            let known = stored.iter().find(|c| c.domain == name);
            let now = Utc::now();
            if !due(known, now) {
                continue;
            }
            let until = now + LEASE;
            match (self.store)
                .lease_certificate_order(name.clone(), owner.to_string(), now, until)
                .await
            {
                Ok(true) => self.order(owner, account, &name, known).await,
                Ok(false) => {}
                Err(e) => tracing::warn!("certificates: cannot lease the order for {name}: {e}"),
            }
        }
    }

    /// Serves every stored certificate newer than the one in use (and no other), and says how long
    /// each has.
    fn serve(&self, stored: &[StoredCertificate]) {
        let names: Vec<&str> = stored.iter().map(|c| c.domain.as_str()).collect();
        self.certs.keep_only(&names);
        for c in stored {
            let Some(issued) = &c.issued else { continue };
            expiry_gauge(&c.domain, issued);
            if self.certs.issued_at(&c.domain) >= Some(issued.issued_at) {
                continue;
            }
            match self.certs.install(&c.domain, issued) {
                Ok(()) => tracing::info!(
                    "certificates: serving {}'s certificate (valid until {})",
                    c.domain,
                    issued.not_after
                ),
                Err(e) => tracing::warn!("certificates: {}: {e}", c.domain),
            }
        }
    }

    async fn order(
        &self,
        owner: &str,
        account: &mut Option<instant_acme::Account>,
        name: &str,
        known: Option<&StoredCertificate>,
    ) {
        tracing::info!("certificates: ordering one for {name}");
        let outcome = async {
            if account.is_none() {
                *account = Some(order::account(self.store.as_ref(), &self.settings).await?);
            }
            let by = order::Orderer {
                account: account.as_ref().expect("made above"),
                store: self.store.as_ref(),
                certs: &self.certs,
                challenge: self.settings.challenge,
            };
            order::obtain(by, name).await
        }
        .await;
        let stored = match outcome {
            Ok(issued) => {
                metrics::counter!("mailbeacon_certificate_orders_total", "result" => "issued")
                    .increment(1);
                expiry_gauge(name, &issued);
                let served = self.certs.install(name, &issued);
                let kept = (self.store)
                    .store_certificate(name.to_string(), owner.to_string(), issued)
                    .await;
                served.and(kept.map_err(|e| e.to_string()))
            }
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            metrics::counter!("mailbeacon_certificate_orders_total", "result" => "failed")
                .increment(1);
            let failures = known.map_or(0, |c| c.failures) + 1;
            let wait = backoff(self.settings.retry_base, failures);
            tracing::warn!(
                "certificates: the order for {name} failed, trying again in {} s: {e}",
                wait.as_secs()
            );
            let retry_at = Utc::now() + wait;
            if let Err(e) = (self.store)
                .certificate_order_failed(name.to_string(), owner.to_string(), e, retry_at)
                .await
            {
                tracing::warn!("certificates: cannot note the failed order for {name}: {e}");
            }
        }
    }
}

/// Days until the certificate in use for `domain` expires, in `/metrics`.
fn expiry_gauge(domain: &str, issued: &IssuedCertificate) {
    let days = (issued.not_after - Utc::now()).num_seconds() as f64 / 86_400.0;
    metrics::gauge!("mailbeacon_certificate_expiry_days", "domain" => domain.to_string()).set(days);
}

/// A domain whose certificate is gone (the domain was removed) keeps its gauge in `/metrics`, as
/// the metrics crate cannot remove one: it is set to NaN, which no `< N` alert takes for a
/// certificate about to expire, instead of its last value counting down to a false alarm.
fn blank_gone_gauges(gauged: &mut Vec<String>, stored: &[StoredCertificate]) {
    let now: Vec<String> = stored
        .iter()
        .filter(|c| c.issued.is_some())
        .map(|c| c.domain.clone())
        .collect();
    for gone in gauged.iter().filter(|d| !now.contains(d)) {
        metrics::gauge!("mailbeacon_certificate_expiry_days", "domain" => gone.clone())
            .set(f64::NAN);
    }
    *gauged = now;
}

/// Whether `name` needs an order now: none yet, or its renewal is due; and no back-off runs.
fn due(known: Option<&StoredCertificate>, now: DateTime<Utc>) -> bool {
    let Some(c) = known else { return true };
    let waiting = c.retry_at.is_some_and(|at| at > now);
    let fresh = c.issued.as_ref().is_some_and(|i| i.renew_at > now);
    !waiting && !fresh
}

/// The wait after the `failures`-th failed order in a row.
fn backoff(base: Duration, failures: i64) -> Duration {
    let doublings = u32::try_from(failures - 1).unwrap_or(0).min(20);
    base.saturating_mul(1 << doublings).min(MOST_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_orders_wait_twice_as_long_each_time_up_to_a_day() {
        let base = Duration::from_secs(60);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 2), base * 2);
        assert_eq!(backoff(base, 4), base * 8);
        assert_eq!(backoff(base, 40), MOST_BACKOFF);
    }
}
