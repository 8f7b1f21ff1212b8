//! An API gateway in the Go kit style: service discovery from the registry, client-side
//! balancing, and a middleware chain around every upstream call.
//!
//! Model (Go kit `sd` + `lb` + `circuitbreaker` + `ratelimit`, ANCHORS.md "Gateway"):
//! - **Discovery**: the gateway keeps a registry view exactly as a consumer does
//!   ([`crate::protocol::clients::view`]: poll every `poll_interval` plus pushes) and rebuilds its balancer from it
//!   on every change, as Go kit's `sd.Endpointer` rebuilds its endpoint set.
//! - **Rate limit** (`ratelimit.NewErroringLimiter` over `rate.Limiter.Allow`): a request that
//!   finds the token bucket empty is answered `429` at once and never reaches an instance.
//! - **Retry** (`lb.Retry(max, timeout, balancer)`, go-kit/kit `sd/lb/retry.go`
//!   `RetryWithCallback`): each request gets at most `max_attempts` attempts within one budget,
//!   `retry_timeout`, from its arrival (`context.WithTimeout`, shared by every attempt). Every
//!   attempt asks the balancer again (`b.Endpoint()`), so it may pick an instance already
//!   tried (round robin moves on, random may repeat). There is no per-attempt timeout: an
//!   attempt that hangs uses up the whole budget. `attempt_timeout` adds one (an option, off by
//!   default: e.g. an `http.Client.Timeout` in the endpoint), cut to what is left of the
//!   budget. A request whose budget ran out is answered `504`, one whose attempts all failed
//!   `502`, and one that found no instance in the view `503` (Go kit's `ErrNoEndpoints`, not
//!   retried here: the view cannot change within the same instant).
//! - **Circuit breaker** per instance ([`crate::protocol::clients::breaker`], gobreaker with an optional Hystrix
//!   error-ratio trip): an attempt to an instance whose breaker is open fails at once without
//!   a message (`ErrOpenState`) and counts as an attempt, as in Go kit where the breaker wraps
//!   each endpoint inside the retry loop.
//!
//! Upstream request ids carry the attempt number (`req << 4 | attempt`), so a late answer to
//! an attempt that already timed out is ignored, as a cancelled Go context would.
//!
//! Metrics, exposed to a Prometheus scrape (`Msg::Monitoring(monitoring::Msg::Scrape)` answered with
//! `Msg::Monitoring(monitoring::Msg::Exposition)`), all reset by a crash like any in-memory counter:
//! - `gateway_requests_total{service, code}`: every API request, by the code the client got
//!   (200, 429, 502, 503, 504);
//! - `requests_total{service, instance, outcome}`: every attempt to an instance, by outcome
//!   (`ok`, `timeout`, `refused`, `circuit_open`);
//! - `gateway_request_duration_seconds{service}`: a histogram of the client-facing latency
//!   (client_golang's default buckets);
//! - `gateway_retries_total{service}` and `gateway_circuit_opened_total{service, instance}`.
//!
//! Observations: the view's changes (`View`), every attempt sent to an instance (`CallSent`,
//! so "last traffic to a dead instance" includes the gateway's), each attempt's outcome,
//! breaker transitions and each finished API request.

use crate::protocol::{clients, monitoring};
use std::collections::BTreeMap;
use std::sync::Arc;

use rand::RngExt;

use crate::balance::BalancerSpec;
use crate::balance::hash::SplitMix64;
use crate::balance::keys::KeySampler;
use crate::monitor::Labels;
use crate::monitor::histogram::Histogram;
use crate::protocol::clients::breaker::{Breaker, BreakerConfig, BreakerState};
use crate::protocol::clients::instance_name;
use crate::protocol::clients::ratelimit::TokenBucket;
use crate::protocol::clients::view::{Balanced, Handled, Pick, ViewConfig};
use crate::protocol::monitoring::Exposition;
use crate::protocol::{Msg, NodeCtx, Obs, Timer};
use regsim_kernel::{NodeId, SimDuration, SimTime};

/// Attempts per request are encoded in 4 bits of the upstream request id.
pub const MAX_ATTEMPTS: u32 = 15;

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The `service` label of the metrics.
    pub service_name: String,
    pub view: Arc<ViewConfig>,
    pub balancer: BalancerSpec,
    /// Keys for hash balancers (a request's route key).
    pub keys: Arc<KeySampler>,
    pub attempt_timeout: Option<SimDuration>,
    /// At most [`MAX_ATTEMPTS`].
    pub max_attempts: u32,
    pub retry_timeout: SimDuration,
    pub breaker: Option<BreakerConfig>,
    /// Requests per second and burst of the token bucket (`None`: no limit).
    pub rate_limit: Option<(f64, u32)>,
    pub buckets: Arc<[f64]>,
}

/// The code a client got for an API request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    Ok = 200,
    RateLimited = 429,
    BadGateway = 502,
    NoInstance = 503,
    Timeout = 504,
}

impl Code {
    pub const ALL: [Code; 5] = [Code::Ok, Code::RateLimited, Code::BadGateway, Code::NoInstance, Code::Timeout];
}

/// How one attempt to an instance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Ok,
    Timeout,
    Refused,
    CircuitOpen,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::Timeout, Outcome::Refused, Outcome::CircuitOpen];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::CircuitOpen => "circuit_open",
        }
    }
}

#[derive(Clone, Debug)]
struct Pending {
    client: NodeId,
    client_req: u64,
    started: SimTime,
    deadline: SimTime,
    attempts: u32,
    current: NodeId,
    key: u64,
    last: Outcome,
    /// The breaker (id, generation) that admitted the current attempt.
    breaker: (u64, u32),
    /// When the current attempt went out (latency feedback for the balancer).
    attempt_started: SimTime,
}

#[derive(Debug, Default)]
struct Counters {
    requests: BTreeMap<Code, u64>,
    upstream: BTreeMap<(NodeId, Outcome), u64>,
    retries: u64,
    opened: BTreeMap<NodeId, u64>,
    duration: Option<Histogram>,
}

#[derive(Debug)]
pub struct Gateway {
    config: Arc<GatewayConfig>,
    keygen: SplitMix64,
    view: Balanced,
    pending: BTreeMap<u64, Pending>,
    /// Per instance: the breaker and its id (a breaker re-created after the instance left and
    /// rejoined the view is another one, so an outcome admitted by the old one is dropped).
    breakers: BTreeMap<NodeId, (u64, Breaker)>,
    next_breaker: u64,
    limiter: Option<TokenBucket>,
    counters: Counters,
    next_req: u64,
}

fn upstream_req(req: u64, attempt: u32) -> u64 {
    (req << 4) | u64::from(attempt)
}

impl Gateway {
    pub fn new(config: Arc<GatewayConfig>) -> Result<Gateway, crate::balance::BalanceError> {
        Ok(Gateway {
            limiter: config.rate_limit.map(|(r, b)| TokenBucket::new(r, b)),
            view: Balanced::new(&config.balancer)?,
            config,
            keygen: SplitMix64::new(0),
            pending: BTreeMap::new(),
            breakers: BTreeMap::new(),
            next_breaker: 0,
            counters: Counters::default(),
            next_req: 0,
        })
    }

    pub fn view(&self) -> &[NodeId] {
        self.view.nodes()
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        self.keygen = SplitMix64::new(ctx.rng().random());
        self.view.view.poll(&self.config.view, ctx, &mut self.next_req);
    }

    fn view_changed(&mut self) {
        // Breakers of instances that left the view go with them (Go kit builds one per endpoint).
        let view = self.view.nodes();
        self.breakers.retain(|n, _| view.binary_search(n).is_ok());
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        match self.view.on_message(&self.config.view, ctx, from, &msg) {
            Handled::Changed => return self.view_changed(),
            Handled::Yes => return,
            Handled::No => {}
        }
        match msg {
            Msg::App(clients::Msg::Call { req }) => self.request(ctx, from, req),
            Msg::App(clients::Msg::CallOk { req }) => {
                let (id, attempt) = (req >> 4, (req & 15) as u32);
                if self.pending.get(&id).is_some_and(|p| p.attempts == attempt && p.current == from) {
                    self.attempt_done(ctx, id, Outcome::Ok);
                }
            }
            Msg::Monitoring(monitoring::Msg::Scrape { seq }) => {
                let body = Arc::new(self.exposition());
                ctx.send(from, monitoring::Msg::Exposition { seq, body });
            }
            _ => {}
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        if self.view.view.on_timer(&self.config.view, ctx, &timer, &mut self.next_req) {
            return;
        }
        if let Timer::App(clients::Timer::CallTimeout { req, attempt }) = timer
            && self.pending.get(&req).is_some_and(|p| p.attempts == attempt)
        {
            self.attempt_done(ctx, req, Outcome::Timeout);
        }
    }

    pub fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId, msg: Msg) {
        if self.view.view.on_refused(&self.config.view, ctx, &msg) {
            return;
        }
        if let Msg::App(clients::Msg::Call { req }) = msg {
            let (id, attempt) = (req >> 4, (req & 15) as u32);
            if self.pending.get(&id).is_some_and(|p| p.attempts == attempt && p.current == to) {
                self.attempt_done(ctx, id, Outcome::Refused);
            }
        }
    }

    /// Everything is in memory: the view, requests in flight, breakers, the bucket, the
    /// counters.
    pub fn crash(&mut self) {
        self.view.crash();
        self.pending.clear();
        self.breakers.clear();
        self.limiter = self.config.rate_limit.map(|(r, b)| TokenBucket::new(r, b));
        self.counters = Counters::default();
    }

    /// An API request from `client`.
    fn request(&mut self, ctx: &mut NodeCtx<'_>, client: NodeId, client_req: u64) {
        let now = ctx.now();
        if let Some(l) = &mut self.limiter
            && !l.allow(now)
        {
            return self.reply(ctx, client, client_req, now, Code::RateLimited, 0);
        }
        self.next_req += 1;
        let id = self.next_req;
        let key = self.config.keys.next_key(&mut self.keygen);
        let p = Pending {
            client,
            client_req,
            started: now,
            deadline: now + self.config.retry_timeout,
            attempts: 0,
            current: NodeId(u32::MAX),
            key,
            last: Outcome::Ok,
            breaker: (0, 0),
            attempt_started: now,
        };
        self.attempt(ctx, id, p);
    }

    /// Answers the client and records the request.
    fn reply(&mut self, ctx: &mut NodeCtx<'_>, client: NodeId, req: u64, started: SimTime, code: Code, attempts: u32) {
        let latency = ctx.now().saturating_since(started);
        *self.counters.requests.entry(code).or_default() += 1;
        let buckets = &self.config.buckets;
        self.counters
            .duration
            .get_or_insert_with(|| Histogram::new(Arc::clone(buckets)))
            .observe(latency.as_secs_f64());
        if code == Code::Ok {
            ctx.send(client, clients::Msg::CallOk { req });
        } else {
            ctx.send(client, clients::Msg::CallFailed { req, code: code as u16 });
        }
        ctx.observe(Obs::ApiDone { code, attempts: attempts.min(255) as u8, latency });
        if code != Code::RateLimited {
            ctx.observe(Obs::CallDone { ok: code == Code::Ok, latency });
        }
    }

    /// Starts the next attempt of request `id`, or answers the client if it cannot.
    fn attempt(&mut self, ctx: &mut NodeCtx<'_>, id: u64, mut p: Pending) {
        let now = ctx.now();
        if now >= p.deadline {
            return self.reply(ctx, p.client, p.client_req, p.started, Code::Timeout, p.attempts);
        }
        // `b.Endpoint()`: the balancer's pick, whatever was tried.
        let target = match self.view.pick(ctx, p.key, &[]) {
            Pick::Fresh(n) => n,
            Pick::AllTried(Some(n)) => n,
            Pick::AllTried(None) => {
                return self.reply(ctx, p.client, p.client_req, p.started, Code::NoInstance, p.attempts);
            }
        };
        if p.attempts > 0 {
            self.counters.retries += 1;
        }
        p.attempts += 1;
        p.current = target;
        p.attempt_started = now;
        let allowed = match &self.config.breaker {
            Some(cfg) => {
                let next = &mut self.next_breaker;
                let (bid, b) = self.breakers.entry(target).or_insert_with(|| {
                    *next += 1;
                    (*next, Breaker::new())
                });
                let admission = b.allow(cfg, now);
                p.breaker = (*bid, admission.generation);
                if let Some(state) = admission.changed {
                    self.breaker_changed(ctx, target, state);
                }
                admission.allowed
            }
            None => true,
        };
        if !allowed {
            self.pending.insert(id, p);
            return self.attempt_done(ctx, id, Outcome::CircuitOpen);
        }
        self.view.started(target);
        ctx.observe(Obs::CallSent { instance: target });
        ctx.send(target, clients::Msg::Call { req: upstream_req(id, p.attempts) });
        let left = p.deadline.saturating_since(now);
        let timeout = self.config.attempt_timeout.map_or(left, |t| t.min(left));
        ctx.set_timer(timeout, clients::Timer::CallTimeout { req: id, attempt: p.attempts });
        self.pending.insert(id, p);
    }

    fn breaker_changed(&mut self, ctx: &mut NodeCtx<'_>, instance: NodeId, state: BreakerState) {
        if state == BreakerState::Open {
            *self.counters.opened.entry(instance).or_default() += 1;
        }
        ctx.observe(Obs::Breaker { instance, state });
    }

    /// The current attempt of request `id` ended with `outcome`.
    fn attempt_done(&mut self, ctx: &mut NodeCtx<'_>, id: u64, outcome: Outcome) {
        let Some(mut p) = self.pending.remove(&id) else { return };
        let now = ctx.now();
        let instance = p.current;
        *self.counters.upstream.entry((instance, outcome)).or_default() += 1;
        ctx.observe(Obs::Upstream { instance, outcome });
        if outcome != Outcome::CircuitOpen {
            self.view.finished(instance, now.saturating_since(p.attempt_started), now);
            if let Some(cfg) = &self.config.breaker
                && let Some((bid, b)) = self.breakers.get_mut(&instance)
                && *bid == p.breaker.0
                && let Some(state) = b.record(cfg, now, p.breaker.1, outcome == Outcome::Ok)
            {
                self.breaker_changed(ctx, instance, state);
            }
        }
        if outcome == Outcome::Ok {
            return self.reply(ctx, p.client, p.client_req, p.started, Code::Ok, p.attempts);
        }
        p.last = outcome;
        if p.attempts >= self.config.max_attempts {
            let code = if now >= p.deadline { Code::Timeout } else { Code::BadGateway };
            return self.reply(ctx, p.client, p.client_req, p.started, code, p.attempts);
        }
        self.attempt(ctx, id, p);
    }

    /// The metrics a scrape returns (label order; no timestamps).
    pub fn exposition(&self) -> Exposition {
        let service = self.config.service_name.as_str();
        let mut out = Vec::new();
        for code in Code::ALL {
            let v = self.counters.requests.get(&code).copied().unwrap_or(0);
            let code = (code as u16).to_string();
            out.push((Labels::metric("gateway_requests_total", &[("code", &code), ("service", service)]), v as f64));
        }
        for (&(instance, outcome), &v) in &self.counters.upstream {
            let l = Labels::metric(
                "requests_total",
                &[("instance", &instance_name(instance)), ("outcome", outcome.as_str()), ("service", service)],
            );
            out.push((l, v as f64));
        }
        out.push((Labels::metric("gateway_retries_total", &[("service", service)]), self.counters.retries as f64));
        for (&instance, &v) in &self.counters.opened {
            let l = Labels::metric(
                "gateway_circuit_opened_total",
                &[("instance", &instance_name(instance)), ("service", service)],
            );
            out.push((l, v as f64));
        }
        let empty;
        let h = match &self.counters.duration {
            Some(h) => h,
            None => {
                empty = Histogram::new(Arc::clone(&self.config.buckets));
                &empty
            }
        };
        let base = Labels::from_pairs([("service", service)]);
        out.extend(h.samples("gateway_request_duration_seconds", &base));
        Exposition { samples: out.into_iter().map(|(l, v)| (l, v, None)).collect() }
    }
}

#[cfg(test)]
mod tests;
