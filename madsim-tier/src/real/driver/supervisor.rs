//! The run's own task: sets the run up (the hosts, each node's side, the shared state),
//! spawns every node's task, applies the fault schedule at its scaled times (crash ends a
//! node's task, restart spawns a new one) until the scaled end or the event limit, then
//! collects what the report needs.

use std::time::Duration;

use regsim::scenario::{Layout, Scenario};
use regsim_kernel::{FaultRecord, Hosts, NodeId, Outcome, SimDuration, SimTime, stream};
use tokio::time::{Instant, sleep_until};

use super::node::node_main;
use super::{Clock, RealError, SHARED, Shared, Side, SimOutput, clock, with};
use crate::support::Schedule;

/// The run's nonce, from the OS clock and the process id (only to tell runs apart on the wire).
fn nonce() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ u64::from(std::process::id()).rotate_left(40) ^ 0x5245_414c_5245_414c
}

pub(super) async fn simulate(s: &Scenario, l: Layout, scale: f64) -> Result<SimOutput, RealError> {
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
    let raft_logs = crate::support::raft_logs(&g.hosts, &topology);
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

impl Shared {
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
