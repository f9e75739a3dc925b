//! `--https-listen` and how its certificates are ordered (`crate::acme`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The HTTPS listener's address.
    pub listen: SocketAddr,
    pub directory: String,
    pub email: Option<String>,
    /// The only CA trusted for the directory's own HTTPS; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The first wait after a failed order; it doubles per failure, up to a day.
    pub retry_base: Duration,
    pub challenge: Challenge,
}

/// How the ACME server validates that a name reaches this installation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
pub enum Challenge {
    /// A request on plain HTTP, port 80 (`--listen`).
    #[default]
    #[value(name = "http-01")]
    #[serde(rename = "http-01")]
    Http01,
    /// A TLS handshake on port 443 (`--https-listen`), for a server without port 80.
    #[value(name = "tls-alpn-01")]
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}
