//! A service instance with the Nacos 1.x client's registration and beat loop.
//!
//! On start it registers, and its beat task runs every `beat_interval`, the next beat being
//! scheduled only after the previous beat's response or failure (Nacos' `BeatReactor`
//! reschedules at the end of each run). A beat answered "not found" makes it re-register at
//! once. Each request starts at a random server and, on timeout, tries the next server in
//! round-robin order until every server was tried once (Nacos' `NamingProxy.reqApi`).
//! A refused connection (server process down) counts as a failure at once, as a timeout
//! does. The instance also serves consumers' application calls (answering at once; service
//! time is the balancer issue's model). A Prometheus scrape is answered at once with the
//! process's counters: registry requests sent (`registry_requests_total`) and calls served
//! (`calls_served_total`, reset by a crash like any in-memory counter); once it has served
//! calls, also `requests_total{service, outcome="ok"}` and the histogram
//! `request_duration_seconds{service}` (arrival to answer, queueing included; client_golang's
//! default buckets). An instance never fails a call it answers, so `ok` is its only outcome.
//! A request's timeout timer is not cancelled when the answer comes: it fires later, finds the
//! request no longer in flight and does nothing (cheaper than cancelling on this hot path).
//! A timeout longer than `MAX_FIRST_LEG` (the 50 s read timeout) runs in two legs: the first
//! fires after `MAX_FIRST_LEG` and arms the rest only if the request still waits, so the
//! usual answered beat leaves a 3 s timer in the queue, not a 50 s one (a long timer lands
//! in the calendar's overflow heap; measured +10 % instructions on the heartbeat run). The
//! timeout fires at the same instant either way.
//!
//! A *persistent* instance (CP mode) registers once and does not beat: the servers probe it
//! (`Probe`, answered at once while it runs). A `Redirect` from a follower sends the request
//! to the leader it names (or the next server); a registration that failed on every server is
//! tried again after `beat_interval`. Registrations are reported as client operations
//! (`OpStart`/`OpDone`) for the linearizability checker.

use crate::protocol::{clients, cp, monitoring, registry};
use rand::RngExt;

use crate::protocol::{ClientOp, Msg, NodeCtx, Obs, RequestKind, ServerList, ServiceId, Timer, Write};
use regsim_kernel::{NodeId, SimDuration};

/// The first leg of a long request timeout (see the module doc).
pub const MAX_FIRST_LEG: SimDuration = SimDuration::from_secs(3);

#[derive(Clone, Debug)]
pub struct InstanceConfig {
    pub service: ServiceId,
    /// The `service` label of its metrics.
    pub service_name: std::sync::Arc<str>,
    pub servers: ServerList,
    pub beat_interval: SimDuration,
    pub request_timeout: SimDuration,
    /// Time to serve one application call; `None`: answer at once.
    pub service_time: Option<regsim_kernel::net::Latency>,
    /// Calls served at once (0: unlimited); the rest wait in FIFO order, up to `queue_max`.
    pub concurrency: u32,
    pub queue_max: u32,
    /// Registered through Raft and probed by the servers instead of beating (CP mode).
    pub persistent: bool,
}

/// Calls being served or waiting (allocated on the first call, so instances that only beat
/// stay small).
#[derive(Clone, Debug, Default)]
struct Work {
    /// Calls answered since the process started (the `calls_served_total` counter).
    served: u64,
    busy: u32,
    waiting: std::collections::VecDeque<(NodeId, u64)>,
    /// Arrival time of each call being served or waiting, by (client, request).
    arrived: std::collections::BTreeMap<(NodeId, u64), regsim_kernel::SimTime>,
    /// Time from arrival to answer of the calls served.
    duration: Option<crate::monitor::histogram::Histogram>,
}

impl Work {
    fn answered(&mut self, client: NodeId, req: u64, now: regsim_kernel::SimTime) {
        self.served += 1;
        let took = self.arrived.remove(&(client, req)).map_or(0.0, |t| now.saturating_since(t).as_secs_f64());
        self.duration
            .get_or_insert_with(|| {
                crate::monitor::histogram::Histogram::new(std::sync::Arc::from(
                    crate::monitor::histogram::DEFAULT_BUCKETS,
                ))
            })
            .observe(took);
    }
}

type Kind = Write;

/// One request in flight: which kind, which server index we are on, how many tried
/// (compact: an instance is touched on every beat, so it should fit one cache line).
#[derive(Clone, Copy, Debug)]
struct InFlight {
    req: u64,
    kind: Kind,
    server_idx: u16,
    tried: u16,
}

/// At most one register and one beat are in flight (a new register replaces an older one),
/// so they are kept inline rather than in a heap-allocated list.
#[derive(Clone, Debug)]
pub struct ServiceInstance {
    config: std::sync::Arc<InstanceConfig>,
    next_req: u64,
    inflight: [Option<InFlight>; 2],
    work: Option<Box<Work>>,
}

fn request_kind(kind: Kind) -> RequestKind {
    match kind {
        Kind::Register => RequestKind::Register,
        Kind::Beat => RequestKind::Beat,
    }
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Register => 0,
        Kind::Beat => 1,
    }
}

impl ServiceInstance {
    /// Instances of one service share their configuration.
    pub fn new(config: std::sync::Arc<InstanceConfig>) -> Self {
        ServiceInstance { config, next_req: 0, inflight: [None; 2], work: None }
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        self.request(ctx, Kind::Register);
        if !self.config.persistent {
            ctx.set_timer(self.config.beat_interval, registry::Timer::Beat);
        }
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        let (req, found) = match msg {
            Msg::Registry(registry::Msg::WriteOk { req, found }) => (req, found),
            Msg::App(clients::Msg::Call { req }) => return self.call(ctx, from, req),
            Msg::Cp(cp::Msg::Probe { round }) => return ctx.send(from, cp::Msg::ProbeOk { round }),
            Msg::Monitoring(monitoring::Msg::Scrape { seq }) => {
                let reply = match &self.work {
                    Some(w) if w.duration.is_some() => Msg::Monitoring(monitoring::Msg::Exposition {
                        seq,
                        body: std::sync::Arc::new(self.exposition(w)),
                    }),
                    w => Msg::Monitoring(monitoring::Msg::ScrapeOk {
                        seq,
                        registry_requests: self.next_req,
                        calls_served: w.as_ref().map_or(0, |w| w.served),
                    }),
                };
                return ctx.send(from, reply);
            }
            Msg::Registry(registry::Msg::WriteError { req }) => return self.failed(ctx, req, None),
            Msg::Registry(registry::Msg::Redirect { req, leader }) => {
                let to = leader.and_then(|l| self.config.servers.iter().position(|s| *s == l));
                return self.failed(ctx, req, to);
            }
            _ => return,
        };
        let Some(done) = self.take(req) else {
            return; // a late or duplicated answer
        };
        ctx.observe(Obs::Request { kind: request_kind(done.kind), ok: true });
        if done.kind == Kind::Register {
            ctx.observe(Obs::OpDone { req, result: None });
        }
        if done.kind == Kind::Beat {
            if !found {
                ctx.observe(Obs::Reregistered);
                self.request(ctx, Kind::Register);
            }
            ctx.set_timer(self.config.beat_interval, registry::Timer::Beat);
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match timer {
            Timer::Registry(registry::Timer::Beat) if self.config.persistent => self.request(ctx, Kind::Register),
            Timer::Registry(registry::Timer::Beat) => self.request(ctx, Kind::Beat),
            Timer::Registry(registry::Timer::RequestTimeout { req, attempt, rest })
                if self.inflight.iter().any(|f| f.is_some_and(|f| f.req == req && f.tried == attempt)) =>
            {
                let timeout = self.config.request_timeout;
                if !rest && timeout > MAX_FIRST_LEG {
                    let left = SimDuration(timeout.0 - MAX_FIRST_LEG.0);
                    ctx.set_timer(left, registry::Timer::RequestTimeout { req, attempt, rest: true });
                } else {
                    self.failed(ctx, req, None);
                }
            }
            Timer::App(clients::Timer::Served { client, req }) => {
                ctx.send(client, clients::Msg::CallOk { req });
                let work = self.work.get_or_insert_default();
                work.answered(client, req, ctx.now());
                work.busy = work.busy.saturating_sub(1);
                if let Some((client, req)) = work.waiting.pop_front() {
                    self.serve(ctx, client, req);
                }
            }
            _ => {}
        }
    }

    /// The server did not run: fail over to the next one now.
    pub fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, _to: NodeId, msg: Msg) {
        if let Msg::Registry(registry::Msg::Write { req, .. }) = msg {
            self.failed(ctx, req, None);
        }
    }

    /// Request `req` failed on its current server: try server `to` (a redirect's leader) or
    /// the next one, or give up once every server was tried.
    fn failed(&mut self, ctx: &mut NodeCtx<'_>, req: u64, to: Option<usize>) {
        let Some(f) = self.take(req) else {
            return; // answered already
        };
        if usize::from(f.tried) < self.config.servers.len() {
            let idx = to.unwrap_or((usize::from(f.server_idx) + 1) % self.config.servers.len());
            self.inflight[slot(f.kind)] = Some(self.send_to(ctx, f.req, f.kind, idx, f.tried + 1));
        } else {
            ctx.observe(Obs::Request { kind: request_kind(f.kind), ok: false });
            if f.kind == Kind::Beat || self.config.persistent {
                ctx.set_timer(self.config.beat_interval, registry::Timer::Beat);
            }
        }
    }

    /// An application call: serve it now, queue it, or (queue full) drop it (the client times
    /// out, as with a full accept backlog).
    fn call(&mut self, ctx: &mut NodeCtx<'_>, client: NodeId, req: u64) {
        if self.config.service_time.is_none() {
            self.work.get_or_insert_default().answered(client, req, ctx.now());
            return ctx.send(client, clients::Msg::CallOk { req });
        }
        let (limit, queue_max) = (self.config.concurrency, self.config.queue_max as usize);
        let work = self.work.get_or_insert_default();
        if limit == 0 || work.busy < limit {
            work.arrived.insert((client, req), ctx.now());
            self.serve(ctx, client, req);
        } else if work.waiting.len() < queue_max {
            work.arrived.insert((client, req), ctx.now());
            work.waiting.push_back((client, req));
        }
    }

    fn serve(&mut self, ctx: &mut NodeCtx<'_>, client: NodeId, req: u64) {
        let Some(dist) = &self.config.service_time else { return };
        let took = dist.sample(ctx.rng());
        self.work.get_or_insert_default().busy += 1;
        ctx.set_timer(took, clients::Timer::Served { client, req });
    }

    /// The scrape's answer once calls were served.
    fn exposition(&self, w: &Work) -> crate::protocol::monitoring::Exposition {
        use crate::monitor::Labels;
        let service = &*self.config.service_name;
        let mut samples = vec![
            (Labels::metric("registry_requests_total", &[]), self.next_req as f64),
            (Labels::metric("calls_served_total", &[]), w.served as f64),
            (Labels::metric("requests_total", &[("outcome", "ok"), ("service", service)]), w.served as f64),
        ];
        if let Some(h) = &w.duration {
            samples.extend(h.samples("request_duration_seconds", &Labels::from_pairs([("service", service)])));
        }
        crate::protocol::monitoring::Exposition { samples: samples.into_iter().map(|(l, v)| (l, v, None)).collect() }
    }

    /// Everything is in memory; on restart `on_start` registers again.
    pub fn crash(&mut self) {
        self.inflight = [None; 2];
        self.work = None;
    }

    /// Removes and returns the in-flight request `req`, if it still is.
    fn take(&mut self, req: u64) -> Option<InFlight> {
        self.inflight.iter_mut().find(|f| f.is_some_and(|f| f.req == req)).and_then(Option::take)
    }

    fn request(&mut self, ctx: &mut NodeCtx<'_>, kind: Kind) {
        let req = self.next_req;
        self.next_req += 1;
        let n = self.config.servers.len();
        let start = if n > 1 { ctx.rng().random_range(0..n) } else { 0 };
        if kind == Kind::Register {
            ctx.observe(Obs::OpStart { req, op: ClientOp::Register(self.config.service) });
        }
        self.inflight[slot(kind)] = Some(self.send_to(ctx, req, kind, start, 1));
    }

    fn send_to(&self, ctx: &mut NodeCtx<'_>, req: u64, kind: Kind, server_idx: usize, tried: u16) -> InFlight {
        let server = self.config.servers[server_idx];
        let service = self.config.service;
        ctx.send(server, registry::Msg::Write { kind, service, req });
        let first = self.config.request_timeout.min(MAX_FIRST_LEG);
        ctx.set_timer(first, registry::Timer::RequestTimeout { req, attempt: tried, rest: false });
        // Server lists are limited to 1,000 (scenario limits), so the index fits.
        InFlight { req, kind, server_idx: server_idx as u16, tried }
    }
}
