//! API rate limits: a token bucket per API token and per client address (`--api-rate-limit`
//! requests a second, bursts of ten times that). Kept in memory, per process. The tracking
//! endpoints have none: a mail client must never be refused its pixel.

use crate::error::ApiError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Address(IpAddr),
    Token(i64),
}

pub struct RateLimiter {
    per_second: u32,
    buckets: Mutex<HashMap<Key, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            per_second: per_second.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn burst(&self) -> f64 {
        f64::from(self.per_second) * 10.0
    }

    /// Takes one request from the key's bucket, or says how long to wait.
    pub fn take(&self, key: Key) -> Result<(), ApiError> {
        let now = Instant::now();
        let rate = f64::from(self.per_second);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            let burst = self.burst();
            buckets.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(key).or_insert((self.burst(), now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(self.burst());
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::RateLimited {
                per_second: self.per_second,
                retry_after: ((1.0 - *tokens) / rate).ceil().max(1.0) as u64,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let limiter = RateLimiter::new(2);
        let key = || Key::Token(1);
        for _ in 0..20 {
            limiter.take(key()).unwrap();
        }
        assert!(matches!(
            limiter.take(key()),
            Err(ApiError::RateLimited { retry_after: 1, .. })
        ));
        assert!(
            limiter.take(Key::Token(2)).is_ok(),
            "each key has its own bucket"
        );
    }
}
