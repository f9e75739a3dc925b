//! The storage interface. Handlers, the writer and the CLI see only this trait and its types. Its
//! one implementation (queries.rs) runs on either engine, SQLite or PostgreSQL, through the small
//! SQL interface in sql.rs; each engine converts its driver's errors at that boundary.

mod database_url;
pub mod migrate_data;
pub mod postgres;
pub mod queries;
mod records;
pub mod sql;
pub mod sqlite;
mod traits;

use crate::analytics::rollup::{Dim, DimCount, HourCount, LinkCount};
use crate::analytics::segments::MessageActivity;
use crate::classify::Classifier;
use crate::webhooks::{Attempt, Delivery, DeliveryRecord, DueEndpoint, NewWebhook, Next, Webhook};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

pub use crate::domain::{
    ANONYMOUS_RECIPIENT, Actor, AuditAction, CampaignId, EventId, EventKind, MessageId, Scope,
    Standing, WithoutConsent,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "the database was migrated by a newer mailbeacon (schema version {found}, this build knows {known})"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// Another transaction got in the way (a deadlock PostgreSQL broke, a serialization
    /// failure): nothing was written, and the same transaction can be tried again at once.
    #[error("a concurrent transaction conflicted, nothing was written: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub use crate::analytics::{CampaignStats, ClassCounts, ConversionCounts, ConversionValue, Counts};
pub use database_url::DatabaseUrl;
pub use records::*;
pub use traits::*;

/// Everything mailbeacon keeps, one trait per aggregate (src/store/traits/); an engine implements
/// them all on top of [`sql::Conn`] (src/store/queries/).
#[async_trait]
pub trait Store:
    Campaigns
    + Certificates
    + Conversions
    + Deliverability
    + Ingest
    + Reports
    + Recipients
    + Access
    + Outbox
    + Maintenance
    + TrackingDomains
    + Send
    + Sync
    + 'static
{
    /// Round trip to the database, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
}

/// A signed-in dashboard user.
#[derive(Debug, Clone)]
pub struct Session {
    pub session_hash: [u8; 32],
    /// The API token signed in with; `None` for a password.
    pub token_id: Option<i64>,
    pub scope: Scope,
    pub expires_at: DateTime<Utc>,
}

/// What opening a database did, for the start-up message.
#[derive(Debug, Clone)]
pub struct OpenReport {
    pub created: bool,
    pub migrations_applied: usize,
}

/// Opens (creating if needed) the database the URL names and applies pending migrations.
/// `max_bytes` caps the database's size (`--max-database-mb`).
pub async fn open(
    url: &DatabaseUrl,
    fsync: bool,
    max_bytes: Option<u64>,
) -> anyhow::Result<(Arc<dyn Store>, OpenReport)> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let path = path.clone();
            let (store, report) = tokio::task::spawn_blocking(move || {
                let (store, report) = sqlite::SqliteStore::open(&path, fsync)?;
                if let Some(max) = max_bytes {
                    store.limit_size(max)?;
                }
                anyhow::Ok((store, report))
            })
            .await??;
            Ok((Arc::new(store), report))
        }
        DatabaseUrl::Postgres(url) => {
            if max_bytes.is_some() {
                anyhow::bail!(
                    "--max-database-mb applies to SQLite only; PostgreSQL has its own limits"
                );
            }
            // Every PostgreSQL commit is durable (synchronous_commit is the server's setting).
            let _ = fsync;
            let url = url.clone();
            let (store, report) =
                tokio::task::spawn_blocking(move || postgres::PostgresStore::open(&url)).await??;
            Ok((Arc::new(store), report))
        }
    }
}
