//! A consumer: the Nacos 1.x client's subscription cache, plus application traffic.
//!
//! The cache (the consumer's *view*: the healthy instances of its service) is refreshed by
//! polling the full list every `poll_interval` (10 s; 3 s when push is off) after the previous
//! poll's answer or failure, from a random server with round-robin failover; a failed poll
//! backs off `interval << fail_count` (fail_count <= 6), capped at `backoff_max` (60 s).
//! Servers also push changes over UDP; the consumer replaces its view and acks. Requests go
//! out as a Poisson stream of `call_rate` per second, each with a key from the configured key
//! distribution, to the instance the consumer's balancer picks from its view (`balance`; the
//! balancer is rebuilt from the view's names `n<id>` on every view change, and load-aware ones
//! get start/finish feedback), through a Go kit style retry middleware: each attempt has
//! `call_timeout`, and a failed attempt (timeout or refused connection) retries up to
//! `max_attempts`, on a random instance not tried yet if the balancer repeats itself (a hash
//! balancer maps the key to the same node again).

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::RngExt;

use super::{ClientOp, Msg, NodeCtx, Obs, RequestKind, ServerList, ServiceId, Timer};
use crate::balance::hash::SplitMix64;
use crate::balance::keys::KeySampler;
use crate::balance::{Balancer, BalancerSpec};
use crate::engine::{NodeId, SimDuration, SimTime};

/// The name a balancer knows an instance by.
pub fn instance_name(n: NodeId) -> String {
    n.to_string()
}

#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub balancer: BalancerSpec,
    pub keys: Arc<KeySampler>,
    pub service: ServiceId,
    pub servers: ServerList,
    pub poll_interval: SimDuration,
    pub backoff_max: SimDuration,
    pub query_timeout: SimDuration,
    /// Requests per second (0: no traffic).
    pub call_rate: f64,
    pub call_timeout: SimDuration,
    pub max_attempts: u32,
}

#[derive(Clone, Copy, Debug)]
struct Query {
    req: u64,
    server_idx: usize,
    tried: usize,
}

#[derive(Clone, Debug)]
struct Call {
    attempts: u32,
    tried: Vec<NodeId>,
    current: NodeId,
    key: u64,
    started: SimTime,
}

#[derive(Debug)]
pub struct Consumer {
    config: ConsumerConfig,
    balancer: Box<dyn Balancer>,
    keygen: SplitMix64,
    view: Vec<NodeId>,
    fail_count: u32,
    query: Option<Query>,
    calls: BTreeMap<u64, Call>,
    next_req: u64,
}

impl Consumer {
    /// `config.balancer` must build on an empty node list (specs are validated with the scenario).
    pub fn new(config: ConsumerConfig) -> Result<Self, crate::balance::BalanceError> {
        let mut balancer = config.balancer.build(&["seed".to_string()])?;
        balancer.set_nodes(&[]);
        Ok(Consumer {
            config,
            balancer,
            keygen: SplitMix64::new(0),
            view: Vec::new(),
            fail_count: 0,
            query: None,
            calls: BTreeMap::new(),
            next_req: 0,
        })
    }

    pub fn view(&self) -> &[NodeId] {
        &self.view
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        self.keygen = SplitMix64::new(ctx.rng().random());
        self.poll(ctx);
        self.schedule_call(ctx);
    }

    fn next_req(&mut self) -> u64 {
        self.next_req += 1;
        self.next_req
    }

    fn poll(&mut self, ctx: &mut NodeCtx<'_>) {
        let n = self.config.servers.len();
        let start = if n > 1 { ctx.rng().random_range(0..n) } else { 0 };
        let req = self.next_req();
        ctx.observe(Obs::OpStart { req, op: ClientOp::List(self.config.service) });
        self.query_server(ctx, Query { req, server_idx: start, tried: 1 });
    }

    fn query_server(&mut self, ctx: &mut NodeCtx<'_>, q: Query) {
        let server = self.config.servers[q.server_idx];
        ctx.send(server, Msg::Query { service: self.config.service, req: q.req });
        // Server lists are limited to 1,000 (scenario limits), so the attempt fits.
        ctx.set_timer(self.config.query_timeout, Timer::QueryTimeout { req: q.req, attempt: q.tried as u16 });
        self.query = Some(q);
    }

    /// The query failed on its server: try server `to` (a redirect's leader) or the next one.
    fn query_failed(&mut self, ctx: &mut NodeCtx<'_>, req: u64, to: Option<usize>) {
        let Some(q) = self.query.filter(|q| q.req == req) else { return };
        if q.tried < self.config.servers.len() {
            let server_idx = to.unwrap_or((q.server_idx + 1) % self.config.servers.len());
            self.query_server(ctx, Query { req, server_idx, tried: q.tried + 1 });
            return;
        }
        self.query = None;
        ctx.observe(Obs::Request { kind: RequestKind::Query, ok: false });
        self.fail_count = (self.fail_count + 1).min(6);
        let delay = self.config.poll_interval.saturating_mul(1 << self.fail_count).min(self.config.backoff_max);
        ctx.set_timer(delay, Timer::Poll);
    }

    fn set_view(&mut self, ctx: &mut NodeCtx<'_>, new: &[NodeId]) {
        // Both lists are sorted: a merge walk reports the differences.
        let (mut i, mut j) = (0, 0);
        while i < self.view.len() || j < new.len() {
            match (self.view.get(i), new.get(j)) {
                (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
                (Some(a), Some(b)) if a < b => {
                    ctx.observe(Obs::View { instance: *a, present: false });
                    i += 1;
                }
                (Some(a), None) => {
                    ctx.observe(Obs::View { instance: *a, present: false });
                    i += 1;
                }
                (_, Some(b)) => {
                    ctx.observe(Obs::View { instance: *b, present: true });
                    j += 1;
                }
                (None, None) => break,
            }
        }
        if self.view != new {
            self.view = new.to_vec();
            let names: Vec<String> = self.view.iter().map(|n| instance_name(*n)).collect();
            self.balancer.set_nodes(&names);
        }
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        match msg {
            Msg::QueryOk { req, answer } if self.query.is_some_and(|q| q.req == req) => {
                self.query = None;
                self.fail_count = 0;
                ctx.observe(Obs::Request { kind: RequestKind::Query, ok: true });
                ctx.observe(Obs::OpDone { req, result: Some(Arc::clone(&answer.registered)) });
                self.set_view(ctx, &answer.instances);
                ctx.set_timer(self.config.poll_interval, Timer::Poll);
            }
            Msg::Redirect { req, leader } => {
                let to = leader.and_then(|l| self.config.servers.iter().position(|s| *s == l));
                self.query_failed(ctx, req, to);
            }
            Msg::Push { instances, push_id, .. } => {
                self.set_view(ctx, &instances);
                ctx.send(from, Msg::PushAck { push_id });
            }
            Msg::CallOk { req } if self.calls.contains_key(&req) => {
                if let Some(call) = self.calls.remove(&req) {
                    let latency = ctx.now().saturating_since(call.started);
                    if let Ok(i) = self.view.binary_search(&call.current) {
                        self.balancer.on_finish(i as u32, latency.as_nanos(), ctx.now().as_nanos());
                    }
                    ctx.observe(Obs::Request { kind: RequestKind::Call, ok: true });
                    ctx.observe(Obs::CallDone { ok: true, latency });
                }
            }
            _ => {}
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match timer {
            Timer::Poll => self.poll(ctx),
            Timer::QueryTimeout { req, attempt } if self.query.is_some_and(|q| q.tried == usize::from(attempt)) => {
                self.query_failed(ctx, req, None);
            }
            Timer::NextCall => {
                self.schedule_call(ctx);
                let req = self.next_req();
                let key = self.config.keys.next_key(&mut self.keygen);
                let call = Call { attempts: 0, tried: Vec::new(), current: NodeId(u32::MAX), key, started: ctx.now() };
                self.attempt(ctx, req, call);
            }
            Timer::CallTimeout { req, attempt } if self.calls.get(&req).is_some_and(|c| c.attempts == attempt) => {
                self.call_failed(ctx, req, None);
            }
            _ => {}
        }
    }

    pub fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId, msg: Msg) {
        match msg {
            Msg::Query { req, .. } => self.query_failed(ctx, req, None),
            Msg::Call { req } => self.call_failed(ctx, req, Some(to)),
            _ => {}
        }
    }

    fn schedule_call(&mut self, ctx: &mut NodeCtx<'_>) {
        if self.config.call_rate > 0.0 {
            // Exponential inter-arrival times: a Poisson stream.
            let u: f64 = ctx.rng().random::<f64>();
            let gap = -(1.0 - u).ln() / self.config.call_rate;
            ctx.set_timer(SimDuration::from_secs_f64(gap), Timer::NextCall);
        }
    }

    /// Sends attempt `call.attempts + 1` to an instance of the view not tried yet.
    fn attempt(&mut self, ctx: &mut NodeCtx<'_>, req: u64, mut call: Call) {
        let rand: u64 = ctx.rng().random();
        let picked = self.balancer.pick(call.key, rand).and_then(|i| self.view.get(i as usize).copied());
        let target = match picked {
            Some(n) if !call.tried.contains(&n) => n,
            _ => {
                let untried: Vec<NodeId> = self.view.iter().copied().filter(|n| !call.tried.contains(n)).collect();
                if untried.is_empty() {
                    ctx.observe(Obs::Request { kind: RequestKind::Call, ok: false });
                    ctx.observe(Obs::CallDone { ok: false, latency: ctx.now().saturating_since(call.started) });
                    return;
                }
                untried[ctx.rng().random_range(0..untried.len())]
            }
        };
        if let Ok(i) = self.view.binary_search(&target) {
            self.balancer.on_start(i as u32);
        }
        call.attempts += 1;
        call.tried.push(target);
        call.current = target;
        ctx.observe(Obs::CallSent { instance: target });
        ctx.send(target, Msg::Call { req });
        ctx.set_timer(self.config.call_timeout, Timer::CallTimeout { req, attempt: call.attempts });
        self.calls.insert(req, call);
    }

    /// An attempt failed (timeout, or refused by `refused_by`): retry or give up.
    fn call_failed(&mut self, ctx: &mut NodeCtx<'_>, req: u64, refused_by: Option<NodeId>) {
        let Some(call) = self.calls.get(&req) else { return };
        if refused_by.is_some_and(|n| n != call.current) {
            return; // a refusal of an earlier attempt; its timeout already moved on
        }
        let Some(call) = self.calls.remove(&req) else { return };
        if let Ok(i) = self.view.binary_search(&call.current) {
            // A failed attempt releases its slot; it reports the timeout as its latency.
            let took = ctx.now().saturating_since(call.started);
            self.balancer.on_finish(i as u32, took.as_nanos(), ctx.now().as_nanos());
        }
        if call.attempts < self.config.max_attempts {
            self.attempt(ctx, req, call);
        } else {
            ctx.observe(Obs::Request { kind: RequestKind::Call, ok: false });
            ctx.observe(Obs::CallDone { ok: false, latency: ctx.now().saturating_since(call.started) });
        }
    }

    /// The cache and every request in flight are in memory only.
    pub fn crash(&mut self) {
        self.view.clear();
        self.balancer.set_nodes(&[]);
        self.fail_count = 0;
        self.query = None;
        self.calls.clear();
    }
}
