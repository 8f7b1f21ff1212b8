//! A client's view of one service in the registry: the Nacos 1.x client's subscription cache
//! (`HostReactor`, 1.4.6), shared by consumers and gateways.
//!
//! The view (the healthy instances of the service) is refreshed by polling the full list
//! (`HostReactor.UpdateTask`) every `poll_interval` (the server's `cacheMillis`: 10 s with
//! push, 3 s without) after the previous poll's answer or failure, from a random server with
//! round-robin failover. A failed poll, or an answer with no instances, backs off
//! `1 s << fail_count` (`DEFAULT_DELAY << failCount`, fail_count <= 6), capped at
//! `backoff_max` (60 s, `DEFAULT_DELAY * 60`); an answer with instances resets the count.
//! Servers also push changes over UDP; the client replaces its view and acks. A poll that
//! follows a push (`serviceObj.getLastRefTime() > lastRefTime`) only refreshes the
//! subscription (`refreshOnly`): its answer is not applied, and its failure is not counted;
//! the current view's emptiness decides the backoff then. Each change of membership is
//! observed (`Obs::View`), so the metrics can tell when a client stopped listing a dead
//! instance.
//!
//! Request ids come from the owner's counter (`next_req`), which it shares with its other
//! requests, so ids stay unique per node.

use crate::protocol::registry;
use std::sync::Arc;

use rand::RngExt;

use crate::protocol::{ClientOp, Msg, NodeCtx, Obs, RequestKind, ServerList, ServiceId, Timer};
use regsim_kernel::{NodeId, SimDuration};

#[derive(Clone, Debug)]
pub struct ViewConfig {
    pub service: ServiceId,
    pub servers: ServerList,
    pub poll_interval: SimDuration,
    pub backoff_max: SimDuration,
    pub query_timeout: SimDuration,
}

#[derive(Clone, Copy, Debug)]
struct Query {
    req: u64,
    server_idx: usize,
    tried: usize,
    /// A push came since the last poll: the answer only refreshes the subscription.
    refresh_only: bool,
}

/// `HostReactor.DEFAULT_DELAY`: the base of the failure backoff.
pub const BACKOFF_BASE: SimDuration = SimDuration::from_secs(1);

/// What a message or timer meant to the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Not the view's: the owner handles it.
    No,
    /// The view's; its membership is unchanged.
    Yes,
    /// The view's, and its membership changed (rebuild whatever depends on it).
    Changed,
}

#[derive(Debug, Default)]
pub struct RegistryView {
    view: Vec<NodeId>,
    fail_count: u32,
    query: Option<Query>,
    /// A push arrived since the last poll started.
    pushed: bool,
}

impl RegistryView {
    /// The instances in the view, sorted.
    pub fn nodes(&self) -> &[NodeId] {
        &self.view
    }

    /// Starts a poll now.
    pub fn poll(&mut self, cfg: &ViewConfig, ctx: &mut NodeCtx<'_>, next_req: &mut u64) {
        let n = cfg.servers.len();
        let start = if n > 1 { ctx.rng().random_range(0..n) } else { 0 };
        *next_req += 1;
        let req = *next_req;
        ctx.observe(Obs::OpStart { req, op: ClientOp::List(cfg.service) });
        let refresh_only = std::mem::take(&mut self.pushed);
        self.query_server(cfg, ctx, Query { req, server_idx: start, tried: 1, refresh_only });
    }

    /// `UpdateTask.run`'s `finally`: the next poll after `delay`, or after the backoff when
    /// `failed` (`incFailCount`; otherwise `resetFailCount`).
    fn schedule(&mut self, cfg: &ViewConfig, ctx: &mut NodeCtx<'_>, failed: bool) {
        let delay = if failed {
            self.fail_count = (self.fail_count + 1).min(6);
            BACKOFF_BASE.saturating_mul(1 << self.fail_count).min(cfg.backoff_max)
        } else {
            self.fail_count = 0;
            cfg.poll_interval
        };
        ctx.set_timer(delay, registry::Timer::Poll);
    }

    fn query_server(&mut self, cfg: &ViewConfig, ctx: &mut NodeCtx<'_>, q: Query) {
        let server = cfg.servers[q.server_idx];
        ctx.send(server, registry::Msg::Query { service: cfg.service, req: q.req });
        // Server lists are limited to 1,000 (scenario limits), so the attempt fits.
        ctx.set_timer(cfg.query_timeout, registry::Timer::QueryTimeout { req: q.req, attempt: q.tried as u16 });
        self.query = Some(q);
    }

    /// The query failed on its server: try server `to` (a redirect's leader) or the next one.
    fn query_failed(&mut self, cfg: &ViewConfig, ctx: &mut NodeCtx<'_>, req: u64, to: Option<usize>) {
        let Some(q) = self.query.filter(|q| q.req == req) else { return };
        if q.tried < cfg.servers.len() {
            let server_idx = to.unwrap_or((q.server_idx + 1) % cfg.servers.len());
            self.query_server(cfg, ctx, Query { server_idx, tried: q.tried + 1, ..q });
            return;
        }
        self.query = None;
        ctx.observe(Obs::Request { kind: RequestKind::Query, ok: false });
        // `refreshOnly` swallows its exception; the pushed view's emptiness decides.
        let failed = !q.refresh_only || self.view.is_empty();
        self.schedule(cfg, ctx, failed);
    }

    /// Replaces the view with `new` (sorted), observing every difference.
    fn set(&mut self, ctx: &mut NodeCtx<'_>, new: &[NodeId]) -> Handled {
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
        if self.view == new {
            return Handled::Yes;
        }
        self.view = new.to_vec();
        Handled::Changed
    }

    pub fn on_message(&mut self, cfg: &ViewConfig, ctx: &mut NodeCtx<'_>, from: NodeId, msg: &Msg) -> Handled {
        match msg {
            Msg::Registry(registry::Msg::QueryOk { req, answer }) if self.query.is_some_and(|q| q.req == *req) => {
                let refresh_only = self.query.take().is_some_and(|q| q.refresh_only);
                ctx.observe(Obs::Request { kind: RequestKind::Query, ok: true });
                ctx.observe(Obs::OpDone { req: *req, result: Some(Arc::clone(&answer.registered)) });
                let handled = if refresh_only { Handled::Yes } else { self.set(ctx, &answer.instances) };
                // An empty list counts as a failure (`CollectionUtils.isEmpty(serviceObj.getHosts())`).
                let empty = self.view.is_empty();
                self.schedule(cfg, ctx, empty);
                handled
            }
            Msg::Registry(registry::Msg::Redirect { req, leader }) => {
                let to = leader.and_then(|l| cfg.servers.iter().position(|s| *s == l));
                self.query_failed(cfg, ctx, *req, to);
                Handled::Yes
            }
            Msg::Registry(registry::Msg::Push { instances, push_id, .. }) => {
                self.pushed = true;
                let handled = self.set(ctx, instances);
                ctx.send(from, registry::Msg::PushAck { push_id: *push_id });
                handled
            }
            _ => Handled::No,
        }
    }

    /// The view's timers (`Poll`, `QueryTimeout`); `false` if `timer` is not the view's.
    pub fn on_timer(&mut self, cfg: &ViewConfig, ctx: &mut NodeCtx<'_>, timer: &Timer, next_req: &mut u64) -> bool {
        match *timer {
            Timer::Registry(registry::Timer::Poll) => self.poll(cfg, ctx, next_req),
            Timer::Registry(registry::Timer::QueryTimeout { req, attempt }) => {
                if self.query.is_some_and(|q| q.tried == usize::from(attempt)) {
                    self.query_failed(cfg, ctx, req, None);
                }
            }
            _ => return false,
        }
        true
    }

    /// A query the view sent was refused (server process down): fail over at once.
    pub fn on_refused(&mut self, cfg: &ViewConfig, ctx: &mut NodeCtx<'_>, msg: &Msg) -> bool {
        match *msg {
            Msg::Registry(registry::Msg::Query { req, .. }) => {
                self.query_failed(cfg, ctx, req, None);
                true
            }
            _ => false,
        }
    }

    /// The cache is in memory only.
    pub fn crash(&mut self) {
        *self = RegistryView::default();
    }
}

/// What [`Balanced::pick`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// An instance not tried yet by this request.
    Fresh(NodeId),
    /// Every instance of the view was tried; the balancer's own pick (a repeat), if any.
    AllTried(Option<NodeId>),
}

/// A registry view with a client-side balancer rebuilt from it on every change (the balancer
/// knows instances by their names `n<id>`; load-aware ones get start/finish feedback). Shared by
/// consumers and gateways.
#[derive(Debug)]
pub struct Balanced {
    pub view: RegistryView,
    balancer: Box<dyn crate::balance::Balancer>,
}

impl Balanced {
    /// `spec` must build on an empty node list (specs are validated with the scenario).
    pub fn new(spec: &crate::balance::BalancerSpec) -> Result<Balanced, crate::balance::BalanceError> {
        let mut balancer = spec.build(&["seed".to_string()])?;
        balancer.set_nodes(&[]);
        Ok(Balanced { view: RegistryView::default(), balancer })
    }

    pub fn nodes(&self) -> &[NodeId] {
        self.view.nodes()
    }

    /// The view's part of message handling; rebuilds the balancer when the view changed.
    pub fn on_message(&mut self, cfg: &ViewConfig, ctx: &mut NodeCtx<'_>, from: NodeId, msg: &Msg) -> Handled {
        let handled = self.view.on_message(cfg, ctx, from, msg);
        if handled == Handled::Changed {
            let names: Vec<String> =
                self.view.nodes().iter().map(|n| crate::protocol::clients::instance_name(*n)).collect();
            self.balancer.set_nodes(&names);
        }
        handled
    }

    /// Picks an instance for a request with `key` that already tried `tried`: the balancer's
    /// pick if not tried yet, else a random untried instance of the view.
    pub fn pick(&mut self, ctx: &mut NodeCtx<'_>, key: u64, tried: &[NodeId]) -> Pick {
        let rand: u64 = ctx.rng().random();
        let view = self.view.nodes();
        let picked = self.balancer.pick(key, rand).and_then(|i| view.get(i as usize).copied());
        match picked {
            Some(n) if !tried.contains(&n) => Pick::Fresh(n),
            _ => {
                let untried: Vec<NodeId> = view.iter().copied().filter(|n| !tried.contains(n)).collect();
                if untried.is_empty() {
                    Pick::AllTried(picked)
                } else {
                    Pick::Fresh(untried[ctx.rng().random_range(0..untried.len())])
                }
            }
        }
    }

    /// A request to `n` started (load-aware balancers count it).
    pub fn started(&mut self, n: NodeId) {
        if let Ok(i) = self.view.nodes().binary_search(&n) {
            self.balancer.on_start(i as u32);
        }
    }

    /// A request to `n` finished after `took` (a failed one reports its time to failure).
    pub fn finished(&mut self, n: NodeId, took: SimDuration, now: regsim_kernel::SimTime) {
        if let Ok(i) = self.view.nodes().binary_search(&n) {
            self.balancer.on_finish(i as u32, took.as_nanos(), now.as_nanos());
        }
    }

    /// The view and the balancer's state are in memory only.
    pub fn crash(&mut self) {
        self.view.crash();
        self.balancer.set_nodes(&[]);
    }
}
