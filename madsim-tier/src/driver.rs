//! The madsim driver: the core's actors (`regsim::protocol::Node`, not a copy) on madsim.
//!
//! Each simulated node is a madsim node with its own IP (`10.x.y.z` from its index) running
//! [`node_main`]: it binds a madsim `Endpoint`, spawns receiver tasks that pass incoming `Msg`s
//! (sent as madsim raw payloads, no serialization) into a channel, and loops: fire the actor's
//! due timers (kept in a task-local heap, so they die with the incarnation, as in the core),
//! then wait for the next message or the next deadline on madsim's clock. Sends are spawned
//! tasks (madsim's `send_to_raw` sleeps 1 ms first, which must not block the loop).
//!
//! Faults are madsim's own: crash/restart are `Handle::kill`/`restart` (restart re-runs
//! `node_main`), pause/resume are `Handle::pause`/`resume`, partitions are clogged links with
//! reference counts (madsim's clog sets are not counted, so overlapping partitions would heal
//! each other). madsim has no refused connection for datagrams, so a send to a node with no
//! running process is answered by the driver: `on_refused` one round trip (two latency draws
//! from a driver stream) later, as in the core.
//!
//! Actors, their random streams and timer counters live outside the tasks, in [`Shared`], so a
//! kill keeps what the core keeps (the supervisor calls `Actor::crash` itself). madsim runs
//! every task on one thread and picks ready tasks with its seeded RNG, so the order in which
//! tasks touch `Shared` (and so the observation log and the digest) is a function of the seed.
//! `Shared` is a thread local of the simulation's thread (actors are not `Send`: consumers own
//! boxed balancers), borrowed only between awaits.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use madsim::net::{Endpoint, NetSim};
use madsim::runtime::{Handle, Runtime};
use madsim::time::{TimeHandle, sleep_until};
use regsim::fault::FaultAction;
use regsim::protocol::{Msg, Node, Obs};
use regsim::run::{Collector, DriverSummary, RunOutput};
use regsim::scenario::build::{CONSUMERS, SERVERS};
use regsim::scenario::{Layout, Scenario, layout};
use regsim_kernel::net::{Latency, LatencySpec, NetStats, Partition};
use regsim_kernel::{
    Actor, Ctx, Digest, Effect, FaultRecord, NodeId, Outcome, Record, SimRng, SimTime, Status, What, stream,
};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::support;
use crate::timers::Timers;

type Timer = <Node as Actor>::Timer;

/// The madsim version this driver is pinned to (reports of different versions differ).
pub const MADSIM_VERSION: &str = "0.2.34";

const TAG: u64 = 1;
const PORT: u16 = 1;

/// What one madsim run produced, taken out of the runtime before it is dropped.
pub struct SimOutput {
    pub records: Vec<Record<Obs>>,
    pub events: u64,
    pub digest: String,
    pub outcome: Outcome,
    pub network: NetStats,
    pub raft_logs: Vec<Vec<u64>>,
    pub virtual_ns: u64,
}

/// madsim's configuration for `s`: the global latency range (less the per-message floor) and
/// loss rate.
pub fn config(s: &Scenario) -> madsim::Config {
    let (lo, hi) = support::send_latency_ns(s);
    let mut c = madsim::Config::default();
    c.net.send_latency = Duration::from_nanos(lo)..Duration::from_nanos(hi);
    c.net.packet_loss_rate = s.network.loss;
    c
}

/// Runs `scenario` with `seed` on madsim on a fresh thread (madsim seeds the thread's std
/// `RandomState` and forbids spawning threads inside), and makes the report with the core's
/// `Collector`. The scenario must have passed `regsim::scenario::load_with(.., support::check)`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<RunOutput, String> {
    let s = scenario.clone();
    std::thread::spawn(move || run_here(&s, seed)).join().map_err(|_| "the madsim run panicked".to_string())?
}

fn run_here(s: &Scenario, seed: u64) -> Result<RunOutput, String> {
    let l = layout(s, seed).map_err(|(p, m)| format!("{p}: {m}"))?;
    let topology = l.topology.clone();
    let actions: Vec<FaultAction> = l.faults.iter().map(|(_, a)| a.clone()).collect();
    let mut collector = Collector::new(s, seed, &topology, actions)?;
    let rt = Runtime::with_seed_and_config(seed, config(s));
    let out = rt.block_on(simulate(s.clone(), l));
    drop(rt);
    collector.ingest(&out.records);
    let summary = DriverSummary {
        virtual_duration_s: out.virtual_ns as f64 / 1e9,
        events: out.events,
        digest: out.digest,
        outcome: out.outcome,
        network: out.network,
        raft_logs: out.raft_logs,
    };
    Ok(collector.finish(s, seed, &topology, summary))
}

struct Meta {
    status: Status,
    /// Whether the current incarnation has bound its endpoint and run `on_start`.
    started: bool,
    incarnation: u32,
    next_timer: u32,
    start_at: SimTime,
    receivers: usize,
    madsim_id: Option<madsim::task::NodeId>,
}

/// State shared by every task of one simulation (one thread; never locked across an await).
pub struct Shared {
    base: Instant,
    meta: Vec<Meta>,
    actors: Vec<Node>,
    rngs: Vec<SimRng>,
    records: Vec<Record<Obs>>,
    digest: Digest,
    events: u64,
    max_events: u64,
    stats: NetStats,
    /// Active partitions (to count drops and route emulated refusals) and clog counts.
    partitions: Vec<(u32, Partition)>,
    clogged: BTreeMap<(u32, u32), u32>,
    latency: Latency,
    loss: f64,
    refusal_rng: SimRng,
    effects: Vec<Effect<Msg, Timer>>,
    observed: Vec<Obs>,
}

thread_local! {
    static SHARED: RefCell<Option<Shared>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's simulation state (never across an await).
fn with<R>(f: impl FnOnce(&mut Shared) -> R) -> R {
    SHARED.with(|cell| {
        let mut g = cell.borrow_mut();
        f(g.as_mut().expect("madsim driver: no simulation on this thread"))
    })
}

fn now_ns() -> u64 {
    u64::try_from(TimeHandle::current().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0A00_0000u32 + i + 1))
}

fn addr(i: u32) -> SocketAddr {
    SocketAddr::new(ip(i), PORT)
}

fn node_of(a: SocketAddr) -> Option<NodeId> {
    match a.ip() {
        IpAddr::V4(v4) => u32::from(v4).checked_sub(0x0A00_0001).map(NodeId),
        IpAddr::V6(_) => None,
    }
}

/// Receiver tasks per node: madsim's `recv_from_raw` takes 1 ms per message, so a busy server
/// needs several to keep up (4x its mean inbound rate per ms, at least 4).
fn receivers(s: &Scenario, stream_name: &str) -> usize {
    if stream_name.starts_with(SERVERS) {
        let beats_per_ms = f64::from(s.instances.count) / (s.instances.beat_interval.0 as f64 / 1e6).max(1.0);
        let per_server = beats_per_ms / f64::from(s.registry.servers.max(1));
        4 + (4.0 * per_server).ceil() as usize
    } else if stream_name.starts_with(CONSUMERS) {
        2
    } else {
        1
    }
}

/// The simulation itself, as the future `block_on` runs (also used by the determinism check).
pub async fn simulate(s: Scenario, l: Layout) -> SimOutput {
    let Layout { nodes, faults, topology, seed, .. } = l;
    let t = TimeHandle::current();
    let base = t.now_instant() - t.elapsed();
    let latency = latency_of(&s);
    let mut meta = Vec::with_capacity(nodes.len());
    let mut actors = Vec::with_capacity(nodes.len());
    let mut rngs = Vec::with_capacity(nodes.len());
    let mut names = Vec::with_capacity(nodes.len());
    for n in nodes {
        meta.push(Meta {
            status: Status::Up,
            started: false,
            incarnation: 0,
            next_timer: 0,
            start_at: n.start_at,
            receivers: receivers(&s, &n.stream),
            madsim_id: None,
        });
        rngs.push(stream(seed, &n.stream));
        actors.push(n.actor);
        names.push(n.stream);
    }
    let shared = Shared {
        base,
        meta,
        actors,
        rngs,
        records: Vec::new(),
        digest: Digest::default(),
        events: 0,
        max_events: s.limits.max_events,
        stats: NetStats::default(),
        partitions: Vec::new(),
        clogged: BTreeMap::new(),
        latency,
        loss: s.network.loss,
        refusal_rng: stream(seed, "madsim/refusals"),
        effects: Vec::new(),
        observed: Vec::new(),
    };
    SHARED.with(|cell| *cell.borrow_mut() = Some(shared));
    let handle = Handle::current();
    for (i, name) in names.into_iter().enumerate() {
        let i = u32::try_from(i).expect("madsim driver: more than 2^32 nodes");
        let node = handle.create_node().name(name).ip(ip(i)).init(move || node_main(i)).build();
        with(|g| g.meta[i as usize].madsim_id = Some(node.id()));
    }
    let end = SimTime(s.duration.as_nanos());
    let outcome = supervise(&handle, faults, end).await;
    let Some(mut g) = SHARED.with(|cell| cell.borrow_mut().take()) else {
        unreachable!("madsim driver: the simulation state vanished")
    };
    let servers = topology.role(SERVERS).map_or(0..0, |r| r.first..r.first + r.count);
    let raft_logs = servers
        .filter_map(|n| match &g.actors[n as usize] {
            Node::Raft(r) => Some(r.raft().log_terms()),
            _ => None,
        })
        .collect();
    SimOutput {
        records: std::mem::take(&mut g.records),
        events: g.events,
        digest: g.digest.hex(),
        outcome,
        network: g.stats,
        raft_logs,
        virtual_ns: if outcome == Outcome::ReachedEnd { end.0 } else { now_ns() },
    }
}

fn latency_of(s: &Scenario) -> Latency {
    let (min, max) = support::latency_range(s);
    LatencySpec::uniform(min, max).build().expect("madsim driver: a checked uniform latency builds")
}

/// Applies the fault schedule at its times; returns at the end (or at the event limit).
async fn supervise(handle: &Handle, faults: Vec<(SimTime, FaultAction)>, end: SimTime) -> Outcome {
    let net = NetSim::current();
    for (idx, (at, action)) in faults.into_iter().enumerate() {
        if at > end {
            break;
        }
        if !wait_until(at).await {
            return Outcome::EventLimit;
        }
        let idx = u32::try_from(idx).expect("madsim driver: more than 2^32 faults");
        with(|g| g.apply(handle, &net, idx, &action));
    }
    if wait_until(end).await { Outcome::ReachedEnd } else { Outcome::EventLimit }
}

/// Sleeps until virtual time `t` in steps of at most a second, watching the event limit;
/// false if the limit was reached first.
async fn wait_until(t: SimTime) -> bool {
    loop {
        let (hit, base) = with(|g| (g.events >= g.max_events, g.base));
        if hit {
            return false;
        }
        let now = now_ns();
        if now >= t.0 {
            return true;
        }
        let step = (t.0 - now).min(1_000_000_000);
        sleep_until(base + Duration::from_nanos(now + step)).await;
    }
}

enum Input {
    Msg { from: NodeId, msg: Msg },
    Refused { to: NodeId, msg: Msg },
}

/// What a node task lends to `Shared::dispatch` to carry out effects.
struct Io {
    ep: Endpoint,
    tx: UnboundedSender<Input>,
    timers: Timers,
}

/// One incarnation of node `i` (madsim re-runs it on restart). Never returns: a node whose
/// init future returns is killed by madsim.
async fn node_main(i: u32) {
    let (first, start_at, receivers, base) = with(|g| {
        let m = &g.meta[i as usize];
        (m.incarnation == 0, m.start_at, m.receivers, g.base)
    });
    if first && start_at.0 > now_ns() {
        sleep_until(base + Duration::from_nanos(start_at.0)).await;
    }
    let ep = Endpoint::bind(addr(i)).await.expect("madsim driver: a node's address is free after a kill");
    let (tx, mut rx) = unbounded_channel::<Input>();
    for _ in 0..receivers {
        madsim::task::spawn_local(receive(ep.clone(), tx.clone()));
    }
    let mut io = Io { ep, tx, timers: Timers::default() };
    with(|g| {
        g.meta[i as usize].started = true;
        g.dispatch(i, 1, &(), &mut io, |a, ctx| a.on_start(ctx));
    });
    loop {
        let now = now_ns();
        while let Some((_, timer)) = io.timers.pop_due(now) {
            let payload = timer.clone();
            with(|g| g.dispatch(i, 3, &payload, &mut io, |a, ctx| a.on_timer(ctx, timer)));
        }
        let input = match rx.try_recv() {
            Ok(input) => Some(input),
            Err(_) => {
                let deadline = io.timers.next_deadline().unwrap_or(u64::MAX / 4);
                tokio::select! {
                    biased;
                    input = rx.recv() => input,
                    _ = sleep_until(base + Duration::from_nanos(deadline)) => None,
                }
            }
        };
        match input {
            Some(Input::Msg { from, msg }) => {
                let tag = 2 | u64::from(from.0) << 8;
                let payload = msg.clone();
                with(|g| g.dispatch(i, tag, &payload, &mut io, |a, ctx| a.on_message(ctx, from, msg)));
            }
            Some(Input::Refused { to, msg }) => {
                let tag = 5 | u64::from(to.0) << 8;
                let payload = msg.clone();
                with(|g| g.dispatch(i, tag, &payload, &mut io, |a, ctx| a.on_refused(ctx, to, msg)));
            }
            None => {}
        }
    }
}

/// Passes datagrams into the node's channel. `recv_from_raw` is not cancel-safe, so it is only
/// ever awaited here.
async fn receive(ep: Endpoint, tx: UnboundedSender<Input>) {
    loop {
        let Ok((payload, src)) = ep.recv_from_raw(TAG).await else { return };
        let (Ok(msg), Some(from)) = (payload.downcast::<Msg>(), node_of(src)) else { continue };
        if tx.send(Input::Msg { from, msg: *msg }).is_err() {
            return;
        }
    }
}

impl Shared {
    /// Counts and hashes one event (as `World::fold` does), calls a handler of node `i`'s actor
    /// and carries out its effects.
    fn dispatch(
        &mut self,
        i: u32,
        tag: u64,
        payload: &impl Hash,
        io: &mut Io,
        handler: impl FnOnce(&mut Node, &mut Ctx<'_, Msg, Timer, Obs>),
    ) {
        let now = now_ns();
        self.fold(now, tag, i, payload);
        let k = i as usize;
        let mut effects = std::mem::take(&mut self.effects);
        let mut observed = std::mem::take(&mut self.observed);
        {
            let m = &mut self.meta[k];
            let mut ctx =
                Ctx::new(NodeId(i), SimTime(now), &mut self.rngs[k], &mut m.next_timer, &mut effects, &mut observed);
            handler(&mut self.actors[k], &mut ctx);
        }
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, msg } => self.send(now, i, to, msg, io),
                Effect::SetTimer { id, delay, timer } => io.timers.insert(now + delay.0, id, timer),
                Effect::CancelTimer(id) => io.timers.cancel(id),
            }
        }
        for obs in observed.drain(..) {
            self.records.push(Record { time: SimTime(now), node: NodeId(i), what: What::Actor(obs) });
        }
        self.effects = effects;
        self.observed = observed;
    }

    fn fold(&mut self, now: u64, tag: u64, node: u32, payload: &impl Hash) {
        self.events += 1;
        self.digest.fold(now);
        self.digest.fold(tag << 32 | u64::from(node));
        payload.hash(&mut self.digest);
    }

    fn connected(&self, from: NodeId, to: NodeId) -> bool {
        self.partitions.iter().all(|(_, p)| p.allows(from, to))
    }

    fn send(&mut self, now: u64, from: u32, to: NodeId, msg: Msg, io: &Io) {
        assert!(to.index() < self.meta.len(), "madsim driver: node n{from} sent to unknown node {to}");
        self.stats.sent += 1;
        let from = NodeId(from);
        let connected = self.connected(from, to);
        if !connected {
            // madsim drops it at the clogged link; counted here, where the model is known.
            self.stats.dropped_partition += 1;
        }
        let m = &self.meta[to.index()];
        if m.status != Status::Crashed && m.started {
            let ep = io.ep.clone();
            madsim::task::spawn_local(async move {
                // A send to an unbound address is dropped silently by madsim.
                let _ = ep.send_to_raw(addr(to.0), TAG, Box::new(msg)).await;
            });
            return;
        }
        // No process at `to`: the emulated refused connection, one round trip later, subject to
        // the partition (both ways) and to loss like the core's refusal.
        if !connected || !self.connected(to, from) {
            return;
        }
        let lost = |rng: &mut SimRng, loss: f64| loss > 0.0 && rand::RngExt::random::<f64>(rng) < loss;
        if lost(&mut self.refusal_rng, self.loss) || lost(&mut self.refusal_rng, self.loss) {
            return;
        }
        let d = self.latency.sample(&mut self.refusal_rng).0 + self.latency.sample(&mut self.refusal_rng).0;
        let at = self.base + Duration::from_nanos(now + d);
        let tx = io.tx.clone();
        madsim::task::spawn_local(async move {
            sleep_until(at).await;
            let _ = tx.send(Input::Refused { to, msg });
        });
    }

    fn record(&mut self, now: u64, node: NodeId, r: FaultRecord) {
        self.records.push(Record { time: SimTime(now), node, what: What::Fault(r) });
    }

    fn madsim_id(&self, n: NodeId) -> madsim::task::NodeId {
        self.meta[n.index()].madsim_id.expect("madsim driver: every node is created before the first fault")
    }

    /// Carries out fault action `idx` with madsim's own means.
    fn apply(&mut self, handle: &Handle, net: &NetSim, idx: u32, action: &FaultAction) {
        let now = now_ns();
        self.fold(now, 4, idx, &());
        self.record(now, NodeId(u32::MAX), FaultRecord::Applied(idx));
        match action {
            FaultAction::Crash(nodes) => {
                for n in nodes {
                    if self.meta[n.index()].status == Status::Crashed {
                        continue;
                    }
                    handle.kill(self.madsim_id(*n));
                    let m = &mut self.meta[n.index()];
                    m.status = Status::Crashed;
                    m.started = false;
                    m.incarnation += 1;
                    self.actors[n.index()].crash();
                    self.record(now, *n, FaultRecord::Crashed);
                }
            }
            FaultAction::Restart(nodes) => {
                for n in nodes {
                    if self.meta[n.index()].status != Status::Crashed {
                        continue;
                    }
                    self.meta[n.index()].status = Status::Up;
                    handle.restart(self.madsim_id(*n));
                    self.record(now, *n, FaultRecord::Restarted);
                }
            }
            FaultAction::Pause(nodes) => {
                for n in nodes {
                    if self.meta[n.index()].status != Status::Up {
                        continue;
                    }
                    self.meta[n.index()].status = Status::Paused;
                    handle.pause(self.madsim_id(*n));
                    self.record(now, *n, FaultRecord::Paused);
                }
            }
            FaultAction::Resume(nodes) => {
                for n in nodes {
                    if self.meta[n.index()].status != Status::Paused {
                        continue;
                    }
                    self.meta[n.index()].status = Status::Up;
                    handle.resume(self.madsim_id(*n));
                    self.record(now, *n, FaultRecord::Resumed);
                }
            }
            FaultAction::Partition { id, partition } => {
                self.heal(now, net, Some(*id), false);
                self.clog(net, partition, true);
                self.partitions.push((*id, partition.clone()));
                for n in 0..self.meta.len() as u32 {
                    if partition.affects(NodeId(n)) {
                        self.record(now, NodeId(n), FaultRecord::Partitioned(*id));
                    }
                }
            }
            FaultAction::Heal(id) => self.heal(now, net, *id, true),
            FaultAction::Skew { .. } | FaultAction::OnRole { .. } => {
                unreachable!("madsim driver: skew and role targets are rejected by support::check")
            }
        }
    }

    fn heal(&mut self, now: u64, net: &NetSim, id: Option<u32>, record: bool) {
        let (healed, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.partitions).into_iter().partition(|(pid, _)| id.is_none_or(|w| w == *pid));
        self.partitions = kept;
        for (pid, p) in healed {
            self.clog(net, &p, false);
            if record {
                for n in 0..self.meta.len() as u32 {
                    if p.affects(NodeId(n)) {
                        self.record(now, NodeId(n), FaultRecord::Healed(pid));
                    }
                }
            }
        }
    }

    /// Clogs (or unclogs) every link `p` cuts, counting references per directed link.
    fn clog(&mut self, net: &NetSim, p: &Partition, on: bool) {
        for (a, b) in support::cut_links(p, self.meta.len()) {
            let (ma, mb) = (self.madsim_id(a), self.madsim_id(b));
            let count = self.clogged.entry((a.0, b.0)).or_insert(0);
            if on {
                *count += 1;
                if *count == 1 {
                    net.clog_link(ma, mb);
                }
            } else {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.clogged.remove(&(a.0, b.0));
                    net.unclog_link(ma, mb);
                }
            }
        }
    }
}
