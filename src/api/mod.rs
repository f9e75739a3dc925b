//! The JSON API under `/api`. Every route needs `Authorization: Bearer TOKEN`.

pub mod auth;
mod campaigns;
pub mod error;
mod events;
mod json_body;
mod messages;
mod recipients;

pub use campaigns::valid_name;
pub use events::to_csv;
pub use recipients::recipient_ref;

use crate::server::AppState;
use axum::Router;
use axum::routing::{delete, get, post};
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/campaigns", post(campaigns::create).get(campaigns::list))
        .route("/campaigns/{id}/stats", get(campaigns::stats))
        .route("/campaigns/{id}/messages", post(messages::create))
        .route("/events", get(events::list))
        .route("/recipients/{id}", delete(recipients::erase))
        .route("/recipients/{id}/opt-out", post(recipients::opt_out))
        .route("/recipients/{id}/export", get(recipients::export))
        .route("/audit", get(recipients::audit_log))
        .fallback(|| async { error::ApiError::NoRoute })
}
