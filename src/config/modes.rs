//! The settings that choose among a few ways of keeping or reading a client's details.

use ipnet::IpNet;
use serde::Deserialize;

/// What is kept of a client's address when an event is logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientIpMode {
    /// IPv4 to its /24, IPv6 to its /48.
    #[default]
    Truncate,
    /// A keyed hash whose key changes every UTC day: the same address matches itself within a
    /// day (one process), never across days.
    Hash,
    Full,
    None,
}

/// Proxies whose forwarding header is believed, and which header that is.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    pub nets: Vec<IpNet>,
    pub header: ProxyHeader,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyHeader {
    #[default]
    XForwardedFor,
    Forwarded,
}

/// What is kept of a client's user agent when an event is logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UserAgentMode {
    #[default]
    Full,
    /// Only what was parsed from it (client, OS, device type); the string is not stored.
    Parsed,
}

/// `--resolve NAME=ADDR`: a name reached at a fixed address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinned {
    pub name: String,
    pub addr: std::net::IpAddr,
}

impl Pinned {
    pub fn parse(s: &str) -> Result<Pinned, String> {
        let (name, addr) = s
            .split_once('=')
            .ok_or_else(|| format!("'{s}' is not NAME=ADDR (e.g. t.example.com=203.0.113.7)"))?;
        let addr = addr
            .trim()
            .parse()
            .map_err(|_| format!("'{addr}' in '{s}' is not an IP address"))?;
        Ok(Pinned {
            name: name.trim().to_ascii_lowercase(),
            addr,
        })
    }
}

impl<'de> Deserialize<'de> for Pinned {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pinned, D::Error> {
        Pinned::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
