//! A consumer: a registry view (the Nacos 1.x client's subscription cache, [`crate::protocol::clients::view`])
//! plus application traffic.
//!
//! Requests go out as a Poisson stream of `call_rate` per second, each with a key from the
//! configured key distribution, to the instance the consumer's balancer picks from its view
//! (`balance`; the balancer is rebuilt from the view's names `n<id>` on every view change, and
//! load-aware ones get start/finish feedback), through a Go kit style retry middleware: each
//! attempt has `call_timeout`, and a failed attempt (timeout or refused connection) retries up
//! to `max_attempts`, on a random instance not tried yet if the balancer repeats itself (a hash
//! balancer maps the key to the same node again).
//!
//! With a `gateway`, the consumer keeps no view and sends every request to the gateway
//! instead ([`crate::protocol::clients::gateway`] resolves, balances and retries); it waits `call_timeout` for
//! the gateway's answer and does not retry itself.

use crate::protocol::clients;
use std::collections::BTreeMap;
use std::sync::Arc;

use rand::RngExt;

use crate::balance::BalancerSpec;
use crate::balance::hash::SplitMix64;
use crate::balance::keys::KeySampler;
use crate::protocol::clients::view::{Balanced, Handled, Pick, ViewConfig};
use crate::protocol::{Msg, NodeCtx, Obs, RequestKind, Timer};
use regsim_kernel::{NodeId, SimDuration, SimTime};

#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub balancer: BalancerSpec,
    pub keys: Arc<KeySampler>,
    pub view: Arc<ViewConfig>,
    /// Requests per second (0: no traffic).
    pub call_rate: f64,
    pub call_timeout: SimDuration,
    pub max_attempts: u32,
    /// Send every request to this gateway instead of to instances.
    pub gateway: Option<NodeId>,
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
    keygen: SplitMix64,
    view: Balanced,
    calls: BTreeMap<u64, Call>,
    next_req: u64,
}

impl Consumer {
    /// `config.balancer` must build on an empty node list (specs are validated with the scenario).
    pub fn new(config: ConsumerConfig) -> Result<Self, crate::balance::BalanceError> {
        Ok(Consumer {
            view: Balanced::new(&config.balancer)?,
            config,
            keygen: SplitMix64::new(0),
            calls: BTreeMap::new(),
            next_req: 0,
        })
    }

    pub fn view(&self) -> &[NodeId] {
        self.view.nodes()
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        self.keygen = SplitMix64::new(ctx.rng().random());
        if self.config.gateway.is_none() {
            self.view.view.poll(&self.config.view, ctx, &mut self.next_req);
        }
        self.schedule_call(ctx);
    }

    fn next_req(&mut self) -> u64 {
        self.next_req += 1;
        self.next_req
    }

    /// Finishes request `req` (all attempts).
    fn done(&mut self, ctx: &mut NodeCtx<'_>, started: SimTime, ok: bool) {
        ctx.observe(Obs::Request { kind: RequestKind::Call, ok });
        ctx.observe(Obs::CallDone { ok, latency: ctx.now().saturating_since(started) });
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        if self.view.on_message(&self.config.view, ctx, from, &msg) != Handled::No {
            return;
        }
        match msg {
            Msg::App(clients::Msg::CallOk { req }) if self.calls.contains_key(&req) => {
                if let Some(call) = self.calls.remove(&req) {
                    let latency = ctx.now().saturating_since(call.started);
                    self.view.finished(call.current, latency, ctx.now());
                    self.done(ctx, call.started, true);
                }
            }
            Msg::App(clients::Msg::CallFailed { req, .. }) => {
                if let Some(call) = self.calls.remove(&req) {
                    self.done(ctx, call.started, false);
                }
            }
            _ => {}
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        if self.view.view.on_timer(&self.config.view, ctx, &timer, &mut self.next_req) {
            return;
        }
        match timer {
            Timer::App(clients::Timer::NextCall) => {
                self.schedule_call(ctx);
                let req = self.next_req();
                let key = self.config.keys.next_key(&mut self.keygen);
                let call = Call { attempts: 0, tried: Vec::new(), current: NodeId(u32::MAX), key, started: ctx.now() };
                match self.config.gateway {
                    Some(g) => self.send(ctx, req, call, g),
                    None => self.attempt(ctx, req, call),
                }
            }
            Timer::App(clients::Timer::CallTimeout { req, attempt })
                if self.calls.get(&req).is_some_and(|c| c.attempts == attempt) =>
            {
                self.call_failed(ctx, req, None);
            }
            _ => {}
        }
    }

    pub fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId, msg: Msg) {
        if self.view.view.on_refused(&self.config.view, ctx, &msg) {
            return;
        }
        if let Msg::App(clients::Msg::Call { req }) = msg {
            self.call_failed(ctx, req, Some(to));
        }
    }

    fn schedule_call(&mut self, ctx: &mut NodeCtx<'_>) {
        if self.config.call_rate > 0.0 {
            // Exponential inter-arrival times: a Poisson stream.
            let u: f64 = ctx.rng().random::<f64>();
            let gap = -(1.0 - u).ln() / self.config.call_rate;
            ctx.set_timer(SimDuration::from_secs_f64(gap), clients::Timer::NextCall);
        }
    }

    /// Sends attempt `call.attempts + 1` to an instance of the view not tried yet.
    fn attempt(&mut self, ctx: &mut NodeCtx<'_>, req: u64, mut call: Call) {
        let target = match self.view.pick(ctx, call.key, &call.tried) {
            Pick::Fresh(n) => n,
            Pick::AllTried(_) => return self.done(ctx, call.started, false),
        };
        self.view.started(target);
        call.tried.push(target);
        ctx.observe(Obs::CallSent { instance: target });
        self.send(ctx, req, call, target);
    }

    /// Sends attempt `call.attempts + 1` to `to` (an instance, or the gateway).
    fn send(&mut self, ctx: &mut NodeCtx<'_>, req: u64, mut call: Call, to: NodeId) {
        call.attempts += 1;
        call.current = to;
        ctx.send(to, clients::Msg::Call { req });
        ctx.set_timer(self.config.call_timeout, clients::Timer::CallTimeout { req, attempt: call.attempts });
        self.calls.insert(req, call);
    }

    /// An attempt failed (timeout, or refused by `refused_by`): retry or give up.
    fn call_failed(&mut self, ctx: &mut NodeCtx<'_>, req: u64, refused_by: Option<NodeId>) {
        let Some(call) = self.calls.get(&req) else { return };
        if refused_by.is_some_and(|n| n != call.current) {
            return; // a refusal of an earlier attempt; its timeout already moved on
        }
        let Some(call) = self.calls.remove(&req) else { return };
        // A failed attempt releases its slot; it reports the timeout as its latency.
        self.view.finished(call.current, ctx.now().saturating_since(call.started), ctx.now());
        if call.attempts < self.config.max_attempts && self.config.gateway.is_none() {
            self.attempt(ctx, req, call);
        } else {
            self.done(ctx, call.started, false);
        }
    }

    /// The cache and every request in flight are in memory only.
    pub fn crash(&mut self) {
        self.view.crash();
        self.calls.clear();
    }
}
