//! The `[gateway]` section: an API gateway in front of the instances (issue 9). When present,
//! every consumer sends its requests to a gateway (consumer `i` to gateway `i % count`, within
//! its region) instead of keeping its own view; the gateway discovers, balances, retries,
//! breaks circuits and rate-limits ([`crate::protocol::clients::gateway`]).
//!
//! Defaults follow Go kit and gobreaker (ANCHORS.md, "Gateway"): 3 attempts within a 3 s
//! retry budget, 1 s per attempt; the breaker (only when `[gateway.breaker]` is given) opens
//! at 6 consecutive failures and probes again after 60 s; no rate limit unless
//! `[gateway.rate_limit]` is given.

use serde::Deserialize;

use crate::protocol::clients::breaker::BreakerConfig;
use crate::protocol::clients::gateway::MAX_ATTEMPTS;
use regsim_kernel::SimDuration;

/// Gateways per region at most.
pub const MAX_GATEWAYS: u32 = 64;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// Gateways per region.
    #[serde(default = "one")]
    pub count: u32,
    /// The balancer spec (see `regsim lb --help`).
    #[serde(default = "default_balancer")]
    pub balancer: String,
    /// Registry poll interval; default as the consumers' (10 s with push, 3 s without).
    pub poll_interval: Option<SimDuration>,
    #[serde(default = "secs::<1>")]
    pub attempt_timeout: SimDuration,
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// Go kit `lb.Retry`'s timeout: the budget of all attempts of one request.
    #[serde(default = "secs::<3>")]
    pub retry_timeout: SimDuration,
    pub breaker: Option<BreakerSpec>,
    pub rate_limit: Option<RateLimitSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    /// Open at this many consecutive failures (0: off; gobreaker's default trips at more than 5).
    #[serde(default = "six")]
    pub consecutive_failures: u32,
    /// Open when at least this share of the requests in `window` failed (0: off; Hystrix 0.5).
    #[serde(default)]
    pub error_ratio: f64,
    /// The error ratio counts only with at least this many requests in `window` (Hystrix 20).
    #[serde(default = "twenty")]
    pub min_requests: u32,
    #[serde(default = "secs::<10>")]
    pub window: SimDuration,
    /// Time open before a half-open probe (gobreaker `Timeout`; Hystrix's sleep window is 5 s).
    #[serde(default = "secs::<60>")]
    pub open_for: SimDuration,
    /// Probes let through half-open (gobreaker `MaxRequests`).
    #[serde(default = "one")]
    pub half_open_max: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Tokens per second.
    pub rate: f64,
    /// Bucket size.
    pub burst: u32,
}

fn one() -> u32 {
    1
}
fn three() -> u32 {
    3
}
fn six() -> u32 {
    6
}
fn twenty() -> u32 {
    20
}
fn default_balancer() -> String {
    "rr".into()
}
fn secs<const S: u64>() -> SimDuration {
    SimDuration::from_secs(S)
}

impl BreakerSpec {
    pub fn config(&self) -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: self.consecutive_failures,
            error_ratio: self.error_ratio,
            min_requests: self.min_requests,
            window: self.window,
            open_for: self.open_for,
            half_open_max: self.half_open_max,
        }
    }
}

type Invalid = (String, String);

impl super::Scenario {
    /// The consumers' call timeout (see [`super::schema::ConsumersSpec::call_timeout`]): behind
    /// a gateway its retry budget + 1 s, so its retries can still help; else 1 s.
    pub fn call_timeout(&self) -> SimDuration {
        match (&self.gateway, self.consumers.call_timeout) {
            (_, Some(t)) => t,
            (Some(g), None) => g.retry_timeout + SimDuration::from_secs(1),
            (None, None) => SimDuration::from_secs(1),
        }
    }
}

impl GatewaySpec {
    pub fn validate(&self) -> Result<(), Invalid> {
        let e = |p: &str, m: &str| Err((format!("gateway.{p}"), m.to_string()));
        if self.count == 0 || self.count > MAX_GATEWAYS {
            return e("count", &format!("expected 1..={MAX_GATEWAYS} gateways per region"));
        }
        let parsed =
            crate::balance::parse_spec(&self.balancer).map_err(|err| ("gateway.balancer".into(), err.to_string()))?;
        if parsed.len() != 1 {
            return e("balancer", "expected one balancer spec");
        }
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS {
            return e("max_attempts", &format!("expected 1..={MAX_ATTEMPTS}"));
        }
        let mut durations = vec![("attempt_timeout", self.attempt_timeout), ("retry_timeout", self.retry_timeout)];
        if let Some(p) = self.poll_interval {
            durations.push(("poll_interval", p));
        }
        if let Some(b) = &self.breaker {
            durations.push(("breaker.window", b.window));
            durations.push(("breaker.open_for", b.open_for));
            if !(0.0..=1.0).contains(&b.error_ratio) {
                return e("breaker.error_ratio", "expected a ratio in [0, 1]");
            }
            if b.consecutive_failures == 0 && b.error_ratio == 0.0 {
                return e("breaker", "expected consecutive_failures or error_ratio above 0 (else it never opens)");
            }
            if b.half_open_max == 0 {
                return e("breaker.half_open_max", "expected at least 1");
            }
        }
        for (key, d) in durations {
            if d < SimDuration::from_millis(1) {
                return e(key, "expected a duration of at least 1ms");
            }
        }
        if let Some(r) = &self.rate_limit
            && (!(r.rate > 0.0 && r.rate <= 1e9) || r.burst == 0)
        {
            return e("rate_limit", "expected rate in (0, 1e9] per second and burst of at least 1");
        }
        Ok(())
    }
}
