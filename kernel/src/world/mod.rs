//! The world: node hosts, the event queue, the network and the fault schedule.
//!
//! `World::step` processes one event; `run_until` loops until the end of virtual time, the
//! event limit, or an empty queue, each a named [`Outcome`]. What a node does with an event
//! (and under faults) is the [`Hosts`]' business; the world is the core runtime's
//! [`Transport`]: a message takes a latency drawn by the network model (or is lost, cut off or
//! duplicated), a refusal travels back the same way, and a node is woken from the queue.
//!
//! Every processed event is folded into the digest (time, kind, node, payload hash), and every
//! fault that changes a node's state is recorded as ground truth with its true time.

use crate::actor::Record;
use crate::actor::{Actor, NodeId, TimerId};
use crate::fault::{FaultAction, FaultRecord, Resolve, RoleTarget};
use crate::host::{Hosts, Status, Transport, Wake};
use crate::net::{Attempt, Channel, Delivery, Network, StreamStep, Wire};
use crate::queue::EventQueue;
use crate::rng::{SimRng, stream};
use crate::time::SimTime;

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

/// Bytes one queued event of these message and timer types takes in the calendar (for size
/// checks in protocol tests: the queue moves events, so they should stay small).
pub fn queued_event_size<M, T>() -> usize {
    std::mem::size_of::<crate::queue::QueuedSize<Event<M, T>>>()
}

/// A queued event. Flat (not a `Wake` beside a node) so a queued message stays small.
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
    /// A stream message's packet sent again (rare: only after a loss or a partition). The
    /// message waits in the transport's slab, so the queued event stays small and plain.
    Segment(u32),
}

/// A stream message waiting for its next transmission.
struct Segment<M> {
    from: NodeId,
    to: NodeId,
    msg: M,
    attempt: Attempt,
}

/// The core runtime's transport: the queue and the network model.
struct Io<M, T> {
    queue: EventQueue<Event<M, T>>,
    net: Network,
    /// Stream messages waiting for a retransmission (`Event::Segment` indexes it), and the
    /// free slots.
    segments: Vec<Option<Segment<M>>>,
    free: Vec<u32>,
}

impl<M: Clone + Channel, T> Transport<M, T> for Io<M, T> {
    #[inline(always)]
    fn send(&mut self, now: SimTime, from: NodeId, to: NodeId, msg: M) {
        if let wire @ Wire::Stream { connect_timeout } = self.net.wire(msg.channel()) {
            if let Some(d) = self.net.stream_fast(from, to, connect_timeout.is_some()) {
                self.queue.push(now + d, Event::Deliver { from, to, msg });
                return;
            }
            return self.stream(now, from, to, msg, wire, Attempt::first(now, connect_timeout));
        }
        match self.net.route(from, to) {
            Delivery::Dropped(_) => {}
            Delivery::Once(d) => {
                self.queue.push(now + d, Event::Deliver { from, to, msg });
            }
            Delivery::Twice(d1, d2) => {
                self.queue.push(now + d1, Event::Deliver { from, to, msg: msg.clone() });
                self.queue.push(now + d2, Event::Deliver { from, to, msg });
            }
        }
    }

    /// The refusal travels back like a message: it takes a latency and can be lost or cut off
    /// (on a stream, a reset is not lost: it answers every retransmission; only a partition
    /// keeps it from the sender).
    fn refuse(&mut self, now: SimTime, from: NodeId, to: NodeId, msg: M) {
        if let Wire::Stream { .. } = self.net.wire(msg.channel()) {
            if let Some(d) = self.net.reset(to, from) {
                self.queue.push(now + d, Event::Refused { from, to, msg });
            }
            return;
        }
        match self.net.route(to, from) {
            Delivery::Dropped(_) => {}
            Delivery::Once(d) | Delivery::Twice(d, _) => {
                self.queue.push(now + d, Event::Refused { from, to, msg });
            }
        }
    }

    #[inline]
    fn wake(&mut self, at: SimTime, node: NodeId, what: Wake<M, T>) {
        Self::push_wake(&mut self.queue, at, node, what);
    }

    #[inline(always)]
    fn set_timer(&mut self, at: SimTime, node: NodeId, incarnation: u32, id: TimerId, timer: T) {
        self.queue.push(at, Event::Timer { node, incarnation, id, timer });
    }
}

impl<M, T> Io<M, T> {
    /// One transmission of stream message `msg` in state `attempt` (see `net::wire`).
    #[inline]
    fn stream(&mut self, now: SimTime, from: NodeId, to: NodeId, msg: M, wire: Wire, attempt: Attempt) {
        match self.net.stream_step(now, from, to, wire, attempt) {
            StreamStep::Arrives(d) => {
                self.queue.push(now + d, Event::Deliver { from, to, msg });
            }
            StreamStep::Retry(d, attempt) => {
                let seg = Some(Segment { from, to, msg, attempt });
                let idx = match self.free.pop() {
                    Some(i) => {
                        self.segments[i as usize] = seg;
                        i
                    }
                    None => {
                        self.segments.push(seg);
                        u32::try_from(self.segments.len() - 1).expect("world: more than 2^32 segments in flight")
                    }
                };
                self.queue.push(now + d, Event::Segment(idx));
            }
            // The sender's own host reports the failed connect: no packet carries it.
            StreamStep::ConnectFailed(at) => {
                self.queue.push(at, Event::Refused { from, to, msg });
            }
            StreamStep::GaveUp => {}
        }
    }

    #[inline]
    fn push_wake(queue: &mut EventQueue<Event<M, T>>, at: SimTime, node: NodeId, what: Wake<M, T>) {
        let event = match what {
            Wake::Start { incarnation } => Event::Start { node, incarnation },
            Wake::Deliver { from, msg } => Event::Deliver { from, to: node, msg },
            Wake::Refused { to, msg } => Event::Refused { from: node, to, msg },
            Wake::Timer { incarnation, id, timer } => Event::Timer { node, incarnation, id, timer },
        };
        queue.push(at, event);
    }
}

/// Resolves no role target (a world without consensus roles).
struct NoRoles;

impl<A> Resolve<A> for NoRoles {
    fn resolve(&self, _: RoleTarget, _: &[(NodeId, &A)], _: &mut SimRng) -> Option<NodeId> {
        None
    }
}

pub struct World<A: Actor> {
    now: SimTime,
    hosts: Hosts<A>,
    io: Io<A::Msg, A::Timer>,
    /// Draws for role targets resolved when a fault fires (e.g. a random follower).
    fault_rng: SimRng,
    resolver: Box<dyn Resolve<A>>,
    faults: Vec<FaultAction>,
    /// (time, index into `faults`) of every fault applied, in order: ground truth for metrics
    /// that need more than per-node records (e.g. who could reach whom during a partition).
    applied: Vec<(SimTime, u32)>,
}

impl<A: Actor> World<A>
where
    A::Msg: Channel,
{
    pub fn new(seed: u64, net: Network) -> Self {
        World {
            now: SimTime::ZERO,
            hosts: Hosts::new(seed),
            io: Io { queue: EventQueue::new(), net, segments: Vec::new(), free: Vec::new() },
            fault_rng: stream(seed, "faults/fire"),
            resolver: Box::new(NoRoles),
            faults: Vec::new(),
            applied: Vec::new(),
        }
    }

    /// Gives every node added from now on its own clock drift, and every timer its jitter.
    pub fn set_clocks(&mut self, clocks: crate::clock::Clocks) {
        self.hosts.set_clocks(clocks);
    }

    /// Sets what resolves role targets (`FaultAction::OnRole`); by default none resolves.
    pub fn set_resolver(&mut self, resolver: Box<dyn Resolve<A>>) {
        self.resolver = resolver;
    }

    /// Adds a node whose random stream is named `stream_name` (e.g. `instances/17`) and
    /// which starts at `start_at`.
    pub fn add_node(&mut self, stream_name: &str, actor: A, start_at: SimTime) -> NodeId {
        let id = self.hosts.add(stream_name, actor);
        self.io.queue.push(start_at, Event::Start { node: id, incarnation: 0 });
        id
    }

    /// Schedules a fault action at `at`.
    pub fn schedule_fault(&mut self, at: SimTime, action: FaultAction) {
        let idx = u32::try_from(self.faults.len()).expect("world: more than 2^32 faults");
        self.faults.push(action);
        self.io.queue.push(at, Event::Fault(idx));
    }

    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn events(&self) -> u64 {
        self.hosts.events()
    }
    pub fn digest_hex(&self) -> String {
        self.hosts.digest_hex()
    }
    /// The faults applied so far, with their times, in order.
    pub fn applied_faults(&self) -> impl Iterator<Item = (SimTime, &FaultAction)> {
        self.applied.iter().map(|(t, i)| (*t, &self.faults[*i as usize]))
    }
    pub fn records(&self) -> &[Record<A::Obs>] {
        self.hosts.records()
    }
    /// Swaps the records logged so far into `buf` (see [`Hosts::take_records`]).
    pub fn take_records(&mut self, buf: &mut Vec<Record<A::Obs>>) {
        self.hosts.take_records(buf);
    }
    /// The fault schedule, indexed as `FaultRecord::Applied` refers to it.
    pub fn fault_actions(&self) -> &[FaultAction] {
        &self.faults
    }
    pub fn network(&self) -> &Network {
        &self.io.net
    }
    pub fn node_count(&self) -> usize {
        self.hosts.len()
    }
    pub fn actor(&self, n: NodeId) -> &A {
        self.hosts.actor(n)
    }
    /// For drivers reading an actor's state out after a run (never during one).
    pub fn actor_mut(&mut self, n: NodeId) -> &mut A {
        self.hosts.actor_mut(n)
    }
    pub fn status(&self, n: NodeId) -> Status {
        self.hosts.status(n)
    }
    pub fn pending_events(&self) -> usize {
        self.io.queue.len()
    }

    /// Runs until virtual time passes `end` (events at `end` are processed), the queue is empty,
    /// or `max_events` events have been processed.
    pub fn run_until(&mut self, end: SimTime, max_events: u64) -> Outcome {
        loop {
            match self.io.queue.peek_time() {
                None => return Outcome::NoEventsLeft,
                Some(t) if t > end => {
                    self.now = end;
                    return Outcome::ReachedEnd;
                }
                Some(_) => {}
            }
            if self.hosts.events() >= max_events {
                return Outcome::EventLimit;
            }
            self.step();
        }
    }

    /// Processes the next event; returns false if the queue was empty.
    pub fn step(&mut self) -> bool {
        let Some((time, event)) = self.io.queue.pop() else {
            return false;
        };
        debug_assert!(time >= self.now, "time went backwards: {time} < {}", self.now);
        self.now = time;
        self.prefetch_next();
        let (now, io) = (self.now, &mut self.io);
        match event {
            Event::Start { node, incarnation } => self.hosts.start(now, node, incarnation, io),
            Event::Deliver { from, to, msg } => self.hosts.deliver(now, from, to, msg, io),
            Event::Refused { from, to, msg } => self.hosts.refused(now, from, to, msg, io),
            Event::Timer { node, incarnation, id, timer } => self.hosts.timer(now, node, incarnation, id, timer, io),
            Event::Segment(idx) => {
                // A crashed sender's connections died with it; a paused one's kernel still
                // retransmits.
                let seg = self.io.segments[idx as usize].take().expect("a queued segment is in the slab");
                self.io.free.push(idx);
                let Segment { from, to, msg, attempt } = seg;
                if self.hosts.status(from) != Status::Crashed {
                    let wire = self.io.net.wire(msg.channel());
                    self.io.stream(now, from, to, msg, wire, attempt);
                }
            }
            Event::Fault(idx) => {
                self.hosts.fold(now, 4, NodeId(idx), &());
                let action = std::mem::replace(&mut self.faults[idx as usize], FaultAction::Heal(None));
                self.hosts.record(now, NodeId(u32::MAX), FaultRecord::Applied(idx));
                self.apply_fault(&action);
                self.faults[idx as usize] = action;
                self.applied.push((now, idx));
            }
        }
        true
    }

    /// Prefetches the per-node state the next queued event will read.
    #[inline]
    fn prefetch_next(&self) {
        let node = match self.io.queue.peek_loaded() {
            Some(Event::Deliver { to, .. }) => *to,
            Some(Event::Timer { node, .. } | Event::Start { node, .. }) => *node,
            Some(Event::Refused { from, .. }) => *from,
            Some(Event::Fault(_) | Event::Segment(_)) | None => return,
        };
        self.hosts.prefetch(node);
    }

    fn apply_fault(&mut self, action: &FaultAction) {
        let Io { queue, net, .. } = &mut self.io;
        let mut wake = |at, node, what| Io::<A::Msg, A::Timer>::push_wake(queue, at, node, what);
        let undo = self.hosts.apply_fault(self.now, action, net, &*self.resolver, &mut self.fault_rng, &mut wake);
        if let Some((at, undo)) = undo {
            self.schedule_fault(at, undo);
        }
    }
}

/// The world's own semantics with a tiny actor: event order, timer cancellation, crash with a
/// pending timer, restart, refusal, pause and resume, determinism.
#[cfg(test)]
mod tests;
