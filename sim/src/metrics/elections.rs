//! Leader elections (CP mode): after the leader crashes, how long until a new leader is
//! elected, and how many elections (terms) that took.
//!
//! An *incident* opens when the current leader (the node that announced `LeaderElected` with
//! the highest term so far) crashes or is paused, and closes at the next `LeaderElected` with
//! a higher term; a leader is elected only with a majority of votes, so it is followed by a
//! majority at that point. Downtime is measured from the ground-truth fault. Each term the
//! incident used beyond the first is an election that produced no leader (a split vote or a
//! lost race).

use super::family::{Family, Judge, Truth};
use crate::check::Invariant;
use crate::protocol::Obs;
use regsim_kernel::{FaultRecord, NodeId, SimTime};

#[derive(Clone, Debug, Default)]
pub struct Elections {
    leader: Option<(NodeId, u64)>,
    open: Option<(SimTime, u64, u64)>,
    /// Per closed incident: (downtime in seconds, terms used, campaigns started).
    pub incidents: Vec<(f64, u64, u64)>,
    /// Incidents still without a leader at the end.
    pub unresolved: u64,
    /// Leaders elected in total, and the highest term seen.
    pub leaders_elected: u64,
    pub max_term: u64,
    /// Who won each term; a second winner of a term is a safety violation.
    winners: std::collections::BTreeMap<u64, NodeId>,
    /// (time, term, first winner, second winner) of every violation.
    pub two_leaders: Vec<(SimTime, u64, NodeId, NodeId)>,
    /// Leader isolations (a partition cutting off the current leader), in order.
    pub isolations: Vec<Isolation>,
    /// Every (index, term) a leader reported committed.
    pub committed: Vec<(u32, u64)>,
    /// Every client write a leader acknowledged: (time, index, term).
    pub acked: Vec<(SimTime, u32, u64)>,
    /// Acknowledged writes missing from a later leader's log when it won:
    /// (election time, leader term, index, term of the write).
    pub lost_acks: Vec<(SimTime, u64, u32, u64)>,
    /// Whether the registry runs Raft (CP): then Raft's safety properties are invariants.
    pub judged: bool,
}

impl Elections {
    /// The family of a run; `raft`: the registry runs Raft, so its invariants are checked.
    pub fn new(raft: bool) -> Self {
        Elections { judged: raft, ..Default::default() }
    }
}

impl Family for Elections {
    fn name(&self) -> &'static str {
        "elections"
    }

    fn observe(&mut self, t: SimTime, node: NodeId, o: &Obs, _: &Truth<'_>) {
        match *o {
            Obs::LeaderElected { term, ref log } => self.leader_elected(t, node, term, log),
            Obs::Acked { index, term } => self.acked.push((t, index, term)),
            Obs::Campaign { term } => self.campaign(node, term),
            Obs::Committed { index, term } => self.committed.push((index, term)),
            Obs::SteppedDown { .. } => self.stepped_down(t, node),
            _ => {}
        }
    }

    fn fault(&mut self, t: SimTime, node: NodeId, f: FaultRecord, truth: &Truth<'_>) {
        match f {
            FaultRecord::Crashed | FaultRecord::Paused => self.down(t, node),
            // The leader is cut off only when it can no longer reach a majority of servers.
            FaultRecord::Partitioned(_) if truth.reachable_servers(node) <= truth.p.servers.len() / 2 => {
                self.cut(t, node);
            }
            FaultRecord::Healed(_) => self.healed(t),
            _ => {}
        }
    }

    fn finish(&mut self) {
        Elections::finish(self);
    }

    fn invariants(&self, j: &Judge<'_>) -> Vec<Invariant> {
        if !self.judged {
            return Vec::new();
        }
        let mut out = vec![one_leader_per_term(self)];
        out.extend(raft_logs(j.raft_logs, &self.committed));
        out.push(acknowledged_writes_kept(self));
        out
    }
}

/// What happened when the leader was cut off, and after the heal.
#[derive(Clone, Debug, PartialEq)]
pub struct Isolation {
    pub leader: NodeId,
    pub term: u64,
    pub cut_at: SimTime,
    pub healed_at: Option<SimTime>,
    /// When the cut-off leader stepped down (CheckQuorum), if it did.
    pub stepped_down_at: Option<SimTime>,
    /// Elections the cut-off node started while cut off, and the highest term it reached.
    pub campaigns_while_cut: u64,
    pub max_term_while_cut: u64,
    /// Leaders elected by the rest while the old leader was cut off, and after the heal.
    pub elected_while_cut: u64,
    pub elected_after_heal: u64,
}

impl Elections {
    /// A partition cut `node` off at `t`: an isolation if it was the leader.
    pub fn cut(&mut self, t: SimTime, node: NodeId) {
        if self.leader.is_some_and(|(l, _)| l == node) && self.isolations.last().is_none_or(|i| i.healed_at.is_some()) {
            let term = self.leader.map_or(0, |(_, term)| term);
            self.isolations.push(Isolation {
                leader: node,
                term,
                cut_at: t,
                healed_at: None,
                stepped_down_at: None,
                campaigns_while_cut: 0,
                max_term_while_cut: term,
                elected_while_cut: 0,
                elected_after_heal: 0,
            });
        }
    }

    pub fn healed(&mut self, t: SimTime) {
        if let Some(i) = self.isolations.last_mut().filter(|i| i.healed_at.is_none()) {
            i.healed_at = Some(t);
        }
    }

    pub fn stepped_down(&mut self, t: SimTime, node: NodeId) {
        if let Some(i) = self.isolations.last_mut().filter(|i| i.leader == node && i.healed_at.is_none()) {
            i.stepped_down_at.get_or_insert(t);
        }
    }

    /// `log`: the terms of the winner's log entries when it won.
    pub fn leader_elected(&mut self, t: SimTime, node: NodeId, term: u64, log: &[u64]) {
        // Leader completeness binds leaders of later *terms*: a stale leader of a lower term
        // can still be announced after the write (e.g. it was paused holding its votes).
        for &(_, index, wterm) in self.acked.iter().filter(|a| a.0 < t && term > a.2) {
            if log.get(index as usize - 1) != Some(&wterm) {
                self.lost_acks.push((t, term, index, wterm));
            }
        }
        if let Some(i) = self.isolations.last_mut() {
            match i.healed_at {
                None if node != i.leader => i.elected_while_cut += 1,
                Some(_) => i.elected_after_heal += 1,
                None => {}
            }
        }
        self.leaders_elected += 1;
        self.max_term = self.max_term.max(term);
        match self.winners.get(&term) {
            Some(first) if *first != node => self.two_leaders.push((t, term, *first, node)),
            Some(_) => {}
            None => {
                self.winners.insert(term, node);
            }
        }
        if let Some((at, old_term, campaigns)) = self.open
            && term > old_term
        {
            self.incidents.push(((t - at).as_secs_f64(), term - old_term, campaigns));
            self.open = None;
        }
        if self.leader.is_none_or(|(_, lt)| term >= lt) {
            self.leader = Some((node, term));
        }
    }

    pub fn campaign(&mut self, node: NodeId, term: u64) {
        self.max_term = self.max_term.max(term);
        if let Some(i) = self.isolations.last_mut().filter(|i| i.leader == node && i.healed_at.is_none()) {
            i.campaigns_while_cut += 1;
            i.max_term_while_cut = i.max_term_while_cut.max(term);
        }
        if let Some((_, _, c)) = &mut self.open {
            *c += 1;
        }
    }

    /// `node` crashed or was paused at `t`.
    pub fn down(&mut self, t: SimTime, node: NodeId) {
        if let Some((l, term)) = self.leader
            && l == node
            && self.open.is_none()
        {
            self.open = Some((t, term, 0));
            self.leader = None;
        }
    }

    pub fn finish(&mut self) {
        self.unresolved = u64::from(self.open.is_some());
    }
}

/// Raft election safety (CP runs): at most one leader per term.
pub fn one_leader_per_term(e: &Elections) -> Invariant {
    let name = "one_leader_per_term";
    match e.two_leaders.first() {
        None => Invariant {
            not_applicable: false,
            name,
            holds: true,
            detail: format!("{} leaders elected, terms up to {}", e.leaders_elected, e.max_term),
            first_violation_s: None,
        },
        Some((t, term, a, b)) => Invariant {
            not_applicable: false,
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
        not_applicable: false,
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
        not_applicable: false,
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
pub fn acknowledged_writes_kept(e: &Elections) -> Invariant {
    let name = "acknowledged_writes_kept";
    match e.lost_acks.first() {
        None => Invariant {
            not_applicable: false,
            name,
            holds: true,
            detail: format!("{} acknowledged writes checked against every later leader's log", e.acked.len()),
            first_violation_s: None,
        },
        Some((t, leader_term, index, term)) => Invariant {
            not_applicable: false,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_write_missing_from_a_later_leader_is_caught() {
        use regsim_kernel::NodeId;
        let mut e = Elections::default();
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
