//! Raft leader election among the registry servers (CP mode), sans-IO.
//!
//! Follows the Raft paper (§5.2, §9.3) with the etcd/raft-rs extensions as switches:
//! - a follower that hears no leader for its *election timeout* — drawn per election from
//!   `[election_timeout, election_timeout + election_jitter)` — becomes a candidate: new term,
//!   votes for itself, asks every peer for a vote; a majority makes it leader, which then sends
//!   heartbeats (empty AppendEntries) every `heartbeat_interval`;
//! - **PreVote** (Ongaro's thesis §9.6): before a real election a node asks whether peers
//!   would vote for it, without raising its term; peers that heard a leader recently refuse, so
//!   a node cut off and rejoining does not disrupt a working leader;
//! - **CheckQuorum**: a leader that has not heard from a majority (itself included) within the
//!   last election timeout steps down; it checks at every heartbeat, so it steps down within an
//!   election timeout plus a heartbeat interval of losing its majority.
//!
//! Defaults follow JRaft in Nacos (election 5 s + random [0, 1 s), heartbeat 500 ms); the
//! etcd settings (100 ms ticks: 1 s + [0, 1 s), 100 ms heartbeat) and the Raft paper's
//! (150–300 ms) are expressible. Log replication is not modelled yet: every log is empty, so
//! the up-to-date check of a vote always passes. The term and the vote are persistent state
//! and survive a crash.

use rand::RngExt;

use super::{Msg, NodeCtx, Obs, ServerList, Timer};
use crate::engine::{NodeId, SimDuration, SimTime};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftConfig {
    pub election_timeout: SimDuration,
    pub election_jitter: SimDuration,
    pub heartbeat_interval: SimDuration,
    pub pre_vote: bool,
    pub check_quorum: bool,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout: SimDuration::from_secs(5),
            election_jitter: SimDuration::from_secs(1),
            heartbeat_interval: SimDuration::from_millis(500),
            pre_vote: true,
            check_quorum: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

#[derive(Debug)]
pub struct RaftNode {
    config: RaftConfig,
    me: NodeId,
    servers: ServerList,
    // Persistent state (kept across a crash).
    term: u64,
    voted_for: Option<NodeId>,
    // Volatile state.
    role: Role,
    votes: Vec<NodeId>,
    /// Bumped whenever the election timer is reset; a timer with an older epoch is stale.
    epoch: u32,
    /// Leader: when each peer last acknowledged a heartbeat (local time).
    acked: Vec<(NodeId, SimTime)>,
    /// Local time of the last message from a current leader (for PreVote/CheckQuorum).
    last_contact: Option<SimTime>,
}

impl RaftNode {
    pub fn new(config: RaftConfig, me: NodeId, servers: ServerList) -> Self {
        RaftNode {
            config,
            me,
            servers,
            term: 0,
            voted_for: None,
            role: Role::Follower,
            votes: Vec::new(),
            epoch: 0,
            acked: Vec::new(),
            last_contact: None,
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn role(&self) -> Role {
        self.role
    }

    fn majority(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.servers.iter().copied().filter(move |s| *s != self.me)
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        self.become_follower(ctx, self.term);
    }

    /// A crash loses the volatile state; term and vote are on disk.
    pub fn crash(&mut self) {
        self.role = Role::Follower;
        self.votes.clear();
        self.acked.clear();
        self.last_contact = None;
    }

    /// Whether a leader was heard within the (base) election timeout, as etcd checks.
    fn leader_recent(&self, ctx: &NodeCtx<'_>) -> bool {
        self.role == Role::Follower
            && self.last_contact.is_some_and(|t| ctx.now().saturating_since(t) < self.config.election_timeout)
    }

    fn reset_election_timer(&mut self, ctx: &mut NodeCtx<'_>) {
        self.epoch = self.epoch.wrapping_add(1);
        let jitter = self.config.election_jitter.as_nanos();
        let extra = if jitter == 0 { 0 } else { ctx.rng().random_range(0..jitter) };
        ctx.set_timer(self.config.election_timeout + SimDuration(extra), Timer::Election { epoch: self.epoch });
    }

    fn become_follower(&mut self, ctx: &mut NodeCtx<'_>, term: u64) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        if self.role == Role::Leader {
            ctx.observe(Obs::SteppedDown { term: self.term });
        }
        self.role = Role::Follower;
        self.reset_election_timer(ctx);
    }

    /// The election timer fired: campaign (with a pre-vote round first if enabled).
    fn on_election_timeout(&mut self, ctx: &mut NodeCtx<'_>) {
        if self.role == Role::Leader {
            return;
        }
        if self.config.pre_vote {
            self.role = Role::PreCandidate;
            self.votes = vec![self.me];
            for p in self.peers().collect::<Vec<_>>() {
                ctx.send(p, Msg::RequestVote { term: self.term + 1, pre: true });
            }
            self.reset_election_timer(ctx);
            self.check_votes(ctx, true);
        } else {
            self.campaign(ctx);
        }
    }

    fn campaign(&mut self, ctx: &mut NodeCtx<'_>) {
        self.term += 1;
        self.role = Role::Candidate;
        self.voted_for = Some(self.me);
        self.votes = vec![self.me];
        ctx.observe(Obs::Campaign { term: self.term });
        for p in self.peers().collect::<Vec<_>>() {
            ctx.send(p, Msg::RequestVote { term: self.term, pre: false });
        }
        self.reset_election_timer(ctx);
        self.check_votes(ctx, false);
    }

    fn check_votes(&mut self, ctx: &mut NodeCtx<'_>, pre: bool) {
        if self.votes.len() < self.majority() {
            return;
        }
        if pre {
            self.campaign(ctx);
        } else {
            self.role = Role::Leader;
            let now = ctx.now();
            // The votes just received count as contact.
            self.acked = self.peers().map(|p| (p, now)).collect();
            ctx.observe(Obs::LeaderElected { term: self.term });
            self.send_heartbeats(ctx);
            ctx.set_timer(self.config.heartbeat_interval, Timer::Heartbeat { term: self.term });
        }
    }

    /// Whether a majority (this leader included) was heard within the last election timeout.
    fn quorum_active(&self, ctx: &NodeCtx<'_>) -> bool {
        let now = ctx.now();
        let recent = self.acked.iter().filter(|(_, t)| now.saturating_since(*t) < self.config.election_timeout).count();
        recent + 1 >= self.majority()
    }

    fn send_heartbeats(&mut self, ctx: &mut NodeCtx<'_>) {
        for p in self.peers().collect::<Vec<_>>() {
            ctx.send(p, Msg::AppendEntries { term: self.term });
        }
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        match msg {
            Msg::RequestVote { term, pre } => self.on_request_vote(ctx, from, term, pre),
            Msg::Vote { term, pre, granted } => {
                let waiting = if pre { Role::PreCandidate } else { Role::Candidate };
                let current = if pre { self.term + 1 } else { self.term };
                if !pre && term > self.term {
                    self.become_follower(ctx, term);
                } else if granted && self.role == waiting && term == current && !self.votes.contains(&from) {
                    self.votes.push(from);
                    self.check_votes(ctx, pre);
                }
            }
            Msg::AppendEntries { term } => {
                if term < self.term {
                    ctx.send(from, Msg::AppendOk { term: self.term, ok: false });
                    return;
                }
                self.last_contact = Some(ctx.now());
                self.become_follower(ctx, term);
                ctx.send(from, Msg::AppendOk { term: self.term, ok: true });
            }
            Msg::AppendOk { term, .. } => {
                if term > self.term {
                    self.become_follower(ctx, term);
                } else if self.role == Role::Leader {
                    let now = ctx.now();
                    if let Some(a) = self.acked.iter_mut().find(|a| a.0 == from) {
                        a.1 = now;
                    }
                }
            }
            _ => {}
        }
    }

    fn on_request_vote(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, term: u64, pre: bool) {
        if pre {
            // Grant a pre-vote if the term would be newer and we have not heard a leader lately.
            let granted = term > self.term && !self.leader_recent(ctx);
            ctx.send(from, Msg::Vote { term, pre: true, granted });
            return;
        }
        if term > self.term {
            // With CheckQuorum, a follower that hears a live leader ignores disruptive votes.
            if self.config.check_quorum && self.leader_recent(ctx) {
                ctx.send(from, Msg::Vote { term: self.term, pre: false, granted: false });
                return;
            }
            self.become_follower(ctx, term);
        }
        let granted = term == self.term && self.voted_for.is_none_or(|v| v == from);
        if granted {
            self.voted_for = Some(from);
            self.reset_election_timer(ctx);
        }
        ctx.send(from, Msg::Vote { term: self.term, pre: false, granted });
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match timer {
            Timer::Election { epoch } if epoch == self.epoch => self.on_election_timeout(ctx),
            Timer::Heartbeat { term } if term == self.term && self.role == Role::Leader => {
                if self.config.check_quorum && !self.quorum_active(ctx) {
                    self.become_follower(ctx, self.term);
                    return;
                }
                self.send_heartbeats(ctx);
                ctx.set_timer(self.config.heartbeat_interval, Timer::Heartbeat { term });
            }
            _ => {}
        }
    }
}
