//! Measurement families: one type per question a report answers, behind one trait.
//!
//! A family reads the observation log (its `observe` sees every actor observation, its `fault`
//! every ground-truth fault record, in time order, with the shared [`Truth`] at that moment),
//! finishes at the end of the run, and states its invariants. Which families a run has, and
//! what each promises, is chosen from the scenario when the analyzer is built: e.g. the Raft
//! invariants are checked only when the registry runs Raft, linearizability only when the
//! registry promises it (CP), convergence after a heal only when it promises eventual
//! consistency (AP). Nothing downstream tests the registry mode.
//!
//! The families that grade the registry against the same live ground truth (which instances
//! run and are reachable, each server's copy and each view: detection, false positives,
//! availability, staleness, convergence, load) share the analyzer's core state and are
//! computed there; the ones that follow their own observations are separate [`Family`]
//! values: elections, consistency, alerts and the API gateway's.

use super::detection::{DetectionParams, Timing};
use super::history::History;
use crate::check::Invariant;
use crate::protocol::Obs;
use regsim_kernel::{FaultRecord, NodeId, SimTime};

/// The shared ground truth a family may consult while it reads a record.
pub struct Truth<'a> {
    pub p: &'a DetectionParams,
    pub history: &'a History,
}

impl Truth<'_> {
    /// Servers `node` can reach both ways now (itself included).
    pub fn reachable_servers(&self, node: NodeId) -> usize {
        self.p.servers.clone().map(NodeId).filter(|s| *s == node || self.history.connected(node, *s)).count()
    }

    /// Whether `node` is an API gateway.
    pub fn is_gateway(&self, node: NodeId) -> bool {
        self.p.gateways.contains(&node.0)
    }

    /// Whether `instance` is down (crashed or paused) right now.
    pub fn is_down(&self, instance: NodeId) -> bool {
        self.history.is_down.get(&instance).copied().unwrap_or(false)
    }

    /// The service id the history checker files `service` of `node` under: with several
    /// regions each region's registry is its own object, so region r's copy of service s is
    /// s + r (scenarios have one service, id 0).
    pub fn regional_service(&self, node: NodeId, service: u32) -> u32 {
        let p = self.p;
        let r = [&p.instances, &p.consumers, &p.gateways]
            .into_iter()
            .find(|range| range.contains(&node.0))
            .map_or(0, |range| region(range, p.regions, node));
        service + r
    }
}

/// The region of node `n` of role range `r` split into `regions` equal blocks.
pub fn region(r: &std::ops::Range<u32>, regions: u32, n: NodeId) -> u32 {
    let per = ((r.end - r.start) / regions.max(1)).max(1);
    n.0.saturating_sub(r.start) / per
}

/// What a family is judged with at the end of a run.
pub struct Judge<'a> {
    pub timing: &'a Timing,
    /// CP mode: each server's Raft log terms at the end, in server order (from the driver).
    pub raft_logs: &'a [Vec<u64>],
    /// Where the run ended (earlier than the scenario's end at the event limit).
    pub end: SimTime,
}

/// One measurement family.
pub trait Family {
    /// The family's name in reports and errors (`elections`, `consistency`, ...).
    fn name(&self) -> &'static str;
    /// An actor's observation `o`, made by `node` at `t`.
    fn observe(&mut self, t: SimTime, node: NodeId, o: &Obs, truth: &Truth<'_>);
    /// A ground-truth fault record of `node` at `t` (after `truth` took it in).
    fn fault(&mut self, _t: SimTime, _node: NodeId, _f: FaultRecord, _truth: &Truth<'_>) {}
    /// The log is read to the end.
    fn finish(&mut self) {}
    /// The family's invariants (none if the scenario does not promise what it checks).
    fn invariants(&self, _j: &Judge<'_>) -> Vec<Invariant> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::consistency::Consistency;
    use crate::metrics::elections::Elections;
    use regsim_kernel::SimDuration;

    fn timing() -> Timing {
        let s = SimDuration::from_secs;
        Timing { unhealthy_after: s(15), check_interval: s(5), beat_interval: s(5), latency_max: None, lossless: true }
    }

    /// What a family promises is chosen when it is built (from the scenario's registry mode),
    /// not by whoever collects the invariants.
    #[test]
    fn families_state_only_the_invariants_they_promise() {
        let t = timing();
        let logs = vec![vec![1u64, 1], vec![1, 1]];
        let j = Judge { timing: &t, raft_logs: &logs, end: SimTime::ZERO };
        let names = |v: Vec<Invariant>| v.into_iter().map(|i| i.name).collect::<Vec<&str>>();
        assert!(Elections::new(false).invariants(&j).is_empty(), "AP: no Raft invariants");
        let raft = names(Elections::new(true).invariants(&j));
        assert!(raft.contains(&"one_leader_per_term"), "{raft:?}");
        assert!(raft.contains(&"acknowledged_writes_kept"), "{raft:?}");

        let mut ap = Consistency::new(100, false, true, 1000);
        ap.finish();
        assert!(ap.invariants(&j).is_empty(), "AP does not promise linearizability");
        let mut cp = Consistency::new(100, true, true, 1000);
        assert!(cp.invariants(&j).is_empty(), "no verdict before the log is read");
        cp.finish();
        assert_eq!(names(cp.invariants(&j)), ["linearizable"]);
        let mut off = Consistency::new(100, true, false, 1000);
        off.finish();
        assert!(off.invariants(&j).is_empty(), "checker off: not_checked is no invariant");
    }
}
