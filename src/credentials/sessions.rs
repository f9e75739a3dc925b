//! Dashboard sign-in: with an API token or with a password an admin set for a scope. A session is
//! a random cookie (HttpOnly, SameSite=Strict) of which only the SHA-256 is stored.

use super::api_tokens::hash_token;
use crate::app::AppState;
use crate::error::ApiError;
use crate::store::{Scope, Session};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};

pub const COOKIE: &str = "mailbeacon_session";
/// How long a sign-in lasts.
pub const LIFETIME_HOURS: i64 = 12;
/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
const ROUNDS: u32 = 600_000;

/// The session the request's cookie names, if it is current.
pub async fn from_headers(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, ApiError> {
    let Some(value) = cookie(headers) else {
        return Ok(None);
    };
    Ok(app.store.session(session_hash(&value)).await?)
}

/// The value of the request's session cookie, if it has one of a plausible length.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty() && value.len() <= 100).then(|| value.to_string())
        })
}

fn session_hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Starts a session and returns the `Set-Cookie` value for it.
pub async fn start(
    app: &AppState,
    token_id: Option<i64>,
    scope: Scope,
    secure: bool,
) -> Result<String, ApiError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| ApiError::Internal(e.to_string()))?;
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    app.store
        .create_session(Session {
            session_hash: session_hash(&value),
            token_id,
            scope,
            expires_at: Utc::now() + Duration::hours(LIFETIME_HOURS),
        })
        .await?;
    Ok(format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME_HOURS * 3600,
        if secure { "; Secure" } else { "" }
    ))
}

/// Ends the request's session (if any) and returns the `Set-Cookie` value that clears it.
pub async fn end(app: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(value) = cookie(headers) {
        app.store.delete_session(session_hash(&value)).await?;
    }
    Ok(format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
}

/// What a sign-in form's secret is: an API token (`mb_…`) or a dashboard password.
pub async fn check_secret(
    app: &AppState,
    secret: &str,
) -> Result<Option<(Option<i64>, Scope)>, ApiError> {
    let secret = secret.trim();
    if secret.is_empty() || secret.len() > 200 {
        return Ok(None);
    }
    if secret.starts_with(super::api_tokens::PREFIX)
        && let Some((id, scope)) = app.store.api_token_scope(hash_token(secret)).await?
    {
        return Ok(Some((Some(id), scope)));
    }
    let passwords = app.store.dashboard_passwords().await?;
    // Each check costs 600,000 rounds per password: a few at once, so that a flood of sign-ins
    // cannot take the CPU from the tracker.
    let _slot = app
        .sign_in
        .password_check()
        .await
        .ok_or(ApiError::Unavailable)?;
    let secret = secret.to_string();
    // Hashing takes a while on purpose: off the async workers.
    let matched = tokio::task::spawn_blocking(move || {
        passwords
            .into_iter()
            .find(|(_, stored)| verify_password(&secret, stored))
            .map(|(scope, _)| scope)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(matched.map(|scope| (None, scope)))
}

/// `pbkdf2-sha256$ROUNDS$SALT$HASH` (base64 without padding).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, ROUNDS, &mut out);
    Ok(format!(
        "pbkdf2-sha256${ROUNDS}${}${}",
        B64.encode(salt),
        B64.encode(out)
    ))
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [scheme, rounds, salt, hash] = parts[..] else {
        return false;
    };
    let (Ok(rounds), Ok(salt), Ok(hash)) =
        (rounds.parse::<u32>(), B64.decode(salt), B64.decode(hash))
    else {
        return false;
    };
    if scheme != "pbkdf2-sha256" || hash.len() != 32 || !(1..=10_000_000).contains(&rounds) {
        return false;
    }
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, rounds, &mut out);
    // Constant time: the comparison must not tell how many bytes matched.
    out.iter().zip(&hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_and_a_wrong_one_does_not() {
        let stored = hash_password("correct horse battery staple").unwrap();
        assert!(stored.starts_with("pbkdf2-sha256$600000$"));
        assert!(verify_password("correct horse battery staple", &stored));
        assert!(!verify_password("correct horse battery stapler", &stored));
        assert!(!verify_password("x", "garbage"));
    }
}
