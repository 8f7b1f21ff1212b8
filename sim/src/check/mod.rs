//! Invariants checked on every run. Each yields `{name, holds, detail}`; a failed one makes
//! the run exit 1 with the time and a reproduction command.
//!
//! - `crashed_instances_detected`: every instance that crashed while listed (registered and
//!   healthy in some server's copy) and stayed down at least `bound = unhealthy_after + check_interval +
//!   slack` is marked unhealthy (or deleted, or gone from every copy) within `bound` of the
//!   crash, unless a server was faulted (crashed, paused, cut off, skewed) in
//!   that window. `slack` covers the last beat still in flight at the crash: twice the
//!   latency bound, or 1 s when latency is unbounded.
//! - `evictions_explained`: when the network is lossless and latency bounded by L with
//!   `beat_interval + 4L <= unhealthy_after` (a beat may be proxied: instance -> server ->
//!   responsible server, and the answer back), a live instance's beats always arrive in time, so
//!   every false positive must have a fault as its cause (none with cause `loss`/`other`).
//!   When that condition does not hold the invariant is reported as not applicable.
//! - `converged_after_heal` (AP runs on a lossless network): once the last disturbance is over (every partition
//!   healed, every server running, no clock skewed; a disturbance is any fault record or an
//!   instance's first registration), every running server's copy lists exactly the running
//!   instances as healthy, and every running consumer's view lists exactly the running
//!   instances, within the bound of [`SettleTiming::bound`]. Anti-entropy (Distro's
//!   checksum verify) is what guarantees this for a copy that lost data without a failed sync.

pub mod linearizability;

use serde::Serialize;

use crate::metrics::detection::{Cause, Detection, DetectionParams, servers_faulted};
use crate::metrics::history::History;
use regsim_kernel::{SimDuration, SimTime};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Invariant {
    pub name: &'static str,
    pub holds: bool,
    pub detail: String,
    /// Virtual time of the first violation, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_violation_s: Option<f64>,
}

/// What the invariants need from the scenario.
pub struct Timing {
    pub unhealthy_after: SimDuration,
    pub check_interval: SimDuration,
    pub beat_interval: SimDuration,
    /// Upper bound of one-way latency, if the distribution has one.
    pub latency_max: Option<SimDuration>,
    pub lossless: bool,
}

pub fn check(d: &Detection, faults: &History, p: &DetectionParams, t: &Timing) -> Vec<Invariant> {
    vec![crashed_instances_detected(d, faults, p, t), evictions_explained(d, t)]
}

fn crashed_instances_detected(d: &Detection, faults: &History, p: &DetectionParams, t: &Timing) -> Invariant {
    let slack = t.latency_max.map_or(SimDuration::from_secs(1), |l| l.saturating_mul(2));
    let bound = t.unhealthy_after + t.check_interval + slack;
    let mut checked = 0;
    let mut late: Vec<(SimTime, String)> = Vec::new();
    for e in d.episodes.iter().filter(|e| e.listed && e.ended - e.crashed >= bound) {
        if servers_faulted(faults, p, e.crashed, e.crashed + bound) {
            continue;
        }
        checked += 1;
        // Gone from every copy (e.g. dropped by anti-entropy from a responsible server that
        // restarted empty) counts too: no server lists it any more.
        let detected = [e.unhealthy, e.deleted, e.replicated].iter().flatten().any(|m| *m - e.crashed <= bound);
        if !detected {
            let when =
                e.unhealthy.map_or("never".to_string(), |m| format!("after {:.3} s", (m - e.crashed).as_secs_f64()));
            late.push((
                e.crashed + bound,
                format!("instance {} crashed at {:.3} s, marked {when}", e.instance, e.crashed.as_secs_f64()),
            ));
        }
    }
    let holds = late.is_empty();
    let detail = if holds {
        format!("{checked} crash episodes checked against a bound of {bound}")
    } else {
        format!(
            "{} of {checked} crashed instances not marked unhealthy within {bound}; first: {}",
            late.len(),
            late[0].1
        )
    };
    Invariant {
        name: "crashed_instances_detected",
        holds,
        detail,
        first_violation_s: late.first().map(|l| l.0.as_secs_f64()),
    }
}

fn evictions_explained(d: &Detection, t: &Timing) -> Invariant {
    let name = "evictions_explained";
    let applicable =
        t.lossless && t.latency_max.is_some_and(|l| t.beat_interval + l.saturating_mul(4) <= t.unhealthy_after);
    if !applicable {
        return Invariant {
            name,
            holds: true,
            detail: "not applicable: needs a lossless network with bounded latency L and beat_interval + 4L <= unhealthy_after".into(),
            first_violation_s: None,
        };
    }
    let bad: Vec<_> = d.false_positives.iter().filter(|f| matches!(f.cause, Cause::Other | Cause::Loss)).collect();
    let holds = bad.is_empty();
    let detail = match bad.first() {
        None => format!("{} false positives, all explained by injected faults", d.false_positives.len()),
        Some(f) => format!(
            "{} live instances evicted without a fault; first: instance {} marked {:?} at {:.3} s",
            bad.len(),
            f.instance,
            f.eviction,
            f.time.as_secs_f64()
        ),
    };
    Invariant { name, holds, detail, first_violation_s: bad.first().map(|f| f.time.as_secs_f64()) }
}

/// What the `converged_after_heal` bound is derived from (AP runs).
#[derive(Clone, Debug)]
pub struct SettleTiming {
    pub servers: u32,
    pub report_interval: SimDuration,
    pub report_timeout: SimDuration,
    pub beat_interval: SimDuration,
    pub request_timeout: SimDuration,
    pub unhealthy_after: SimDuration,
    pub check_interval: SimDuration,
    pub sync_delay: SimDuration,
    pub sync_timeout: SimDuration,
    pub sync_retry: SimDuration,
    pub verify_interval: SimDuration,
    pub sample_interval: SimDuration,
    /// One-way latency bound (1 s when the distribution is unbounded).
    pub hop: SimDuration,
    /// Consumers' polling, when there are consumers (their views must converge too).
    pub views: Option<ViewTiming>,
}

/// How consumers refresh their views (for the views phase of [`SettleTiming::bound`]).
#[derive(Clone, Copy, Debug)]
pub struct ViewTiming {
    pub poll_interval: SimDuration,
    pub backoff_max: SimDuration,
    pub query_timeout: SimDuration,
}

impl SettleTiming {
    /// Time from the last disturbance until every copy must be right, as four phases one after
    /// the other (each a worst case given the one before it is over):
    /// 1. **membership**: every server hears every other one again. Each reports to one peer in
    ///    turn every `report_interval` and an answered report marks the sender UP, so
    ///    `(servers - 1) * report_interval + report_timeout + 2 hops`; from then on all agree
    ///    on who is responsible for the service.
    /// 2. **instances**: a live instance's next beat goes out within `beat_interval +
    ///    request_timeout` (a beat in flight may time out first) and reaches the responsible
    ///    server in 2 hops (proxied); if it was deleted meanwhile, the "not found" answer makes
    ///    it register again (another round): `2 * (beat_interval + request_timeout + 4 hops)`.
    ///    In parallel, a dead or paused instance is marked unhealthy by the health check within
    ///    `unhealthy_after + check_interval + 1 hop`; the phase takes the larger of the two.
    /// 3. **replication**: the responsible server's copy reaches every other server: a sync
    ///    after `sync_delay`, a lost or refused one retried after `sync_timeout + sync_retry`;
    ///    a copy that missed no sync but lost its data (a restarted server) is repaired by the
    ///    next checksum verify, within `verify_interval` plus a pull and its answer:
    ///    `sync_delay + sync_timeout + sync_retry + verify_interval + 4 hops`.
    /// 4. **views** (when there are consumers): once every copy is right, each consumer's next
    ///    poll gets the right list. The next poll is due at most `max(poll_interval,
    ///    backoff_max)` later (a consumer whose polls failed during the fault waits out its
    ///    backoff), a query still in flight may first bring an older list (it left before the
    ///    copies were right; its answer comes within `query_timeout`), and the answer takes
    ///    2 hops: `query_timeout + max(poll_interval, backoff_max) + 2 hops`. (Pushes only
    ///    speed this up.)
    /// 5. **sampling**: copies and views are compared every `sample_interval`.
    ///
    /// With Nacos defaults and 10 ms latency: 7 s + 20 s + 15 s + 1 s ≈ 43 s without
    /// consumers, plus 3 s + 60 s for the views phase with them. On a lossy
    /// network no bound holds (beats and syncs can be lost again and again, and with enough
    /// instances some copy is wrong at every sample), so the invariant applies without loss only.
    pub fn bound(&self) -> SimDuration {
        let hops = |k: u64| self.hop.saturating_mul(k);
        let membership = self.report_interval.saturating_mul(u64::from(self.servers.saturating_sub(1)))
            + self.report_timeout
            + hops(2);
        let beats = (self.beat_interval + self.request_timeout + hops(4)).saturating_mul(2);
        let health = self.unhealthy_after + self.check_interval + hops(1);
        let replication = self.sync_delay + self.sync_timeout + self.sync_retry + self.verify_interval + hops(4);
        let views =
            self.views.map_or(SimDuration::ZERO, |v| v.query_timeout + v.poll_interval.max(v.backoff_max) + hops(2));
        membership + beats.max(health) + replication + views + self.sample_interval
    }
}

/// AP runs: after the last disturbance every copy converges within `bound`. `quiet` says why
/// the end of the run is not quiet (a partition still active, a server down), if it is not.
pub fn converged_after_heal(
    settle: &crate::metrics::analyzer::Settle,
    quiet: Result<(), String>,
    bound: SimDuration,
    end: SimTime,
) -> Invariant {
    let name = "converged_after_heal";
    let na = |why: String| Invariant {
        name,
        holds: true,
        detail: format!("not applicable: {why}"),
        first_violation_s: None,
    };
    if let Err(why) = quiet {
        return na(why);
    }
    let from = settle.last_disturbance;
    let deadline = from + bound;
    match settle.converged_at {
        Some(c) if c <= deadline => Invariant {
            name,
            holds: true,
            detail: format!(
                "last disturbance at {:.3} s, every copy and view right {:.3} s later (bound {bound})",
                from.as_secs_f64(),
                (c - from).as_secs_f64()
            ),
            first_violation_s: None,
        },
        _ if deadline > end => na(format!(
            "the run ends {:.3} s after the last disturbance (at {:.3} s), before the bound of {bound}",
            (end - from).as_secs_f64(),
            from.as_secs_f64()
        )),
        c => Invariant {
            name,
            holds: false,
            detail: format!(
                "last disturbance at {:.3} s, copies and views {} (bound {bound})",
                from.as_secs_f64(),
                c.map_or("never converged".to_string(), |c| format!(
                    "converged only {:.3} s later",
                    (c - from).as_secs_f64()
                ))
            ),
            first_violation_s: Some(deadline.as_secs_f64()),
        },
    }
}

/// Raft election safety (CP runs): at most one leader per term.
pub fn one_leader_per_term(e: &crate::metrics::elections::Elections) -> Invariant {
    let name = "one_leader_per_term";
    match e.two_leaders.first() {
        None => Invariant {
            name,
            holds: true,
            detail: format!("{} leaders elected, terms up to {}", e.leaders_elected, e.max_term),
            first_violation_s: None,
        },
        Some((t, term, a, b)) => Invariant {
            name,
            holds: false,
            detail: format!("{} terms with two leaders; first: term {term} won by {a} and {b}", e.two_leaders.len()),
            first_violation_s: Some(t.as_secs_f64()),
        },
    }
}

/// Raft log safety on the servers' final logs (terms of entries, persistent across crashes):
/// - `log_matching`: where two logs hold an entry with the same index and term, all earlier
///   entries are identical (once two logs diverge they never agree again);
/// - `committed_entries_durable`: every entry a leader reported committed is still stored,
///   with the same term, on a majority of servers (so no later leader can lose it).
pub fn raft_logs(logs: &[Vec<u64>], committed: &[(u32, u64)]) -> Vec<Invariant> {
    let mut bad_pair = None;
    'pairs: for a in 0..logs.len() {
        for b in a + 1..logs.len() {
            let mut diverged = false;
            for (i, (x, y)) in logs[a].iter().zip(&logs[b]).enumerate() {
                if x != y {
                    diverged = true;
                } else if diverged {
                    bad_pair = Some((a, b, i + 1));
                    break 'pairs;
                }
            }
        }
    }
    let matching = Invariant {
        name: "log_matching",
        holds: bad_pair.is_none(),
        detail: match bad_pair {
            None => format!("{} logs, up to {} entries", logs.len(), logs.iter().map(Vec::len).max().unwrap_or(0)),
            Some((a, b, i)) => format!("servers {a} and {b} agree at index {i} after differing earlier"),
        },
        first_violation_s: None,
    };
    let majority = logs.len() / 2 + 1;
    let lost: Vec<&(u32, u64)> = committed
        .iter()
        .filter(|(i, t)| logs.iter().filter(|l| l.get(*i as usize - 1) == Some(t)).count() < majority)
        .collect();
    let durable = Invariant {
        name: "committed_entries_durable",
        holds: lost.is_empty(),
        detail: match lost.first() {
            None => format!("{} commit reports, all stored on a majority", committed.len()),
            Some((i, t)) => format!("{} committed entries not on a majority; first: index {i} of term {t}", lost.len()),
        },
        first_violation_s: None,
    };
    vec![matching, durable]
}

/// Raft (CP runs): every write a leader acknowledged to a client is in the log of every leader
/// of a higher term elected after the acknowledgement (leader completeness, as the client sees
/// it).
pub fn acknowledged_writes_kept(e: &crate::metrics::elections::Elections) -> Invariant {
    let name = "acknowledged_writes_kept";
    match e.lost_acks.first() {
        None => Invariant {
            name,
            holds: true,
            detail: format!("{} acknowledged writes checked against every later leader's log", e.acked.len()),
            first_violation_s: None,
        },
        Some((t, leader_term, index, term)) => Invariant {
            name,
            holds: false,
            detail: format!(
                "{} acknowledged writes missing from a later leader's log; first: index {index} of term {term}, missing when the leader of term {leader_term} won",
                e.lost_acks.len()
            ),
            first_violation_s: Some(t.as_secs_f64()),
        },
    }
}

/// CP runs: the client-visible history is linearizable (the CP registry promises it).
pub fn linearizable(c: &crate::report::model::ConsistencyReport) -> Invariant {
    let first =
        c.violation.iter().filter_map(|o| o.complete_s).fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    Invariant {
        name: "linearizable",
        holds: c.verdict != "violation",
        detail: c.detail.clone(),
        first_violation_s: if c.verdict == "violation" { first } else { None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_write_missing_from_a_later_leader_is_caught() {
        use regsim_kernel::NodeId;
        let mut e = crate::metrics::elections::Elections::default();
        e.leader_elected(SimTime(1), NodeId(0), 1, &[]);
        e.acked.push((SimTime(5), 2, 1)); // index 2 of term 1, acknowledged at t = 5
        e.leader_elected(SimTime(10), NodeId(1), 2, &[1, 1]);
        assert!(acknowledged_writes_kept(&e).holds);
        e.leader_elected(SimTime(20), NodeId(2), 3, &[1]);
        let inv = acknowledged_writes_kept(&e);
        assert!(!inv.holds && inv.first_violation_s == Some(20e-9), "{inv:?}");
    }

    #[test]
    fn log_invariants_catch_divergence_and_lost_commits() {
        let good = vec![vec![1, 1, 2], vec![1, 1, 2, 3], vec![1, 1]];
        assert!(raft_logs(&good, &[(2, 1), (3, 2)]).iter().all(|i| i.holds));
        // Servers 0 and 1 differ at index 2 but agree again at index 3: log matching broken.
        let forked = vec![vec![1, 1, 2], vec![1, 2, 2], vec![1]];
        assert!(!raft_logs(&forked, &[])[0].holds);
        // Index 3 (term 2) reported committed but stored on one server of three.
        let lost = vec![vec![1, 1, 2], vec![1, 1], vec![1, 1]];
        let inv = raft_logs(&lost, &[(3, 2)]);
        assert!(inv[0].holds && !inv[1].holds, "{inv:?}");
    }
}
