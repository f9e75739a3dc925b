//! A minimal MaxMind DB (`.mmdb`) writer, used only to give the server a small GeoIP2-City
//! database in tests. Format: <https://maxmind.github.io/MaxMind-DB/>.
//!
//! Layout written: binary search tree (record size 24, IPv6 tree, IPv4 at `::/96` and aliased
//! from `::ffff:0:0/96` and `2002::/16` as MaxMind does), 16 zero bytes, the data section,
//! then `\xAB\xCD\xEFMaxMind.com` and the metadata map.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// One network and the geography stored for it.
pub struct GeoEntry {
    /// CIDR, IPv4 or IPv6 (a bare address means a single host).
    pub network: &'static str,
    /// ISO 3166-1 country code, e.g. "DE".
    pub country: &'static str,
    /// Subdivision ISO code, e.g. "BY".
    pub region: Option<&'static str>,
}

/// Writes a GeoIP2-City-shaped database (record size 24, ip_version 6, IPv4 mapped at ::/96 as
/// MaxMind does) to `path`. More specific networks win over less specific ones; for the same
/// network the later entry wins. Panics on a malformed network or an I/O error.
pub fn write_city_db(path: &Path, entries: &[GeoEntry]) {
    let mut data = Vec::new();
    let mut offsets: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut tree = Tree {
        nodes: vec![[Rec::Empty; 2]],
    };
    for entry in entries {
        let (bits, prefix) = parse_network(entry.network);
        let mut record = Vec::new();
        encode(&mut record, &city_record(entry));
        let offset = *offsets.entry(record).or_insert_with_key(|bytes| {
            data.extend_from_slice(bytes);
            data.len() - bytes.len()
        });
        tree.insert(bits, prefix, offset);
    }
    // IPv4 lives at ::/96; IPv4-mapped (::ffff:0:0/96) and 6to4 (2002::/16) point at it.
    let ipv4_root = tree.descend(0, 96);
    let mapped = tree.descend(0xffff << 32, 95);
    tree.nodes[mapped][1] = Rec::Node(ipv4_root);
    let six_to_four = tree.descend(0x2002 << 112, 15);
    tree.nodes[six_to_four][0] = Rec::Node(ipv4_root);

    let (mut out, node_count) = tree.serialize();
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    encode(&mut out, &metadata(node_count));
    std::fs::write(path, out).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Returns the network as a 128-bit IPv6-tree key and a prefix length in that tree.
fn parse_network(network: &str) -> (u128, u32) {
    let (addr, prefix) = match network.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (network, None),
    };
    let addr: IpAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("bad network {network:?}: {e}"));
    let prefix: Option<u32> = prefix.map(|p| {
        p.parse()
            .unwrap_or_else(|e| panic!("bad prefix in {network:?}: {e}"))
    });
    let (bits, prefix) = match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), prefix.unwrap_or(32) + 96),
        IpAddr::V6(v6) => (u128::from(v6), prefix.unwrap_or(128)),
    };
    assert!(prefix <= 128, "prefix too long in {network:?}");
    (bits, prefix)
}

fn city_record(entry: &GeoEntry) -> Value {
    let place = |iso: &'static str| {
        Value::Map(vec![
            ("iso_code", Value::Str(iso)),
            ("names", Value::Map(vec![("en", Value::Str(iso))])),
        ])
    };
    let mut fields = vec![("country", place(entry.country))];
    if let Some(region) = entry.region {
        fields.push(("subdivisions", Value::Array(vec![place(region)])));
    }
    Value::Map(fields)
}

fn metadata(node_count: usize) -> Value {
    let build_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Value::Map(vec![
        ("binary_format_major_version", Value::U16(2)),
        ("binary_format_minor_version", Value::U16(0)),
        ("build_epoch", Value::U64(build_epoch)),
        ("database_type", Value::Str("GeoIP2-City")),
        (
            "description",
            Value::Map(vec![("en", Value::Str("mailbeacon test database"))]),
        ),
        ("ip_version", Value::U16(6)),
        ("languages", Value::Array(vec![Value::Str("en")])),
        (
            "node_count",
            Value::U32(u32::try_from(node_count).expect("node count fits u32")),
        ),
        ("record_size", Value::U16(24)),
    ])
}

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    /// An offset into the data section.
    Data(usize),
}

/// The search tree as an arena of nodes, each with its left (bit 0) and right (bit 1) record.
struct Tree {
    nodes: Vec<[Rec; 2]>,
}

fn bit(bits: u128, depth: u32) -> usize {
    ((bits >> (127 - depth)) & 1) as usize
}

impl Tree {
    /// Walks the first `depth` bits of `bits` from the root and returns the node reached,
    /// creating nodes on the way (an empty or data record passed through goes to both sides).
    fn descend(&mut self, bits: u128, depth: u32) -> usize {
        let mut node = 0;
        for d in 0..depth {
            let side = bit(bits, d);
            node = match self.nodes[node][side] {
                Rec::Node(next) => next,
                rec => {
                    self.nodes.push([rec; 2]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][side] = Rec::Node(next);
                    next
                }
            };
        }
        node
    }

    fn insert(&mut self, bits: u128, prefix: u32, offset: usize) {
        if prefix == 0 {
            self.fill_empty(0, offset);
            return;
        }
        let parent = self.descend(bits, prefix - 1);
        let side = bit(bits, prefix - 1);
        match self.nodes[parent][side] {
            // More specific networks are already below: cover only what they leave empty.
            Rec::Node(child) => self.fill_empty(child, offset),
            _ => self.nodes[parent][side] = Rec::Data(offset),
        }
    }

    fn fill_empty(&mut self, node: usize, offset: usize) {
        for side in 0..2 {
            match self.nodes[node][side] {
                Rec::Empty => self.nodes[node][side] = Rec::Data(offset),
                Rec::Node(child) => self.fill_empty(child, offset),
                Rec::Data(_) => {}
            }
        }
    }

    /// Numbers the nodes reachable from the root breadth-first (root = 0; aliased nodes once)
    /// and returns the encoded tree and the node count.
    fn serialize(&self) -> (Vec<u8>, usize) {
        let mut number: Vec<Option<usize>> = vec![None; self.nodes.len()];
        number[0] = Some(0);
        let mut order = vec![0];
        let mut i = 0;
        while let Some(&node) = order.get(i) {
            for rec in self.nodes[node] {
                if let Rec::Node(child) = rec
                    && number[child].is_none()
                {
                    number[child] = Some(order.len());
                    order.push(child);
                }
            }
            i += 1;
        }
        let node_count = order.len();
        let mut out = Vec::with_capacity(node_count * 6);
        for node in order {
            for rec in self.nodes[node] {
                let value = match rec {
                    Rec::Empty => node_count,
                    Rec::Node(child) => number[child].expect("reachable node is numbered"),
                    Rec::Data(offset) => node_count + 16 + offset,
                };
                assert!(value < 1 << 24, "record value {value} does not fit 24 bits");
                out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
            }
        }
        (out, node_count)
    }
}

/// The subset of the MaxMind DB data types this writer needs.
enum Value {
    Str(&'static str),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'static str, Value)>),
    Array(Vec<Value>),
}

/// Writes a control byte (type numbers from the spec; > 7 are extended) and the size.
fn control(out: &mut Vec<u8>, type_num: u8, size: usize) {
    let (first, ext) = if type_num > 7 {
        (0, Some(type_num - 7))
    } else {
        (type_num << 5, None)
    };
    let (marker, extra): (u8, Vec<u8>) = match size {
        0..29 => (size as u8, vec![]),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
    };
    out.push(first | marker);
    out.extend(ext);
    out.extend(extra);
}

fn encode_uint(out: &mut Vec<u8>, type_num: u8, value: u64) {
    let bytes = value.to_be_bytes();
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    control(out, type_num, bytes.len() - start);
    out.extend_from_slice(&bytes[start..]);
}

fn encode(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Str(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::U16(n) => encode_uint(out, 5, u64::from(*n)),
        Value::U32(n) => encode_uint(out, 6, u64::from(*n)),
        Value::U64(n) => encode_uint(out, 9, *n),
        Value::Map(pairs) => {
            control(out, 7, pairs.len());
            for (key, value) in pairs {
                encode(out, &Value::Str(key));
                encode(out, value);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            items.iter().for_each(|item| encode(out, item));
        }
    }
}
