//! Which address a request came from, and how much of it is kept.
//!
//! Forwarding headers are believed only when the direct peer is a configured trusted proxy, and then
//! read from the right: each hop appends the address it saw, so the rightmost entry that is not one of
//! our own proxies is the first one nobody we trust could have been lied to about. The leftmost value
//! is whatever the client chose to send and is never used on its own.

use crate::config::{ClientIpMode, ProxyHeader, TrustedProxies};
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn client_addr(peer: IpAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> IpAddr {
    let peer = normalize(peer);
    let trusted = &proxies.nets[..];
    if !is_trusted(peer, trusted) {
        return peer;
    }
    // Only the header the proxy sets: the other one is whatever the client sent.
    let hops: Vec<Option<IpAddr>> = match proxies.header {
        ProxyHeader::XForwardedFor => headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("!").split(','))
            .map(|s| s.trim().parse::<IpAddr>().ok())
            .collect(),
        ProxyHeader::Forwarded => headers
            .get_all("forwarded")
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("for=!").split(','))
            .filter_map(forwarded_for)
            .collect(),
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            // An entry we cannot read: stop at the last hop we could vouch for.
            None => break,
            Some(addr) => {
                client = normalize(addr);
                if !is_trusted(client, trusted) {
                    break;
                }
            }
        }
    }
    client
}

/// The `for=` value of one element of an RFC 7239 `Forwarded` header; `Some(None)` when it is
/// present but not an address (`unknown`, an obfuscated name).
fn forwarded_for(element: &str) -> Option<Option<IpAddr>> {
    let value = element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })?;
    let value = value.trim_matches('"');
    let addr = if let Some(rest) = value.strip_prefix('[') {
        rest.split(']').next().and_then(|a| a.parse().ok())
    } else {
        value
            .parse()
            .ok()
            .or_else(|| value.split(':').next().and_then(|a| a.parse().ok()))
    };
    Some(addr)
}

fn is_trusted(addr: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&addr))
}

/// IPv4 clients reaching a dual-stack socket appear as `::ffff:a.b.c.d`.
fn normalize(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The address as it may be stored under the privacy setting.
pub fn stored_addr(addr: IpAddr, mode: ClientIpMode, salts: &DailySalt) -> Option<String> {
    match mode {
        ClientIpMode::None => None,
        ClientIpMode::Hash => Some(salts.hash(addr)),
        ClientIpMode::Full => Some(addr.to_string()),
        ClientIpMode::Truncate => Some(match addr {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Ipv4Addr::new(a, b, c, 0).to_string()
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
            }
        }),
    }
}

/// The key of `--client-ip hash`: 32 random bytes per UTC day, held only in memory and replaced
/// when the day changes, so that no one (not even with the database and the config) can tell
/// whether two days' hashes come from the same address.
pub struct DailySalt {
    current: std::sync::Mutex<(chrono::NaiveDate, [u8; 32])>,
}

impl Default for DailySalt {
    fn default() -> Self {
        DailySalt {
            current: std::sync::Mutex::new((chrono::NaiveDate::MIN, [0; 32])),
        }
    }
}

impl DailySalt {
    /// `h:` and 16 hex digits of HMAC-SHA256(today's salt, address).
    pub fn hash(&self, addr: IpAddr) -> String {
        use hmac::{KeyInit, Mac};
        let today = chrono::Utc::now().date_naive();
        let salt = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            if current.0 != today {
                let mut fresh = [0u8; 32];
                getrandom::fill(&mut fresh).expect("the operating system's random source failed");
                *current = (today, fresh);
            }
            current.1
        };
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&salt).expect("any key length");
        match addr {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(18);
        out.push_str("h:");
        for b in &tag[..8] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn nets(s: &[&str]) -> TrustedProxies {
        TrustedProxies {
            nets: s.iter().map(|n| n.parse().unwrap()).collect(),
            header: ProxyHeader::XForwardedFor,
        }
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_an_address() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        let peer = "203.0.113.9".parse().unwrap();
        assert_eq!(client_addr(peer, &h, &nets(&["10.0.0.0/8"])), peer);
    }

    #[test]
    fn a_trusted_proxy_is_believed_from_the_right() {
        // The client forged "6.6.6.6"; our proxy 10.0.0.2 appended the real address 198.51.100.7.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        let peer = "10.0.0.1".parse().unwrap();
        assert_eq!(
            client_addr(peer, &h, &nets(&["10.0.0.0/8"])),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn several_header_lines_are_one_list() {
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            client_addr("10.0.0.1".parse().unwrap(), &h, &nets(&["10.0.0.1/32"])),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn garbage_stops_at_the_last_trusted_hop() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7, nonsense")]);
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client_addr(peer, &h, &nets(&["10.0.0.0/8"])), peer);
    }

    #[test]
    fn only_the_header_the_proxy_sets_is_read() {
        let h = headers(&[
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https",
            ),
            // Sent by the client, passed along by a proxy that sets Forwarded.
            ("x-forwarded-for", "203.0.113.66"),
        ]);
        let peer: IpAddr = "::1".parse().unwrap();
        let mut proxies = nets(&["::1/128"]);
        assert_eq!(
            client_addr(peer, &h, &proxies),
            "203.0.113.66".parse::<IpAddr>().unwrap()
        );
        proxies.header = ProxyHeader::Forwarded;
        assert_eq!(
            client_addr(peer, &h, &proxies),
            "2001:db8:cafe::17".parse::<IpAddr>().unwrap()
        );
        // A proxy set to Forwarded that gets none: the peer itself.
        let only_xff = headers(&[("x-forwarded-for", "203.0.113.66")]);
        assert_eq!(client_addr(peer, &only_xff, &proxies), peer);
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_ranges() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            client_addr(
                "::ffff:10.0.0.1".parse().unwrap(),
                &h,
                &nets(&["10.0.0.0/8"])
            ),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn addresses_are_truncated_by_default() {
        let salt = DailySalt::default();
        let v4 = "198.51.100.77".parse().unwrap();
        let v6 = "2001:db8:abcd:12:34::1".parse().unwrap();
        assert_eq!(
            stored_addr(v4, ClientIpMode::Truncate, &salt).unwrap(),
            "198.51.100.0"
        );
        assert_eq!(
            stored_addr(v6, ClientIpMode::Truncate, &salt).unwrap(),
            "2001:db8:abcd::"
        );
        assert_eq!(
            stored_addr(v4, ClientIpMode::Full, &salt).unwrap(),
            "198.51.100.77"
        );
        assert_eq!(stored_addr(v4, ClientIpMode::None, &salt), None);
        let hashed = stored_addr(v4, ClientIpMode::Hash, &salt).unwrap();
        assert!(hashed.starts_with("h:") && hashed.len() == 18, "{hashed}");
        assert_eq!(
            stored_addr(v4, ClientIpMode::Hash, &salt).unwrap(),
            hashed,
            "stable within a day"
        );
        assert_ne!(stored_addr(v6, ClientIpMode::Hash, &salt).unwrap(), hashed);
        assert_ne!(
            stored_addr(v4, ClientIpMode::Hash, &DailySalt::default()).unwrap(),
            hashed,
            "another key, another hash"
        );
    }
}
