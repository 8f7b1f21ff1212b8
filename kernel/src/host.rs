//! Node hosts: what every runtime needs around a sans-IO actor, written once.
//!
//! [`Hosts`] keeps, for every node, its status and incarnation, whether its `on_start` ran,
//! its timer-id counter and cancelled timers, what came due while it was paused, its local
//! clock and random stream, and the actor itself; it counts and hashes every event it
//! processes (the digest) and logs observations and fault records. A runtime supplies only a
//! [`Transport`]: how a message travels, how a refusal comes back, and how a node is woken at
//! a time (a timer, a start, a deferred event). The core world is one such runtime (a queue
//! and the network model); a test harness or another scheduler can be another.
//!
//! Node semantics:
//! - **not started yet** (before its start time, or between a restart and its `on_start`) or
//!   **crashed**: the host is up but no process listens, so a message to it is refused;
//! - **crash**: the node stops; its pending timers die with its incarnation; the actor's
//!   `crash` drops its in-memory state;
//! - **restart**: a new incarnation; `on_start` runs again at the restart time;
//! - **pause** (a GC stall): the node processes nothing; what comes due waits, in order, and
//!   is handled at `resume` (so timers fire late); it sends nothing;
//! - **skew**: the node's local clock steps to `true time + offset` and drifts by `ppm`.
//!
//! Per-node fields are kept as a struct of arrays: the fields every event reads ([`Meta`], 16
//! bytes, four per cache line) apart from the actor, its random stream and the rarely used
//! lists, so checking a timer's incarnation does not pull a whole actor into the cache.

use std::hash::Hash;

use crate::actor::{Actor, Ctx, Effect, NodeId, Record, TimerId, What};
use crate::clock::{Clocks, LocalClock};
use crate::digest::Digest;
use crate::fault::{FaultAction, FaultRecord, Resolve, RoleFault};
use crate::net::{Network, Partition, Shape};
use crate::rng::{SimRng, stream};
use crate::time::SimTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Up,
    Paused,
    Crashed,
}

/// Something a node is woken for. `Deliver` and `Refused` name the other end (`from` sent the
/// message; `to` refused it).
#[derive(Clone, Debug)]
pub enum Wake<M, T> {
    Start { incarnation: u32 },
    Deliver { from: NodeId, msg: M },
    Refused { to: NodeId, msg: M },
    Timer { incarnation: u32, id: TimerId, timer: T },
}

/// What a runtime supplies to carry out a node's effects.
pub trait Transport<M, T> {
    /// Carries `msg`, sent at `now`, from `from` to `to` (or loses it).
    fn send(&mut self, now: SimTime, from: NodeId, to: NodeId, msg: M);
    /// No process listens at `to`: its host answers `from` with a refused connection.
    fn refuse(&mut self, now: SimTime, from: NodeId, to: NodeId, msg: M);
    /// Wakes `node` at true time `at` (never earlier than now) for `what`.
    fn wake(&mut self, at: SimTime, node: NodeId, what: Wake<M, T>);
    /// Timer `id` of `node`'s incarnation `incarnation` comes due at true time `at`: a
    /// [`Wake::Timer`], on the hot path of every run (a runtime may store it without building
    /// the `Wake`).
    #[inline]
    fn set_timer(&mut self, at: SimTime, node: NodeId, incarnation: u32, id: TimerId, timer: T) {
        self.wake(at, node, Wake::Timer { incarnation, id, timer });
    }
}

/// The per-node fields every event reads.
#[derive(Clone, Copy)]
struct Meta {
    status: Status,
    /// Whether `on_start` of the current incarnation ran; a node that is not running yet
    /// receives nothing (messages to it are refused).
    started: bool,
    incarnation: u32,
    /// Number of ids in this node's `cancelled` list (0 on the fast path).
    cancelled: u32,
    next_timer: u32,
    /// Whether the node's clock is not true time (its oscillator drifts, or it was skewed):
    /// then `clocks` holds it; otherwise the node reads true time and `clocks` is not touched.
    skewed: bool,
}

const _: () = assert!(std::mem::size_of::<Meta>() == 16);

/// Rarely touched per-node lists.
struct Aux<M, T> {
    cancelled: Vec<TimerId>,
    deferred: Vec<Wake<M, T>>,
}

/// Every node of one run, with the digest and the log.
pub struct Hosts<A: Actor> {
    seed: u64,
    meta: Vec<Meta>,
    clocks: Vec<LocalClock>,
    actors: Vec<A>,
    rngs: Vec<SimRng>,
    aux: Vec<Aux<A::Msg, A::Timer>>,
    records: Vec<Record<A::Obs>>,
    digest: Digest,
    events: u64,
    effects: Vec<Effect<A::Msg, A::Timer>>,
    /// Oscillator drift and timer jitter (perfect unless set).
    imperfect: Clocks,
}

impl<A: Actor> Hosts<A> {
    /// Random streams are named under `seed` (see [`Hosts::add`]).
    pub fn new(seed: u64) -> Self {
        Hosts {
            seed,
            meta: Vec::new(),
            clocks: Vec::new(),
            actors: Vec::new(),
            rngs: Vec::new(),
            aux: Vec::new(),
            records: Vec::new(),
            digest: Digest::default(),
            events: 0,
            effects: Vec::new(),
            imperfect: Clocks::default(),
        }
    }

    /// Gives every node added from now on its own drift, and every timer its jitter.
    pub fn set_clocks(&mut self, clocks: Clocks) {
        self.imperfect = clocks;
    }

    /// Adds a node whose random stream is named `stream_name` (e.g. `instances/17`); the
    /// runtime wakes it with `Wake::Start { incarnation: 0 }` at its start time.
    pub fn add(&mut self, stream_name: &str, actor: A) -> NodeId {
        let id = NodeId(u32::try_from(self.meta.len()).expect("hosts: more than 2^32 nodes"));
        let drift = self.imperfect.drift_ppm(id.0);
        self.meta.push(Meta {
            status: Status::Up,
            started: false,
            incarnation: 0,
            cancelled: 0,
            next_timer: 0,
            skewed: drift != 0,
        });
        self.clocks.push(LocalClock::drifting(drift));
        self.actors.push(actor);
        self.rngs.push(stream(self.seed, stream_name));
        self.aux.push(Aux { cancelled: Vec::new(), deferred: Vec::new() });
        id
    }

    pub fn len(&self) -> usize {
        self.meta.len()
    }
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }
    pub fn actor(&self, n: NodeId) -> &A {
        &self.actors[n.index()]
    }
    /// For drivers reading an actor's state out after a run (never during one).
    pub fn actor_mut(&mut self, n: NodeId) -> &mut A {
        &mut self.actors[n.index()]
    }
    pub fn status(&self, n: NodeId) -> Status {
        self.meta[n.index()].status
    }
    /// Whether `n` is up and its current incarnation's `on_start` ran.
    pub fn running(&self, n: NodeId) -> bool {
        let m = self.meta[n.index()];
        m.status == Status::Up && m.started
    }
    /// Whether a process listens at `n` (up or paused, its `on_start` ran): a message to a node
    /// that is not listening is refused.
    pub fn listening(&self, n: NodeId) -> bool {
        let m = self.meta[n.index()];
        m.status != Status::Crashed && m.started
    }
    /// The running nodes with their actors, in id order (for role resolvers).
    pub fn running_actors(&self) -> Vec<(NodeId, &A)> {
        (0..self.meta.len())
            .map(|i| NodeId(i as u32))
            .filter(|n| self.running(*n))
            .map(|n| (n, self.actor(n)))
            .collect()
    }
    pub fn incarnation(&self, n: NodeId) -> u32 {
        self.meta[n.index()].incarnation
    }
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn digest_hex(&self) -> String {
        self.digest.hex()
    }
    pub fn records(&self) -> &[Record<A::Obs>] {
        &self.records
    }
    /// Swaps the records logged so far into `buf` (which must be empty; metrics consume the
    /// log in chunks to bound memory, and passing the buffer back keeps its capacity).
    pub fn take_records(&mut self, buf: &mut Vec<Record<A::Obs>>) {
        debug_assert!(buf.is_empty(), "take_records: buffer not empty");
        std::mem::swap(&mut self.records, buf);
    }
    /// Logs fault record `r` of `node` at `now`.
    pub fn record(&mut self, now: SimTime, node: NodeId, r: FaultRecord) {
        self.records.push(Record { time: now, node, what: What::Fault(r) });
    }

    /// Counts and hashes one event: its true time, a tag (1 start, 2 message, 3 timer, 4 fault,
    /// 5 refusal; bits 8.. name the other end), the node and the payload.
    pub fn fold(&mut self, now: SimTime, tag: u64, node: NodeId, payload: &impl Hash) {
        self.events += 1;
        self.digest.fold(now.0);
        self.digest.fold(tag << 32 | u64::from(node.0));
        payload.hash(&mut self.digest);
    }

    /// Hints the cache that `node`'s fields are about to be read (see `prefetch`).
    #[inline]
    pub fn prefetch(&self, node: NodeId) {
        if let (Some(m), Some(a)) = (self.meta.get(node.index()), self.actors.get(node.index())) {
            crate::prefetch::prefetch(m);
            crate::prefetch::prefetch(a);
        }
    }

    /// Processes `what` for `node` at `now`.
    #[inline]
    pub fn wake(
        &mut self,
        now: SimTime,
        node: NodeId,
        what: Wake<A::Msg, A::Timer>,
        out: &mut impl Transport<A::Msg, A::Timer>,
    ) {
        match what {
            Wake::Start { incarnation } => self.start(now, node, incarnation, out),
            Wake::Deliver { from, msg } => self.deliver(now, from, node, msg, out),
            Wake::Refused { to, msg } => self.refused(now, node, to, msg, out),
            Wake::Timer { incarnation, id, timer } => self.timer(now, node, incarnation, id, timer, out),
        }
    }

    /// Runs `on_start` of `node`'s incarnation `incarnation` (if it is still the current one).
    pub fn start(&mut self, now: SimTime, node: NodeId, incarnation: u32, out: &mut impl Transport<A::Msg, A::Timer>) {
        let m = self.meta[node.index()];
        if m.incarnation != incarnation {
            return;
        }
        match m.status {
            Status::Paused => self.aux[node.index()].deferred.push(Wake::Start { incarnation }),
            Status::Crashed => {}
            Status::Up => {
                self.meta[node.index()].started = true;
                self.fold(now, 1, node, &());
                self.dispatch(now, node, out, |a, ctx| a.on_start(ctx));
            }
        }
    }

    /// `msg` from `from` arrives at `to`.
    #[inline]
    pub fn deliver(
        &mut self,
        now: SimTime,
        from: NodeId,
        to: NodeId,
        msg: A::Msg,
        out: &mut impl Transport<A::Msg, A::Timer>,
    ) {
        let m = self.meta[to.index()];
        match m.status {
            Status::Crashed => out.refuse(now, from, to, msg),
            _ if !m.started => out.refuse(now, from, to, msg),
            Status::Paused => self.aux[to.index()].deferred.push(Wake::Deliver { from, msg }),
            Status::Up => {
                self.fold(now, 2 | u64::from(from.0) << 8, to, &msg);
                self.dispatch(now, to, out, |a, ctx| a.on_message(ctx, from, msg));
            }
        }
    }

    /// The refusal of `msg` (sent by `from` to `to`, where no process listened) reaches `from`.
    pub fn refused(
        &mut self,
        now: SimTime,
        from: NodeId,
        to: NodeId,
        msg: A::Msg,
        out: &mut impl Transport<A::Msg, A::Timer>,
    ) {
        let m = self.meta[from.index()];
        match m.status {
            Status::Up if m.started => {
                self.fold(now, 5 | u64::from(to.0) << 8, from, &msg);
                self.dispatch(now, from, out, |a, ctx| a.on_refused(ctx, to, msg));
            }
            Status::Paused => self.aux[from.index()].deferred.push(Wake::Refused { to, msg }),
            _ => {}
        }
    }

    /// Timer `id` of `node`'s incarnation `incarnation` comes due (ignored if the incarnation
    /// ended or the timer was cancelled).
    #[inline]
    pub fn timer(
        &mut self,
        now: SimTime,
        node: NodeId,
        incarnation: u32,
        id: TimerId,
        timer: A::Timer,
        out: &mut impl Transport<A::Msg, A::Timer>,
    ) {
        let m = &mut self.meta[node.index()];
        if m.incarnation != incarnation {
            return;
        }
        if m.cancelled > 0 {
            let list = &mut self.aux[node.index()].cancelled;
            if let Some(pos) = list.iter().position(|c| *c == id) {
                list.swap_remove(pos);
                m.cancelled -= 1;
                return;
            }
        }
        match m.status {
            Status::Paused => self.aux[node.index()].deferred.push(Wake::Timer { incarnation, id, timer }),
            Status::Crashed => {}
            Status::Up => {
                self.fold(now, 3, node, &timer);
                self.dispatch(now, node, out, |a, ctx| a.on_timer(ctx, timer));
            }
        }
    }

    /// Calls a handler of `node`'s actor and carries out the effects it recorded, in order.
    fn dispatch(
        &mut self,
        now: SimTime,
        node: NodeId,
        out: &mut impl Transport<A::Msg, A::Timer>,
        handler: impl FnOnce(&mut A, &mut Ctx<'_, A::Msg, A::Timer, A::Obs>),
    ) {
        let i = node.index();
        let Hosts { meta, clocks, actors, rngs, aux, records, effects, imperfect, .. } = self;
        let m = &mut meta[i];
        let clock = if m.skewed { clocks[i] } else { LocalClock::default() };
        let incarnation = m.incarnation;
        let mut ctx = Ctx::new(node, (now, clock.local(now)), &mut rngs[i], &mut m.next_timer, effects, records);
        handler(&mut actors[i], &mut ctx);
        let n_nodes = meta.len();
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, msg } => {
                    assert!(to.index() < n_nodes, "hosts: node {node} sent to unknown node {to}");
                    out.send(now, node, to, msg)
                }
                Effect::SetTimer { id, delay, timer } => {
                    let at = now + clock.true_delay(delay) + imperfect.jitter(node.0, id.0);
                    out.set_timer(at, node, incarnation, id, timer)
                }
                Effect::CancelTimer(id) => {
                    aux[i].cancelled.push(id);
                    meta[i].cancelled += 1;
                }
            }
        }
    }

    /// Crashes `n` (a no-op if it is crashed already).
    pub fn crash(&mut self, now: SimTime, n: NodeId) {
        let m = &mut self.meta[n.index()];
        if m.status == Status::Crashed {
            return;
        }
        m.status = Status::Crashed;
        m.started = false;
        m.incarnation += 1;
        m.cancelled = 0;
        let aux = &mut self.aux[n.index()];
        aux.deferred.clear();
        aux.cancelled.clear();
        self.actors[n.index()].crash();
        self.record(now, n, FaultRecord::Crashed);
    }

    /// Restarts a crashed `n`: its new incarnation starts at `now`.
    pub fn restart(&mut self, now: SimTime, n: NodeId, wake: &mut impl FnMut(SimTime, NodeId, Wake<A::Msg, A::Timer>)) {
        let m = &mut self.meta[n.index()];
        if m.status != Status::Crashed {
            return;
        }
        m.status = Status::Up;
        let incarnation = m.incarnation;
        wake(now, n, Wake::Start { incarnation });
        self.record(now, n, FaultRecord::Restarted);
    }

    pub fn pause(&mut self, now: SimTime, n: NodeId) {
        let m = &mut self.meta[n.index()];
        if m.status != Status::Up {
            return;
        }
        m.status = Status::Paused;
        self.record(now, n, FaultRecord::Paused);
    }

    /// Resumes a paused `n`: what came due meanwhile is woken at `now`, in order.
    pub fn resume(&mut self, now: SimTime, n: NodeId, wake: &mut impl FnMut(SimTime, NodeId, Wake<A::Msg, A::Timer>)) {
        let m = &mut self.meta[n.index()];
        if m.status != Status::Paused {
            return;
        }
        m.status = Status::Up;
        for what in std::mem::take(&mut self.aux[n.index()].deferred) {
            wake(now, n, what);
        }
        self.record(now, n, FaultRecord::Resumed);
    }

    /// Steps `n`'s clock to `true time + offset_ns` from `now` on, drifting by `drift_ppm`.
    pub fn skew(&mut self, now: SimTime, n: NodeId, offset_ns: i64, drift_ppm: i64) {
        self.meta[n.index()].skewed = true;
        let base = self.imperfect.drift_ppm(n.0);
        self.clocks[n.index()].set_skew(now, offset_ns, drift_ppm, base);
        self.record(now, n, FaultRecord::ClockSkewed { offset_ns, drift_ppm });
    }

    /// Carries out fault `action` at `now` on these hosts and the network model `net`
    /// (partitions cut links at send time), resolving role targets with `resolver` and `rng`.
    /// Records the ground truth. Returns the undo of a role fault with a duration (a restart,
    /// a resume, a heal) and when to apply it: the runtime schedules it.
    pub fn apply_fault(
        &mut self,
        now: SimTime,
        action: &FaultAction,
        net: &mut Network,
        resolver: &dyn Resolve<A>,
        rng: &mut SimRng,
        wake: &mut impl FnMut(SimTime, NodeId, Wake<A::Msg, A::Timer>),
    ) -> Option<(SimTime, FaultAction)> {
        let n_nodes = self.len() as u32;
        match action {
            FaultAction::Crash(nodes) => nodes.iter().for_each(|n| self.crash(now, *n)),
            FaultAction::Restart(nodes) => nodes.iter().for_each(|n| self.restart(now, *n, wake)),
            FaultAction::Pause(nodes) => nodes.iter().for_each(|n| self.pause(now, *n)),
            FaultAction::Resume(nodes) => nodes.iter().for_each(|n| self.resume(now, *n, wake)),
            FaultAction::Partition { id, partition } => {
                net.partition(*id, partition.clone());
                for n in (0..n_nodes).map(NodeId).filter(|n| partition.affects(*n)) {
                    self.record(now, n, FaultRecord::Partitioned(*id));
                }
            }
            FaultAction::Heal(id) => {
                let healed: Vec<(u32, Vec<NodeId>)> = net
                    .active_partitions()
                    .filter(|(pid, _)| id.is_none_or(|want| want == *pid))
                    .map(|(pid, p)| (pid, (0..n_nodes).map(NodeId).filter(|n| p.affects(*n)).collect()))
                    .collect();
                net.heal(*id);
                for (pid, nodes) in healed {
                    nodes.into_iter().for_each(|n| self.record(now, n, FaultRecord::Healed(pid)));
                }
            }
            FaultAction::OnRole { who, what, undo_after } => {
                let n = resolver.resolve(*who, &self.running_actors(), rng)?;
                let undo = match what {
                    RoleFault::Crash => {
                        self.crash(now, n);
                        FaultAction::Restart(vec![n])
                    }
                    RoleFault::Pause => {
                        self.pause(now, n);
                        FaultAction::Resume(vec![n])
                    }
                    RoleFault::Isolate(id) => {
                        self.record(now, n, FaultRecord::Isolated(*id));
                        let p = Partition::build(&Shape::Isolate(vec![n]), n_nodes as usize, false)
                            .expect("isolating one existing node is a valid partition");
                        self.apply_fault(
                            now,
                            &FaultAction::Partition { id: *id, partition: p },
                            net,
                            resolver,
                            rng,
                            wake,
                        );
                        FaultAction::Heal(Some(*id))
                    }
                };
                return undo_after.map(|d| (now + d, undo));
            }
            FaultAction::Skew { nodes, offset_ns, drift_ppm } => {
                nodes.iter().for_each(|n| self.skew(now, *n, *offset_ns, *drift_ppm));
            }
        }
        None
    }
}
