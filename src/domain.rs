//! The words every part of mailbeacon shares: ids, what kind of event, how much is tracked, the
//! public URL. Nothing here imports the rest of the crate, so anything may import it.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::str::FromStr;

pub type CampaignId = i64;
pub type MessageId = i64;
pub type EventId = i64;

/// The recipient id of a message registered with tracking level `anonymous`: this prefix and a
/// random part, so that nothing stored points to the recipient.
pub const ANONYMOUS_RECIPIENT: &str = "anonymous:";

/// Recipient ids are the sender's own identifiers (a CRM id, a hashed address…), kept short.
pub const MAX_RECIPIENT_ID_LEN: usize = 256;

/// A recipient id as a sender, an analyst or an admin gives it: trimmed, 1 to 256 bytes. The
/// error says what is wrong with it ("is empty").
pub fn parse_recipient_id(id: &str) -> Result<String, &'static str> {
    let id = id.trim();
    if id.is_empty() {
        return Err("is empty");
    }
    if id.len() > MAX_RECIPIENT_ID_LEN {
        return Err("is longer than 256 bytes");
    }
    Ok(id.to_string())
}

/// The longest campaign name, in characters.
pub const MAX_CAMPAIGN_NAME: usize = 200;

/// A campaign name as a user gives it: trimmed, 1 to 200 characters.
pub fn parse_campaign_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    if name.chars().count() > MAX_CAMPAIGN_NAME {
        return Err(format!(
            "name must be at most {MAX_CAMPAIGN_NAME} characters"
        ));
    }
    Ok(name)
}

/// The hidden link's number; real links count from 1.
pub const HONEYPOT_LINK: u16 = 0;

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    #[default]
    Open,
    Click,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Open => "open",
            EventKind::Click => "click",
        }
    }

    pub fn parse(kind: &str) -> Option<EventKind> {
        match kind {
            "open" => Some(EventKind::Open),
            "click" => Some(EventKind::Click),
            _ => None,
        }
    }
}

/// `--without-consent`: a hit on mail to a recipient whose consent does not stand (withdrawn, or
/// never given for mail registered before `--require-consent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum WithoutConsent {
    /// The message is made anonymous (renamed to a random name, its events' addresses and agent
    /// strings removed) and the hit is recorded on it: counted, pointing to no one.
    #[default]
    Anonymous,
    /// The hit is answered and not stored, as after an opt-out.
    None,
}

/// How much of a message is tracked. Ordered: a setting caps a request at its level.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum TrackingLevel {
    /// Not instrumented: no pixel, no rewritten links, nothing stored.
    None,
    /// Counted in the campaign's figures; the stored message names no recipient.
    Anonymous,
    /// Per-recipient events (the default).
    Individual,
}

/// An absolute http(s) base URL without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn as_str(&self) -> &str {
        &self.0
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

/// How the audit log names a recipient: a SHA-256 prefix of the id, never the id itself, so that
/// erasing a recipient leaves nothing readable of them while "was X erased?" can still be
/// answered by hashing X.
pub fn recipient_ref(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("recipient sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_ids_are_trimmed_and_one_to_256_bytes() {
        assert_eq!(
            parse_recipient_id("  ann@example.com "),
            Ok("ann@example.com".into())
        );
        assert_eq!(parse_recipient_id(" \t"), Err("is empty"));
        assert!(parse_recipient_id(&"é".repeat(128)).is_ok());
        assert_eq!(
            parse_recipient_id(&"x".repeat(257)),
            Err("is longer than 256 bytes")
        );
    }
}
