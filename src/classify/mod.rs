//! Tells readers from machines: every open and click gets a class, the reasons for it, and the
//! `duplicate` and `internal` flags.
//!
//! [`Classifier::classify`] is a pure function of one event and the earlier events of the same
//! message, so the writer runs it as events arrive and `mailbeacon reclassify` can run it again
//! over the stored log after the rules or the data files change. The rules themselves, each with
//! the evidence it rests on, are in [`rules`]; the data they read (address ranges, user-agent
//! lists) is in `data/` with its source and date.

pub mod agents;
pub mod ranges;
pub mod replay;
pub mod rules;
pub mod versions;

use crate::domain::{EventId, EventKind};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub use crate::domain::Class;

/// One request, as the classifier sees it.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub kind: EventKind,
    pub link_no: Option<u16>,
    pub method: &'a str,
    pub user_agent: Option<&'a str>,
    /// Names of the address lists the client address fell in ([`ranges::Ranges::tags`]).
    pub ip_tags: &'a [&'a str],
    /// The client address as far as it is known (possibly truncated), for `internal`.
    pub client_ip: Option<IpAddr>,
    /// The kept request headers, lower-case names.
    pub headers: &'a [(String, String)],
    pub received_at: DateTime<Utc>,
    pub sent_at: DateTime<Utc>,
    /// When a token of this message first failed its signature check.
    pub failed_check_at: Option<DateTime<Utc>>,
    pub recipient_id: &'a str,
}

/// An earlier event of the same message.
#[derive(Debug, Clone)]
pub struct Prior {
    /// The stored event's id.
    pub id: EventId,
    pub kind: EventKind,
    pub link_no: Option<u16>,
    pub received_at: DateTime<Utc>,
    pub class: Class,
}

/// What the classifier says about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub class: Class,
    /// Short codes such as `ua:google-image-proxy`, most decisive first.
    pub reasons: Vec<&'static str>,
    pub duplicate: bool,
    pub internal: bool,
}

impl Verdict {
    pub fn reasons_text(&self) -> String {
        self.reasons.join(" ")
    }
}

/// The address-list tag given at arrival to addresses in `--internal-network`.
pub const INTERNAL_NETWORK_TAG: &str = "internal-network";

/// The tag given at arrival to loopback, private and other non-routable addresses: a request
/// that came through a proxy mailbeacon does not trust (`--trusted-proxy`), whose address says
/// nothing about the client, so no rule reads it as "not Apple's" or "not a datacenter".
pub const PRIVATE_ADDRESS_TAG: &str = "private-address";

/// Whether an address is one no client on the internet has (see [`PRIVATE_ADDRESS_TAG`]).
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                // Carrier-grade NAT's shared space (RFC 6598).
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_address(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local()
            }
        },
    }
}

/// Which recipients and addresses are the sender's own (test sends, the office network).
#[derive(Debug, Clone, Default)]
pub struct Internal {
    /// Exact recipient ids, or `@domain` / `*@domain` suffixes.
    pub recipients: Vec<String>,
    pub networks: Vec<IpNet>,
}

impl Internal {
    pub fn matches(&self, recipient_id: &str, ip: Option<IpAddr>, ip_tags: &[&str]) -> bool {
        if ip_tags.contains(&INTERNAL_NETWORK_TAG) {
            return true;
        }
        let rid = recipient_id.to_ascii_lowercase();
        self.recipients.iter().any(|p| {
            let p = p.to_ascii_lowercase();
            match p.strip_prefix('*').unwrap_or(&p) {
                suffix if suffix.starts_with('@') => rid.ends_with(suffix),
                exact => rid == exact,
            }
        }) || ip.is_some_and(|ip| self.networks.iter().any(|n| n.contains(&ip)))
    }
}

/// The rules and the data they read, built once at start-up.
pub struct Classifier {
    pub agents: agents::Agents,
    pub ranges: ranges::Ranges,
    pub internal: Internal,
}

impl Classifier {
    /// The classifier with the data files shipped in the repository.
    pub fn builtin(internal: Internal) -> Classifier {
        Classifier {
            agents: agents::Agents::builtin(),
            ranges: ranges::Ranges::builtin(),
            internal,
        }
    }

    /// Classifies a stored event with no earlier events of its message, with client details.
    pub fn classify_stored(&self, hit: &StoredHit) -> (Verdict, ClientInfo) {
        hit.classify(self, &[])
    }

    pub fn classify(&self, hit: &Hit, history: &[Prior]) -> Verdict {
        let (class, reasons) = rules::decide(&self.agents, hit, history);
        Verdict {
            class,
            reasons,
            duplicate: rules::is_duplicate(hit, history),
            internal: self
                .internal
                .matches(hit.recipient_id, hit.client_ip, hit.ip_tags),
        }
    }
}

/// Client details parsed from the user agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ClientInfo {
    /// Browser or mail client family ("Chrome", "Apple Mail", "Outlook"); `None` when unknown.
    pub client: Option<String>,
    pub os: Option<String>,
    pub device: DeviceType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    Proxy,
    #[default]
    Unknown,
}

impl DeviceType {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Proxy => "proxy",
            DeviceType::Unknown => "unknown",
        }
    }
}

/// An event as storage holds it, ready to be classified: the same code serves the writer
/// (new events) and `reclassify` (stored ones), so both give the same answer.
pub struct StoredHit<'a> {
    pub kind: EventKind,
    pub link_no: Option<u16>,
    pub method: &'a str,
    pub user_agent: Option<&'a str>,
    /// The address as stored (perhaps truncated).
    pub client_ip: Option<&'a str>,
    /// The kept headers as a JSON object.
    pub headers: Option<&'a str>,
    /// Space-separated list tags.
    pub ip_tags: &'a str,
    pub received_at: DateTime<Utc>,
    pub sent_at: DateTime<Utc>,
    pub failed_check_at: Option<DateTime<Utc>>,
    pub recipient_id: &'a str,
}

impl StoredHit<'_> {
    pub fn classify(&self, classifier: &Classifier, history: &[Prior]) -> (Verdict, ClientInfo) {
        let headers: Vec<(String, String)> = self
            .headers
            .and_then(|h| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(h).ok()
            })
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let ip_tags: Vec<&str> = self.ip_tags.split_whitespace().collect();
        let hit = Hit {
            kind: self.kind,
            link_no: self.link_no,
            method: self.method,
            user_agent: self.user_agent,
            ip_tags: &ip_tags,
            client_ip: self.client_ip.and_then(|s| s.parse().ok()),
            headers: &headers,
            received_at: self.received_at,
            sent_at: self.sent_at,
            failed_check_at: self.failed_check_at,
            recipient_id: self.recipient_id,
        };
        let verdict = classifier.classify(&hit, history);
        let info = classifier
            .agents
            .client_info(self.user_agent, verdict.class);
        (verdict, info)
    }
}

#[cfg(test)]
mod tests;
