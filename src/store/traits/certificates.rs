//! Certificates obtained by ACME, the account they are ordered with and the challenges being
//! validated: shared by every process on the database.

use super::super::*;

#[async_trait]
pub trait Certificates: Send + Sync {
    /// In the order of their names.
    async fn certificates(&self) -> StoreResult<Vec<StoredCertificate>>;

    /// Takes the right to order `domain`'s certificate for `owner` until `until`, when it has none
    /// or its renewal is due, no other process holds it and no back-off runs; `false` otherwise.
    async fn lease_certificate_order(
        &self,
        domain: String,
        owner: String,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Keeps a new certificate and ends `owner`'s lease.
    async fn store_certificate(
        &self,
        domain: String,
        owner: String,
        issued: IssuedCertificate,
    ) -> StoreResult<()>;

    /// Notes a failed order and ends `owner`'s lease; none is tried again before `retry_at`.
    async fn certificate_order_failed(
        &self,
        domain: String,
        owner: String,
        error: String,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Makes a certificate due for renewal now (and ends any back-off); `false` when `domain` has
    /// none.
    async fn renew_certificate_now(&self, domain: String) -> StoreResult<bool>;

    /// The ACME account's credentials (JSON) for `directory`.
    async fn acme_account(&self, directory: String) -> StoreResult<Option<String>>;

    /// Keeps an account's credentials unless another process kept one first; the kept ones.
    async fn add_acme_account(&self, directory: String, credentials: String)
    -> StoreResult<String>;

    async fn add_acme_challenge(
        &self,
        token: String,
        domain: String,
        key_authorization: String,
    ) -> StoreResult<()>;

    /// The key authorization an HTTP-01 challenge's token answers.
    async fn acme_challenge(&self, token: String) -> StoreResult<Option<String>>;

    /// Every challenge being validated: (name, key authorization).
    async fn acme_challenges(&self) -> StoreResult<Vec<(String, String)>>;

    async fn remove_acme_challenges(&self, domain: String) -> StoreResult<()>;
}
