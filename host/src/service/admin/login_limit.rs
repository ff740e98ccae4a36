//! How often a login may fail: per account name and per client address, five
//! failures are free; after that each further try waits, 30 s doubling up to 15
//! minutes, counted from the last failure. Failures are forgotten 15 minutes after
//! the last one, or when the account logs in. Plain data with `now` passed in.

use std::collections::BTreeMap;

/// Failures allowed before the waits begin.
pub const FREE_FAILURES: u32 = 5;
const FIRST_WAIT: i64 = 30;
const LONGEST_WAIT: i64 = 15 * 60;
/// Failures this long (seconds) ago are forgotten.
const MEMORY: i64 = 15 * 60;
/// At most this many names and addresses are remembered.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: i64,
}

/// Failed logins by key (`name:ada`, `ip:10.0.0.7`).
#[derive(Default)]
pub struct LoginLimit {
    failures: BTreeMap<String, Failures>,
}

impl LoginLimit {
    /// `Err(seconds)`: one of `keys` must wait that long before the next try.
    pub fn check(&self, keys: &[String], now: i64) -> Result<(), i64> {
        let wait = keys
            .iter()
            .filter_map(|key| self.failures.get(key))
            .map(|f| wait_after(*f) - (now - f.last))
            .max()
            .unwrap_or(0);
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    pub fn failed(&mut self, keys: &[String], now: i64) {
        self.failures.retain(|_, f| now - f.last < MEMORY);
        for key in keys {
            if self.failures.len() >= MAX_KEYS && !self.failures.contains_key(key) {
                continue;
            }
            let failures = self.failures.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
            });
            failures.count = failures.count.saturating_add(1);
            failures.last = now;
        }
    }

    /// A successful login forgets that name's failures (not the address's).
    pub fn succeeded(&mut self, name_key: &str) {
        self.failures.remove(name_key);
    }
}

/// How long after the last failure the next try may come.
fn wait_after(failures: Failures) -> i64 {
    if failures.count < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures.count - FREE_FAILURES).min(10);
    (FIRST_WAIT << doublings).min(LONGEST_WAIT)
}

/// The keys a login from `ip` as `name` is counted under.
pub fn keys(name: &str, ip: std::net::IpAddr) -> Vec<String> {
    vec![format!("name:{}", name.to_lowercase()), format!("ip:{ip}")]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> std::net::IpAddr {
        std::net::IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn five_failures_are_free_then_the_waits_double_up_to_fifteen_minutes() {
        let mut limit = LoginLimit::default();
        let ada = keys("Ada", ip(7));
        for now in 0..5 {
            assert_eq!(limit.check(&ada, now), Ok(()), "try {now}");
            limit.failed(&ada, now);
        }
        assert_eq!(limit.check(&ada, 4), Err(30));
        assert_eq!(limit.check(&ada, 33), Err(1));
        assert_eq!(limit.check(&ada, 34), Ok(()));
        limit.failed(&ada, 34);
        assert_eq!(limit.check(&ada, 34), Err(60));
        let mut now = 34;
        for _ in 0..10 {
            now += 100;
            limit.failed(&ada, now);
        }
        assert_eq!(limit.check(&ada, now), Err(LONGEST_WAIT));
    }

    #[test]
    fn the_name_and_the_address_are_each_limited() {
        let mut limit = LoginLimit::default();
        for _ in 0..5 {
            limit.failed(&keys("ada", ip(7)), 0);
        }
        // Another name from the same address waits; the same name from elsewhere too.
        assert!(limit.check(&keys("eva", ip(7)), 1).is_err());
        assert!(limit.check(&keys("ADA", ip(8)), 1).is_err());
        assert_eq!(limit.check(&keys("eva", ip(8)), 1), Ok(()));
        // A success clears the name, not the address.
        limit.succeeded("name:ada");
        assert!(limit.check(&keys("ada", ip(8)), 1).is_ok());
        assert!(limit.check(&keys("ada", ip(7)), 1).is_err());
    }

    #[test]
    fn failures_are_forgotten_after_fifteen_minutes() {
        let mut limit = LoginLimit::default();
        for _ in 0..15 {
            limit.failed(&keys("ada", ip(7)), 0);
        }
        assert!(limit.check(&keys("ada", ip(7)), MEMORY - 1).is_err());
        limit.failed(&keys("eva", ip(9)), MEMORY);
        assert_eq!(limit.check(&keys("ada", ip(7)), MEMORY), Ok(()));
    }
}
