//! The `--real` driver: the core's actors (`regsim::protocol::Node`) on a tokio current-thread
//! runtime with one real UDP socket per node on 127.0.0.1 (model, limits and tolerance: see
//! the parent module).
//!
//! The nodes are the kernel's `Hosts` (status, incarnations, timers and their cancellation,
//! pause deferral, crash and restart, clock skew, fault application: the same code the core
//! world runs); this driver supplies only the transport. Each node is a task ([`node_main`])
//! on a `LocalSet` (actors are not `Send`): it binds its socket, runs `on_start`, then loops:
//! fire what is due for it (a task-local heap of timers, so they die with the incarnation),
//! then wait for a datagram, an inbox entry (a refusal, or what a pause held back) or the next
//! deadline. Everything the tasks share is in [`Shared`], a thread local borrowed only between
//! awaits. The supervisor applies the fault schedule (and the undo of role faults) at its
//! scaled times and stops the run at the scaled end. The run has its own thread.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;
use std::time::Duration;

use regsim::fault::FaultAction;
use regsim::protocol::{Msg, Node, Obs};
use regsim::run::{Collector, DriverSummary, RunOutput};
use regsim::scenario::build::SERVERS;
use regsim::scenario::{Layout, Scenario, layout};
use regsim_kernel::net::{Delivery, NetStats, Network};
use regsim_kernel::{Actor, FaultRecord, Hosts, NodeId, Outcome, Record, SimDuration, SimRng, SimTime};
use regsim_kernel::{Transport, Wake, stream};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::{DIGEST, TIMER_RESOLUTION, collector_view, wall_limit};
use crate::codec::{self, MAX_DATAGRAM};
use crate::support::Schedule;
use crate::timers::Wakes;

type Timer = <Node as Actor>::Timer;

/// Datagrams a node handles per wake-up before it looks at its timers again.
const DRAIN_MAX: usize = 64;

/// Why a real run produced no report.
#[derive(Debug)]
pub enum RealError {
    /// A run limit: the hard wall-clock limit, or a message too large for one datagram.
    Limit(String),
    /// Anything else (no socket, a panic).
    Failed(String),
}

impl std::fmt::Display for RealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RealError::Limit(m) | RealError::Failed(m) => f.write_str(m),
        }
    }
}

/// A finished real run: the report, and what stderr should say about the run.
pub struct RealOutput {
    pub run: RunOutput,
    pub nodes: usize,
    pub wall: Duration,
    /// Datagrams the kernel refused to send (e.g. a full send buffer): lost.
    pub send_errors: u64,
    /// Datagrams received that were not frames of this run (dropped).
    pub foreign: u64,
    /// The latest any timer fired after its deadline, in virtual time (the tolerance's
    /// measured counterpart; includes timers held by a pause).
    pub timer_late_max: SimDuration,
}

/// Runs `scenario` with `seed` on real sockets at `time_scale` on a fresh thread, and makes
/// the report with the core's `Collector` (times in virtual seconds). The scenario must have
/// passed [`super::check`].
pub fn run(scenario: &Scenario, seed: u64, time_scale: f64) -> Result<RealOutput, RealError> {
    let s = scenario.clone();
    std::thread::Builder::new()
        .name("regsim-real".into())
        .spawn(move || run_here(&s, seed, time_scale))
        .map_err(|e| RealError::Failed(format!("cannot start the run's thread: {e}")))?
        .join()
        .map_err(|_| RealError::Failed("the real run panicked".to_string()))?
}

fn run_here(s: &Scenario, seed: u64, scale: f64) -> Result<RealOutput, RealError> {
    let l = layout(s, seed).map_err(|(p, m)| RealError::Failed(format!("{p}: {m}")))?;
    let nodes = l.nodes.len();
    let topology = l.topology.clone();
    let actions: Vec<FaultAction> = l.faults.iter().map(|(_, a)| a.clone()).collect();
    let view = collector_view(s, scale);
    let mut collector = Collector::new(&view, seed, &topology, actions).map_err(RealError::Failed)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| RealError::Failed(format!("cannot start tokio: {e}")))?;
    let local = tokio::task::LocalSet::new();
    let limit = wall_limit(s, scale);
    let started = std::time::Instant::now();
    let out = rt.block_on(local.run_until(async {
        match tokio::time::timeout(limit, simulate(s, l, scale)).await {
            Ok(out) => out,
            Err(_) => {
                SHARED.with(|c| c.borrow_mut().take());
                Err(RealError::Limit(format!(
                    "the run did not end within its wall-clock limit of {:.1} s (scaled duration + 25 %, at least \
                     10 s)",
                    limit.as_secs_f64()
                )))
            }
        }
    }));
    let wall = started.elapsed();
    drop(local);
    drop(rt);
    let out = out?;
    collector.ingest(&out.records);
    let summary = DriverSummary {
        virtual_duration_s: out.virtual_ns as f64 / 1e9,
        events: out.events,
        digest: DIGEST.to_string(),
        outcome: out.outcome,
        network: out.network,
        raft_logs: out.raft_logs,
    };
    let run = collector.finish(&view, seed, &topology, summary);
    Ok(RealOutput {
        run,
        nodes,
        wall,
        send_errors: out.send_errors,
        foreign: out.foreign,
        timer_late_max: out.timer_late_max,
    })
}

/// What the runtime hands back when the run ends.
struct SimOutput {
    records: Vec<Record<Obs>>,
    events: u64,
    outcome: Outcome,
    network: NetStats,
    raft_logs: Vec<Vec<u64>>,
    virtual_ns: u64,
    send_errors: u64,
    foreign: u64,
    timer_late_max: SimDuration,
}

/// Real time against virtual time: `virtual = (now − start) / scale`.
#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
    scale: f64,
    /// Deadlines are clamped here (far beyond the end, never overflowing an `Instant`).
    horizon_ns: u64,
}

impl Clock {
    fn now_ns(&self) -> u64 {
        (self.start.elapsed().as_nanos() as f64 / self.scale) as u64
    }
    fn instant(&self, virtual_ns: u64) -> Instant {
        self.start + Duration::from_secs_f64(virtual_ns.min(self.horizon_ns) as f64 * self.scale / 1e9)
    }
    fn real(&self, d: SimDuration) -> Duration {
        Duration::from_secs_f64(d.as_secs_f64() * self.scale)
    }
}

/// Binds node `i`'s socket on 127.0.0.1: its last port if it had one and it is free, else an
/// ephemeral port. Two handles on it: tokio's, to wait for datagrams, and a plain one to send
/// with (tokio's `try_send_to` reports `WouldBlock` until its reactor has seen the new socket
/// writable once, which would lose every node's first message).
fn bind(last_port: u16) -> std::io::Result<(UdpSocket, std::net::UdpSocket)> {
    let try_bind = |port| {
        let s = std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
        s.set_nonblocking(true)?;
        let sender = s.try_clone()?;
        Ok((UdpSocket::from_std(s)?, sender))
    };
    match last_port {
        0 => try_bind(0),
        p => try_bind(p).or_else(|_| try_bind(0)),
    }
}

/// Per node, what only this runtime keeps (the rest is in `Hosts`).
struct Side {
    start_at: SimTime,
    /// The current incarnation's address (none while no process runs).
    addr: Option<SocketAddr>,
    /// The last port this node had (a restart tries it first).
    port: u16,
    task: Option<JoinHandle<()>>,
    /// The running incarnation's inbox: refusals and what a pause held back.
    inbox: Option<UnboundedSender<Wake<Msg, Timer>>>,
}

/// State shared by every task of one run (one thread; never borrowed across an await).
struct Shared {
    clock: Clock,
    nonce: u64,
    hosts: Hosts<Node>,
    side: Vec<Side>,
    net: Network,
    max_events: u64,
    /// Faults not applied yet: (time, order) -> (schedule index, action); role faults with a
    /// duration add their undo here.
    schedule: Schedule,
    fault_rng: SimRng,
    frame: Vec<u8>,
    send_errors: u64,
    foreign: u64,
    /// The latest a timer fired after its deadline (virtual ns; a paused node's timers wait
    /// for the resume and count too).
    timer_late_max: u64,
    /// A message that does not fit a datagram stops the run.
    fatal: Option<String>,
}

thread_local! {
    static SHARED: RefCell<Option<Shared>> = const { RefCell::new(None) };
    /// One receive buffer for every node of the thread (filled and read between awaits).
    static RECV: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM + 1]);
}

/// Runs `f` on this thread's run state (never across an await).
fn with<R>(f: impl FnOnce(&mut Shared) -> R) -> R {
    SHARED.with(|cell| {
        let mut g = cell.borrow_mut();
        f(g.as_mut().expect("real driver: no run on this thread"))
    })
}

fn clock() -> Clock {
    with(|g| g.clock)
}

/// The run's nonce, from the OS clock and the process id (only to tell runs apart on the wire).
fn nonce() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ u64::from(std::process::id()).rotate_left(40) ^ 0x5245_414c_5245_414c
}

async fn simulate(s: &Scenario, l: Layout, scale: f64) -> Result<SimOutput, RealError> {
    let Layout { nodes, network, faults, topology, seed, .. } = l;
    let end = SimTime(s.duration.as_nanos());
    let clock =
        Clock { start: Instant::now(), scale, horizon_ns: end.0.saturating_mul(2).saturating_add(3_600_000_000_000) };
    let mut hosts = Hosts::new(seed);
    let mut side = Vec::with_capacity(nodes.len());
    for n in nodes {
        hosts.add(&n.stream, n.actor);
        side.push(Side { start_at: n.start_at, addr: None, port: 0, task: None, inbox: None });
    }
    let count = side.len();
    let schedule = Schedule::new(faults);
    let shared = Shared {
        clock,
        nonce: nonce(),
        hosts,
        side,
        net: network,
        max_events: s.limits.max_events,
        schedule,
        fault_rng: stream(seed, "faults/fire"),
        frame: Vec::with_capacity(256),
        send_errors: 0,
        foreign: 0,
        timer_late_max: 0,
        fatal: None,
    };
    SHARED.with(|cell| *cell.borrow_mut() = Some(shared));
    for i in 0..count as u32 {
        let task = tokio::task::spawn_local(node_main(i));
        with(|g| g.side[i as usize].task = Some(task));
    }
    let outcome = supervise(end).await;
    let now = clock.now_ns();
    let Some(mut g) = SHARED.with(|cell| cell.borrow_mut().take()) else {
        unreachable!("real driver: the run state vanished")
    };
    for m in &mut g.side {
        if let Some(t) = m.task.take() {
            t.abort();
        }
    }
    if let Some(f) = g.fatal.take() {
        return Err(RealError::Limit(f));
    }
    let servers = topology.role(SERVERS).map_or(0..0, |r| r.first..r.first + r.count);
    let raft_logs = servers
        .filter_map(|n| match g.hosts.actor(NodeId(n)) {
            Node::Raft(r) => Some(r.raft().log_terms()),
            _ => None,
        })
        .collect();
    let virtual_ns = if outcome == Outcome::ReachedEnd { end.0 } else { now.min(end.0) };
    let mut records = Vec::new();
    g.hosts.take_records(&mut records);
    // Tasks that ran while the supervisor's last wake-up was late stamped past the end.
    records.retain(|r| r.time.0 <= virtual_ns);
    Ok(SimOutput {
        records,
        events: g.hosts.events(),
        outcome,
        network: g.net.stats,
        raft_logs,
        virtual_ns,
        send_errors: g.send_errors,
        foreign: g.foreign,
        timer_late_max: SimDuration(g.timer_late_max),
    })
}

/// Applies the fault schedule at its (scaled) times; returns at the end, at the event limit,
/// or when a message could not be sent.
async fn supervise(end: SimTime) -> Outcome {
    while let Some(at) = with(|g| g.schedule.next_at()) {
        if at > end {
            break;
        }
        if !wait_until(at).await {
            return Outcome::EventLimit;
        }
        with(Shared::apply_next);
    }
    if wait_until(end).await { Outcome::ReachedEnd } else { Outcome::EventLimit }
}

/// Sleeps until virtual time `t` in real steps of at most 100 ms, watching the event limit
/// and fatal errors; false if one of them stopped the run first.
async fn wait_until(t: SimTime) -> bool {
    let c = clock();
    loop {
        if with(|g| g.hosts.events() >= g.max_events || g.fatal.is_some()) {
            return false;
        }
        let now = Instant::now();
        let due = c.instant(t.0);
        if now >= due {
            return true;
        }
        sleep_until(due.min(now + Duration::from_millis(100))).await;
    }
}

/// One incarnation of node `i` (a restart runs a new one). Returns only if it cannot bind.
async fn node_main(i: u32) {
    let (k, me) = (i as usize, NodeId(i));
    let (first, start_at, port, c) = with(|g| {
        let m = &g.side[k];
        (g.hosts.incarnation(me) == 0, m.start_at, m.port, g.clock)
    });
    if first && start_at.0 > c.now_ns() {
        sleep_until(c.instant(start_at.0)).await;
    }
    let (socket, sender) = match bind(port) {
        Ok((s, t)) => (Rc::new(s), Rc::new(t)),
        Err(e) => {
            with(|g| g.fatal = Some(format!("node n{i} cannot bind a UDP socket on 127.0.0.1: {e}")));
            return;
        }
    };
    let (tx, mut rx) = unbounded_channel::<Wake<Msg, Timer>>();
    let mut wakes = Wakes::default();
    with(|g| {
        let m = &mut g.side[k];
        m.addr = socket.local_addr().ok();
        m.port = m.addr.map_or(0, |a| a.port());
        m.inbox = Some(tx);
        let incarnation = g.hosts.incarnation(me);
        g.run(me, &sender, &mut wakes, |h, now, io| h.start(now, me, incarnation, io));
    });
    loop {
        let now = c.now_ns();
        while let Some((at, what)) = wakes.pop_due(now) {
            with(|g| {
                g.timer_late_max = g.timer_late_max.max(now - at);
                g.run(me, &sender, &mut wakes, |h, now, io| h.wake(now, me, what, io));
            });
        }
        let deadline = wakes.next_deadline().unwrap_or(u64::MAX);
        tokio::select! {
            biased;
            Some(what) = rx.recv() => match what {
                Wake::Timer { .. } => wakes.insert(c.now_ns(), what),
                _ => with(|g| g.run(me, &sender, &mut wakes, |h, now, io| h.wake(now, me, what, io))),
            },
            ready = socket.readable() => {
                if ready.is_ok() {
                    receive(me, &socket, &sender, &mut wakes);
                }
            }
            _ = sleep_until(c.instant(deadline)) => {}
        }
    }
}

/// Handles up to [`DRAIN_MAX`] datagrams waiting on `socket`.
fn receive(me: NodeId, socket: &UdpSocket, sender: &Rc<std::net::UdpSocket>, wakes: &mut Wakes) {
    for _ in 0..DRAIN_MAX {
        let got = RECV.with(|b| {
            let mut buf = b.borrow_mut();
            match socket.try_recv_from(&mut buf) {
                Ok((n, _)) => Some(Ok(with(|g| codec::decode(g.nonce, &buf[..n])))),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                Err(e) => Some(Err(e)),
            }
        });
        match got {
            None => return,
            Some(Ok(Ok((from, msg)))) if with(|g| from.index() < g.hosts.len()) => {
                with(|g| g.run(me, sender, wakes, |h, now, io| h.deliver(now, from, me, msg, io)));
            }
            Some(Ok(_)) => with(|g| g.foreign += 1),
            // e.g. an ICMP error reported on the socket: nothing was received.
            Some(Err(_)) => {}
        }
    }
}

/// The transport of node `me`'s handlers: the core's network model decides each message's
/// fate; its own timers go to its task's heap.
struct Io<'a> {
    me: NodeId,
    clock: Clock,
    net: &'a mut Network,
    side: &'a [Side],
    sender: &'a Rc<std::net::UdpSocket>,
    wakes: &'a mut Wakes,
    wire: &'a mut Wire,
}

/// What putting frames on the wire needs.
struct Wire {
    nonce: u64,
    frame: Vec<u8>,
    send_errors: u64,
    fatal: Option<String>,
}

impl Shared {
    /// Runs `f` on the hosts with node `me`'s transport at the current virtual time.
    fn run(
        &mut self,
        me: NodeId,
        sender: &Rc<std::net::UdpSocket>,
        wakes: &mut Wakes,
        f: impl FnOnce(&mut Hosts<Node>, SimTime, &mut Io<'_>),
    ) {
        let now = SimTime(self.clock.now_ns());
        let mut wire = Wire {
            nonce: self.nonce,
            frame: std::mem::take(&mut self.frame),
            send_errors: 0,
            fatal: self.fatal.take(),
        };
        let Shared { hosts, net, side, clock, .. } = self;
        let mut io = Io { me, clock: *clock, net, side, sender, wakes, wire: &mut wire };
        f(hosts, now, &mut io);
        self.frame = wire.frame;
        self.send_errors += wire.send_errors;
        self.fatal = wire.fatal;
    }

    /// Applies the next scheduled fault (the supervisor's time has come for it).
    fn apply_next(&mut self) {
        let Some((idx, action)) = self.schedule.pop() else { return };
        let now = SimTime(self.clock.now_ns());
        self.hosts.record(now, NodeId(u32::MAX), FaultRecord::Applied(idx));
        let Shared { hosts, net, side, fault_rng, .. } = self;
        let applied = crate::support::apply_fault(hosts, now, &action, net, fault_rng, |n, w| {
            if let Some(tx) = &side[n.index()].inbox {
                let _ = tx.send(w);
            }
        });
        // A crash ends the node's task (its socket and timers go with it).
        for n in applied.crashed {
            let m = &mut side[n.index()];
            if let Some(t) = m.task.take() {
                t.abort();
            }
            m.addr = None;
            m.inbox = None;
        }
        for n in applied.restarted {
            side[n.index()].task = Some(tokio::task::spawn_local(node_main(n.0)));
        }
        let undo = applied.undo;
        if let Some((at, undo)) = undo {
            self.schedule.push_undo(at, idx, undo);
        }
    }
}

impl Transport<Msg, Timer> for Io<'_> {
    fn send(&mut self, _now: SimTime, from: NodeId, to: NodeId, msg: Msg) {
        for d in self.net.route(from, to).delays() {
            let hold = self.clock.real(d);
            if hold < TIMER_RESOLUTION {
                put_on_wire(self.wire, self.side, self.net, self.clock, from, to, msg.clone(), self.sender);
            } else {
                let (socket, msg) = (Rc::clone(self.sender), msg.clone());
                let due = Instant::now() + hold;
                tokio::task::spawn_local(async move {
                    sleep_until(due).await;
                    with(|g| {
                        let mut wire = Wire {
                            nonce: g.nonce,
                            frame: std::mem::take(&mut g.frame),
                            send_errors: 0,
                            fatal: g.fatal.take(),
                        };
                        put_on_wire(&mut wire, &g.side, &mut g.net, g.clock, from, to, msg, &socket);
                        g.frame = wire.frame;
                        g.send_errors += wire.send_errors;
                        g.fatal = wire.fatal;
                    });
                });
            }
        }
    }

    fn refuse(&mut self, _now: SimTime, from: NodeId, to: NodeId, msg: Msg) {
        refusal(self.side, self.net, self.clock, from, to, msg);
    }

    fn wake(&mut self, at: SimTime, node: NodeId, what: Wake<Msg, Timer>) {
        if node == self.me {
            self.wakes.insert(at.0, what);
        } else if let Some(tx) = &self.side[node.index()].inbox {
            let _ = tx.send(what);
        }
    }
}

/// Puts one datagram on the wire, or, if no process listens at `to` (no socket: crashed or not
/// started; a paused node's socket still takes datagrams), answers the sender with a refusal
/// one (scaled) latency later, as the core does.
#[allow(clippy::too_many_arguments)]
fn put_on_wire(
    wire: &mut Wire,
    side: &[Side],
    net: &mut Network,
    clock: Clock,
    from: NodeId,
    to: NodeId,
    msg: Msg,
    socket: &std::net::UdpSocket,
) {
    match side[to.index()].addr {
        Some(addr) => {
            codec::encode(wire.nonce, from, &msg, &mut wire.frame);
            if wire.frame.len() > MAX_DATAGRAM {
                let len = wire.frame.len();
                wire.fatal.get_or_insert_with(|| {
                    format!(
                        "node {from} sent a message of {len} bytes to {to}, more than one UDP datagram holds \
                         ({MAX_DATAGRAM} bytes)"
                    )
                });
                return;
            }
            if socket.send_to(&wire.frame, addr).is_err() {
                wire.send_errors += 1;
            }
        }
        _ => refusal(side, net, clock, from, to, msg),
    }
}

/// The refused connection: `from` hears of it one (scaled) latency later, subject to the
/// network like any message.
fn refusal(side: &[Side], net: &mut Network, clock: Clock, from: NodeId, to: NodeId, msg: Msg) {
    let back = match net.route(to, from) {
        Delivery::Dropped(_) => return,
        Delivery::Once(d) | Delivery::Twice(d, _) => d,
    };
    let Some(tx) = side[from.index()].inbox.clone() else { return };
    let hold = clock.real(back);
    if hold < TIMER_RESOLUTION {
        let _ = tx.send(Wake::Refused { to, msg });
    } else {
        let due = Instant::now() + hold;
        tokio::task::spawn_local(async move {
            sleep_until(due).await;
            let _ = tx.send(Wake::Refused { to, msg });
        });
    }
}
