//! The madsim driver: the core's actors (`regsim::protocol::Node`, not a copy) on madsim.
//!
//! The nodes are the kernel's `Hosts` (status, incarnations, timers and their cancellation,
//! pause deferral, crash and restart, clock skew, fault application: the code the core world
//! runs); madsim supplies the rest: virtual time, the scheduler (it picks ready tasks with its
//! seeded RNG), node processes that are killed and restarted, and the datagrams between them.
//! Each simulated node is a madsim node with its own IP (`10.x.y.z` from its index) running
//! [`node_main`]: it binds a madsim `Endpoint`, spawns receiver tasks that pass incoming `Msg`s
//! (madsim raw payloads, no serialization) into its inbox, and loops: fire what is due for it
//! (a task-local heap, so timers die with the incarnation), then wait for the inbox or the next
//! deadline on madsim's clock.
//!
//! Each message's fate (latency, loss, duplication, per-role links, partitions) is drawn from
//! the kernel's network model at the sender, as in the core: a send task sleeps the drawn
//! latency less madsim's per-message floor ([`support::HOP_FLOOR`], 1 ms in `send_to_raw` and
//! 1 ms in `recv_from_raw`), then puts the datagram on madsim's network. A node with no
//! process (crashed, or not started) refuses it: the driver answers the sender one latency
//! later, as the core does (madsim has no refused connection for datagrams).
//!
//! Everything the tasks share is in [`Shared`], a thread local of the simulation's thread
//! (actors are not `Send`: consumers own boxed balancers), borrowed only between awaits; the
//! order in which tasks touch it (and so the log and the digest) is a function of the seed.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use madsim::net::Endpoint;
use madsim::runtime::{Handle, Runtime};
use madsim::time::{TimeHandle, sleep_until};
use regsim::fault::FaultAction;
use regsim::protocol::{Msg, Node, Obs};
use regsim::run::{Collector, DriverSummary, RunOutput};
use regsim::scenario::build::{CONSUMERS, SERVERS};
use regsim::scenario::{Layout, Scenario, layout};
use regsim_kernel::net::{Delivery, NetStats, Network};
use regsim_kernel::{Actor, FaultRecord, Hosts, NodeId, Outcome, Record, SimRng, SimTime, Transport, Wake, stream};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::support::{self, HOP_FLOOR, Schedule};
use crate::timers::Wakes;

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

/// madsim's configuration: the kernel's network model draws every latency and loss, so
/// madsim's own network adds only its per-message floor.
pub fn config(_s: &Scenario) -> madsim::Config {
    let mut c = madsim::Config::default();
    c.net.send_latency = Duration::ZERO..Duration::from_nanos(1);
    c.net.packet_loss_rate = 0.0;
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

/// Per node, what only this runtime keeps (the rest is in `Hosts`).
struct Side {
    start_at: SimTime,
    receivers: usize,
    madsim_id: Option<madsim::task::NodeId>,
    /// The running incarnation's inbox (none while no process runs: a send is refused).
    inbox: Option<UnboundedSender<Input>>,
}

enum Input {
    Msg { from: NodeId, msg: Msg },
    Wake(Wake<Msg, Timer>),
}

/// State shared by every task of one simulation (one thread; never borrowed across an await).
pub struct Shared {
    base: Instant,
    hosts: Hosts<Node>,
    side: Vec<Side>,
    net: Network,
    max_events: u64,
    /// Faults not applied yet: (time, order) -> (schedule index, action); role faults with a
    /// duration add their undo here.
    schedule: Schedule,
    fault_rng: SimRng,
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
    let Layout { nodes, network, faults, topology, seed } = l;
    let t = TimeHandle::current();
    let base = t.now_instant() - t.elapsed();
    let mut hosts = Hosts::new(seed);
    let mut side = Vec::with_capacity(nodes.len());
    let mut names = Vec::with_capacity(nodes.len());
    for n in nodes {
        side.push(Side { start_at: n.start_at, receivers: receivers(&s, &n.stream), madsim_id: None, inbox: None });
        hosts.add(&n.stream, n.actor);
        names.push(n.stream);
    }
    let schedule = Schedule::new(faults);
    let shared = Shared {
        base,
        hosts,
        side,
        net: network,
        max_events: s.limits.max_events,
        schedule,
        fault_rng: stream(seed, "faults/fire"),
    };
    SHARED.with(|cell| *cell.borrow_mut() = Some(shared));
    let handle = Handle::current();
    for (i, name) in names.into_iter().enumerate() {
        let i = u32::try_from(i).expect("madsim driver: more than 2^32 nodes");
        let node = handle.create_node().name(name).ip(ip(i)).init(move || node_main(i)).build();
        with(|g| g.side[i as usize].madsim_id = Some(node.id()));
    }
    let end = SimTime(s.duration.as_nanos());
    let outcome = supervise(&handle, end).await;
    let Some(mut g) = SHARED.with(|cell| cell.borrow_mut().take()) else {
        unreachable!("madsim driver: the simulation state vanished")
    };
    let raft_logs = crate::support::raft_logs(&g.hosts, &topology);
    let mut records = Vec::new();
    g.hosts.take_records(&mut records);
    SimOutput {
        records,
        events: g.hosts.events(),
        digest: g.hosts.digest_hex(),
        outcome,
        network: g.net.stats,
        raft_logs,
        virtual_ns: if outcome == Outcome::ReachedEnd { end.0 } else { now_ns() },
    }
}

/// Applies the fault schedule at its times; returns at the end (or at the event limit).
async fn supervise(handle: &Handle, end: SimTime) -> Outcome {
    while let Some(at) = with(|g| g.schedule.next_at()) {
        if at > end {
            break;
        }
        if !wait_until(at).await {
            return Outcome::EventLimit;
        }
        with(|g| g.apply_next(handle));
    }
    if wait_until(end).await { Outcome::ReachedEnd } else { Outcome::EventLimit }
}

/// Sleeps until virtual time `t` in steps of at most a second, watching the event limit;
/// false if the limit was reached first.
async fn wait_until(t: SimTime) -> bool {
    loop {
        let (hit, base) = with(|g| (g.hosts.events() >= g.max_events, g.base));
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

/// One incarnation of node `i` (madsim re-runs it on restart). Never returns: a node whose
/// init future returns is killed by madsim.
async fn node_main(i: u32) {
    let me = NodeId(i);
    let (first, start_at, receivers, base) = with(|g| {
        let m = &g.side[i as usize];
        (g.hosts.incarnation(me) == 0, m.start_at, m.receivers, g.base)
    });
    if first && start_at.0 > now_ns() {
        sleep_until(base + Duration::from_nanos(start_at.0)).await;
    }
    let ep = Endpoint::bind(addr(i)).await.expect("madsim driver: a node's address is free after a kill");
    let (tx, mut rx) = unbounded_channel::<Input>();
    for _ in 0..receivers {
        madsim::task::spawn_local(receive(ep.clone(), tx.clone()));
    }
    let mut wakes = Wakes::default();
    with(|g| {
        g.side[i as usize].inbox = Some(tx);
        let incarnation = g.hosts.incarnation(me);
        g.run(me, &ep, &mut wakes, |h, now, io| h.start(now, me, incarnation, io));
    });
    loop {
        while let Some((_, what)) = wakes.pop_due(now_ns()) {
            with(|g| g.run(me, &ep, &mut wakes, |h, now, io| h.wake(now, me, what, io)));
        }
        let input = match rx.try_recv() {
            Ok(input) => Some(input),
            Err(_) => {
                let deadline = wakes.next_deadline().unwrap_or(u64::MAX / 4);
                tokio::select! {
                    biased;
                    input = rx.recv() => input,
                    _ = sleep_until(base + Duration::from_nanos(deadline)) => None,
                }
            }
        };
        match input {
            Some(Input::Msg { from, msg }) => {
                with(|g| g.run(me, &ep, &mut wakes, |h, now, io| h.deliver(now, from, me, msg, io)));
            }
            Some(Input::Wake(w @ Wake::Timer { .. })) => wakes.insert(now_ns(), w),
            Some(Input::Wake(w)) => with(|g| g.run(me, &ep, &mut wakes, |h, now, io| h.wake(now, me, w, io))),
            None => {}
        }
    }
}

/// Passes datagrams into the node's inbox. `recv_from_raw` is not cancel-safe, so it is only
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

/// The transport of node `me`'s handlers.
struct Io<'a> {
    me: NodeId,
    base: Instant,
    net: &'a mut Network,
    side: &'a [Side],
    ep: &'a Endpoint,
    wakes: &'a mut Wakes,
}

impl Shared {
    /// Runs `f` on the hosts with node `me`'s transport at madsim's current time.
    fn run(
        &mut self,
        me: NodeId,
        ep: &Endpoint,
        wakes: &mut Wakes,
        f: impl FnOnce(&mut Hosts<Node>, SimTime, &mut Io<'_>),
    ) {
        let now = SimTime(now_ns());
        let Shared { hosts, net, side, base, .. } = self;
        f(hosts, now, &mut Io { me, base: *base, net, side, ep, wakes });
    }

    /// Applies the next scheduled fault with madsim's kill and restart.
    fn apply_next(&mut self, handle: &Handle) {
        let Some((idx, action)) = self.schedule.pop() else { return };
        let now = SimTime(now_ns());
        self.hosts.fold(now, 4, NodeId(idx), &());
        self.hosts.record(now, NodeId(u32::MAX), FaultRecord::Applied(idx));
        let Shared { hosts, net, side, fault_rng, .. } = self;
        let applied = support::apply_fault(hosts, now, &action, net, fault_rng, |n, w| {
            if let Some(tx) = &side[n.index()].inbox {
                let _ = tx.send(Input::Wake(w));
            }
        });
        let id = |m: &Side| m.madsim_id.expect("madsim driver: every node is created before the first fault");
        for n in applied.crashed {
            handle.kill(id(&side[n.index()]));
            side[n.index()].inbox = None;
        }
        for n in applied.restarted {
            handle.restart(id(&side[n.index()]));
        }
        let undo = applied.undo;
        if let Some((at, undo)) = undo {
            self.schedule.push_undo(at, idx, undo);
        }
    }
}

impl Transport<Msg, Timer> for Io<'_> {
    fn send(&mut self, now: SimTime, from: NodeId, to: NodeId, msg: Msg) {
        for d in self.net.route(from, to).delays() {
            let (ep, msg) = (self.ep.clone(), msg.clone());
            let at = self.base + Duration::from_nanos(now.0 + d.0.saturating_sub(HOP_FLOOR.0));
            madsim::task::spawn_local(async move {
                sleep_until(at).await;
                if with(|g| g.side[to.index()].inbox.is_some()) {
                    // A node killed meanwhile drops it, as a host does with no process.
                    let _ = ep.send_to_raw(addr(to.0), TAG, Box::new(msg)).await;
                } else {
                    with(|g| refusal(&g.side, &mut g.net, g.base, SimTime(now_ns()), from, to, msg));
                }
            });
        }
    }

    fn refuse(&mut self, now: SimTime, from: NodeId, to: NodeId, msg: Msg) {
        refusal(self.side, self.net, self.base, now, from, to, msg);
    }

    fn wake(&mut self, at: SimTime, node: NodeId, what: Wake<Msg, Timer>) {
        if node == self.me {
            self.wakes.insert(at.0, what);
        } else if let Some(tx) = &self.side[node.index()].inbox {
            let _ = tx.send(Input::Wake(what));
        }
    }
}

/// The refused connection: `from` hears of it one latency later, subject to the network like
/// any message.
fn refusal(side: &[Side], net: &mut Network, base: Instant, now: SimTime, from: NodeId, to: NodeId, msg: Msg) {
    let back = match net.route(to, from) {
        Delivery::Dropped(_) => return,
        Delivery::Once(d) | Delivery::Twice(d, _) => d,
    };
    let Some(tx) = side[from.index()].inbox.clone() else { return };
    let at = base + Duration::from_nanos(now.0 + back.0);
    madsim::task::spawn_local(async move {
        sleep_until(at).await;
        let _ = tx.send(Input::Wake(Wake::Refused { to, msg }));
    });
}
