//! Domains added before their DNS record was there: checked again every minute, so that a name
//! gets its certificate soon after its record spreads, without anyone running `domains check`.

use crate::config::Pinned;
use crate::domain::PublicUrl;
use crate::store::Store;
use crate::token::KeyRing;
use crate::tracking_domains::{Check, reaches_here};
use std::sync::Arc;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(60);

pub struct Rechecks {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub public_url: PublicUrl,
    pub resolve: Vec<Pinned>,
}

impl Rechecks {
    pub async fn run(self, mut closing: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                _ = closing.changed() => return,
            }
            self.round().await;
        }
    }

    async fn round(&self) {
        let domains = match self.store.tracking_domains().await {
            Ok(domains) => domains,
            Err(e) => {
                tracing::warn!("domain checks: cannot read the tracking domains: {e}");
                return;
            }
        };
        let check = Check {
            keys: &self.keys,
            public_url: &self.public_url,
            resolve: &self.resolve,
        };
        for d in domains
            .iter()
            .filter(|d| d.verified_at.is_none() && d.retired_at.is_none())
        {
            let error = reaches_here(check, d).await.err();
            if error.is_none() {
                tracing::info!("domain checks: {} reaches this installation now", d.domain);
            }
            let noted = self
                .store
                .record_domain_check(d.domain.clone(), chrono::Utc::now(), error)
                .await;
            if let Err(e) = noted {
                tracing::warn!("domain checks: {}: {e}", d.domain);
            }
        }
    }
}
