//! The host's clock. The core never reads time: the service asks a [`Clock`] for
//! `now` and hands it to the core, and sleeps on the same clock. The demo runs the
//! service on a [`ScaledClock`] so a working day passes in seconds.

use std::time::{Duration, Instant};

pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
    /// How long to sleep (in real time) until `at` on this clock.
    fn real_delay_until(&self, at: i64) -> Duration;
    /// The real duration of `span` on this clock.
    fn real(&self, span: Duration) -> Duration;
}

/// Wall-clock time.
pub struct SystemClock;

/// The real time (seconds since the epoch), for what runs on people's time even
/// when the service runs on a scaled clock (the demo): sessions, login waits, the
/// audit log.
pub fn wall_clock() -> i64 {
    SystemClock.now()
}

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        jiff::Timestamp::now().as_second()
    }

    fn real_delay_until(&self, at: i64) -> Duration {
        let now = jiff::Timestamp::now();
        let wait_ms = at.saturating_mul(1000) - now.as_millisecond();
        Duration::from_millis(wait_ms.max(0) as u64)
    }

    fn real(&self, span: Duration) -> Duration {
        span
    }
}

/// Time that starts at `origin` and runs `factor` times faster than real time.
pub struct ScaledClock {
    started: Instant,
    origin: i64,
    factor: f64,
}

impl ScaledClock {
    pub fn new(origin: i64, factor: f64) -> Self {
        ScaledClock {
            started: Instant::now(),
            origin,
            factor: factor.max(1e-3),
        }
    }

    fn now_seconds_f64(&self) -> f64 {
        self.origin as f64 + self.started.elapsed().as_secs_f64() * self.factor
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> i64 {
        self.now_seconds_f64().floor() as i64
    }

    fn real_delay_until(&self, at: i64) -> Duration {
        let wait = (at as f64 - self.now_seconds_f64()) / self.factor;
        Duration::from_secs_f64(wait.max(0.0))
    }

    fn real(&self, span: Duration) -> Duration {
        span.div_f64(self.factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_fast_and_sleeps_short() {
        let clock = ScaledClock::new(1_000_000, 3600.0);
        assert!(clock.now() >= 1_000_000 && clock.now() < 1_000_000 + 3600);
        let delay = clock.real_delay_until(1_000_000 + 3600);
        assert!(delay <= Duration::from_secs(1) && delay > Duration::from_millis(500));
        assert_eq!(
            clock.real(Duration::from_secs(3600)),
            Duration::from_secs(1)
        );
        assert_eq!(clock.real_delay_until(0), Duration::ZERO);
    }

    #[test]
    fn the_system_clock_is_now() {
        let now = SystemClock.now();
        assert!((now - jiff::Timestamp::now().as_second()).abs() <= 1);
        assert!(SystemClock.real_delay_until(now + 2) <= Duration::from_secs(2));
    }
}
