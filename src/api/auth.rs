//! Who calls the API: an API token (`Authorization: Bearer mb_…`) or a dashboard session, its
//! scope, and the checks handlers make of it.

use super::error::ApiError;
use super::rate_limit::Key;
use crate::app::AppState;
use crate::domain::{Actor, AuditAction};
use crate::store::{AuditEntry, Scope};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use std::net::SocketAddr;
use std::sync::Arc;

pub use crate::credentials::api_tokens::{PREFIX, generate_token, hash_token};

/// The verified caller of an API request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub token_id: i64,
    pub scope: Scope,
}

impl Caller {
    /// Campaigns and messages may be created by admins and analysts.
    pub fn require_write(self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Admin | Scope::Analyst => Ok(()),
            Scope::Viewer => Err(ApiError::Forbidden("viewer")),
        }
    }

    pub fn require_admin(self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Admin => Ok(()),
            other => Err(ApiError::Forbidden(other.as_str())),
        }
    }

    /// Who this is in the audit log: a token, or a password sign-in.
    pub fn actor(self) -> Actor {
        match self.token_id {
            0 => Actor::DashboardPassword,
            id => Actor::Token(id),
        }
    }

    /// Notes in the audit log that this caller did `action` to `target`.
    pub async fn audit(
        self,
        app: &AppState,
        action: AuditAction,
        target: &str,
    ) -> Result<(), ApiError> {
        app.store
            .audit(AuditEntry {
                at: chrono::Utc::now(),
                actor: self.actor(),
                scope: self.scope.as_str().into(),
                action,
                target: target.into(),
            })
            .await?;
        Ok(())
    }

    /// Per-recipient data is for admins and analysts; viewers see aggregates only.
    pub fn require_recipient_data(self) -> Result<(), ApiError> {
        self.require_write()
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        let caller = Self::identify(parts, app).await?;
        app.api_limits.take(Key::Token(caller.token_id))?;
        Ok(caller)
    }
}

impl Caller {
    async fn identify(parts: &Parts, app: &AppState) -> Result<Self, ApiError> {
        // Per address first, so guessing tokens is as limited as using one.
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            let client = crate::client_addr::client_addr(
                peer.ip(),
                &parts.headers,
                &app.settings.trusted_proxies,
            );
            app.api_limits.take(Key::Address(client))?;
        }
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            // The dashboard's session cookie, for reads only: a write needs the header, which a
            // page on another site cannot make a browser send.
            if matches!(parts.method, Method::GET | Method::HEAD)
                && let Some(session) =
                    crate::credentials::sessions::from_headers(app, &parts.headers).await?
            {
                return Ok(Caller {
                    token_id: session.token_id.unwrap_or(0),
                    scope: session.scope,
                });
            }
            return Err(ApiError::MissingToken);
        };
        let token = bearer_token(value)?;
        match app.store.api_token_scope(hash_token(token)).await? {
            Some((token_id, scope)) => Ok(Caller { token_id, scope }),
            None => Err(ApiError::InvalidToken),
        }
    }
}

/// The token of an `Authorization: Bearer mb_…` header: `MissingToken` when the header is not a
/// bearer token, `InvalidToken` when it cannot be one of ours (checked before any lookup).
pub fn bearer_token(value: &HeaderValue) -> Result<&str, ApiError> {
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        })
        .ok_or(ApiError::MissingToken)?;
    if !token.starts_with(PREFIX) || token.len() > 100 {
        return Err(ApiError::InvalidToken);
    }
    Ok(token)
}

/// A caller who may create campaigns and messages, checked before the body is read: a viewer is
/// told 403 whatever it sent.
pub struct Writer(pub Caller);

impl FromRequestParts<Arc<AppState>> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_write()?;
        Ok(Writer(caller))
    }
}

/// An admin caller, checked before the body is read.
pub struct Admin(pub Caller);

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}
