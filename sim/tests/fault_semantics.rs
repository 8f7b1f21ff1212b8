//! Crash/restart, pause/resume and clock skew, through a tiny probe actor driven by `World`.

use regsim::fault::FaultAction;
use regsim_kernel::net::{LatencySpec, LinkProfile, Network};
use regsim_kernel::{Actor, Ctx, FaultRecord, NodeId, SimDuration, SimTime, What, World, stream};

/// Counts its starts; on start sets timer 1 after 1 s (local); on timer 1 pings node 1 and
/// observes the local time; on a message observes it.
#[derive(Default)]
struct Probe {
    starts_since_crash: u32,
}

#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Started(u32),
    Timer(SimTime),
    Got(u32),
}

impl Actor for Probe {
    type Msg = u32;
    type Timer = u32;
    type Obs = Seen;
    fn on_start(&mut self, ctx: &mut Ctx<'_, u32, u32, Seen>) {
        self.starts_since_crash += 1;
        ctx.observe(Seen::Started(self.starts_since_crash));
        ctx.set_timer(SimDuration::from_secs(1), 1u32);
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, u32, u32, Seen>, _from: NodeId, msg: u32) {
        ctx.observe(Seen::Got(msg));
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, u32, u32, Seen>, _t: u32) {
        let now = ctx.now();
        ctx.observe(Seen::Timer(now));
        ctx.send(NodeId(1), 7u32);
    }
    fn crash(&mut self) {
        self.starts_since_crash = 0;
    }
}

const MS: u64 = 1_000_000;

fn world() -> World<Probe> {
    world_with(|_| {})
}

/// A two-node world; `before` may schedule faults that precede the nodes' own start events.
fn world_with(before: impl FnOnce(&mut World<Probe>)) -> World<Probe> {
    let latency = LatencySpec::constant(SimDuration::from_millis(10)).build().expect("valid");
    let net = Network::new(LinkProfile { latency, loss: 0.0, duplicate: 0.0 }, vec![0, 0], stream(1, "net"));
    let mut w = World::new(1, net);
    before(&mut w);
    w.add_node("probe/0", Probe::default(), SimTime::ZERO);
    w.add_node("probe/1", Probe::default(), SimTime(5_000 * MS));
    w
}

/// (time in ms, node, what) for actor observations, in order.
fn seen(w: &World<Probe>) -> Vec<(u64, u32, Seen)> {
    w.records()
        .iter()
        .filter_map(|r| match &r.what {
            What::Actor(o) => Some((r.time.0 / MS, r.node.0, o.clone())),
            What::Fault(_) => None,
        })
        .collect()
}

#[test]
fn pause_delays_timers_and_messages_until_resume() {
    let mut w = world();
    // Node 1 starts at 5 s; pause it from 2 s to 8 s so its start waits too.
    w.schedule_fault(SimTime(2_000 * MS), FaultAction::Pause(vec![NodeId(1)]));
    w.schedule_fault(SimTime(8_000 * MS), FaultAction::Resume(vec![NodeId(1)]));
    // Node 0 paused 500 ms..3 s: its 1 s timer fires late, at 3 s.
    w.schedule_fault(SimTime(500 * MS), FaultAction::Pause(vec![NodeId(0)]));
    w.schedule_fault(SimTime(3_000 * MS), FaultAction::Resume(vec![NodeId(0)]));
    w.run_until(SimTime(20_000 * MS), 1_000);
    let s = seen(&w);
    assert_eq!(s[0], (0, 0, Seen::Started(1)));
    assert_eq!(s[1], (3_000, 0, Seen::Timer(SimTime(3_000 * MS))), "{s:?}");
    // The ping node 0 sent at 3 s reached node 1 at 3.01 s, before node 1 was running: dropped.
    // Node 1's start waited for the resume at 8 s; its own timer then fires at 9 s.
    assert_eq!(s[2], (8_000, 1, Seen::Started(1)), "{s:?}");
    assert_eq!(s[3], (9_000, 1, Seen::Timer(SimTime(9_000 * MS))), "{s:?}");
    assert_eq!(s.len(), 5, "{s:?}"); // + node 1's own ping to itself at 9.01 s
}

#[test]
fn crash_drops_state_timers_and_messages_and_restart_starts_again() {
    let mut w = world();
    // Crash node 1 before it starts: its start (incarnation 0) must never run.
    w.schedule_fault(SimTime(4_000 * MS), FaultAction::Crash(vec![NodeId(1)]));
    // Crash node 0 with its 1 s timer pending, restart at 2 s.
    w.schedule_fault(SimTime(500 * MS), FaultAction::Crash(vec![NodeId(0)]));
    w.schedule_fault(SimTime(2_000 * MS), FaultAction::Restart(vec![NodeId(0)]));
    w.schedule_fault(SimTime(6_000 * MS), FaultAction::Restart(vec![NodeId(1)]));
    w.run_until(SimTime(20_000 * MS), 1_000);
    let s = seen(&w);
    // Node 0: started, crashed (timer lost: no Timer at 1 s), restarted with fresh state.
    assert_eq!(s[0], (0, 0, Seen::Started(1)));
    assert_eq!(s[1], (2_000, 0, Seen::Started(1)), "state survived the crash: {s:?}");
    // Its ping at 3 s to crashed node 1 is dropped; node 1 starts only at its restart (6 s).
    assert_eq!(s[2], (3_000, 0, Seen::Timer(SimTime(3_000 * MS))));
    assert_eq!(s[3], (6_000, 1, Seen::Started(1)), "{s:?}");
    assert!(
        !s.iter().any(|(t, n, o)| *t < 6_000 && *n == 1 && *o == Seen::Got(7)),
        "message to a crashed node delivered: {s:?}"
    );
    let crashes = w.records().iter().filter(|r| r.what == What::Fault(FaultRecord::Crashed)).count();
    assert_eq!(crashes, 2);
}

#[test]
fn skewed_clock_reads_offset_and_drifts_timers() {
    // From t = 0 (before node 0 starts), node 0's clock is 10 s ahead and runs 25 % fast: a
    // 1 s local timer takes 0.8 s of true time, and then the local clock reads 11 s.
    let skew = FaultAction::Skew { nodes: vec![NodeId(0)], offset_ns: 10_000 * MS as i64, drift_ppm: 250_000 };
    let mut w = world_with(|w| w.schedule_fault(SimTime::ZERO, skew.clone()));
    w.run_until(SimTime(2_000 * MS), 1_000);
    let s = seen(&w);
    assert_eq!(s[1], (800, 0, Seen::Timer(SimTime(11_000 * MS))), "{s:?}");
    // A skew applied after the timer was set does not move it in true time (1 s), but the
    // local reading then includes the offset and the drift since the skew: 10 s + 1.25 s.
    let mut w = world();
    w.schedule_fault(SimTime::ZERO, skew);
    w.run_until(SimTime(2_000 * MS), 1_000);
    assert_eq!(seen(&w)[1], (1_000, 0, Seen::Timer(SimTime(11_250 * MS))));
}

#[test]
fn limits_and_an_empty_queue_are_named_outcomes() {
    use regsim_kernel::Outcome;
    // Two probes: each starts, fires one timer and pings node 1; then nothing is left.
    let mut w = world();
    assert_eq!(w.run_until(SimTime(60_000 * MS), 1_000), Outcome::NoEventsLeft);
    let processed = w.events();
    assert!(processed > 0);
    // The same world stopped after 2 events reports the limit, not a panic.
    let mut w = world();
    assert_eq!(w.run_until(SimTime(60_000 * MS), 2), Outcome::EventLimit);
    assert_eq!(w.events(), 2);
    // And stopping at the end of virtual time before the queue drains.
    let mut w = world();
    assert_eq!(w.run_until(SimTime(500 * MS), 1_000), Outcome::ReachedEnd);
    assert_eq!(w.now(), SimTime(500 * MS));
}
