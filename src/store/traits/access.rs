//! Who may do what: signing keys, API tokens, the audit log, dashboard passwords and sessions.

use super::super::*;

#[async_trait]
pub trait Access: Send + Sync {
    /// Signing keys kept in the database, as (id, secret). When there are none, `new_secret` is
    /// stored as key 1 in the same transaction (so processes starting together agree on one key) and
    /// its id is returned beside the list.
    async fn signing_keys_or_create(
        &self,
        new_secret: [u8; 32],
    ) -> StoreResult<(Vec<(u8, [u8; 32])>, Option<u8>)>;

    /// Adds a key with the next free id and returns that id.
    async fn add_signing_key(&self, secret: [u8; 32]) -> StoreResult<u8>;

    /// Deletes a signing key that no longer signs (not the newest): what it signed stops
    /// verifying. Ok(false) when there is no such key; an error for the newest.
    async fn retire_signing_key(&self, id: u8) -> StoreResult<bool>;

    /// Stores a token's hash with its scope and, optionally, when it stops working.
    async fn create_api_token(
        &self,
        token_hash: [u8; 32],
        scope: Scope,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;

    /// Every API token, oldest first.
    async fn api_tokens(&self) -> StoreResult<Vec<ApiTokenInfo>>;

    /// Deletes a token and ends the dashboard sessions started with it; false when there was none.
    async fn revoke_api_token(&self, id: i64) -> StoreResult<bool>;

    /// Stores the token only if there is none yet (the first start's admin token); false when
    /// there was one. Processes starting together make one between them.
    async fn create_first_api_token(&self, token_hash: [u8; 32], scope: Scope)
    -> StoreResult<bool>;

    /// The id and scope of the API token with this hash, unless it has expired.
    async fn api_token_scope(&self, token_hash: [u8; 32]) -> StoreResult<Option<(i64, Scope)>>;

    async fn audit(&self, entry: AuditEntry) -> StoreResult<()>;

    /// Audit entries with an id above `after`, oldest first.
    async fn audit_log(&self, after: i64, limit: usize) -> StoreResult<Vec<(i64, AuditEntry)>>;

    /// The target of the latest audit entry with this action.
    async fn last_audit_target(&self, action: AuditAction) -> StoreResult<Option<String>>;

    /// Sets (or replaces) the dashboard password of a scope, as a password hash string.
    async fn set_dashboard_password(&self, scope: Scope, hash: String) -> StoreResult<()>;

    async fn dashboard_passwords(&self) -> StoreResult<Vec<(Scope, String)>>;

    async fn create_session(&self, session: Session) -> StoreResult<()>;

    /// The unexpired session with this cookie hash.
    async fn session(&self, session_hash: [u8; 32]) -> StoreResult<Option<Session>>;

    async fn delete_session(&self, session_hash: [u8; 32]) -> StoreResult<()>;
}
