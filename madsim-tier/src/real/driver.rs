//! The `--real` driver: the core's actors (`regsim::protocol::Node`) on a tokio current-thread
//! runtime with one real UDP socket per node on 127.0.0.1 (model, limits and tolerance: see
//! the parent module).
//!
//! Each node is a task ([`node_main`]) on a `LocalSet` (actors are not `Send`): it binds its
//! socket, runs `on_start`, then loops: fire the actor's due timers (a task-local heap, so they
//! die with the incarnation, as in the core), then wait for a datagram, a refusal or the next
//! deadline. Everything the tasks share — actors, their random streams and timer counters, the
//! network model, the observation log — is in [`Shared`], a thread local borrowed only between
//! awaits, as in the madsim driver. The supervisor applies the fault schedule at its scaled
//! times and stops the run at the scaled end. The run has its own thread.

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
use regsim_kernel::{Actor, Ctx, Effect, FaultRecord, NodeId, Outcome, Record, SimDuration, SimRng, SimTime};
use regsim_kernel::{Status, What, stream};
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::{DIGEST, TIMER_RESOLUTION, collector_view, wall_limit};
use crate::codec::{self, MAX_DATAGRAM};
use crate::timers::Timers;

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

struct Meta {
    status: Status,
    /// Whether the current incarnation has bound its socket and run `on_start`.
    started: bool,
    incarnation: u32,
    next_timer: u32,
    start_at: SimTime,
    /// The current incarnation's address (none while no process runs).
    addr: Option<SocketAddr>,
    /// The last port this node had (a restart tries it first).
    port: u16,
    task: Option<JoinHandle<()>>,
    resume: Rc<Notify>,
}

/// State shared by every task of one run (one thread; never borrowed across an await).
struct Shared {
    clock: Clock,
    nonce: u64,
    meta: Vec<Meta>,
    actors: Vec<Node>,
    rngs: Vec<SimRng>,
    net: Network,
    records: Vec<Record<Obs>>,
    events: u64,
    max_events: u64,
    effects: Vec<Effect<Msg, Timer>>,
    observed: Vec<Obs>,
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
    let mut meta = Vec::with_capacity(nodes.len());
    let mut actors = Vec::with_capacity(nodes.len());
    let mut rngs = Vec::with_capacity(nodes.len());
    for n in nodes {
        meta.push(Meta {
            status: Status::Up,
            started: false,
            incarnation: 0,
            next_timer: 0,
            start_at: n.start_at,
            addr: None,
            port: 0,
            task: None,
            resume: Rc::new(Notify::new()),
        });
        rngs.push(stream(seed, &n.stream));
        actors.push(n.actor);
    }
    let count = meta.len();
    let shared = Shared {
        clock,
        nonce: nonce(),
        meta,
        actors,
        rngs,
        net: network,
        records: Vec::new(),
        events: 0,
        max_events: s.limits.max_events,
        effects: Vec::new(),
        observed: Vec::new(),
        frame: Vec::with_capacity(256),
        send_errors: 0,
        foreign: 0,
        timer_late_max: 0,
        fatal: None,
    };
    SHARED.with(|cell| *cell.borrow_mut() = Some(shared));
    for i in 0..count as u32 {
        let task = tokio::task::spawn_local(node_main(i));
        with(|g| g.meta[i as usize].task = Some(task));
    }
    let outcome = supervise(faults, end).await;
    let now = clock.now_ns();
    let Some(mut g) = SHARED.with(|cell| cell.borrow_mut().take()) else {
        unreachable!("real driver: the run state vanished")
    };
    for m in &mut g.meta {
        if let Some(t) = m.task.take() {
            t.abort();
        }
    }
    if let Some(f) = g.fatal.take() {
        return Err(RealError::Limit(f));
    }
    let servers = topology.role(SERVERS).map_or(0..0, |r| r.first..r.first + r.count);
    let raft_logs = servers
        .filter_map(|n| match &g.actors[n as usize] {
            Node::Raft(r) => Some(r.raft().log_terms()),
            _ => None,
        })
        .collect();
    let virtual_ns = if outcome == Outcome::ReachedEnd { end.0 } else { now.min(end.0) };
    let mut records = std::mem::take(&mut g.records);
    // Tasks that ran while the supervisor's last wake-up was late stamped past the end.
    records.retain(|r| r.time.0 <= virtual_ns);
    Ok(SimOutput {
        records,
        events: g.events,
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
async fn supervise(faults: Vec<(SimTime, FaultAction)>, end: SimTime) -> Outcome {
    for (idx, (at, action)) in faults.into_iter().enumerate() {
        if at > end {
            break;
        }
        if !wait_until(at).await {
            return Outcome::EventLimit;
        }
        let idx = u32::try_from(idx).expect("real driver: more than 2^32 faults");
        with(|g| g.apply(idx, &action));
    }
    if wait_until(end).await { Outcome::ReachedEnd } else { Outcome::EventLimit }
}

/// Sleeps until virtual time `t` in real steps of at most 100 ms, watching the event limit
/// and fatal errors; false if one of them stopped the run first.
async fn wait_until(t: SimTime) -> bool {
    let c = clock();
    loop {
        if with(|g| g.events >= g.max_events || g.fatal.is_some()) {
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

enum Input {
    Refused { to: NodeId, msg: Msg },
}

/// What a node task lends to `Shared::dispatch` to carry out effects.
struct Io {
    sender: Rc<std::net::UdpSocket>,
    tx: UnboundedSender<Input>,
    timers: Timers,
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

/// One incarnation of node `i` (a restart runs a new one). Returns only if it cannot bind.
async fn node_main(i: u32) {
    let k = i as usize;
    let (first, start_at, port, resume, c) = with(|g| {
        let m = &g.meta[k];
        (m.incarnation == 0, m.start_at, m.port, Rc::clone(&m.resume), g.clock)
    });
    if first && start_at.0 > c.now_ns() {
        sleep_until(c.instant(start_at.0)).await;
    }
    while with(|g| g.meta[k].status == Status::Paused) {
        resume.notified().await;
    }
    let (socket, sender) = match bind(port) {
        Ok((s, t)) => (Rc::new(s), Rc::new(t)),
        Err(e) => {
            with(|g| g.fatal = Some(format!("node n{i} cannot bind a UDP socket on 127.0.0.1: {e}")));
            return;
        }
    };
    let (tx, mut rx) = unbounded_channel::<Input>();
    let mut io = Io { sender, tx, timers: Timers::default() };
    with(|g| {
        let m = &mut g.meta[k];
        m.addr = socket.local_addr().ok();
        m.port = m.addr.map_or(0, |a| a.port());
        m.started = true;
        g.dispatch(i, &mut io, |a, ctx| a.on_start(ctx));
    });
    // A refusal taken from the channel while the node was being paused waits for the resume.
    let mut held: Option<Input> = None;
    loop {
        while with(|g| g.meta[k].status == Status::Paused) {
            resume.notified().await;
        }
        if let Some(Input::Refused { to, msg }) = held.take() {
            with(|g| g.dispatch(i, &mut io, |a, ctx| a.on_refused(ctx, to, msg)));
        }
        let now = c.now_ns();
        while let Some((at, timer)) = io.timers.pop_due(now) {
            with(|g| {
                g.timer_late_max = g.timer_late_max.max(now - at);
                g.dispatch(i, &mut io, |a, ctx| a.on_timer(ctx, timer));
            });
        }
        let deadline = io.timers.next_deadline().unwrap_or(u64::MAX);
        tokio::select! {
            biased;
            Some(input) = rx.recv() => held = Some(input),
            ready = socket.readable() => {
                if ready.is_ok() && with(|g| g.meta[k].status != Status::Paused) {
                    receive(i, &socket, &mut io);
                }
            }
            _ = sleep_until(c.instant(deadline)) => {}
        }
    }
}

/// Handles up to [`DRAIN_MAX`] datagrams waiting on `socket`.
fn receive(i: u32, socket: &UdpSocket, io: &mut Io) {
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
            Some(Ok(Ok((from, msg)))) if with(|g| from.index() < g.meta.len()) => {
                with(|g| g.dispatch(i, io, |a, ctx| a.on_message(ctx, from, msg)));
            }
            Some(Ok(_)) => with(|g| g.foreign += 1),
            // e.g. an ICMP error reported on the socket: nothing was received.
            Some(Err(_)) => {}
        }
    }
}

impl Shared {
    /// Calls a handler of node `i`'s actor at the current virtual time and carries out its
    /// effects.
    fn dispatch(&mut self, i: u32, io: &mut Io, handler: impl FnOnce(&mut Node, &mut Ctx<'_, Msg, Timer, Obs>)) {
        let now = self.clock.now_ns();
        self.events += 1;
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
                Effect::Send { to, msg } => self.send(NodeId(i), to, msg, io),
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

    /// The core's network decides the message's fate (partition, loss, duplication, latency);
    /// each copy is delivered now or after its scaled latency.
    fn send(&mut self, from: NodeId, to: NodeId, msg: Msg, io: &Io) {
        assert!(to.index() < self.meta.len(), "real driver: node {from} sent to unknown node {to}");
        let delays = match self.net.route(from, to) {
            Delivery::Dropped(_) => return,
            Delivery::Once(d) => [Some(d), None],
            Delivery::Twice(d, e) => [Some(d), Some(e)],
        };
        for d in delays.into_iter().flatten() {
            let hold = self.clock.real(d);
            if hold < TIMER_RESOLUTION {
                self.deliver(from, to, msg.clone(), &io.sender, &io.tx);
            } else {
                let (socket, tx, msg) = (Rc::clone(&io.sender), io.tx.clone(), msg.clone());
                let due = Instant::now() + hold;
                tokio::task::spawn_local(async move {
                    sleep_until(due).await;
                    with(|g| g.deliver(from, to, msg, &socket, &tx));
                });
            }
        }
    }

    /// Puts one datagram on the wire, or, if no process runs at `to`, answers the sender with
    /// a refusal one (scaled) latency later, as the core does.
    fn deliver(
        &mut self,
        from: NodeId,
        to: NodeId,
        msg: Msg,
        socket: &std::net::UdpSocket,
        tx: &UnboundedSender<Input>,
    ) {
        let m = &self.meta[to.index()];
        match (m.status, m.started, m.addr) {
            (Status::Up | Status::Paused, true, Some(addr)) => {
                codec::encode(self.nonce, from, &msg, &mut self.frame);
                if self.frame.len() > MAX_DATAGRAM {
                    self.fatal.get_or_insert_with(|| {
                        format!(
                            "node {from} sent a message of {} bytes to {to}, more than one UDP datagram holds \
                             ({MAX_DATAGRAM} bytes)",
                            self.frame.len()
                        )
                    });
                    return;
                }
                if socket.send_to(&self.frame, addr).is_err() {
                    self.send_errors += 1;
                }
            }
            _ => {
                let back = match self.net.route(to, from) {
                    Delivery::Dropped(_) => return,
                    Delivery::Once(d) | Delivery::Twice(d, _) => d,
                };
                let hold = self.clock.real(back);
                if hold < TIMER_RESOLUTION {
                    let _ = tx.send(Input::Refused { to, msg });
                } else {
                    let (tx, due) = (tx.clone(), Instant::now() + hold);
                    tokio::task::spawn_local(async move {
                        sleep_until(due).await;
                        let _ = tx.send(Input::Refused { to, msg });
                    });
                }
            }
        }
    }

    fn record(&mut self, now: u64, node: NodeId, r: FaultRecord) {
        self.records.push(Record { time: SimTime(now), node, what: What::Fault(r) });
    }

    /// Carries out fault action `idx` (as `World::apply_fault` does).
    fn apply(&mut self, idx: u32, action: &FaultAction) {
        let now = self.clock.now_ns();
        self.record(now, NodeId(u32::MAX), FaultRecord::Applied(idx));
        match action {
            FaultAction::Crash(nodes) => {
                for n in nodes {
                    let m = &mut self.meta[n.index()];
                    if m.status == Status::Crashed {
                        continue;
                    }
                    if let Some(t) = m.task.take() {
                        t.abort();
                    }
                    m.status = Status::Crashed;
                    m.started = false;
                    m.incarnation += 1;
                    m.addr = None;
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
                    self.meta[n.index()].task = Some(tokio::task::spawn_local(node_main(n.0)));
                    self.record(now, *n, FaultRecord::Restarted);
                }
            }
            FaultAction::Pause(nodes) => {
                for n in nodes {
                    if self.meta[n.index()].status != Status::Up {
                        continue;
                    }
                    self.meta[n.index()].status = Status::Paused;
                    self.record(now, *n, FaultRecord::Paused);
                }
            }
            FaultAction::Resume(nodes) => {
                for n in nodes {
                    let m = &mut self.meta[n.index()];
                    if m.status != Status::Paused {
                        continue;
                    }
                    m.status = Status::Up;
                    m.resume.notify_one();
                    self.record(now, *n, FaultRecord::Resumed);
                }
            }
            FaultAction::Partition { id, partition } => {
                self.net.partition(*id, partition.clone());
                for n in 0..self.meta.len() as u32 {
                    if partition.affects(NodeId(n)) {
                        self.record(now, NodeId(n), FaultRecord::Partitioned(*id));
                    }
                }
            }
            FaultAction::Heal(id) => {
                let n = self.meta.len() as u32;
                let healed: Vec<(u32, Vec<NodeId>)> = self
                    .net
                    .active_partitions()
                    .filter(|(pid, _)| id.is_none_or(|want| want == *pid))
                    .map(|(pid, p)| (pid, (0..n).map(NodeId).filter(|x| p.affects(*x)).collect()))
                    .collect();
                self.net.heal(*id);
                for (pid, nodes) in healed {
                    nodes.into_iter().for_each(|x| self.record(now, x, FaultRecord::Healed(pid)));
                }
            }
            FaultAction::Skew { .. } | FaultAction::OnRole { .. } => {
                unreachable!("real driver: skew and role targets are rejected by real::check")
            }
        }
    }
}
