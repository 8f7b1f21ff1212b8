//! What the madsim tier and `--real` share: what they can run, the notes they print, and
//! the Kolmogorov–Smirnov statistic of the cross-check.
//!
//! Both drivers run the kernel's node hosts and draw every message's fate from the kernel's
//! network model, so they accept every scenario the core accepts; the only limits are the
//! transports' own, stated here and in `real`:
//! - madsim adds 1 ms to every send and 1 ms to every receive (`NetSim::rand_delay`, floored by
//!   its 1 ms sleep minimum), so a message takes at least [`HOP_FLOOR`]: a drawn latency is
//!   shortened by the floor, and one below it takes the floor ([`notes`] says so on stderr; it
//!   is documented in the README and bounded in the cross-check test);
//! - `--real` has a node limit, a wall-clock limit and a tolerance (see `real`).

use std::collections::BTreeMap;

use regsim::fault::{FaultAction, Topology};
use regsim::protocol::{ConsensusRoles, Msg, Node};
use regsim::scenario::Scenario;
use regsim::scenario::build::SERVERS;
use regsim_kernel::net::Network;
use regsim_kernel::{Actor, Hosts, NodeId, SimDuration, SimRng, SimTime, Status, Wake};

/// madsim's per-message floor: 1 ms in `send_to_raw` and 1 ms in `recv_from_raw`.
pub const HOP_FLOOR: SimDuration = SimDuration::from_millis(2);

/// A rejection: (key path, message), located in the file by `regsim::scenario::load_with`.
pub type Rejection = (String, String);

/// What the madsim tier cannot run: nothing beyond what the core rejects (the validator
/// `regsim::scenario::load_with` takes).
pub fn check(_s: &Scenario) -> Result<(), Rejection> {
    Ok(())
}

/// The faults a task-per-node driver has still to apply, in time order (same-time faults in
/// schedule order), with the undo of role faults added as they fire.
pub struct Schedule {
    /// (time, order) -> (index in the schedule, for `FaultRecord::Applied`; the action).
    due: BTreeMap<(SimTime, u32), (u32, FaultAction)>,
    next_order: u32,
}

impl Schedule {
    pub fn new(faults: Vec<(SimTime, FaultAction)>) -> Schedule {
        let next_order = u32::try_from(faults.len()).expect("support: more than 2^32 faults");
        let due = faults.into_iter().enumerate().map(|(i, (at, a))| ((at, i as u32), (i as u32, a))).collect();
        Schedule { due, next_order }
    }
    pub fn next_at(&self) -> Option<SimTime> {
        self.due.first_key_value().map(|((at, _), _)| *at)
    }
    pub fn pop(&mut self) -> Option<(u32, FaultAction)> {
        self.due.pop_first().map(|(_, v)| v)
    }
    /// Schedules the undo of fault `idx` (recorded under the same index, as the core does).
    pub fn push_undo(&mut self, at: SimTime, idx: u32, undo: FaultAction) {
        self.due.insert((at, self.next_order), (idx, undo));
        self.next_order += 1;
    }
}

/// What a task-per-node driver must do to its processes after one fault.
pub struct Applied {
    /// Nodes the fault crashed: end their tasks.
    pub crashed: Vec<NodeId>,
    /// Nodes the fault restarted: start a new task (it runs `on_start`).
    pub restarted: Vec<NodeId>,
    /// The undo of a role fault with a duration, for [`Schedule::push_undo`].
    pub undo: Option<(SimTime, FaultAction)>,
}

/// Applies `action` on the hosts as the core world does (role targets by
/// [`ConsensusRoles`]); what a resume releases goes to `inbox`.
pub fn apply_fault(
    hosts: &mut Hosts<Node>,
    now: SimTime,
    action: &FaultAction,
    net: &mut Network,
    rng: &mut SimRng,
    mut inbox: impl FnMut(NodeId, Wake<Msg, <Node as Actor>::Timer>),
) -> Applied {
    let mut restarted = Vec::new();
    let mut wake = |_: SimTime, n: NodeId, what: Wake<Msg, <Node as Actor>::Timer>| match what {
        Wake::Start { .. } => restarted.push(n),
        other => inbox(n, other),
    };
    let crashed = |h: &Hosts<Node>, n: u32| h.status(NodeId(n)) == Status::Crashed;
    let before: Vec<bool> = (0..hosts.len() as u32).map(|n| crashed(hosts, n)).collect();
    let undo = hosts.apply_fault(now, action, net, &ConsensusRoles, rng, &mut wake);
    let crashed = (0..hosts.len() as u32).filter(|&n| !before[n as usize] && crashed(hosts, n)).map(NodeId).collect();
    Applied { crashed, restarted, undo }
}

/// Each CP server's Raft log terms at the end, in server order (for the Raft invariants).
pub fn raft_logs(hosts: &Hosts<Node>, topology: &Topology) -> Vec<Vec<u64>> {
    let servers = topology.role(SERVERS).map_or(0..0, |r| r.first..r.first + r.count);
    servers.filter_map(|n| hosts.actor(NodeId(n)).raft_log_terms()).collect()
}

/// Approximations the run will make (printed on stderr before it starts).
pub fn notes(s: &Scenario) -> Vec<String> {
    let below = |l: &regsim_kernel::net::LatencySpec| l.min_bound().is_none_or(|m| m < HOP_FLOOR);
    let mut out = Vec::new();
    if below(&s.network.latency) || s.network.links.iter().filter_map(|l| l.latency.as_ref()).any(below) {
        out.push(format!(
            "network latency: draws below {HOP_FLOOR} (madsim's 1 ms send + 1 ms receive per message) take {HOP_FLOOR}; \
             longer ones take the drawn latency"
        ));
    }
    out
}

/// Two-sample Kolmogorov–Smirnov statistic: the largest distance between the empirical CDFs
/// of `a` and `b` (0 when either is empty). Ties are handled by stepping both CDFs past a
/// shared value before comparing.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// The KS statistic with a shift tolerance `delta`: the smallest `d` with
/// `F_a(x - delta) - d <= F_b(x) <= F_a(x + delta) + d` for every `x`, i.e. the largest amount
/// by which one empirical CDF exceeds the other moved `delta` to the right. Differences
/// smaller than `delta` in the values cost nothing (`delta = 0` gives [`ks_statistic`]).
pub fn ks_statistic_shifted(a: &[f64], b: &[f64], delta: f64) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let cdf = |v: &[f64], x: f64| v.partition_point(|y| *y <= x) as f64 / v.len() as f64;
    // F_b(x - delta) - F_a(x) is largest where its first term jumps: x = b_j + delta.
    let over = |p: &[f64], q: &[f64]| p.iter().map(|y| cdf(p, *y) - cdf(q, y + delta)).fold(0.0, f64::max);
    over(&b, &a).max(over(&a, &b))
}

/// The two-sample KS critical value `c(alpha) * sqrt((n + m) / (n * m))`.
pub fn ks_critical(c_alpha: f64, n: usize, m: usize) -> f64 {
    let (n, m) = (n as f64, m as f64);
    c_alpha * ((n + m) / (n * m)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_of_identical_and_disjoint_samples() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(ks_statistic(&a, &a), 0.0);
        assert_eq!(ks_statistic(&a, &[10.0, 11.0]), 1.0);
        // a = {1,2,3,4}, b = {2.5}: at x = 2 the CDFs are 0.5 and 0; at 2.5, 0.5 and 1.
        assert_eq!(ks_statistic(&a, &[2.5]), 0.5);
        // Ties: {1,1,2} vs {1,2,2}: at 1, 2/3 vs 1/3.
        let d = ks_statistic(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]);
        assert!((d - 1.0 / 3.0).abs() < 1e-12, "{d}");
    }

    #[test]
    fn shifted_ks_forgives_small_shifts_only() {
        let a = [12.271, 17.271, 17.271, 17.271];
        let b: Vec<f64> = a.iter().map(|x| x + 0.015).collect();
        assert_eq!(ks_statistic(&a, &b), 0.75);
        assert_eq!(ks_statistic_shifted(&a, &b, 0.0), 0.75);
        assert_eq!(ks_statistic_shifted(&a, &b, 0.02), 0.0);
        assert_eq!(ks_statistic_shifted(&b, &a, 0.02), 0.0);
        // A 5 s jump (one missed health check) is not forgiven.
        let c = [12.271, 17.271, 17.271, 22.271];
        assert_eq!(ks_statistic_shifted(&a, &c, 0.1), 0.25);
        let d = ks_statistic_shifted(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0], 0.0);
        assert!((d - 1.0 / 3.0).abs() < 1e-12, "{d}");
    }

    #[test]
    fn ks_critical_value_shrinks_with_samples() {
        let small = ks_critical(1.95, 10, 10);
        let large = ks_critical(1.95, 100, 100);
        assert!((small - 1.95 * (0.2f64).sqrt()).abs() < 1e-12);
        assert!(large < small);
    }
}
