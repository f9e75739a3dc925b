//! ACME certificates, accounts and challenges: small tables the certificate manager reads every
//! few seconds and writes once per order.

use super::*;

const COLUMNS: &str = "SELECT domain, chain_pem, key_pem, not_before, not_after, renew_at,
                              issued_at, failures, last_error, retry_at FROM certificates";

fn from_row(r: &Row) -> StoreResult<StoredCertificate> {
    let chain_pem: Option<String> = r.get(1)?;
    let issued = match chain_pem {
        Some(chain_pem) => Some(IssuedCertificate {
            chain_pem,
            key_pem: r.get(2)?,
            not_before: r.get(3)?,
            not_after: r.get(4)?,
            renew_at: r.get(5)?,
            issued_at: r.get(6)?,
        }),
        None => None,
    };
    Ok(StoredCertificate {
        domain: r.get(0)?,
        issued,
        failures: r.get(7)?,
        last_error: r.get(8)?,
        retry_at: r.get(9)?,
    })
}

#[async_trait]
impl<E: Engine> Certificates for SqlStore<E> {
    async fn certificates(&self) -> StoreResult<Vec<StoredCertificate>> {
        self.read(|c| {
            c.query(&format!("{COLUMNS} ORDER BY domain"), params![])?
                .iter()
                .map(from_row)
                .collect()
        })
        .await
    }

    async fn lease_certificate_order(
        &self,
        domain: String,
        owner: String,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.write(move |c| {
            in_tx(c, |c| {
                c.execute(
                    "INSERT INTO certificates (domain) VALUES (?1) ON CONFLICT (domain) DO NOTHING",
                    params![&domain],
                )?;
                // One statement decides, so two processes cannot both take it.
                let taken = c.execute(
                    "UPDATE certificates SET lease_owner = ?2, lease_until = ?4
                     WHERE domain = ?1
                       AND (lease_until IS NULL OR lease_until < ?3)
                       AND (retry_at IS NULL OR retry_at <= ?3)
                       AND (chain_pem IS NULL OR renew_at <= ?3)",
                    params![
                        &domain,
                        &owner,
                        now.trunc_subsecs(6),
                        until.trunc_subsecs(6)
                    ],
                )?;
                Ok(taken == 1)
            })
        })
        .await
    }

    async fn store_certificate(
        &self,
        domain: String,
        owner: String,
        issued: IssuedCertificate,
    ) -> StoreResult<()> {
        self.write(move |c| {
            in_tx(c, |c| {
                c.execute(
                    "UPDATE certificates SET chain_pem = ?3, key_pem = ?4, not_before = ?5,
                         not_after = ?6, renew_at = ?7, issued_at = ?8, failures = 0,
                         last_error = NULL, retry_at = NULL, lease_owner = NULL, lease_until = NULL
                     WHERE domain = ?1 AND lease_owner = ?2",
                    params![
                        &domain,
                        &owner,
                        &issued.chain_pem,
                        &issued.key_pem,
                        issued.not_before.trunc_subsecs(6),
                        issued.not_after.trunc_subsecs(6),
                        issued.renew_at.trunc_subsecs(6),
                        issued.issued_at.trunc_subsecs(6)
                    ],
                )?;
                Ok(())
            })
        })
        .await
    }

    async fn certificate_order_failed(
        &self,
        domain: String,
        owner: String,
        error: String,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.write(move |c| {
            in_tx(c, |c| {
                c.execute(
                    "UPDATE certificates SET failures = failures + 1, last_error = ?3,
                         retry_at = ?4, lease_owner = NULL, lease_until = NULL
                     WHERE domain = ?1 AND lease_owner = ?2",
                    params![&domain, &owner, &error, retry_at.trunc_subsecs(6)],
                )?;
                Ok(())
            })
        })
        .await
    }

    async fn renew_certificate_now(&self, domain: String) -> StoreResult<bool> {
        self.write(move |c| {
            in_tx(c, |c| {
                let changed = c.execute(
                    "UPDATE certificates SET renew_at = ?2, retry_at = NULL
                     WHERE domain = ?1 AND chain_pem IS NOT NULL",
                    params![&domain, Utc::now().trunc_subsecs(6)],
                )?;
                Ok(changed == 1)
            })
        })
        .await
    }

    async fn acme_account(&self, directory: String) -> StoreResult<Option<String>> {
        self.read(move |c| {
            c.query_row(
                "SELECT credentials FROM acme_accounts WHERE directory = ?1",
                params![&directory],
            )?
            .map(|r| r.get(0))
            .transpose()
        })
        .await
    }

    async fn add_acme_account(
        &self,
        directory: String,
        credentials: String,
    ) -> StoreResult<String> {
        self.write(move |c| {
            in_tx(c, |c| {
                c.execute(
                    "INSERT INTO acme_accounts (directory, credentials, created_at)
                     VALUES (?1, ?2, ?3) ON CONFLICT (directory) DO NOTHING",
                    params![&directory, &credentials, Utc::now().trunc_subsecs(6)],
                )?;
                let kept = c.query_row(
                    "SELECT credentials FROM acme_accounts WHERE directory = ?1",
                    params![&directory],
                )?;
                match kept {
                    Some(r) => r.get(0),
                    None => Ok(credentials),
                }
            })
        })
        .await
    }

    async fn add_acme_challenge(
        &self,
        token: String,
        domain: String,
        key_authorization: String,
    ) -> StoreResult<()> {
        self.write(move |c| {
            in_tx(c, |c| {
                c.execute(
                    "INSERT INTO acme_challenges (token, domain, key_authorization, created_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (token) DO UPDATE SET key_authorization = excluded.key_authorization",
                    params![&token, &domain, &key_authorization, Utc::now().trunc_subsecs(6)],
                )?;
                Ok(())
            })
        })
        .await
    }

    async fn acme_challenge(&self, token: String) -> StoreResult<Option<String>> {
        self.read(move |c| {
            c.query_row(
                "SELECT key_authorization FROM acme_challenges WHERE token = ?1",
                params![&token],
            )?
            .map(|r| r.get(0))
            .transpose()
        })
        .await
    }

    async fn acme_challenges(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(|c| {
            c.query(
                "SELECT domain, key_authorization FROM acme_challenges ORDER BY domain, token",
                params![],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
        })
        .await
    }

    async fn remove_acme_challenges(&self, domain: String) -> StoreResult<()> {
        self.write(move |c| {
            in_tx(c, |c| {
                c.execute(
                    "DELETE FROM acme_challenges WHERE domain = ?1",
                    params![&domain],
                )?;
                Ok(())
            })
        })
        .await
    }
}
