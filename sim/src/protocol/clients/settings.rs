//! The clients folder's scenario sections: `[instances]`, `[consumers]` and `[gateway]`
//! (with `[gateway.breaker]` = [`BreakerConfig`] and `[gateway.rate_limit]`). Each is a serde
//! type whose `Default` holds the defaults, written once; the scenario schema embeds them and
//! the role builders turn them into the actors' runtime configs (servers, parsed balancers,
//! key samplers). `validate()` gives key paths relative to the section.
//!
//! Instances follow Nacos' client (5 s beat; 3 s connect and 50 s read timeouts,
//! `NamingHttpClientManager` `CON_TIME_OUT_MILLIS` and `READ_TIME_OUT_MILLIS`: over TCP a
//! request to an unreachable server fails at the connect timeout, one to a server that
//! accepted it and hangs (a GC pause) at the read timeout; over datagrams, where nothing tells
//! the two apart, the client waits its connect timeout for an answer). Consumers follow Nacos'
//! `HostReactor` (poll every 10 s with push, 3 s without; back off up to 60 s). The gateway
//! follows Go kit and gobreaker (ANCHORS.md, "Gateway"): 3 attempts within a 3 s retry budget,
//! 1 s per attempt; the breaker (only when `[gateway.breaker]` is given) opens at 6
//! consecutive failures and probes again after 60 s; no rate limit unless
//! `[gateway.rate_limit]` is given. When `[gateway]` is present, every consumer sends its
//! requests to a gateway (consumer `i` to gateway `i % count`, within its region) instead of
//! keeping its own view ([`crate::protocol::clients::gateway`]).

use serde::Deserialize;

use crate::protocol::clients::breaker::BreakerConfig;
use crate::protocol::clients::gateway::MAX_ATTEMPTS;
use crate::protocol::config::{Invalid, periods};
use regsim_kernel::SimDuration;
use regsim_kernel::net::LatencySpec;

/// Instances per scenario at most.
pub const MAX_INSTANCES: u32 = 1_000_000;
/// Consumers per scenario at most.
pub const MAX_CONSUMERS: u32 = 100_000;
/// Application requests per second per consumer at most.
pub const MAX_CALL_RATE: f64 = 100_000.0;

/// `[instances]`: the service instances, their beats and how they serve calls.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstancesSpec {
    pub count: u32,
    pub service: String,
    pub beat_interval: SimDuration,
    /// Waiting for the answer of one register or beat request to one server, once connected.
    pub read_timeout: SimDuration,
    /// Opening the connection of one request (over TCP; over datagrams, the wait for an answer).
    pub connect_timeout: SimDuration,
    /// Instances start at offsets uniform in `[0, start_spread)`.
    pub start_spread: SimDuration,
    /// Time to serve one application call (a latency table like `network.latency`); absent:
    /// calls are answered at once.
    pub service_time: Option<LatencySpec>,
    /// Calls served at once per instance (0: unlimited); the rest queue FIFO.
    pub concurrency: u32,
    /// Calls that may wait; more are dropped (the client times out).
    pub queue_max: u32,
}

impl Default for InstancesSpec {
    fn default() -> Self {
        InstancesSpec {
            count: 0,
            service: "demo-service".into(),
            beat_interval: SimDuration::from_secs(5),
            read_timeout: SimDuration::from_secs(50),
            connect_timeout: SimDuration::from_secs(3),
            start_spread: SimDuration::from_secs(5),
            service_time: None,
            concurrency: 0,
            queue_max: 1000,
        }
    }
}

impl InstancesSpec {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.count > MAX_INSTANCES {
            return Err(("count".into(), format!("expected at most {MAX_INSTANCES} instances, got {}", self.count)));
        }
        periods(&[
            ("beat_interval", self.beat_interval),
            ("read_timeout", self.read_timeout),
            ("connect_timeout", self.connect_timeout),
        ])?;
        if self.service.is_empty() {
            return Err(("service".into(), "expected a non-empty service name".into()));
        }
        if let Some(st) = &self.service_time {
            st.build().map_err(|(f, m)| (format!("service_time.{f}"), m))?;
        }
        Ok(())
    }

    /// How long a request waits for its answer on `wire` (the client's own timer).
    pub fn answer_timeout(&self, wire: regsim_kernel::net::WireKind) -> SimDuration {
        answer_timeout(wire, self.read_timeout, self.connect_timeout)
    }
}

/// Over TCP, the read timeout (a connect that fails is reported by the transport); over
/// datagrams, the connect timeout (no connection tells a lost request from a slow one).
fn answer_timeout(wire: regsim_kernel::net::WireKind, read: SimDuration, connect: SimDuration) -> SimDuration {
    match wire {
        regsim_kernel::net::WireKind::Stream => read,
        regsim_kernel::net::WireKind::Datagram => connect,
    }
}

/// `[consumers]`: subscription cache and application traffic.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumersSpec {
    pub count: u32,
    /// Poll interval; default 10 s with push on, 3 s with push off (Nacos' client).
    pub poll_interval: Option<SimDuration>,
    pub backoff_max: SimDuration,
    /// The query's read and connect timeouts (the same Nacos client as the instances').
    pub read_timeout: SimDuration,
    pub connect_timeout: SimDuration,
    /// Application requests per second per consumer (Poisson).
    pub call_rate: f64,
    /// Per attempt; behind a gateway, the wait for the gateway's answer (default: the gateway's
    /// `retry_timeout` + 1 s, so its retries can still help).
    pub call_timeout: Option<SimDuration>,
    /// Retry middleware: attempts per request, each on another instance (ignored behind a
    /// gateway, which retries itself).
    pub max_attempts: u32,
    pub start_spread: SimDuration,
    /// Balancer specs (see `regsim lb --help`), given to consumers round robin: consumer i
    /// uses `balancers[i % len]`, so one run can compare several.
    pub balancers: Vec<String>,
    /// Request keys: `unique` (no affinity), `uniform:k=1000`, `zipf:s=1.1:k=1000`.
    pub keys: String,
}

impl Default for ConsumersSpec {
    fn default() -> Self {
        ConsumersSpec {
            count: 0,
            poll_interval: None,
            backoff_max: SimDuration::from_secs(60),
            read_timeout: SimDuration::from_secs(50),
            connect_timeout: SimDuration::from_secs(3),
            call_rate: 0.0,
            call_timeout: None,
            max_attempts: 1,
            start_spread: SimDuration::from_secs(5),
            balancers: vec!["random".into()],
            keys: "unique".into(),
        }
    }
}

impl ConsumersSpec {
    /// `call_timeout` is the effective one (it depends on `[gateway]`: `Scenario::call_timeout`).
    pub fn validate(&self, call_timeout: SimDuration) -> Result<(), Invalid> {
        if self.count > MAX_CONSUMERS {
            return Err(("count".into(), format!("expected at most {MAX_CONSUMERS} consumers, got {}", self.count)));
        }
        if !(0.0..=MAX_CALL_RATE).contains(&self.call_rate) {
            return Err(("call_rate".into(), format!("expected requests per second in [0, {MAX_CALL_RATE}]")));
        }
        periods(&[
            ("read_timeout", self.read_timeout),
            ("connect_timeout", self.connect_timeout),
            ("call_timeout", call_timeout),
            ("backoff_max", self.backoff_max),
        ])?;
        if let Some(p) = self.poll_interval {
            periods(&[("poll_interval", p)])?;
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return Err(("max_attempts".into(), "expected 1..=100".into()));
        }
        if self.balancers.is_empty() || self.balancers.len() > 32 {
            return Err(("balancers".into(), "expected 1 to 32 balancer specs".into()));
        }
        for (k, spec) in self.balancers.iter().enumerate() {
            let parsed =
                crate::balance::parse_spec(spec).map_err(|err| (format!("balancers[{k}]"), err.to_string()))?;
            if parsed.len() != 1 {
                return Err((format!("balancers[{k}]"), "expected one balancer spec per entry".into()));
            }
        }
        let dist: crate::balance::keys::KeyDist =
            self.keys.parse().map_err(|err: crate::balance::BalanceError| ("keys".to_string(), err.to_string()))?;
        crate::balance::keys::KeySampler::new(&dist, 0).map_err(|err| ("keys".to_string(), err.to_string()))?;
        Ok(())
    }

    /// How long a query waits for its answer on `wire` (see [`InstancesSpec::answer_timeout`]).
    pub fn answer_timeout(&self, wire: regsim_kernel::net::WireKind) -> SimDuration {
        answer_timeout(wire, self.read_timeout, self.connect_timeout)
    }
}

/// Gateways per region at most.
pub const MAX_GATEWAYS: u32 = 64;

/// `[gateway]`: API gateways in front of the instances.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySpec {
    /// Gateways per region.
    pub count: u32,
    /// The balancer spec (see `regsim lb --help`).
    pub balancer: String,
    /// Registry poll interval; default as the consumers' (10 s with push, 3 s without).
    pub poll_interval: Option<SimDuration>,
    /// A timeout of each attempt (an option: Go kit's `lb.Retry` has none, so a hanging
    /// attempt uses up the whole `retry_timeout`).
    pub attempt_timeout: Option<SimDuration>,
    pub max_attempts: u32,
    /// Go kit `lb.Retry`'s timeout: the budget of all attempts of one request.
    pub retry_timeout: SimDuration,
    /// `[gateway.breaker]`: absent, no breaker; given, gobreaker's defaults for what it omits.
    pub breaker: Option<BreakerConfig>,
    pub rate_limit: Option<RateLimitSpec>,
}

impl Default for GatewaySpec {
    fn default() -> Self {
        GatewaySpec {
            count: 1,
            balancer: "rr".into(),
            poll_interval: None,
            attempt_timeout: None,
            max_attempts: 3,
            retry_timeout: SimDuration::from_secs(3),
            breaker: None,
            rate_limit: None,
        }
    }
}

/// `[gateway.rate_limit]`: a token bucket (both keys required).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Tokens per second.
    pub rate: f64,
    /// Bucket size.
    pub burst: u32,
}

impl GatewaySpec {
    pub fn validate(&self) -> Result<(), Invalid> {
        let e = |p: &str, m: &str| Err((p.to_string(), m.to_string()));
        if self.count == 0 || self.count > MAX_GATEWAYS {
            return e("count", &format!("expected 1..={MAX_GATEWAYS} gateways per region"));
        }
        let parsed = crate::balance::parse_spec(&self.balancer).map_err(|err| ("balancer".into(), err.to_string()))?;
        if parsed.len() != 1 {
            return e("balancer", "expected one balancer spec");
        }
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS {
            return e("max_attempts", &format!("expected 1..={MAX_ATTEMPTS}"));
        }
        periods(&[("retry_timeout", self.retry_timeout)])?;
        if let Some(t) = self.attempt_timeout {
            periods(&[("attempt_timeout", t)])?;
        }
        if let Some(p) = self.poll_interval {
            periods(&[("poll_interval", p)])?;
        }
        if let Some(b) = &self.breaker {
            crate::protocol::config::within("breaker", b.validate())?;
        }
        if let Some(r) = &self.rate_limit
            && (!(r.rate > 0.0 && r.rate <= 1e9) || r.burst == 0)
        {
            return e("rate_limit", "expected rate in (0, 1e9] per second and burst of at least 1");
        }
        Ok(())
    }
}
