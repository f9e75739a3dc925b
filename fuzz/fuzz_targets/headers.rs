//! Request header parsers on one fuzzed header block (`name: value` lines): the client address
//! from X-Forwarded-For / Forwarded, Accept negotiation, the session cookie, the bearer token, the
//! Origin check, the kept classification headers and Location values.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use mailbeacon::api::auth::bearer_token;
use mailbeacon::api::format::{Format, negotiate};
use mailbeacon::config::{ClientIpMode, ProxyHeader, TrustedProxies};
use mailbeacon::client_addr::{DailySalt, client_addr, stored_addr};
use std::net::IpAddr;
use std::sync::LazyLock;

const PEERS: [&str; 4] = ["10.0.0.1", "::ffff:10.0.0.2", "203.0.113.9", "::1"];
const TRUSTED: [&[&str]; 4] = [
    &[],
    &["10.0.0.0/8", "::1/128"],
    &["10.0.0.0/8", "198.51.100.0/24", "2001:db8::/32", "::1/128"],
    &["0.0.0.0/0", "::/0"],
];

static SALT: LazyLock<DailySalt> = LazyLock::new(DailySalt::default);

fuzz_target!(|data: &[u8]| {
    let Some((&sel, block)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    for line in block.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(&line[..colon]);
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }

    let peer: IpAddr = PEERS[usize::from(sel & 3)].parse().unwrap();
    let trusted: Vec<IpNet> = TRUSTED[usize::from(sel >> 2 & 3)]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    let proxies = TrustedProxies {
        nets: trusted.clone(),
        header: if sel & 16 == 0 {
            ProxyHeader::XForwardedFor
        } else {
            ProxyHeader::Forwarded
        },
    };
    let client = client_addr(peer, &headers, &proxies);
    assert_eq!(
        client,
        client.to_canonical(),
        "IPv4-mapped addresses come out as IPv4"
    );
    if !trusted.iter().any(|n| n.contains(&peer.to_canonical())) {
        assert_eq!(
            client,
            peer.to_canonical(),
            "an untrusted peer is taken as it is"
        );
    }
    for mode in [
        ClientIpMode::Truncate,
        ClientIpMode::Hash,
        ClientIpMode::Full,
        ClientIpMode::None,
    ] {
        let stored = stored_addr(client, mode, &SALT);
        match mode {
            ClientIpMode::Truncate => {
                assert!(stored.unwrap().parse::<IpAddr>().is_ok());
            }
            ClientIpMode::Full => assert_eq!(stored, Some(client.to_string())),
            ClientIpMode::None => assert_eq!(stored, None),
            ClientIpMode::Hash => assert_eq!(stored.unwrap().len(), 18),
        }
    }

    let format = negotiate(&headers, None);
    if !headers.contains_key(header::ACCEPT) {
        assert_eq!(format.unwrap(), Format::Json);
    }
    for accept in headers.get_all(header::ACCEPT) {
        if let Ok(q) = accept.to_str() {
            let _ = negotiate(&headers, Some(q));
        }
    }

    if let Some(value) = mailbeacon::credentials::sessions::cookie(&headers) {
        assert!((1..=100).contains(&value.len()) && !value.contains(';'));
    }
    for value in headers.get_all(header::AUTHORIZATION) {
        if let Ok(token) = bearer_token(value) {
            assert!(token.starts_with("mb_") && token.len() <= 100);
        }
    }
    let same = mailbeacon::dashboard::same_origin(&headers);
    if !headers.contains_key(header::ORIGIN) {
        assert!(same);
    }
    if let Some(kept) = mailbeacon::track::kept_headers(&headers) {
        let kept: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&kept).expect("kept headers are a JSON object");
        assert!(!kept.is_empty() && kept.len() <= 6);
        assert!(
            kept.values()
                .all(|v| v.as_str().is_some_and(|s| s.len() <= 256))
        );
    }
    for value in headers.values() {
        let _ = mailbeacon::track::location(&String::from_utf8_lossy(value.as_bytes()));
    }
});
