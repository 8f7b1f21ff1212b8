//! The `--real` driver: the core's actors (`regsim::protocol::Node`) on a tokio current-thread
//! runtime with one real UDP socket per node on 127.0.0.1 (model, limits and tolerance: see
//! the parent module).
//!
//! The nodes are the kernel's `Hosts` (status, incarnations, timers and their cancellation,
//! pause deferral, crash and restart, clock skew, fault application: the same code the core
//! world runs); this driver supplies only the transport. Each node is a task
//! ([`node::node_main`]) on a `LocalSet` (actors are not `Send`): it binds its socket, runs
//! `on_start`, then loops: fire what is due for it (a task-local heap of timers, so they die
//! with the incarnation), then wait for a datagram, an inbox entry (a refusal, or what a pause
//! held back) or the next deadline. Everything the tasks share is in [`Shared`], a thread local
//! borrowed only between awaits. The supervisor applies the fault schedule (and the undo of
//! role faults) at its scaled times and stops the run at the scaled end. The run has its own
//! thread.
//!
//! This file holds the entry point ([`run`]), what it returns, and the state the tasks share
//! (the clock, each node's side of the runtime, [`Shared`]); [`supervisor`] sets a run up,
//! applies its faults and collects its output; [`node`] is a node's task and its transport
//! (the socket, sending through the core's network model, refusals).

mod node;
mod supervisor;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use regsim::fault::FaultAction;
use regsim::protocol::{Msg, Node, Obs};
use regsim::run::{Collector, DriverSummary, RunOutput};
use regsim::scenario::{Scenario, layout};
use regsim_kernel::net::{NetStats, Network};
use regsim_kernel::{Actor, Hosts, Outcome, Record, SimDuration, SimRng, SimTime, Wake};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{DIGEST, collector_view, wall_limit};
use crate::support::Schedule;

type Timer = <Node as Actor>::Timer;

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
        match tokio::time::timeout(limit, supervisor::simulate(s, l, scale)).await {
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
