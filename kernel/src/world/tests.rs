//! The world's own semantics with a tiny actor.

use super::*;
use crate::net::{LatencySpec, LinkProfile};
use crate::{Ctx, SimDuration, What};

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
    let net = Network::new(LinkProfile { latency, loss: 0.0, duplicate: 0.0 }, vec![0; actors.len()], stream(1, "net"));
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
    let at_one: Vec<(u64, Saw)> = story(&w).into_iter().filter(|(_, n, _)| *n == 1).map(|(t, _, s)| (t, s)).collect();
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

/// Tags on channel 1: a kept-open stream; on channel 2: a stream that connects per message
/// with a 3 s connect timeout (a `u32` message's top byte is its channel); plain tags are
/// datagrams.
const S: u32 = 1 << 24;
const C: u32 = 2 << 24;

/// Two nodes 10 ms apart whose sender sends `tag` at 1 ms, with `loss` and `duplicate`, the
/// faults `faults` (ms, action) scheduled.
fn pair(tag: u32, loss: f64, duplicate: f64, faults: &[(u64, FaultAction)]) -> World<Probe> {
    let latency = LatencySpec::constant(SimDuration::from_millis(10)).build().expect("latency");
    let mut net = Network::new(LinkProfile { latency, loss, duplicate }, vec![0, 0], stream(1, "net"));
    net.set_wire(1, Wire::Stream { connect_timeout: None });
    net.set_wire(2, Wire::Stream { connect_timeout: Some(SimDuration::from_secs(3)) });
    let mut w = World::new(1, net);
    w.add_node("n/0", Probe { sends: vec![(NodeId(1), tag)], ..Probe::default() }, ms(1));
    w.add_node("n/1", Probe::default(), SimTime::ZERO);
    for (at, f) in faults {
        w.schedule_fault(ms(*at), f.clone());
    }
    w
}

/// Partition `id`: node 1 cut off.
fn cut(id: u32) -> FaultAction {
    let p = crate::net::Partition::build(&crate::net::Shape::Isolate(vec![NodeId(1)]), 2, false).expect("valid");
    FaultAction::Partition { id, partition: p }
}

/// What a datagram and a stream make of the same packet fate, as Linux TCP would (see
/// `net::wire`): (case, tag, loss, duplicate, faults, what node 0 and node 1 saw (ms, node,
/// observation) after the start records).
#[test]
fn streams_retransmit_what_datagrams_lose() {
    let heal = |at: u64| (at, FaultAction::Heal(Some(1)));
    let crash = |at: u64, n: u32| (at, FaultAction::Crash(vec![NodeId(n)]));
    type Case = (&'static str, u32, f64, f64, Vec<(u64, FaultAction)>, Vec<(u64, u32, Saw)>);
    let cases: Vec<Case> = vec![
        ("datagram arrives after one latency", 1, 0.0, 0.0, vec![], vec![(11, 1, Saw::Msg(NodeId(0), 1))]),
        ("a cut datagram is lost", 1, 0.0, 0.0, vec![(0, cut(1)), heal(350)], vec![]),
        // Sent at 1 ms (cut), again at 201 ms (cut), at 601 ms (healed): arrives at 611.
        (
            "a cut stream segment is sent again after 200 ms, 400 ms and arrives after the heal",
            S + 1,
            0.0,
            0.0,
            vec![(0, cut(1)), heal(350)],
            vec![(611, 1, Saw::Msg(NodeId(0), S + 1))],
        ),
        (
            "a duplicated datagram arrives twice",
            2,
            0.0,
            1.0,
            vec![],
            vec![(11, 1, Saw::Msg(NodeId(0), 2)), (11, 1, Saw::Msg(NodeId(0), 2))],
        ),
        ("TCP discards a duplicate segment", S + 2, 0.0, 1.0, vec![], vec![(11, 1, Saw::Msg(NodeId(0), S + 2))]),
        // SYN, SYN-ACK (20 ms), then the request (10 ms).
        (
            "a per-message connection costs a round trip",
            C + 1,
            0.0,
            0.0,
            vec![],
            vec![(31, 1, Saw::Msg(NodeId(0), C + 1))],
        ),
        // SYNs at 1 ms and 1,001 ms are cut; the next (3,001 ms) is not before the 3 s connect
        // timeout, which the sender's host reports.
        (
            "a connect to a cut-off host fails at the connect timeout",
            C + 2,
            0.0,
            0.0,
            vec![(0, cut(1)), heal(10_000)],
            vec![(3_001, 0, Saw::Refused(NodeId(1), C + 2))],
        ),
        // The request reaches the host at 31 ms; its reset comes back 10 ms later.
        (
            "a connect to a host without its process is refused",
            C + 3,
            0.0,
            0.0,
            vec![crash(0, 1)],
            vec![(41, 0, Saw::Refused(NodeId(1), C + 3))],
        ),
        // Cut at 1 ms, the sender dies at 100 ms: its retransmission at 201 ms never leaves.
        (
            "a crashed sender's segment is not sent again",
            S + 3,
            0.0,
            0.0,
            vec![(0, cut(1)), crash(100, 0), heal(150)],
            vec![],
        ),
    ];
    for (case, tag, loss, dup, faults, want) in cases {
        let mut w = pair(tag, loss, dup, &faults);
        w.run_until(ms(20_000), 10_000);
        let got: Vec<(u64, u32, Saw)> = story(&w).into_iter().filter(|(_, _, s)| *s != Saw::Start).collect();
        assert_eq!(got, want, "{case}");
    }
}

/// A stream on a link that loses everything gives up after `tcp_retries2` (15)
/// retransmissions, 200 ms doubling to the 120 s cap: 804.6 s after the first send.
#[test]
fn a_stream_gives_up_after_its_retry_limit() {
    let mut w = pair(S + 4, 1.0, 0.0, &[]);
    assert_eq!(w.run_until(ms(2_000_000), 10_000), Outcome::NoEventsLeft);
    let s = w.network().stats;
    assert_eq!((s.sent, s.retransmitted, s.gave_up, s.dropped_loss), (1, 15, 1, 16));
    assert_eq!(w.now(), ms(1 + 804_600));
    assert!(story(&w).iter().all(|(_, _, s)| *s == Saw::Start));
}
