//! Sign-in attempts per client address, so a password cannot be guessed at speed. Kept in
//! memory: a restart forgets them, and each process of several counts on its own.
//!
//! An attempt is counted before its secret is checked (concurrent guesses cannot all pass the
//! limit while the first is still being hashed) and given back when it succeeds, so one
//! credential's success never clears the failures of guesses at another. IPv6 addresses count
//! per /64, what one subscriber usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Sign-ins allowed per client address in [`FAILURE_WINDOW`], successes given back.
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Password checks running at once in the process.
const CHECKS_AT_ONCE: usize = 2;
/// How long a sign-in waits for its turn to be checked before it is answered 503.
const CHECK_WAIT: Duration = Duration::from_secs(10);

pub struct SignInLimiter {
    attempts: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    checks: Semaphore,
}

impl Default for SignInLimiter {
    fn default() -> Self {
        SignInLimiter {
            attempts: Mutex::default(),
            checks: Semaphore::new(CHECKS_AT_ONCE),
        }
    }
}

/// Whose attempts count together: the address, or its /64 for IPv6.
fn counted_as(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("mapped")),
        v4 => v4,
    }
}

impl SignInLimiter {
    /// Counts an attempt from `addr`, or says how long the address must wait when it is over
    /// the limit (then nothing is counted).
    pub fn attempt(&self, addr: IpAddr) -> Result<(), Duration> {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = map.entry(counted_as(addr)).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        if entry.0 >= MAX_FAILURES {
            return Err(FAILURE_WINDOW.saturating_sub(entry.1.elapsed()));
        }
        entry.0 += 1;
        Ok(())
    }

    /// The attempt from `addr` succeeded: it does not count (the address's failures still do).
    pub fn succeeded(&self, addr: IpAddr) {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(&counted_as(addr)) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    /// A turn to check a password, or `None` when none came free in time.
    pub async fn password_check(&self) -> Option<SemaphorePermit<'_>> {
        tokio::time::timeout(CHECK_WAIT, self.checks.acquire())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_successes_give_back_only_themselves() {
        let limiter = SignInLimiter::default();
        for i in 1..=9u16 {
            let addr = IpAddr::V6([0x2001, 0xdb8, 1, 2, 0, 0, 0, i].into());
            assert!(limiter.attempt(addr).is_ok());
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(limiter.attempt(same_64).is_ok());
        limiter.succeeded(same_64);
        assert!(limiter.attempt(same_64).is_ok());
        assert!(limiter.attempt(same_64).is_err(), "ten counted in the /64");
        assert!(limiter.attempt("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        for _ in 0..5 {
            assert!(limiter.attempt(v4).is_ok());
            assert!(limiter.attempt(mapped).is_ok());
        }
        assert!(limiter.attempt(v4).is_err());
    }
}
