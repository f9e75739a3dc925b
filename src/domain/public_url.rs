//! The base URL recipients reach this installation at.

use serde::Deserialize;
use std::net::SocketAddr;
use std::str::FromStr;

/// An absolute http(s) base URL without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its host name (lower case, without port or brackets).
    pub fn host(&self) -> String {
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        super::host_name(rest.split('/').next().unwrap_or_default())
    }

    /// The base URL for a server listening on `addr` (with TLS or without).
    pub fn for_listener(addr: SocketAddr, tls: bool) -> PublicUrl {
        PublicUrl(format!("{}://{addr}", if tls { "https" } else { "http" }))
    }
}

impl FromStr for PublicUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .ok_or_else(|| format!("public URL '{s}' must start with http:// or https://"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("public URL '{s}' has no host"));
        }
        if s.chars().any(|c| c.is_whitespace() || c == '?' || c == '#') {
            return Err(format!(
                "public URL '{s}' must not contain spaces, a query or a fragment"
            ));
        }
        Ok(PublicUrl(s.trim_end_matches('/').to_string()))
    }
}

impl TryFrom<String> for PublicUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}
