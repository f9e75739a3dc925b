//! Automatic HTTPS (`--https-listen`): certificates ordered by ACME (RFC 8555) for every tracking
//! domain that passed its check and for the public URL's host, renewed before they expire, and
//! kept in the database so that every process on it serves them and only one orders each.

mod certs;
mod manager;
mod order;
mod recheck;

pub use certs::{ACME_TLS, Certs};
pub use manager::Manager;
pub use recheck::Rechecks;

pub use crate::config::{AcmeSettings, Challenge, LETS_ENCRYPT};

/// Where ACME's HTTP-01 validation asks for a challenge's answer, on plain HTTP.
pub const CHALLENGE_PATH: &str = "/.well-known/acme-challenge/{token}";
