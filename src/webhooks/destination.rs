//! Where a webhook may be sent: a receiver URL is checked when registered, and its name is
//! resolved to public addresses only when sent to (server-side request forgery), unless
//! `--webhook-allow-private` says the receivers are on the operator's own network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Whether an address is on the public internet: not loopback, private, link-local, shared
/// (carrier NAT), benchmarking, reserved, documentation, multicast or unspecified, nor an IPv6
/// address that carries such an IPv4 address (mapped, compatible, NAT64, 6to4) or tunnels to
/// one (Teredo). A webhook URL must not reach the machine's own network unless
/// `--webhook-allow-private` says so (server-side request forgery).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b & 0xfe) == 18)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            // IPv4-compatible (::a.b.c.d) and the well-known NAT64 prefix 64:ff9b::/96.
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified()
                || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
            {
                return is_public(IpAddr::V4(embedded(s[6], s[7])));
            }
            // 6to4: 2002:a.b.c.d::/48.
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(embedded(s[1], s[2])));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                // Local-use NAT64, discard-only, Teredo, documentation.
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || (s[0] == 0x100 && s[1..4] == [0, 0, 0])
                || (s[0] == 0x2001 && s[1] == 0)
                || (s[0] == 0x2001 && s[1] == 0xdb8))
        }
    }
}

/// Checks a receiver URL when it is registered: http(s), a host, and (unless allowed) not a
/// literal private address or `localhost`. Names are checked again when they are resolved.
pub fn check_url(url: &str, allow_private: bool) -> Result<String, String> {
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|e| format!("url: '{url}' is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("url: '{url}' must start with https:// or http://"));
    }
    let host = parsed
        .host()
        .ok_or_else(|| format!("url: '{url}' has no host"))?;
    if !allow_private {
        let private = match host {
            url::Host::Ipv4(ip) => !is_public(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => !is_public(IpAddr::V6(ip)),
            url::Host::Domain(d) => {
                d.eq_ignore_ascii_case("localhost")
                    || d.to_ascii_lowercase().ends_with(".localhost")
            }
        };
        if private {
            return Err(format!(
                "url: '{url}' is a local or private address; start mailbeacon with --webhook-allow-private to send to your own network"
            ));
        }
    }
    Ok(parsed.to_string())
}

/// Resolves names to public addresses only (see [`is_public`]); a name that has no other is
/// refused, so DNS cannot point a webhook at the internal network.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{host} resolves only to local or private addresses (allowed with --webhook-allow-private)"
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_destinations_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
        ] {
            let err = check_url(url, false).unwrap_err();
            assert!(err.contains("--webhook-allow-private"), "{url}: {err}");
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(check_url("https://hooks.example.com/mb", false).is_ok());
        assert!(
            check_url("ftp://example.com/", false)
                .unwrap_err()
                .contains("https://")
        );
        assert!(
            check_url("not a url", false)
                .unwrap_err()
                .contains("not a URL")
        );
        assert!(is_public("8.8.8.8".parse().unwrap()));
        assert!(!is_public("::ffff:192.168.1.1".parse().unwrap()));
    }

    #[test]
    fn private_ipv4_inside_ipv6_and_reserved_ranges_are_not_public() {
        for ip in [
            "64:ff9b::7f00:1",     // NAT64 of 127.0.0.1
            "64:ff9b::a9fe:a9fe",  // NAT64 of 169.254.169.254
            "2002:c0a8:101::1",    // 6to4 of 192.168.1.1
            "2002:7f00:1::",       // 6to4 of 127.0.0.1
            "::7f00:1",            // IPv4-compatible 127.0.0.1
            "::a00:1",             // IPv4-compatible 10.0.0.1
            "64:ff9b:1::a00:1",    // local-use NAT64
            "2001:0:4136:e378::1", // Teredo
            "2001:db8::1",
            "100::1",
            "198.18.0.1",
            "198.19.255.254",
            "240.0.0.1",
            "255.255.255.254",
            "192.0.0.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_public(ip), "{ip}");
            let url = match ip {
                IpAddr::V4(v4) => format!("http://{v4}/"),
                IpAddr::V6(v6) => format!("http://[{v6}]/"),
            };
            assert!(check_url(&url, false).is_err(), "{url}");
        }
        for ip in [
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700::1111",
            "198.20.0.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
