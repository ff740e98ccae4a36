//! Exponential back-off with jitter: the one rule every retry in the host uses (EWS
//! calls, calendar reads, diversion calls).

use std::time::Duration;

/// Waits of `base · 2^attempt`, capped at `max`, each jittered to 50–100% so that many
/// mailboxes failing together do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// One second, doubling to five minutes.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait before retry `attempt` (0-based).
    pub fn wait(&self, attempt: u32) -> Duration {
        use std::hash::BuildHasher;
        let full = self
            .base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
        full.mul_f64(0.5 + (random % 1000) as f64 / 2000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_stay_jittered_in_range() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for (attempt, full) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (30, 1000),
        ] {
            let wait = backoff.wait(attempt);
            let full = Duration::from_millis(full);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait:?}"
            );
        }
    }
}
