//! The world: nodes, the event queue, the network and the fault schedule.
//!
//! `World::step` processes one event; `run_until` loops until the end of virtual time, the
//! event limit, or an empty queue, each a named [`Outcome`]. Node semantics under faults:
//! - **not started yet** (before its start time, or between a restart and its `on_start`) or
//!   **crashed**: the host is up but no process listens, so a message to it is refused: the
//!   sender's `on_refused` runs one latency later (the refusal can be lost or cut off too);
//! - **crash**: the node stops; its pending timers die with its
//!   incarnation; the actor's `crash` drops its in-memory state;
//! - **restart**: a new incarnation; `on_start` runs again at the restart time;
//! - **pause** (a GC stall): the node processes nothing; messages and timers that come due
//!   wait, in order, and are handled at `resume` (so timers fire late); it sends nothing;
//! - **skew**: the node's local clock steps to `true time + offset` and drifts by `ppm`.
//!
//! Every processed event is folded into the digest (time, kind, node, payload hash), and every
//! fault that changes a node's state is recorded as ground truth with its true time.

use std::hash::Hash;

use super::actor::{Actor, Ctx, Effect, NodeId, TimerId};
use super::clock::LocalClock;
use super::digest::Digest;
use super::queue::EventQueue;
use super::rng::{SimRng, stream};
use super::time::SimTime;
use crate::fault::{FaultAction, RoleFault, RoleTarget};
use crate::net::{Delivery, Network};
use crate::net::{Partition, Shape};

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Virtual time reached the scenario's end.
    ReachedEnd,
    /// The queue ran dry before the end (nothing left that could happen).
    NoEventsLeft,
    /// The event limit was hit before the end: the run is incomplete.
    EventLimit,
}

impl Outcome {
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::ReachedEnd => "reached the end of virtual time",
            Outcome::NoEventsLeft => "no events left before the end of virtual time",
            Outcome::EventLimit => "stopped at the event limit (limits.max_events) before the end",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Up,
    Paused,
    Crashed,
}

/// Ground truth recorded by the fault injector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultRecord {
    Crashed,
    Restarted,
    Paused,
    Resumed,
    /// The node was cut off from some nodes by partition `id`.
    Partitioned(u32),
    /// Partition `id` affecting the node was healed.
    Healed(u32),
    ClockSkewed {
        offset_ns: i64,
        drift_ppm: i64,
    },
    /// Fault action number `.0` of the schedule (`World::fault_actions`) was applied; recorded
    /// once per action (node `NodeId(u32::MAX)`), before its per-node records.
    Applied(u32),
    /// A `leader` or `follower[random]` target resolved to this node, which partition `id` now
    /// isolates from every other node (recorded before the partition's per-node records).
    Isolated(u32),
}

#[derive(Clone, Debug, PartialEq)]
pub enum What<O> {
    Actor(O),
    Fault(FaultRecord),
}

/// One timestamped entry of the observation log.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<O> {
    pub time: SimTime,
    pub node: NodeId,
    pub what: What<O>,
}

/// Bytes one queued event of these message and timer types takes in the calendar (for size
/// checks in protocol tests: the queue moves events, so they should stay small).
pub fn queued_event_size<M, T>() -> usize {
    std::mem::size_of::<super::queue::QueuedSize<Event<M, T>>>()
}

enum Event<M, T> {
    Start {
        node: NodeId,
        incarnation: u32,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: M,
    },
    /// The refusal of `msg` (sent by `from` to a node without a running process `to`).
    Refused {
        from: NodeId,
        to: NodeId,
        msg: M,
    },
    Timer {
        node: NodeId,
        incarnation: u32,
        id: TimerId,
        timer: T,
    },
    Fault(u32),
}

/// The per-node fields every event reads, kept small and together (a struct of arrays: the
/// actor, its random stream and the rarely used lists live in their own vectors, so checking
/// a timer's incarnation does not pull a whole actor into the cache).
#[derive(Clone, Copy)]
struct Meta {
    status: Status,
    /// Whether `on_start` of the current incarnation ran; a node that is not running yet
    /// receives nothing (messages to it are dropped, like a refused connection).
    started: bool,
    incarnation: u32,
    /// Number of ids in this node's `cancelled` list (0 on the fast path).
    cancelled: u32,
    next_timer: u32,
    /// Whether the node's clock was ever skewed (then `World::clocks` holds it; otherwise the
    /// node reads true time and `clocks` is not touched, keeping `Meta` at 16 bytes).
    skewed: bool,
}

// Four metas per cache line: the world reads one at random per event.
const _: () = assert!(std::mem::size_of::<Meta>() == 16);

/// Rarely touched per-node lists.
struct Aux<M, T> {
    cancelled: Vec<TimerId>,
    deferred: Vec<Event<M, T>>,
}

pub struct World<A: Actor> {
    seed: u64,
    now: SimTime,
    meta: Vec<Meta>,
    clocks: Vec<LocalClock>,
    actors: Vec<A>,
    rngs: Vec<SimRng>,
    /// Draws for targets resolved when a fault fires (`follower[random]`).
    fault_rng: SimRng,
    aux: Vec<Aux<A::Msg, A::Timer>>,
    queue: EventQueue<Event<A::Msg, A::Timer>>,
    net: Network,
    faults: Vec<FaultAction>,
    /// (time, index into `faults`) of every fault applied, in order: ground truth for metrics
    /// that need more than per-node records (e.g. who could reach whom during a partition).
    applied: Vec<(SimTime, u32)>,
    records: Vec<Record<A::Obs>>,
    digest: Digest,
    events: u64,
    effects: Vec<Effect<A::Msg, A::Timer>>,
    observed: Vec<A::Obs>,
}

impl<A: Actor> World<A> {
    pub fn new(seed: u64, net: Network) -> Self {
        World {
            seed,
            now: SimTime::ZERO,
            meta: Vec::new(),
            clocks: Vec::new(),
            actors: Vec::new(),
            rngs: Vec::new(),
            fault_rng: stream(seed, "faults/fire"),
            aux: Vec::new(),
            queue: EventQueue::new(),
            net,
            faults: Vec::new(),
            applied: Vec::new(),
            records: Vec::new(),
            digest: Digest::default(),
            events: 0,
            effects: Vec::new(),
            observed: Vec::new(),
        }
    }

    /// Adds a node whose random stream is named `stream_name` (e.g. `instances/17`) and
    /// which starts at `start_at`.
    pub fn add_node(&mut self, stream_name: &str, actor: A, start_at: SimTime) -> NodeId {
        let id = NodeId(u32::try_from(self.meta.len()).expect("world: more than 2^32 nodes"));
        self.meta.push(Meta {
            status: Status::Up,
            started: false,
            incarnation: 0,
            cancelled: 0,
            next_timer: 0,
            skewed: false,
        });
        self.clocks.push(LocalClock::default());
        self.actors.push(actor);
        self.rngs.push(stream(self.seed, stream_name));
        self.aux.push(Aux { cancelled: Vec::new(), deferred: Vec::new() });
        self.queue.push(start_at, Event::Start { node: id, incarnation: 0 });
        id
    }

    /// Schedules a fault action at `at`.
    pub fn schedule_fault(&mut self, at: SimTime, action: FaultAction) {
        let idx = u32::try_from(self.faults.len()).expect("world: more than 2^32 faults");
        self.faults.push(action);
        self.queue.push(at, Event::Fault(idx));
    }

    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn digest_hex(&self) -> String {
        self.digest.hex()
    }
    /// The faults applied so far, with their times, in order.
    pub fn applied_faults(&self) -> impl Iterator<Item = (SimTime, &FaultAction)> {
        self.applied.iter().map(|(t, i)| (*t, &self.faults[*i as usize]))
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
    /// The fault schedule, indexed as `FaultRecord::Applied` refers to it.
    pub fn fault_actions(&self) -> &[FaultAction] {
        &self.faults
    }
    pub fn network(&self) -> &Network {
        &self.net
    }
    pub fn node_count(&self) -> usize {
        self.meta.len()
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
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    /// Runs until virtual time passes `end` (events at `end` are processed), the queue is empty,
    /// or `max_events` events have been processed.
    pub fn run_until(&mut self, end: SimTime, max_events: u64) -> Outcome {
        loop {
            match self.queue.peek_time() {
                None => return Outcome::NoEventsLeft,
                Some(t) if t > end => {
                    self.now = end;
                    return Outcome::ReachedEnd;
                }
                Some(_) => {}
            }
            if self.events >= max_events {
                return Outcome::EventLimit;
            }
            self.step();
        }
    }

    /// Processes the next event; returns false if the queue was empty.
    pub fn step(&mut self) -> bool {
        let Some((time, event)) = self.queue.pop() else {
            return false;
        };
        debug_assert!(time >= self.now, "time went backwards: {time} < {}", self.now);
        self.now = time;
        self.prefetch_next();
        match event {
            Event::Start { node, incarnation } => {
                let m = self.meta[node.index()];
                if m.incarnation != incarnation {
                    return true;
                }
                match m.status {
                    Status::Paused => self.aux[node.index()].deferred.push(Event::Start { node, incarnation }),
                    Status::Crashed => {}
                    Status::Up => {
                        self.meta[node.index()].started = true;
                        self.fold(1, node, &());
                        self.dispatch(node, |a, ctx| a.on_start(ctx));
                    }
                }
            }
            Event::Deliver { from, to, msg } => match self.meta[to.index()].status {
                Status::Crashed => self.refuse(from, to, msg),
                _ if !self.meta[to.index()].started => self.refuse(from, to, msg),
                Status::Paused => self.aux[to.index()].deferred.push(Event::Deliver { from, to, msg }),
                Status::Up => {
                    self.fold(2 | u64::from(from.0) << 8, to, &msg);
                    self.dispatch(to, |a, ctx| a.on_message(ctx, from, msg));
                }
            },
            Event::Refused { from, to, msg } => match self.meta[from.index()].status {
                Status::Up if self.meta[from.index()].started => {
                    self.fold(5 | u64::from(to.0) << 8, from, &msg);
                    self.dispatch(from, |a, ctx| a.on_refused(ctx, to, msg));
                }
                Status::Paused => self.aux[from.index()].deferred.push(Event::Refused { from, to, msg }),
                _ => {}
            },
            Event::Timer { node, incarnation, id, timer } => {
                let m = &mut self.meta[node.index()];
                if m.incarnation != incarnation {
                    return true;
                }
                if m.cancelled > 0 {
                    let list = &mut self.aux[node.index()].cancelled;
                    if let Some(pos) = list.iter().position(|c| *c == id) {
                        list.swap_remove(pos);
                        m.cancelled -= 1;
                        return true;
                    }
                }
                match m.status {
                    Status::Paused => {
                        self.aux[node.index()].deferred.push(Event::Timer { node, incarnation, id, timer })
                    }
                    Status::Crashed => {}
                    Status::Up => {
                        self.fold(3, node, &timer);
                        self.dispatch(node, |a, ctx| a.on_timer(ctx, timer));
                    }
                }
            }
            Event::Fault(idx) => {
                self.fold(4, NodeId(idx), &());
                let action = std::mem::replace(&mut self.faults[idx as usize], FaultAction::Heal(None));
                self.record(NodeId(u32::MAX), FaultRecord::Applied(idx));
                self.apply_fault(&action);
                self.faults[idx as usize] = action;
                self.applied.push((self.now, idx));
            }
        }
        true
    }

    /// Prefetches the per-node state the next queued event will read (see `prefetch`).
    #[inline]
    fn prefetch_next(&self) {
        let node = match self.queue.peek_loaded() {
            Some(Event::Deliver { to, .. }) => *to,
            Some(Event::Timer { node, .. } | Event::Start { node, .. }) => *node,
            Some(Event::Refused { from, .. }) => *from,
            Some(Event::Fault(_)) | None => return,
        };
        if let (Some(m), Some(a)) = (self.meta.get(node.index()), self.actors.get(node.index())) {
            super::prefetch::prefetch(m);
            super::prefetch::prefetch(a);
        }
    }

    fn fold(&mut self, tag: u64, node: NodeId, payload: &impl Hash) {
        self.events += 1;
        self.digest.fold(self.now.0);
        self.digest.fold(tag << 32 | u64::from(node.0));
        payload.hash(&mut self.digest);
    }

    /// Calls a handler of `node`'s actor and carries out the effects it recorded.
    fn dispatch(&mut self, node: NodeId, handler: impl FnOnce(&mut A, &mut Ctx<'_, A::Msg, A::Timer, A::Obs>)) {
        let i = node.index();
        let m = &mut self.meta[i];
        let clock = if m.skewed { self.clocks[i] } else { LocalClock::default() };
        let incarnation = m.incarnation;
        let mut ctx = Ctx::new(
            node,
            clock.local(self.now),
            &mut self.rngs[i],
            &mut m.next_timer,
            &mut self.effects,
            &mut self.observed,
        );
        handler(&mut self.actors[i], &mut ctx);
        let mut effects = std::mem::take(&mut self.effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, msg } => self.send(node, to, msg),
                Effect::SetTimer { id, delay, timer } => {
                    let at = self.now + clock.true_delay(delay);
                    self.queue.push(at, Event::Timer { node, incarnation, id, timer });
                }
                Effect::CancelTimer(id) => {
                    self.aux[i].cancelled.push(id);
                    self.meta[i].cancelled += 1;
                }
            }
        }
        self.effects = effects;
        for obs in self.observed.drain(..) {
            self.records.push(Record { time: self.now, node, what: What::Actor(obs) });
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: A::Msg) {
        assert!(to.index() < self.meta.len(), "world: node {from} sent to unknown node {to}");
        match self.net.route(from, to) {
            Delivery::Dropped(_) => {}
            Delivery::Once(d) => {
                self.queue.push(self.now + d, Event::Deliver { from, to, msg });
            }
            Delivery::Twice(d1, d2) => {
                self.queue.push(self.now + d1, Event::Deliver { from, to, msg: msg.clone() });
                self.queue.push(self.now + d2, Event::Deliver { from, to, msg });
            }
        }
    }

    /// The host of `to` answers `from` with a refused connection (it travels back like a
    /// message: it takes a latency and can be lost or cut off).
    fn refuse(&mut self, from: NodeId, to: NodeId, msg: A::Msg) {
        match self.net.route(to, from) {
            Delivery::Dropped(_) => {}
            Delivery::Once(d) | Delivery::Twice(d, _) => {
                self.queue.push(self.now + d, Event::Refused { from, to, msg });
            }
        }
    }

    fn record(&mut self, node: NodeId, r: FaultRecord) {
        self.records.push(Record { time: self.now, node, what: What::Fault(r) });
    }

    fn apply_fault(&mut self, action: &FaultAction) {
        match action {
            FaultAction::Crash(nodes) => nodes.iter().for_each(|n| self.crash(*n)),
            FaultAction::Restart(nodes) => nodes.iter().for_each(|n| self.restart(*n)),
            FaultAction::Pause(nodes) => nodes.iter().for_each(|n| self.pause(*n)),
            FaultAction::Resume(nodes) => nodes.iter().for_each(|n| self.resume(*n)),
            FaultAction::Partition { id, partition } => {
                self.net.partition(*id, partition.clone());
                for n in 0..self.meta.len() as u32 {
                    if partition.affects(NodeId(n)) {
                        self.record(NodeId(n), FaultRecord::Partitioned(*id));
                    }
                }
            }
            FaultAction::Heal(id) => {
                let healed: Vec<(u32, Vec<NodeId>)> = self
                    .net
                    .active_partitions()
                    .filter(|(pid, _)| id.is_none_or(|want| want == *pid))
                    .map(|(pid, p)| (pid, (0..self.meta.len() as u32).map(NodeId).filter(|n| p.affects(*n)).collect()))
                    .collect();
                self.net.heal(*id);
                for (pid, nodes) in healed {
                    nodes.into_iter().for_each(|n| self.record(n, FaultRecord::Healed(pid)));
                }
            }
            FaultAction::OnRole { who, what, undo_after } => {
                if let Some(n) = self.resolve_role(*who) {
                    let undo = match what {
                        RoleFault::Crash => {
                            self.crash(n);
                            FaultAction::Restart(vec![n])
                        }
                        RoleFault::Pause => {
                            self.pause(n);
                            FaultAction::Resume(vec![n])
                        }
                        RoleFault::Isolate(id) => {
                            self.record(n, FaultRecord::Isolated(*id));
                            let p = Partition::build(&Shape::Isolate(vec![n]), self.meta.len(), false)
                                .expect("isolating one existing node is a valid partition");
                            self.apply_fault(&FaultAction::Partition { id: *id, partition: p });
                            FaultAction::Heal(Some(*id))
                        }
                    };
                    if let Some(d) = undo_after {
                        self.schedule_fault(self.now + *d, undo);
                    }
                }
            }
            FaultAction::Skew { nodes, offset_ns, drift_ppm } => {
                for n in nodes {
                    self.meta[n.index()].skewed = true;
                    self.clocks[n.index()].set_skew(self.now, *offset_ns, *drift_ppm);
                    self.record(*n, FaultRecord::ClockSkewed { offset_ns: *offset_ns, drift_ppm: *drift_ppm });
                }
            }
        }
    }

    /// The node a role target names now: the running node with the highest leader term, or a
    /// random running consensus member other than that leader.
    fn resolve_role(&mut self, who: RoleTarget) -> Option<NodeId> {
        let running = |w: &Self, i: usize| w.meta[i].status == Status::Up && w.meta[i].started;
        let leader = (0..self.meta.len())
            .filter(|i| running(self, *i))
            .filter_map(|i| self.actors[i].leader_term().map(|t| (t, i)))
            .max()
            .map(|(_, i)| i);
        match who {
            RoleTarget::Leader => leader.map(|i| NodeId(i as u32)),
            RoleTarget::RandomFollower => {
                let followers: Vec<usize> = (0..self.meta.len())
                    .filter(|i| running(self, *i) && Some(*i) != leader && self.actors[*i].consensus_member())
                    .collect();
                if followers.is_empty() {
                    return None;
                }
                let k = rand::RngExt::random_range(&mut self.fault_rng, 0..followers.len());
                Some(NodeId(followers[k] as u32))
            }
        }
    }

    fn crash(&mut self, n: NodeId) {
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
        self.record(n, FaultRecord::Crashed);
    }

    fn restart(&mut self, n: NodeId) {
        let m = &mut self.meta[n.index()];
        if m.status != Status::Crashed {
            return;
        }
        m.status = Status::Up;
        let incarnation = m.incarnation;
        self.queue.push(self.now, Event::Start { node: n, incarnation });
        self.record(n, FaultRecord::Restarted);
    }

    fn pause(&mut self, n: NodeId) {
        let m = &mut self.meta[n.index()];
        if m.status != Status::Up {
            return;
        }
        m.status = Status::Paused;
        self.record(n, FaultRecord::Paused);
    }

    fn resume(&mut self, n: NodeId) {
        let m = &mut self.meta[n.index()];
        if m.status != Status::Paused {
            return;
        }
        m.status = Status::Up;
        for event in std::mem::take(&mut self.aux[n.index()].deferred) {
            self.queue.push(self.now, event);
        }
        self.record(n, FaultRecord::Resumed);
    }
}

/// The world's own semantics with a tiny actor (issue 17's kernel tests): event order, timer
/// cancellation, crash with a pending timer, restart, refusal, pause and resume, determinism.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SimDuration;
    use crate::net::{LatencySpec, LinkProfile};

    /// Observations name what ran, so a test reads the log as a story.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Saw {
        Start,
        Timer(u32),
        Msg(NodeId, u32),
        Refused(NodeId, u32),
    }

    /// On start: sets the timers of `timers` (delay ms, tag), cancels the tags in `cancel`,
    /// sends `sends` (to, tag). Echoes nothing; records everything.
    #[derive(Default)]
    struct Probe {
        timers: Vec<(u64, u32)>,
        cancel: Vec<u32>,
        sends: Vec<(NodeId, u32)>,
        crashes: u32,
    }

    impl Actor for Probe {
        type Msg = u32;
        type Timer = u32;
        type Obs = Saw;
        fn on_start(&mut self, ctx: &mut Ctx<'_, u32, u32, Saw>) {
            ctx.observe(Saw::Start);
            let mut ids = Vec::new();
            for (ms, tag) in &self.timers {
                ids.push((*tag, ctx.set_timer(SimDuration::from_millis(*ms), *tag)));
            }
            for (tag, id) in ids {
                if self.cancel.contains(&tag) {
                    ctx.cancel_timer(id);
                }
            }
            for (to, tag) in &self.sends {
                ctx.send(*to, *tag);
            }
        }
        fn on_message(&mut self, ctx: &mut Ctx<'_, u32, u32, Saw>, from: NodeId, msg: u32) {
            ctx.observe(Saw::Msg(from, msg));
        }
        fn on_timer(&mut self, ctx: &mut Ctx<'_, u32, u32, Saw>, timer: u32) {
            ctx.observe(Saw::Timer(timer));
        }
        fn on_refused(&mut self, ctx: &mut Ctx<'_, u32, u32, Saw>, to: NodeId, msg: u32) {
            ctx.observe(Saw::Refused(to, msg));
        }
        fn crash(&mut self) {
            self.crashes += 1;
        }
    }

    fn ms(t: u64) -> SimTime {
        SimTime(t * 1_000_000)
    }

    /// A world of `actors` on a 10 ms constant-latency network.
    fn world(actors: Vec<Probe>) -> World<Probe> {
        let latency = LatencySpec::constant(SimDuration::from_millis(10)).build().expect("latency");
        let net =
            Network::new(LinkProfile { latency, loss: 0.0, duplicate: 0.0 }, vec![0; actors.len()], stream(1, "net"));
        let mut w = World::new(1, net);
        for (i, a) in actors.into_iter().enumerate() {
            w.add_node(&format!("n/{i}"), a, SimTime::ZERO);
        }
        w
    }

    /// (time ms, node, observation) of every actor observation so far.
    fn story(w: &World<Probe>) -> Vec<(u64, u32, Saw)> {
        w.records()
            .iter()
            .filter_map(|r| match &r.what {
                What::Actor(o) => Some((r.time.0 / 1_000_000, r.node.0, o.clone())),
                What::Fault(_) => None,
            })
            .collect()
    }

    #[test]
    fn timers_fire_in_deadline_order_and_equal_deadlines_in_set_order() {
        let p = Probe { timers: vec![(30, 3), (10, 1), (20, 2), (20, 22), (10, 11)], ..Probe::default() };
        let mut w = world(vec![p]);
        assert_eq!(w.run_until(ms(100), 1_000), Outcome::NoEventsLeft);
        let tags: Vec<Saw> = story(&w).into_iter().map(|(_, _, s)| s).collect();
        use Saw::Timer as T;
        assert_eq!(tags, vec![Saw::Start, T(1), T(11), T(2), T(22), T(3)]);
    }

    #[test]
    fn a_cancelled_timer_never_fires() {
        let p = Probe { timers: vec![(10, 1), (20, 2), (30, 3)], cancel: vec![2], ..Probe::default() };
        let mut w = world(vec![p]);
        w.run_until(ms(100), 1_000);
        let fired: Vec<(u64, Saw)> = story(&w).into_iter().skip(1).map(|(t, _, s)| (t, s)).collect();
        assert_eq!(fired, vec![(10, Saw::Timer(1)), (30, Saw::Timer(3))]);
    }

    #[test]
    fn a_crash_kills_pending_timers_and_a_restart_starts_afresh() {
        let p = Probe { timers: vec![(50, 1)], ..Probe::default() };
        let mut w = world(vec![p]);
        w.schedule_fault(ms(20), FaultAction::Crash(vec![NodeId(0)]));
        w.schedule_fault(ms(30), FaultAction::Restart(vec![NodeId(0)]));
        w.run_until(ms(200), 1_000);
        // The timer set before the crash (due at 50 ms) never fires; the new incarnation's
        // start sets its own, due at 30 + 50 ms.
        let s: Vec<(u64, Saw)> = story(&w).into_iter().map(|(t, _, s)| (t, s)).collect();
        assert_eq!(s, vec![(0, Saw::Start), (30, Saw::Start), (80, Saw::Timer(1))]);
        assert_eq!(w.actor(NodeId(0)).crashes, 1);
        assert_eq!(w.status(NodeId(0)), Status::Up);
    }

    #[test]
    fn a_message_to_a_crashed_node_is_refused_one_round_trip_later() {
        let sender = Probe { timers: vec![], sends: vec![(NodeId(1), 7)], ..Probe::default() };
        let mut w = world(vec![sender, Probe::default()]);
        // Node 1 crashes before the message (sent at 0 ms, due at 10 ms) arrives.
        w.schedule_fault(ms(5), FaultAction::Crash(vec![NodeId(1)]));
        w.run_until(ms(100), 1_000);
        let s = story(&w);
        assert!(s.contains(&(20, 0, Saw::Refused(NodeId(1), 7))), "{s:?}");
        assert!(!s.iter().any(|(_, n, o)| *n == 1 && matches!(o, Saw::Msg(..))), "{s:?}");
    }

    #[test]
    fn a_paused_node_handles_what_came_due_at_resume_in_order() {
        let sender = Probe { sends: vec![(NodeId(1), 1), (NodeId(1), 2)], ..Probe::default() };
        let sleeper = Probe { timers: vec![(15, 9)], ..Probe::default() };
        let mut w = world(vec![sender, sleeper]);
        w.schedule_fault(ms(5), FaultAction::Pause(vec![NodeId(1)]));
        w.schedule_fault(ms(40), FaultAction::Resume(vec![NodeId(1)]));
        w.run_until(ms(100), 1_000);
        // Messages due at 10 ms and the timer due at 15 ms wait, then run at 40 ms in the
        // order they came due.
        let at_one: Vec<(u64, Saw)> =
            story(&w).into_iter().filter(|(_, n, _)| *n == 1).map(|(t, _, s)| (t, s)).collect();
        assert_eq!(
            at_one,
            vec![(0, Saw::Start), (40, Saw::Msg(NodeId(0), 1)), (40, Saw::Msg(NodeId(0), 2)), (40, Saw::Timer(9))]
        );
    }

    #[test]
    fn the_event_limit_is_an_outcome_and_the_digest_follows_the_events() {
        let make = |extra: u64| world(vec![Probe { timers: vec![(10, 1), (20 + extra, 2)], ..Probe::default() }]);
        let mut a = make(0);
        assert_eq!(a.run_until(ms(100), 2), Outcome::EventLimit);
        assert_eq!(a.events(), 2);
        let (mut b, mut c, mut d) = (make(0), make(0), make(1));
        for w in [&mut b, &mut c, &mut d] {
            w.run_until(ms(100), 1_000);
        }
        assert_eq!(b.digest_hex(), c.digest_hex(), "same events, same digest");
        assert_ne!(b.digest_hex(), d.digest_hex(), "a timer 1 ms later changes the digest");
    }
}
