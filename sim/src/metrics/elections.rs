//! Leader elections (CP mode): after the leader crashes, how long until a new leader is
//! elected, and how many elections (terms) that took.
//!
//! An *incident* opens when the current leader (the node that announced `LeaderElected` with
//! the highest term so far) crashes or is paused, and closes at the next `LeaderElected` with
//! a higher term; a leader is elected only with a majority of votes, so it is followed by a
//! majority at that point. Downtime is measured from the ground-truth fault. Each term the
//! incident used beyond the first is an election that produced no leader (a split vote or a
//! lost race).

use regsim_kernel::{NodeId, SimTime};

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
