//! Published address ranges (Apple's Mail Privacy Protection egress, Google's image proxy,
//! Microsoft's mail protection, ...), one list per file under `data/ip-ranges/`, each named by a
//! tag that the rules test for.
//!
//! File format: `#` comment lines (name, source, date), then one CIDR or address per line.

mod import;

pub use import::{ImportError, parse_import};
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
    (
        "microsoft-network",
        include_str!("../../data/ip-ranges/microsoft-network.txt"),
    ),
    (
        "proofpoint",
        include_str!("../../data/ip-ranges/proofpoint.txt"),
    ),
    (
        "mimecast",
        include_str!("../../data/ip-ranges/mimecast.txt"),
    ),
    (
        "mimecast-mta",
        include_str!("../../data/ip-ranges/mimecast-mta.txt"),
    ),
    (
        "cisco-secure-email",
        include_str!("../../data/ip-ranges/cisco-secure-email.txt"),
    ),
    (
        "broadcom-messagelabs",
        include_str!("../../data/ip-ranges/broadcom-messagelabs.txt"),
    ),
    (
        "trend-micro",
        include_str!("../../data/ip-ranges/trend-micro.txt"),
    ),
    (
        "forcepoint",
        include_str!("../../data/ip-ranges/forcepoint.txt"),
    ),
    (
        "fortinet",
        include_str!("../../data/ip-ranges/fortinet.txt"),
    ),
    (
        "hornetsecurity",
        include_str!("../../data/ip-ranges/hornetsecurity.txt"),
    ),
    (
        "cloudflare-email-security",
        include_str!("../../data/ip-ranges/cloudflare-email-security.txt"),
    ),
    (
        "cloud-aws",
        include_str!("../../data/ip-ranges/cloud-aws.txt"),
    ),
    (
        "cloud-gcp",
        include_str!("../../data/ip-ranges/cloud-gcp.txt"),
    ),
    (
        "cloud-oracle",
        include_str!("../../data/ip-ranges/cloud-oracle.txt"),
    ),
    (
        "cloud-digitalocean",
        include_str!("../../data/ip-ranges/cloud-digitalocean.txt"),
    ),
    (
        "cloud-linode",
        include_str!("../../data/ip-ranges/cloud-linode.txt"),
    ),
    (
        "cloud-vultr",
        include_str!("../../data/ip-ranges/cloud-vultr.txt"),
    ),
    (
        "cloud-hetzner",
        include_str!("../../data/ip-ranges/cloud-hetzner.txt"),
    ),
    (
        "cloud-ovh",
        include_str!("../../data/ip-ranges/cloud-ovh.txt"),
    ),
    (
        "cloud-contabo",
        include_str!("../../data/ip-ranges/cloud-contabo.txt"),
    ),
    (
        "cloud-scaleway",
        include_str!("../../data/ip-ranges/cloud-scaleway.txt"),
    ),
    (
        "cloud-alibaba",
        include_str!("../../data/ip-ranges/cloud-alibaba.txt"),
    ),
    (
        "cloud-tencent",
        include_str!("../../data/ip-ranges/cloud-tencent.txt"),
    ),
];

/// One list: merged, sorted, non-overlapping intervals over IPv6 space (IPv4 mapped into it).
struct List {
    tag: &'static str,
    intervals: Vec<(u128, u128)>,
}

/// The lists, and one index over all of them: sorted breakpoints, each with the set of lists
/// (bit `i` for `lists[i]`) that hold every address from it to the next breakpoint. A lookup is
/// one binary search however many lists there are.
pub struct Ranges {
    lists: Vec<List>,
    index: Vec<(u128, u64)>,
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: '{text}' is not an address or CIDR range")]
pub struct RangeError {
    pub line: usize,
    pub text: String,
}

impl Ranges {
    pub fn builtin() -> Ranges {
        let mut ranges = Ranges::empty();
        for (tag, text) in BUILTIN {
            let nets = parse_list(text).unwrap_or_else(|e| panic!("data/ip-ranges/{tag}.txt: {e}"));
            ranges.insert(tag, &nets);
        }
        ranges.reindex();
        ranges
    }

    fn empty() -> Ranges {
        Ranges {
            lists: Vec::new(),
            index: Vec::new(),
        }
    }

    /// Replaces (or adds) the list called `tag`.
    pub fn set(&mut self, tag: &'static str, nets: &[IpNet]) {
        self.insert(tag, nets);
        self.reindex();
    }

    fn insert(&mut self, tag: &'static str, nets: &[IpNet]) {
        let mut intervals: Vec<(u128, u128)> = nets.iter().map(|n| interval(*n)).collect();
        intervals.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(intervals.len());
        for (start, end) in intervals {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        match self.lists.iter_mut().find(|l| l.tag == tag) {
            Some(list) => list.intervals = merged,
            None => self.lists.push(List {
                tag,
                intervals: merged,
            }),
        }
        assert!(
            self.lists.len() <= 64,
            "more address lists than the index has bits"
        );
    }

    /// Rebuilds the index from the lists: a sweep over every interval's start and end.
    fn reindex(&mut self) {
        // (address, list, whether the list starts or stops holding addresses there)
        let mut points: Vec<(u128, usize, bool)> = Vec::new();
        for (i, list) in self.lists.iter().enumerate() {
            for &(start, end) in &list.intervals {
                points.push((start, i, true));
                if let Some(after) = end.checked_add(1) {
                    points.push((after, i, false));
                }
            }
        }
        points.sort_unstable();
        let mut index: Vec<(u128, u64)> = Vec::new();
        let mut mask = 0u64;
        let mut at = 0;
        while at < points.len() {
            let address = points[at].0;
            while at < points.len() && points[at].0 == address {
                let (_, list, starts) = points[at];
                if starts {
                    mask |= 1 << list;
                } else {
                    mask &= !(1 << list);
                }
                at += 1;
            }
            if index.last().is_none_or(|last| last.1 != mask) {
                index.push((address, mask));
            }
        }
        self.index = index;
    }

    /// Tags of every list that holds `ip`, in the order the lists were added.
    pub fn tags(&self, ip: IpAddr) -> Vec<&'static str> {
        let x = to_u128(ip);
        let i = self.index.partition_point(|&(start, _)| start <= x);
        let mask = if i == 0 { 0 } else { self.index[i - 1].1 };
        self.lists
            .iter()
            .enumerate()
            .filter(|(bit, _)| mask & (1 << bit) != 0)
            .map(|(_, l)| l.tag)
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

/// The list names the rules know, for `mailbeacon ranges import --list NAME`.
pub fn known_list(name: &str) -> Option<&'static str> {
    BUILTIN.iter().map(|(tag, _)| *tag).find(|tag| *tag == name)
}

pub fn list_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(tag, _)| *tag)
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
        let mut r = Ranges::empty();
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

    proptest::proptest! {
        /// The one index answers as a search of each list would, wherever the lists overlap.
        #[test]
        fn the_index_agrees_with_each_list(
            lists in proptest::collection::vec(
                proptest::collection::vec((proptest::prelude::any::<u32>(), 8u8..=32), 0..6), 1..5),
            probes in proptest::collection::vec(proptest::prelude::any::<u32>(), 50),
        ) {
            const TAGS: [&str; 5] = ["a", "b", "c", "d", "e"];
            let mut r = Ranges::empty();
            let nets: Vec<Vec<IpNet>> = lists.iter().map(|l| l.iter().map(|&(a, len)| {
                IpNet::new(IpAddr::from(std::net::Ipv4Addr::from(a)), len).unwrap().trunc()
            }).collect()).collect();
            for (i, n) in nets.iter().enumerate() {
                r.set(TAGS[i], n);
            }
            // Probe the nets' own edges too, where an off-by-one would show.
            let edges = nets.iter().flatten().flat_map(|n| [n.network(), n.broadcast()]);
            let probes = probes.iter().map(|&a| IpAddr::from(std::net::Ipv4Addr::from(a)));
            for ip in probes.chain(edges) {
                let want: Vec<&str> = nets.iter().enumerate()
                    .filter(|(_, n)| n.iter().any(|n| n.contains(&ip)))
                    .map(|(i, _)| TAGS[i]).collect();
                proptest::prop_assert_eq!(r.tags(ip), want, "{}", ip);
            }
        }
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

    /// A published file once listed the documentation ranges: no shipped list may tag private,
    /// documentation or other special-purpose space (the tests' readers live there).
    #[test]
    fn shipped_lists_hold_no_special_purpose_space() {
        let r = Ranges::builtin();
        for ip in [
            "10.1.2.3",
            "127.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "192.0.2.44",
            "198.51.100.88",
            "203.0.113.14",
            "2001:db8::1",
            "2002::1",
            "fd00::1",
            "::1",
        ] {
            assert_eq!(r.tags(ip.parse().unwrap()), Vec::<&str>::new(), "{ip}");
        }
    }
}
