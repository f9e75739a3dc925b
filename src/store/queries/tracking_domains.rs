//! Tracking domains: a small table the admin changes and registration reads.

use super::*;
use crate::domain::DomainUrl;
use crate::store::traits::DomainRemoval;

const COLUMNS: &str = "SELECT domain, url, added_at, retired_at, checked_at, verified_at,
                              check_error FROM tracking_domains";

fn from_row(r: &Row) -> StoreResult<TrackingDomain> {
    Ok(TrackingDomain {
        domain: r.get(0)?,
        url: r.get(1)?,
        added_at: r.get(2)?,
        retired_at: r.get(3)?,
        checked_at: r.get(4)?,
        verified_at: r.get(5)?,
        check_error: r.get(6)?,
    })
}

fn read(c: &mut dyn Conn, domain: &str) -> StoreResult<Option<TrackingDomain>> {
    c.query_row(&format!("{COLUMNS} WHERE domain = ?1"), params![domain])?
        .as_ref()
        .map(from_row)
        .transpose()
}

#[async_trait]
impl<E: Engine> TrackingDomains for SqlStore<E> {
    async fn tracking_domains(&self) -> StoreResult<Vec<TrackingDomain>> {
        self.read(|c| {
            c.query(&format!("{COLUMNS} ORDER BY domain"), params![])?
                .iter()
                .map(from_row)
                .collect()
        })
        .await
    }

    async fn tracking_domain(&self, domain: String) -> StoreResult<Option<TrackingDomain>> {
        self.read(move |c| read(c, &domain)).await
    }

    async fn add_tracking_domain(&self, new: DomainUrl) -> StoreResult<Option<TrackingDomain>> {
        self.write(move |c| {
            in_tx(c, |c| {
                let added_at = Utc::now().trunc_subsecs(6);
                let added = c.execute(
                    "INSERT INTO tracking_domains (domain, url, added_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (domain) DO NOTHING",
                    params![&new.domain, &new.url, added_at],
                )?;
                Ok((added == 1).then_some(TrackingDomain {
                    domain: new.domain,
                    url: new.url,
                    added_at,
                    retired_at: None,
                    checked_at: None,
                    verified_at: None,
                    check_error: None,
                }))
            })
        })
        .await
    }

    async fn retire_tracking_domain(
        &self,
        domain: String,
        retired: bool,
    ) -> StoreResult<Option<TrackingDomain>> {
        self.write(move |c| {
            in_tx(c, |c| {
                if retired {
                    c.execute(
                        "UPDATE tracking_domains SET retired_at = coalesce(retired_at, ?2)
                         WHERE domain = ?1",
                        params![&domain, Utc::now().trunc_subsecs(6)],
                    )?;
                } else {
                    c.execute(
                        "UPDATE tracking_domains SET retired_at = NULL WHERE domain = ?1",
                        params![&domain],
                    )?;
                }
                read(c, &domain)
            })
        })
        .await
    }

    async fn record_domain_check(
        &self,
        domain: String,
        at: DateTime<Utc>,
        error: Option<String>,
    ) -> StoreResult<Option<TrackingDomain>> {
        self.write(move |c| {
            in_tx(c, |c| {
                let at = at.trunc_subsecs(6);
                c.execute(
                    "UPDATE tracking_domains SET checked_at = ?2, check_error = ?3,
                         verified_at = CASE WHEN ?4 = 1 THEN ?2 ELSE verified_at END
                     WHERE domain = ?1",
                    params![&domain, at, error.as_deref(), error.is_none()],
                )?;
                read(c, &domain)
            })
        })
        .await
    }

    async fn remove_tracking_domain(&self, domain: String) -> StoreResult<DomainRemoval> {
        self.write(move |c| {
            in_tx(c, |c| {
                Ok(match read(c, &domain)? {
                    None => DomainRemoval::NotFound,
                    Some(d) if d.retired_at.is_none() => DomainRemoval::NotRetired,
                    Some(_) => {
                        c.execute(
                            "DELETE FROM tracking_domains WHERE domain = ?1",
                            params![&domain],
                        )?;
                        // Its certificate goes too: every process stops serving it.
                        c.execute(
                            "DELETE FROM certificates WHERE domain = ?1",
                            params![&domain],
                        )?;
                        DomainRemoval::Removed
                    }
                })
            })
        })
        .await
    }
}
