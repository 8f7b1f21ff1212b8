//! A test harness for one protocol at a time, in the style of raft-rs's `Network` and quinn's
//! `Pair`: a few actors on the same [`Hosts`] the world uses (so crash, restart, pause and
//! timers behave exactly as in a run), on a network the test controls message by message.
//!
//! Every message takes the harness latency (1 ms unless set) unless a link is cut (both ways
//! or one way), a node is isolated, or the test's filter drops or delays it. The test advances
//! time (`run_for`, `run_until`), or runs until no message is in flight (`settle`), and reads
//! what was sent ([`Harness::sent`]) and observed ([`Harness::observed`]). Events at the same
//! time run in the order they were scheduled, as in the world.

use std::collections::{BTreeMap, BTreeSet};

use crate::actor::{Actor, NodeId};
use crate::actor::{Record, What};
use crate::fault::FaultRecord;
use crate::host::{Hosts, Status, Transport, Wake};
use crate::time::{SimDuration, SimTime};

/// What the filter decides for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Deliver,
    Drop,
    /// Deliver after this extra delay (on top of the harness latency).
    Delay(SimDuration),
}

/// One message sent by an actor (or injected by the test), and what became of it.
#[derive(Clone, Debug)]
pub struct Sent<M> {
    pub at: SimTime,
    pub from: NodeId,
    pub to: NodeId,
    pub msg: M,
    /// False if a cut link, an isolation or the filter dropped it.
    pub delivered: bool,
}

type Filter<M> = Box<dyn FnMut(NodeId, NodeId, &M) -> Verdict>;

struct Net<M, T> {
    latency: SimDuration,
    /// Directed links that carry nothing.
    cut: BTreeSet<(NodeId, NodeId)>,
    isolated: BTreeSet<NodeId>,
    filter: Option<Filter<M>>,
    queue: BTreeMap<(SimTime, u64), (NodeId, Wake<M, T>)>,
    seq: u64,
    sent: Vec<Sent<M>>,
    /// Messages (not refusals or timers) queued and not yet handled.
    in_flight: usize,
}

impl<M, T> Net<M, T> {
    fn push(&mut self, at: SimTime, node: NodeId, what: Wake<M, T>) {
        if matches!(what, Wake::Deliver { .. } | Wake::Refused { .. }) {
            self.in_flight += 1;
        }
        self.queue.insert((at, self.seq), (node, what));
        self.seq += 1;
    }

    fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to)) || self.isolated.contains(&from) || self.isolated.contains(&to)
    }
}

impl<M: Clone, T> Transport<M, T> for Net<M, T> {
    fn send(&mut self, now: SimTime, from: NodeId, to: NodeId, msg: M) {
        let verdict = if self.blocked(from, to) {
            Verdict::Drop
        } else {
            self.filter.as_mut().map_or(Verdict::Deliver, |f| f(from, to, &msg))
        };
        let delivered = verdict != Verdict::Drop;
        self.sent.push(Sent { at: now, from, to, msg: msg.clone(), delivered });
        match verdict {
            Verdict::Drop => {}
            Verdict::Deliver => self.push(now + self.latency, to, Wake::Deliver { from, msg }),
            Verdict::Delay(d) => self.push(now + self.latency + d, to, Wake::Deliver { from, msg }),
        }
    }

    fn refuse(&mut self, now: SimTime, from: NodeId, to: NodeId, msg: M) {
        if !self.blocked(to, from) {
            self.push(now + self.latency, from, Wake::Refused { to, msg });
        }
    }

    fn wake(&mut self, at: SimTime, node: NodeId, what: Wake<M, T>) {
        self.push(at, node, what);
    }
}

/// A handful of actors on a network the test drives.
pub struct Harness<A: Actor> {
    now: SimTime,
    hosts: Hosts<A>,
    net: Net<A::Msg, A::Timer>,
}

/// At most this many events per `settle` or `run_until` (a protocol that never goes quiet
/// fails the test instead of hanging it).
pub const MAX_STEPS: u64 = 1_000_000;

impl<A: Actor> Harness<A> {
    pub fn new(seed: u64) -> Self {
        Harness {
            now: SimTime::ZERO,
            hosts: Hosts::new(seed),
            net: Net {
                latency: SimDuration::from_millis(1),
                cut: BTreeSet::new(),
                isolated: BTreeSet::new(),
                filter: None,
                queue: BTreeMap::new(),
                seq: 0,
                sent: Vec::new(),
                in_flight: 0,
            },
        }
    }

    /// Adds a node that starts at the current time (its `on_start` runs at the next step).
    pub fn add(&mut self, actor: A) -> NodeId {
        let n = self.hosts.add(&format!("harness/{}", self.hosts.len()), actor);
        self.net.push(self.now, n, Wake::Start { incarnation: 0 });
        n
    }

    /// Every message's one-way latency from now on.
    pub fn set_latency(&mut self, d: SimDuration) {
        self.net.latency = d;
    }
    /// Decides every message sent from now on (after cuts and isolation): deliver, drop, delay.
    pub fn set_filter(&mut self, f: impl FnMut(NodeId, NodeId, &A::Msg) -> Verdict + 'static) {
        self.net.filter = Some(Box::new(f));
    }
    pub fn clear_filter(&mut self) {
        self.net.filter = None;
    }
    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.net.cut.insert((a, b));
        self.net.cut.insert((b, a));
    }
    /// Cuts the link from `a` to `b` only.
    pub fn cut_one_way(&mut self, a: NodeId, b: NodeId) {
        self.net.cut.insert((a, b));
    }
    /// Cuts `n` off from every node.
    pub fn isolate(&mut self, n: NodeId) {
        self.net.isolated.insert(n);
    }
    /// Restores every cut link and isolated node (messages already dropped stay dropped).
    pub fn heal(&mut self) {
        self.net.cut.clear();
        self.net.isolated.clear();
    }

    pub fn crash(&mut self, n: NodeId) {
        self.hosts.crash(self.now, n);
    }
    pub fn restart(&mut self, n: NodeId) {
        let net = &mut self.net;
        self.hosts.restart(self.now, n, &mut |at, node, what| net.push(at, node, what));
    }
    pub fn pause(&mut self, n: NodeId) {
        self.hosts.pause(self.now, n);
    }
    pub fn resume(&mut self, n: NodeId) {
        let net = &mut self.net;
        self.hosts.resume(self.now, n, &mut |at, node, what| net.push(at, node, what));
    }
    /// Steps `n`'s local clock by `offset_ns` from now on, drifting by `drift_ppm`.
    pub fn skew(&mut self, n: NodeId, offset_ns: i64, drift_ppm: i64) {
        self.hosts.skew(self.now, n, offset_ns, drift_ppm);
    }

    /// Delivers `msg` to `to` as if `from` had sent it now (it takes the latency; cuts,
    /// isolation and the filter apply).
    pub fn inject(&mut self, from: NodeId, to: NodeId, msg: impl Into<A::Msg>) {
        self.net.send(self.now, from, to, msg.into());
    }

    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn actor(&self, n: NodeId) -> &A {
        self.hosts.actor(n)
    }
    pub fn actor_mut(&mut self, n: NodeId) -> &mut A {
        self.hosts.actor_mut(n)
    }
    pub fn status(&self, n: NodeId) -> Status {
        self.hosts.status(n)
    }
    /// Messages handled or in flight: none left means the protocol went quiet (timers aside).
    pub fn in_flight(&self) -> usize {
        self.net.in_flight
    }

    /// Every message sent so far, in send order.
    pub fn sent(&self) -> &[Sent<A::Msg>] {
        &self.net.sent
    }
    /// Forgets the messages sent so far (to assert on what comes next).
    pub fn clear_sent(&mut self) {
        self.net.sent.clear();
    }
    /// Every actor observation so far: (time, node, observation).
    pub fn observed(&self) -> Vec<(SimTime, NodeId, A::Obs)> {
        self.hosts
            .records()
            .iter()
            .filter_map(|r| match &r.what {
                What::Actor(o) => Some((r.time, r.node, o.clone())),
                What::Fault(_) => None,
            })
            .collect()
    }
    /// Every fault record so far (crashes, restarts, pauses, skews).
    pub fn faults(&self) -> Vec<(SimTime, NodeId, FaultRecord)> {
        self.hosts
            .records()
            .iter()
            .filter_map(|r| match r.what {
                What::Fault(f) => Some((r.time, r.node, f)),
                What::Actor(_) => None,
            })
            .collect()
    }
    /// Forgets the observations and fault records so far.
    pub fn clear_observed(&mut self) {
        let mut old: Vec<Record<A::Obs>> = Vec::new();
        self.hosts.take_records(&mut old);
    }

    /// Processes the next event; false if none is left.
    pub fn step(&mut self) -> bool {
        let Some(((at, _), (node, what))) = self.net.queue.pop_first() else {
            return false;
        };
        if matches!(what, Wake::Deliver { .. } | Wake::Refused { .. }) {
            self.net.in_flight -= 1;
        }
        self.now = at;
        self.hosts.wake(at, node, what, &mut self.net);
        true
    }

    /// Processes every event due at or before `t`, then sets the time to `t`.
    ///
    /// # Panics
    /// After [`MAX_STEPS`] events (a protocol that floods the network).
    pub fn run_until(&mut self, t: SimTime) {
        let mut steps = 0;
        while self.net.queue.first_key_value().is_some_and(|((at, _), _)| *at <= t) {
            self.step();
            steps += 1;
            assert!(steps < MAX_STEPS, "harness: more than {MAX_STEPS} events before {t}");
        }
        self.now = self.now.max(t);
    }

    pub fn run_for(&mut self, d: SimDuration) {
        self.run_until(self.now + d);
    }

    /// Runs until no message is in flight (timers due meanwhile fire; later timers wait) and
    /// returns how long that took.
    ///
    /// # Panics
    /// After [`MAX_STEPS`] events.
    pub fn settle(&mut self) -> SimDuration {
        let start = self.now;
        let mut steps = 0;
        while self.net.in_flight > 0 && self.step() {
            steps += 1;
            assert!(steps < MAX_STEPS, "harness: the protocol did not go quiet in {MAX_STEPS} events");
        }
        self.now - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ctx;

    /// Echoes every message back once, plus one; records what it got; beats every 10 ms.
    #[derive(Default)]
    struct Echo {
        got: Vec<u32>,
    }

    impl Actor for Echo {
        type Msg = u32;
        type Timer = ();
        type Obs = u32;
        fn on_start(&mut self, ctx: &mut Ctx<'_, u32, (), u32>) {
            ctx.set_timer(SimDuration::from_millis(10), ());
        }
        fn on_message(&mut self, ctx: &mut Ctx<'_, u32, (), u32>, from: NodeId, msg: u32) {
            self.got.push(msg);
            ctx.observe(msg);
            if msg < 3 {
                ctx.send(from, msg + 1);
            }
        }
        fn on_timer(&mut self, ctx: &mut Ctx<'_, u32, (), u32>, _: ()) {
            ctx.set_timer(SimDuration::from_millis(10), ());
        }
        fn crash(&mut self) {
            self.got.clear();
        }
    }

    fn pair() -> (Harness<Echo>, NodeId, NodeId) {
        let mut h = Harness::new(1);
        let a = h.add(Echo::default());
        let b = h.add(Echo::default());
        h.run_until(SimTime::ZERO);
        (h, a, b)
    }

    #[test]
    fn settle_runs_a_ping_pong_to_its_end_and_times_it() {
        let (mut h, a, b) = pair();
        h.inject(a, b, 0u32);
        assert_eq!(h.settle(), SimDuration::from_millis(4));
        assert_eq!(h.actor(b).got, vec![0, 2]);
        assert_eq!(h.actor(a).got, vec![1, 3]);
        assert_eq!(h.sent().len(), 4);
    }

    #[test]
    fn a_cut_link_drops_and_heal_restores() {
        let (mut h, a, b) = pair();
        h.cut(a, b);
        h.inject(a, b, 0u32);
        h.settle();
        assert!(h.actor(b).got.is_empty());
        assert!(!h.sent()[0].delivered);
        h.heal();
        h.inject(a, b, 2u32);
        h.settle();
        assert_eq!(h.actor(b).got, vec![2]);
    }

    #[test]
    fn the_filter_delays_and_drops() {
        let (mut h, a, b) = pair();
        h.set_filter(|_, _, m| if *m == 1 { Verdict::Drop } else { Verdict::Delay(SimDuration::from_millis(5)) });
        h.inject(a, b, 0u32);
        assert_eq!(h.settle(), SimDuration::from_millis(6), "0 arrives after 1 + 5 ms; its answer 1 is dropped");
        assert_eq!(h.actor(a).got, Vec::<u32>::new());
    }

    #[test]
    fn a_message_to_a_crashed_node_is_refused_and_restart_starts_afresh() {
        let (mut h, a, b) = pair();
        h.actor_mut(b).got.push(9);
        h.crash(b);
        assert!(h.actor(b).got.is_empty(), "crash drops the actor's memory");
        h.inject(a, b, 0u32);
        h.settle();
        assert!(h.actor(b).got.is_empty());
        h.restart(b);
        h.run_for(SimDuration::from_millis(1));
        h.inject(a, b, 2u32);
        h.settle();
        assert_eq!(h.actor(b).got, vec![2]);
        let kinds: Vec<FaultRecord> = h.faults().into_iter().map(|(_, _, f)| f).collect();
        assert_eq!(kinds, vec![FaultRecord::Crashed, FaultRecord::Restarted]);
    }

    #[test]
    fn a_paused_node_handles_its_messages_at_resume() {
        let (mut h, a, b) = pair();
        h.pause(b);
        h.inject(a, b, 2u32);
        h.run_for(SimDuration::from_millis(50));
        assert!(h.actor(b).got.is_empty());
        h.resume(b);
        h.run_for(SimDuration::ZERO);
        assert_eq!(h.actor(b).got, vec![2]);
        assert_eq!(h.observed().last().map(|(t, n, o)| (t.0, *n, *o)), Some((50_000_000, b, 2)));
    }
}
