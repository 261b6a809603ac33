//! Retry timing, circuit breaker and rate limit: the one place where delivery timing is decided.

use super::config::{BreakerConfig, RetryConfig};
use rand::Rng;
use std::time::{Duration, Instant};

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The retry schedule of a subscription.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    delays: Vec<Duration>,
    jitter: f64,
}

impl RetryPolicy {
    /// From config (already validated).
    pub fn new(cfg: &RetryConfig) -> Self {
        Self {
            delays: cfg.delays(),
            jitter: cfg.jitter,
        }
    }

    /// Attempts allowed in total.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32
    }

    /// The wait before the next attempt after `attempts_made` failed ones, or None when exhausted.
    /// Jitter spreads the delay by ±`jitter`; a `Retry-After` longer than that is honoured (capped at 24 h).
    pub fn next_delay(&self, attempts_made: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.delays.get(attempts_made as usize)?;
        let spread = if base.is_zero() || self.jitter == 0.0 {
            base
        } else {
            let jitter = self.jitter.clamp(0.0, 1.0);
            let f = rand::rng().random_range(1.0 - jitter..=1.0 + jitter);
            Duration::try_from_secs_f64(base.as_secs_f64() * f).unwrap_or(base)
        };
        Some(match retry_after {
            Some(ra) => spread.max(ra.min(MAX_RETRY_AFTER)),
            None => spread,
        })
    }
}

/// Breaker state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// A circuit breaker over consecutive retriable failures of one endpoint.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    cfg: BreakerConfig,
    state: State,
    cooldown: Duration,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        let cooldown = Duration::from_millis(cfg.cooldown_ms);
        Self {
            cfg,
            state: State::Closed { failures: 0 },
            cooldown,
        }
    }

    /// Whether an attempt may start now. In half-open state exactly one probe is allowed.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        match self.state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { probing: true };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen { probing } => {
                if probing {
                    false
                } else {
                    self.state = State::HalfOpen { probing: true };
                    true
                }
            }
        }
    }

    /// When the breaker will let a probe through, if it is open.
    pub fn open_until(&self) -> Option<Instant> {
        match self.state {
            State::Open { until } => Some(until),
            _ => None,
        }
    }

    /// Whether it is open or probing.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }

    /// Records the end of an attempt: `failed` is true for a retriable failure. Returns true when the
    /// breaker has just opened.
    pub fn record(&mut self, failed: bool, now: Instant) -> bool {
        match (self.state, failed) {
            (_, false) => {
                self.state = State::Closed { failures: 0 };
                self.cooldown = Duration::from_millis(self.cfg.cooldown_ms);
                false
            }
            (State::Closed { failures }, true) => {
                let failures = failures + 1;
                if failures >= self.cfg.failure_threshold {
                    self.state = State::Open {
                        until: later(now, self.cooldown),
                    };
                    true
                } else {
                    self.state = State::Closed { failures };
                    false
                }
            }
            (State::HalfOpen { .. }, true) => {
                self.cooldown = (self.cooldown.saturating_mul(2)).min(Duration::from_millis(self.cfg.max_cooldown_ms));
                self.state = State::Open {
                    until: later(now, self.cooldown),
                };
                true
            }
            (State::Open { .. }, true) => false,
        }
    }
}

/// `now + d`, or a day from now if that cannot be represented (the config bounds keep `d` far below).
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// A rate limit in events per second (GCRA with a burst of a tenth of a second).
#[derive(Clone, Debug)]
pub struct RateLimit {
    interval: Duration,
    burst: Duration,
    tat: Instant,
}

impl RateLimit {
    /// `per_second` deliveries per second (validated against [`bounds`](super::config::bounds); clamped into
    /// them here too, so that no stored value can make this panic).
    pub fn new(per_second: f64, now: Instant) -> Self {
        use super::config::bounds::{RATE_MAX, RATE_MIN};
        let per_second = if per_second.is_nan() {
            RATE_MIN
        } else {
            per_second.clamp(RATE_MIN, RATE_MAX)
        };
        let interval = Duration::try_from_secs_f64(1.0 / per_second).unwrap_or(Duration::from_secs(100));
        Self {
            interval,
            burst: Duration::from_millis(100).max(interval),
            tat: now,
        }
    }

    /// Takes a slot if one is free now; otherwise returns when the next one frees.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Instant> {
        let tat = self.tat.max(now);
        if tat > later(now, self.burst) {
            return Err(tat - self.burst);
        }
        self.tat = later(tat, self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_exhausts_and_honours_retry_after() {
        let p = RetryPolicy::new(&RetryConfig {
            schedule: vec!["0s".into(), "10s".into()],
            jitter: 0.2,
        });
        assert_eq!(p.max_attempts(), 2);
        let d = p.next_delay(1, None).unwrap();
        assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(12), "{d:?}");
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(p.next_delay(2, None), None);
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let cfg = BreakerConfig {
            failure_threshold: 2,
            cooldown_ms: 1000,
            max_cooldown_ms: 4000,
        };
        let mut b = CircuitBreaker::new(cfg);
        let t0 = Instant::now();
        assert!(!b.record(true, t0));
        assert!(b.record(true, t0));
        assert!(!b.try_acquire(t0));
        let t1 = t0 + Duration::from_millis(1001);
        assert!(b.try_acquire(t1));
        assert!(!b.try_acquire(t1), "only one probe at a time");
        assert!(b.record(true, t1));
        assert_eq!(b.open_until(), Some(t1 + Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(3);
        assert!(b.try_acquire(t2));
        b.record(false, t2);
        assert!(!b.is_open());
    }

    #[test]
    fn rate_limit_spaces_attempts() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(10.0, t0);
        let mut ok = 0;
        while r.try_acquire(t0).is_ok() {
            ok += 1;
        }
        assert!(ok <= 2, "burst of a tenth of a second, got {ok}");
        let next = r.try_acquire(t0).unwrap_err();
        assert!(next > t0);
    }

    #[test]
    fn stored_extremes_never_panic() {
        let t0 = Instant::now();
        for r in [1e-300, 0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            let mut limit = RateLimit::new(r, t0);
            let _ = limit.try_acquire(t0);
        }
        let p = RetryPolicy::new(&RetryConfig {
            schedule: vec!["0s".into(), "10000y".into()],
            jitter: 1.0,
        });
        assert!(p.next_delay(1, Some(Duration::MAX)).is_some());
        let mut b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 1,
            cooldown_ms: u64::MAX,
            max_cooldown_ms: u64::MAX,
        });
        assert!(b.record(true, t0));
        b.state = State::HalfOpen { probing: true };
        assert!(b.record(true, t0));
    }
}
