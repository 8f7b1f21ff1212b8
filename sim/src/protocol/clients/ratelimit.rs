//! A token bucket with the semantics of golang.org/x/time/rate's `Limiter.Allow()`, which Go
//! kit's `ratelimit.NewErroringLimiter` calls once per request.
//!
//! Model: the bucket holds up to `burst` tokens and starts full; it refills continuously at
//! `rate` tokens per second; a request takes one token if a whole one is there, else it is
//! refused and the bucket is left as it was (x/time/rate only commits a reservation that is
//! granted). Special cases, as in x/time/rate:
//! - rate 0: the first `burst` requests pass, then none ever again (no refill);
//! - burst 0: every request is refused (unless the rate is infinite);
//! - an infinite rate (`rate::Inf`; here also any rate above about 1.8e10/s, which the
//!   integer representation cannot hold) lets every request through regardless of burst;
//! - a negative or NaN rate is treated as 0;
//! - time stepping backwards adds no tokens, and a granted request then moves the refill
//!   reference back to the earlier time (x/time/rate's `advance` does the same).
//!
//! Unlike x/time/rate's floats, the arithmetic here is integer and exact: tokens are counted
//! in units of 1e-18 token, and the rate is rounded once to a whole number of nano-tokens per
//! second, so a token takes `1e18 / rate_nano` ns, i.e. one unit of token per nanosecond per
//! nano-token/s of rate. Results are a pure function of the calls, never of float rounding
//! order.

use regsim_kernel::SimTime;

/// Units per token: 1e9 (ns per s) × 1e9 (the rate's resolution, nano-tokens per second).
const UNITS_PER_TOKEN: u128 = 1_000_000_000_000_000_000;

/// A token bucket (x/time/rate `Limiter` used through `Allow`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens now, in units of 1e-18 token.
    tokens: u128,
    /// Refill rate in nano-tokens per second = units per nanosecond; `None` is infinite.
    rate_nano: Option<u64>,
    burst: u32,
    /// The time `tokens` was last computed for.
    last: SimTime,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilling at `rate_per_s` tokens per second.
    pub fn new(rate_per_s: f64, burst: u32) -> TokenBucket {
        let rate_nano = if rate_per_s.is_nan() || rate_per_s <= 0.0 {
            Some(0)
        } else {
            let nano = rate_per_s * 1e9;
            (nano < u64::MAX as f64).then(|| nano.round() as u64)
        };
        TokenBucket { tokens: u128::from(burst) * UNITS_PER_TOKEN, rate_nano, burst, last: SimTime::ZERO }
    }

    /// Is the rate infinite (every request allowed)?
    pub fn is_unlimited(&self) -> bool {
        self.rate_nano.is_none()
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Takes one token if one is available at `now`; returns whether the request may pass.
    pub fn allow(&mut self, now: SimTime) -> bool {
        let Some(rate) = self.rate_nano else { return true };
        let (t, tokens) = self.advance(rate, now);
        if tokens < UNITS_PER_TOKEN {
            return false;
        }
        self.tokens = tokens - UNITS_PER_TOKEN;
        self.last = t;
        true
    }

    /// Whole tokens available at `now` (for gauges and tests; changes nothing).
    pub fn available(&self, now: SimTime) -> u32 {
        match self.rate_nano {
            None => self.burst,
            Some(rate) => {
                let whole = self.advance(rate, now).1 / UNITS_PER_TOKEN;
                u32::try_from(whole).unwrap_or(u32::MAX)
            }
        }
    }

    /// x/time/rate's `advance`: the tokens at `now`, capped at `burst`. A `now` before `last`
    /// counts as no time elapsed.
    fn advance(&self, rate: u64, now: SimTime) -> (SimTime, u128) {
        let elapsed = now.saturating_since(self.last).as_nanos();
        // u64 × u64 always fits in u128.
        let delta = u128::from(elapsed) * u128::from(rate);
        let cap = u128::from(self.burst) * UNITS_PER_TOKEN;
        (now, self.tokens.saturating_add(delta).min(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regsim_kernel::SimDuration;

    fn ns(n: u64) -> SimTime {
        SimTime(n)
    }

    fn secs(s: u64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs(s)
    }

    #[test]
    fn starts_full_and_drains() {
        let mut b = TokenBucket::new(1.0, 3);
        assert_eq!(b.available(ns(0)), 3);
        assert!((0..3).all(|_| b.allow(ns(0))));
        assert!(!b.allow(ns(0)));
        assert_eq!(b.available(ns(0)), 0);
    }

    #[test]
    fn refills_at_exactly_one_over_rate() {
        let mut b = TokenBucket::new(2.0, 1);
        assert!(b.allow(ns(0)));
        assert!(!b.allow(ns(499_999_999)), "half a nanosecond short of a token");
        assert!(b.allow(ns(500_000_000)));
        assert!(!b.allow(ns(500_000_000)));
        assert!(b.allow(ns(1_000_000_000)));
    }

    #[test]
    fn fractional_rates_are_exact() {
        let mut b = TokenBucket::new(0.5, 1);
        assert!(b.allow(secs(0)));
        assert!(!b.allow(ns(1_999_999_999)));
        assert!(b.allow(secs(2)));
        // 3/s does not divide 1e9 ns evenly: tokens accumulate in 1e-18 units without drift.
        // (Burst 2, drained: with burst 1 the fraction above one token would be capped away.)
        let mut c = TokenBucket::new(3.0, 2);
        assert!(c.allow(ns(0)) && c.allow(ns(0)));
        let mut passed = 0;
        for i in 1..=3_000_000u64 {
            if c.allow(ns(i * 1_000)) {
                passed += 1;
            }
        }
        assert_eq!(passed, 9, "3 s at 3 tokens/s");
    }

    #[test]
    fn never_more_than_burst_after_idling() {
        let mut b = TokenBucket::new(100.0, 5);
        assert!(b.allow(secs(0)));
        assert_eq!(b.available(secs(3_600)), 5);
        assert_eq!((0..10).filter(|_| b.allow(secs(3_600))).count(), 5);
    }

    #[test]
    fn a_refusal_keeps_the_partial_token() {
        let mut b = TokenBucket::new(1.0, 1);
        assert!(b.allow(ns(0)));
        assert!(!b.allow(ns(600_000_000)));
        assert!(b.allow(ns(1_000_000_000)), "the refusal at 0.6 s must not reset the refill");
    }

    #[test]
    fn rate_zero_allows_burst_once() {
        let mut b = TokenBucket::new(0.0, 2);
        assert!(b.allow(secs(0)) && b.allow(secs(1)));
        assert!(!b.allow(secs(1_000_000)));
        for bad in [-1.0, f64::NAN] {
            let mut b = TokenBucket::new(bad, 1);
            assert!(b.allow(secs(0)) && !b.allow(secs(100)), "rate {bad} acts as 0");
        }
    }

    #[test]
    fn burst_zero_refuses_and_infinite_rate_allows() {
        let mut b = TokenBucket::new(1_000.0, 0);
        assert!(!b.allow(secs(0)) && !b.allow(secs(10)));
        let mut inf = TokenBucket::new(f64::INFINITY, 0);
        assert!(inf.is_unlimited());
        assert!((0..1_000).all(|_| inf.allow(secs(0))));
        assert!(TokenBucket::new(1e300, 1).is_unlimited());
        assert!(!TokenBucket::new(1e9, 1).is_unlimited());
    }

    #[test]
    fn a_clock_stepping_back_adds_nothing() {
        let mut b = TokenBucket::new(1.0, 1);
        assert!(b.allow(secs(10)));
        assert!(!b.allow(secs(5)), "going back adds no tokens");
        assert!(b.allow(secs(11)));
        // A request granted at an earlier time moves the refill reference back with it.
        let mut b = TokenBucket::new(1.0, 2);
        assert!(b.allow(secs(10)));
        assert!(b.allow(secs(5)));
        assert!(!b.allow(secs(5)));
        assert!(b.allow(secs(6)), "one second after the reference moved back to 5 s");
    }

    #[test]
    fn huge_gaps_do_not_overflow() {
        let mut b = TokenBucket::new(1e10, u32::MAX);
        assert!(b.allow(SimTime::MAX));
        assert_eq!(b.available(SimTime::MAX), u32::MAX - 1);
    }
}
