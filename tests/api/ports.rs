//! Ports for servers a test must name before they start: pebble's listeners, a tracking domain's
//! HTTPS port written into its URL, chromedriver's.
//!
//! Taken from below the system's ephemeral range, where no `bind(0)` and no outgoing connection's
//! local port lands, so nothing else can take one between the pick and the server's own bind (a
//! port from `bind(0)` was taken by a connection in that gap once, on a busy CI run). A counter
//! from a random start spreads the picks, and one process never gets the same port twice.

use std::net::{TcpListener, UdpSocket};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};

const LOWEST: u32 = 10_000;

static NEXT: LazyLock<AtomicU32> = LazyLock::new(|| {
    let mut seed = [0u8; 4];
    getrandom::fill(&mut seed).expect("randomness");
    AtomicU32::new(u32::from_le_bytes(seed))
});

/// A loopback port free for TCP and UDP now, outside the ephemeral range.
pub fn unused_port() -> u16 {
    let below = ephemeral_start();
    let span = below.saturating_sub(LOWEST).max(1);
    for _ in 0..1000 {
        let port = (LOWEST + NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
        let free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free loopback port between {LOWEST} and {below}");
}

fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}
