//! Published address ranges (Apple's Mail Privacy Protection egress, Google's image proxy,
//! Microsoft's mail protection, ...), one list per file under `data/ip-ranges/`, each named by a
//! tag that the rules test for.
//!
//! File format: `#` comment lines (name, source, date), then one CIDR or address per line.

use ipnet::IpNet;
use std::net::IpAddr;

/// The lists shipped in the repository: (tag, file contents).
const BUILTIN: &[(&str, &str)] = &[
    (
        "apple-mpp-egress",
        include_str!("../../data/ip-ranges/apple-mpp-egress.txt"),
    ),
    (
        "google-image-proxy",
        include_str!("../../data/ip-ranges/google-image-proxy.txt"),
    ),
    (
        "microsoft-eop",
        include_str!("../../data/ip-ranges/microsoft-eop.txt"),
    ),
    (
        "microsoft-exchange-online",
        include_str!("../../data/ip-ranges/microsoft-exchange-online.txt"),
    ),
    (
        "barracuda-egd",
        include_str!("../../data/ip-ranges/barracuda-egd.txt"),
    ),
    (
        "apple-network",
        include_str!("../../data/ip-ranges/apple-network.txt"),
    ),
    (
        "mailru-image-proxy",
        include_str!("../../data/ip-ranges/mailru-image-proxy.txt"),
    ),
];

/// One list: merged, sorted, non-overlapping intervals over IPv6 space (IPv4 mapped into it).
struct List {
    tag: &'static str,
    intervals: Vec<(u128, u128)>,
}

pub struct Ranges {
    lists: Vec<List>,
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: '{text}' is not an address or CIDR range")]
pub struct RangeError {
    pub line: usize,
    pub text: String,
}

impl Ranges {
    pub fn builtin() -> Ranges {
        let mut ranges = Ranges { lists: Vec::new() };
        for (tag, text) in BUILTIN {
            let nets = parse_list(text).unwrap_or_else(|e| panic!("data/ip-ranges/{tag}.txt: {e}"));
            ranges.set(tag, &nets);
        }
        ranges
    }

    /// Replaces (or adds) the list called `tag`.
    pub fn set(&mut self, tag: &'static str, nets: &[IpNet]) {
        let mut intervals: Vec<(u128, u128)> = nets.iter().map(|n| interval(*n)).collect();
        intervals.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(intervals.len());
        for (start, end) in intervals {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        self.lists.retain(|l| l.tag != tag);
        self.lists.push(List {
            tag,
            intervals: merged,
        });
    }

    /// Tags of every list that holds `ip`.
    pub fn tags(&self, ip: IpAddr) -> Vec<&'static str> {
        let x = to_u128(ip);
        self.lists
            .iter()
            .filter(|l| {
                let i = l.intervals.partition_point(|&(start, _)| start <= x);
                i > 0 && l.intervals[i - 1].1 >= x
            })
            .map(|l| l.tag)
            .collect()
    }

    /// (tag, number of ranges) for each list, for start-up and `--help` texts.
    pub fn summary(&self) -> Vec<(&'static str, usize)> {
        self.lists
            .iter()
            .map(|l| (l.tag, l.intervals.len()))
            .collect()
    }
}

pub fn parse_list(text: &str) -> Result<Vec<IpNet>, RangeError> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(line, l)| {
            l.parse::<IpNet>()
                .or_else(|_| l.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| RangeError {
                    line,
                    text: l.to_string(),
                })
        })
        .collect()
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

fn interval(net: IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_lists_holding_an_address() {
        let mut r = Ranges { lists: Vec::new() };
        let a = parse_list("# test\n10.0.0.0/8\n192.0.2.7\n2001:db8::/32 # docs\n").unwrap();
        r.set("a", &a);
        r.set("b", &parse_list("10.1.0.0/16\n10.1.0.0/24\n").unwrap());
        let tags = |s: &str| r.tags(s.parse().unwrap());
        assert_eq!(tags("10.1.0.5"), ["a", "b"]);
        assert_eq!(tags("10.2.0.5"), ["a"]);
        assert_eq!(tags("192.0.2.7"), ["a"]);
        assert!(tags("192.0.2.8").is_empty());
        assert!(tags("11.0.0.0").is_empty());
        assert_eq!(tags("2001:db8:1::1"), ["a"]);
        assert_eq!(
            tags("::ffff:10.9.9.9"),
            ["a"],
            "IPv4-mapped addresses match IPv4 lists"
        );
        assert!(tags("2001:db9::1").is_empty());
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = parse_list("10.0.0.0/8\n\nnot-an-address\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.text, "not-an-address");
    }

    #[test]
    fn shipped_lists_load() {
        let r = Ranges::builtin();
        for (tag, n) in r.summary() {
            assert!(n > 0, "{tag} is empty");
        }
    }
}
