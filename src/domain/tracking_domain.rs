//! A tracking domain of the sender's own: the host name mail links point at instead of the
//! installation's public URL, so that they match the sender's brand.

use super::PublicUrl;
use serde::Serialize;
use std::net::IpAddr;

/// Where a tracking domain's check finds this installation's proof (`track::domain_check`).
pub const DOMAIN_CHECK_PATH: &str = "/.well-known/mailbeacon-domain-check";

/// A host name or address, checked and in lower case, with the base URL links under it use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainUrl {
    pub domain: String,
    pub url: String,
}

/// Reads what an admin gives: a host name (`t.brand.example`, links then use HTTPS) or a base URL
/// (`https://t.brand.example`, `http://127.0.0.1:8080` for a local test, with a path if the
/// tracker is behind one). The domain is the host name without port.
pub fn parse_tracking_domain(input: &str) -> Result<DomainUrl, String> {
    let input = input.trim();
    if input.is_empty() {
        return Err("a tracking domain is a host name such as t.example.com, or a base URL".into());
    }
    let with_scheme = if input.contains("://") {
        input.to_string()
    } else {
        format!("https://{input}")
    };
    let url: PublicUrl = with_scheme.parse()?;
    let lower = url.as_str().to_ascii_lowercase();
    let rest = lower.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "'{input}': a tracking domain's URL holds no user name"
        ));
    }
    let host = host_name(authority);
    let port = authority.rsplit_once("]:").map(|(_, p)| p).or_else(|| {
        (!authority.starts_with('['))
            .then(|| authority.split_once(':').map(|(_, p)| p))
            .flatten()
    });
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!(
            "'{input}': the port must be a number from 1 to 65535"
        ));
    }
    if host.parse::<IpAddr>().is_err() {
        valid_host_name(&host).map_err(|why| format!("'{input}': {why}"))?;
    }
    // The scheme and host in lower case; a path as given.
    let head = lower.len() - rest.len() + authority.len();
    Ok(DomainUrl {
        domain: host,
        url: format!("{}{}", &lower[..head], &url.as_str()[head..]),
    })
}

/// A `Host` header's name: lower case, without port or trailing dot (`[::1]:8080` gives `::1`).
pub fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A DNS host name (RFC 1123): labels of letters, digits and hyphens.
fn valid_host_name(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("no host name");
    }
    if host.len() > 253 {
        return Err("a host name has at most 253 characters");
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each part of a host name has 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(
                "a host name has letters, digits, hyphens and dots only (an international name in its xn-- form)",
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a part of a host name neither starts nor ends with a hyphen");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_give_their_names() {
        for (header, name) in [
            ("T.Example.com", "t.example.com"),
            ("t.example.com:8080", "t.example.com"),
            ("t.example.com.", "t.example.com"),
            ("[::1]:8443", "::1"),
            ("127.0.0.1:80", "127.0.0.1"),
        ] {
            assert_eq!(host_name(header), name, "{header}");
        }
    }

    #[test]
    fn host_names_and_urls_are_read() {
        let d = parse_tracking_domain(" T.Brand.Example ").unwrap();
        assert_eq!(d.domain, "t.brand.example");
        assert_eq!(d.url, "https://t.brand.example");
        let d = parse_tracking_domain("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            (d.domain.as_str(), d.url.as_str()),
            ("127.0.0.1", "http://127.0.0.1:8080")
        );
        let d = parse_tracking_domain("https://[::1]:8443/track").unwrap();
        assert_eq!(
            (d.domain.as_str(), d.url.as_str()),
            ("::1", "https://[::1]:8443/track")
        );
        assert_eq!(
            parse_tracking_domain("links.example.com.").unwrap().domain,
            "links.example.com"
        );
    }

    #[test]
    fn what_is_not_a_domain_is_refused_with_the_reason() {
        for (input, says) in [
            ("", "host name such as"),
            ("ftp://t.example.com", "http:// or https://"),
            ("t_x.example.com", "letters, digits, hyphens"),
            ("*.example.com", "letters, digits, hyphens"),
            ("-t.example.com", "hyphen"),
            ("t..example.com", "1 to 63"),
            ("https://user@t.example.com", "user name"),
            ("t.example.com:0", "port"),
            ("t.example.com:99999", "port"),
            ("t.example.com?x=1", "query"),
        ] {
            let err = parse_tracking_domain(input).unwrap_err();
            assert!(err.contains(says), "{input}: {err}");
        }
    }
}
