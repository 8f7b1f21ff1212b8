//! The Raft node: roles, terms, the log, elections and replication (see the folder's doc).

use std::sync::Arc;

use rand::RngExt;

use super::disk::Disk;
use super::{Msg, RaftConfig, Timer};
use crate::protocol::{NodeCtx, Obs, ServerList, ServiceId};
use regsim_kernel::{NodeId, SimDuration, SimTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// A command of the CP registry's state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// The entry a new leader appends for its term (§8).
    Noop,
    /// A persistent instance registers (healthy).
    Register { service: ServiceId, instance: NodeId },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub term: u64,
    pub cmd: Cmd,
}

/// The body of an AppendEntries (behind an `Arc`, so the message stays small).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Append {
    pub prev_index: u32,
    pub prev_term: u64,
    /// The entries after `prev_index`.
    pub entries: Vec<Entry>,
    pub commit: u32,
    /// The leader's broadcast round, echoed in the answer.
    pub round: u32,
}

/// Leader's view of one follower.
#[derive(Clone, Copy, Debug)]
struct Progress {
    peer: NodeId,
    next: u32,
    matched: u32,
    /// Heard from since the last CheckQuorum (etcd `Progress.RecentActive`).
    active: bool,
    /// Highest broadcast round acknowledged.
    round: u32,
    /// Local send time of the earliest round this follower acknowledged that is still recent
    /// enough to matter: the latest such start over its acks, for the lease.
    lease_from: Option<SimTime>,
}

#[derive(Debug)]
pub struct RaftNode {
    config: RaftConfig,
    me: NodeId,
    servers: ServerList,
    // Persistent state (kept across a crash).
    term: u64,
    voted_for: Option<NodeId>,
    /// `log[i]` is entry `i + 1`.
    log: Vec<Entry>,
    // Volatile state.
    commit: u32,
    role: Role,
    votes: Vec<NodeId>,
    /// Bumped whenever the election timer is reset; a timer with an older epoch is stale.
    epoch: u32,
    progress: Vec<Progress>,
    /// Local time of the last message from a current leader (for PreVote/CheckQuorum).
    last_contact: Option<SimTime>,
    /// The leader of the current term, if known (for redirects).
    leader: Option<NodeId>,
    /// As leader: the index of this term's no-op, and the current broadcast round.
    term_start: u32,
    round: u32,
    /// As leader: (round, local time its first AppendEntries went out), rounds within the last
    /// election timeout, oldest first.
    round_starts: std::collections::VecDeque<(u32, SimTime)>,
    /// Stable storage: term, vote and log writes and what waits for them.
    disk: Disk,
}

impl RaftNode {
    pub fn new(config: RaftConfig, me: NodeId, servers: ServerList) -> Self {
        RaftNode {
            disk: Disk::new(&config.fsync),
            config,
            me,
            servers,
            term: 0,
            voted_for: None,
            log: Vec::new(),
            commit: 0,
            role: Role::Follower,
            votes: Vec::new(),
            epoch: 0,
            progress: Vec::new(),
            last_contact: None,
            leader: None,
            term_start: 0,
            round: 0,
            round_starts: Default::default(),
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Terms of the log's entries (entry `i + 1` at `[i]`).
    pub fn log_terms(&self) -> Vec<u64> {
        self.log.iter().map(|e| e.term).collect()
    }

    /// Entry `index` (1-based).
    pub fn entry(&self, index: u32) -> Option<&Entry> {
        index.checked_sub(1).and_then(|i| self.log.get(i as usize))
    }

    pub fn commit(&self) -> u32 {
        self.commit
    }

    /// The leader of the current term as far as this node knows (itself when leading).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Leader only: whether an entry of the current term is committed (§8: before that the
    /// leader's commit index may lag behind what earlier leaders committed).
    pub fn term_committed(&self) -> bool {
        self.role == Role::Leader && self.commit >= self.term_start
    }

    /// Leader only: the index of this term's no-op entry.
    pub fn term_start(&self) -> u32 {
        self.term_start
    }

    fn last(&self) -> (u32, u64) {
        (self.log.len() as u32, self.log.last().map_or(0, |e| e.term))
    }

    fn term_at(&self, index: u32) -> Option<u64> {
        match index {
            0 => Some(0),
            i => self.log.get(i as usize - 1).map(|e| e.term),
        }
    }

    fn majority(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    fn peers(&self) -> Vec<NodeId> {
        self.servers.iter().copied().filter(|s| *s != self.me).collect()
    }

    /// Term, vote or log changed: they go to stable storage.
    fn persist(&mut self, ctx: &mut NodeCtx<'_>) {
        let (now, len) = (ctx.now(), self.log.len() as u32);
        if let Some((delay, seq)) = self.disk.write(now, len, ctx.rng()) {
            ctx.set_timer(delay, Timer::Disk { seq });
        }
    }

    /// Sends `msg` once everything written so far is durable (etcd's `Ready` contract:
    /// messages go out after the state they carry is persisted). Only the leader's
    /// AppendEntries skip the wait ([`Self::replicate`]): it writes in parallel (§10.2.1).
    fn send(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId, msg: Msg) {
        if let Some((to, msg)) = self.disk.hold(to, msg) {
            ctx.send(to, msg);
        }
    }

    /// Write `seq` (and every earlier one) is durable: release what waited for it.
    fn on_disk_done(&mut self, ctx: &mut NodeCtx<'_>, seq: u32) {
        let released = self.disk.complete(seq, self.log.len() as u32, |to, msg| ctx.send(to, msg));
        if released && self.role == Role::Leader {
            self.advance_commit(ctx);
        }
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        self.become_follower(ctx, self.term);
    }

    /// A crash loses the volatile state; term, vote and log are on disk (writes in flight:
    /// `Disk::crash`).
    pub fn crash(&mut self) {
        self.disk.crash(self.log.len() as u32);
        self.role = Role::Follower;
        self.commit = 0;
        self.votes.clear();
        self.progress.clear();
        self.last_contact = None;
        self.leader = None;
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
            self.leader = None;
            self.persist(ctx);
        }
        if self.role == Role::Leader {
            self.leader = None;
            ctx.observe(Obs::SteppedDown { term: self.term });
        }
        self.role = Role::Follower;
        self.reset_election_timer(ctx);
    }

    fn request_votes(&mut self, ctx: &mut NodeCtx<'_>, term: u64, pre: bool) {
        let (last_index, last_term) = self.last();
        for p in self.peers() {
            self.send(ctx, p, Msg::RequestVote { term, pre, last_index, last_term: last_term as u32 });
        }
    }

    /// The election timer fired: campaign (with a pre-vote round first if enabled).
    fn on_election_timeout(&mut self, ctx: &mut NodeCtx<'_>) {
        if self.role == Role::Leader {
            return;
        }
        if self.config.pre_vote {
            self.role = Role::PreCandidate;
            self.votes = vec![self.me];
            ctx.observe(Obs::PreCampaign { term: self.term + 1 });
            self.request_votes(ctx, self.term + 1, true);
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
        self.persist(ctx);
        ctx.observe(Obs::Campaign { term: self.term });
        self.request_votes(ctx, self.term, false);
        self.reset_election_timer(ctx);
        self.check_votes(ctx, false);
    }

    fn check_votes(&mut self, ctx: &mut NodeCtx<'_>, pre: bool) {
        if self.votes.len() < self.majority() {
            return;
        }
        if pre {
            self.campaign(ctx);
            return;
        }
        self.role = Role::Leader;
        self.leader = Some(self.me);
        ctx.observe(Obs::LeaderElected { term: self.term, log: Arc::new(self.log_terms()) });
        self.log.push(Entry { term: self.term, cmd: Cmd::Noop });
        self.persist(ctx);
        self.term_start = self.log.len() as u32;
        let next = self.log.len() as u32;
        // As etcd's `reset`: no follower counts as recently active until it answers.
        self.progress = self
            .peers()
            .into_iter()
            .map(|peer| Progress { peer, next, matched: 0, active: false, round: 0, lease_from: None })
            .collect();
        self.round_starts.clear();
        self.replicate_all(ctx);
        ctx.set_timer(self.config.heartbeat_interval, Timer::Heartbeat { term: self.term });
        if self.config.check_quorum {
            ctx.set_timer(self.config.election_timeout, Timer::CheckQuorum { term: self.term });
        }
        self.advance_commit(ctx);
    }

    /// Opens a new round and sends every follower what it lacks (none: a heartbeat).
    fn replicate_all(&mut self, ctx: &mut NodeCtx<'_>) {
        self.round += 1;
        let now = ctx.now();
        while self.round_starts.front().is_some_and(|(_, t)| now.saturating_since(*t) >= self.config.election_timeout) {
            self.round_starts.pop_front();
        }
        self.round_starts.push_back((self.round, now));
        for k in 0..self.progress.len() {
            self.replicate(ctx, k);
        }
    }

    /// Leader only: appends `cmd` and sends it to every follower; returns its index.
    pub fn propose(&mut self, ctx: &mut NodeCtx<'_>, cmd: Cmd) -> Option<u32> {
        if self.role != Role::Leader {
            return None;
        }
        self.log.push(Entry { term: self.term, cmd });
        self.persist(ctx);
        self.replicate_all(ctx);
        self.advance_commit(ctx);
        Some(self.log.len() as u32)
    }

    /// Leader only: opens a new round and sends every follower an AppendEntries in it; a read
    /// that arrived before is confirmed once a majority answered this round.
    pub fn broadcast(&mut self, ctx: &mut NodeCtx<'_>) -> u32 {
        self.replicate_all(ctx);
        self.round
    }

    /// Whether a majority (this leader included) answered round `round` or a later one.
    pub fn round_confirmed(&self, round: u32) -> bool {
        self.role == Role::Leader && self.progress.iter().filter(|p| p.round >= round).count() + 1 >= self.majority()
    }

    /// Leader lease: a majority acknowledged rounds *sent* within the election timeout, so
    /// (with CheckQuorum on every follower, which refuses votes for an election timeout after
    /// hearing the leader, and that hearing came after the send) no other leader can have been
    /// elected meanwhile. Anchoring at the send time, not at the acknowledgement's arrival (Raft
    /// thesis §6.4.1), keeps the lease safe when the leader was paused with acknowledgements
    /// waiting: after a resume, old acknowledgements no longer extend it.
    pub fn lease_valid(&self, ctx: &NodeCtx<'_>) -> bool {
        if self.role != Role::Leader {
            return false;
        }
        let now = ctx.now();
        let fresh = self
            .progress
            .iter()
            .filter(|p| p.lease_from.is_some_and(|t| now.saturating_since(t) < self.config.election_timeout))
            .count();
        fresh + 1 >= self.majority()
    }

    /// Sends follower `k` the entries from its `next` index (none: a heartbeat).
    fn replicate(&mut self, ctx: &mut NodeCtx<'_>, k: usize) {
        let p = self.progress[k];
        let prev_index = p.next.saturating_sub(1);
        let prev_term = self.term_at(prev_index).unwrap_or(0);
        let entries = self.log[prev_index as usize..].to_vec();
        let body = Arc::new(Append { prev_index, prev_term, entries, commit: self.commit, round: self.round });
        ctx.send(p.peer, Msg::AppendEntries { term: self.term, body });
    }

    /// Commits the highest index of the current term stored on a majority.
    fn advance_commit(&mut self, ctx: &mut NodeCtx<'_>) {
        let mut matched: Vec<u32> = self.progress.iter().map(|p| p.matched).collect();
        matched.push(self.disk.durable_len(self.log.len() as u32));
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matched[self.majority() - 1];
        if candidate > self.commit && self.term_at(candidate) == Some(self.term) {
            self.commit = candidate;
            ctx.observe(Obs::Committed { index: candidate, term: self.term });
        }
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        match msg {
            Msg::RequestVote { term, pre, last_index, last_term } => {
                self.on_request_vote(ctx, from, term, pre, (last_index, u64::from(last_term)));
            }
            Msg::Vote { term, pre, granted } => {
                let waiting = if pre { Role::PreCandidate } else { Role::Candidate };
                let current = if pre { self.term + 1 } else { self.term };
                // etcd `Step`: a higher term in a vote response makes this node a follower at
                // that term, except a granted pre-vote (its term is the one we asked for). A
                // rejected pre-vote carries the rejecter's term: a node left behind catches up.
                if term > self.term && !(pre && granted) {
                    self.become_follower(ctx, term);
                } else if granted && self.role == waiting && term == current && !self.votes.contains(&from) {
                    self.votes.push(from);
                    self.check_votes(ctx, pre);
                }
            }
            Msg::AppendEntries { term, body } => self.on_append(ctx, from, term, &body),
            Msg::AppendOk { term, ok, index, round } => {
                if term > self.term {
                    self.become_follower(ctx, term);
                    return;
                }
                if self.role != Role::Leader || term != self.term {
                    return;
                }
                let Some(k) = self.progress.iter().position(|p| p.peer == from) else { return };
                let p = &mut self.progress[k];
                p.active = true;
                p.round = p.round.max(round);
                if let Ok(i) = self.round_starts.binary_search_by_key(&round, |(r, _)| *r) {
                    let sent = self.round_starts[i].1;
                    p.lease_from = Some(p.lease_from.map_or(sent, |t| t.max(sent)));
                }
                if ok {
                    p.matched = p.matched.max(index);
                    p.next = p.matched + 1;
                    self.advance_commit(ctx);
                } else {
                    // Back up to the follower's hint and retry at once.
                    p.next = (index + 1).min(p.next.saturating_sub(1)).max(1);
                    self.replicate(ctx, k);
                }
            }
        }
    }

    fn on_append(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, term: u64, a: &Append) {
        if term < self.term {
            self.send(ctx, from, Msg::AppendOk { term: self.term, ok: false, index: 0, round: a.round });
            return;
        }
        self.last_contact = Some(ctx.now());
        self.become_follower(ctx, term);
        self.leader = Some(from);
        if self.term_at(a.prev_index) != Some(a.prev_term) {
            let hint = (self.log.len() as u32).min(a.prev_index.saturating_sub(1));
            self.send(ctx, from, Msg::AppendOk { term: self.term, ok: false, index: hint, round: a.round });
            return;
        }
        let mut changed = false;
        for (k, e) in a.entries.iter().enumerate() {
            let index = a.prev_index as usize + k + 1;
            match self.log.get(index - 1) {
                Some(existing) if existing.term == e.term => {}
                Some(_) => {
                    self.log.truncate(index - 1);
                    self.disk.truncated(index as u32 - 1);
                    self.log.push(*e);
                    changed = true;
                }
                None => {
                    self.log.push(*e);
                    changed = true;
                }
            }
        }
        if changed {
            self.persist(ctx);
        }
        let last_new = a.prev_index + a.entries.len() as u32;
        self.commit = self.commit.max(a.commit.min(last_new));
        self.send(ctx, from, Msg::AppendOk { term: self.term, ok: true, index: last_new, round: a.round });
    }

    /// Whether this node is in a leader's lease (etcd `Step`, `inLease`: `checkQuorum`, a
    /// known leader, and less than an election timeout since it was last heard; a leader is
    /// always in its own lease, its `electionElapsed` restarting every election timeout).
    fn in_lease(&self, ctx: &NodeCtx<'_>) -> bool {
        self.config.check_quorum
            && match self.role {
                Role::Leader => true,
                Role::Follower => self.leader.is_some() && self.leader_recent(ctx),
                Role::PreCandidate | Role::Candidate => false,
            }
    }

    /// A (pre-)vote request, as etcd-io/raft `raft.go` `Step` answers it:
    /// - a higher term while in a leader's lease (CheckQuorum): ignored, no answer;
    /// - a higher-term vote: become a follower at that term first (a pre-vote never changes
    ///   the term);
    /// - a lower term: a pre-vote is rejected with this node's term, a vote is ignored;
    /// - grant if the candidate's log is up to date and this node can vote: it voted for the
    ///   candidate already, or voted for no one and knows no leader, or it is a pre-vote for a
    ///   future term. A grant echoes the request's term; a rejection carries this node's.
    fn on_request_vote(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, term: u64, pre: bool, last: (u32, u64)) {
        if term > self.term && self.in_lease(ctx) {
            return;
        }
        if term < self.term {
            if pre {
                self.send(ctx, from, Msg::Vote { term: self.term, pre: true, granted: false });
            }
            return;
        }
        if term > self.term && !pre {
            self.become_follower(ctx, term);
        }
        let (my_index, my_term) = self.last();
        let up_to_date = last.1 > my_term || (last.1 == my_term && last.0 >= my_index);
        let can_vote = self.voted_for == Some(from)
            || (self.voted_for.is_none() && self.leader.is_none())
            || (pre && term > self.term)
            || (self.config.vote_twice && term == self.term);
        if can_vote && up_to_date {
            if !pre {
                self.voted_for = Some(from);
                self.persist(ctx);
                self.reset_election_timer(ctx);
            }
            ctx.observe(Obs::Voted { term, candidate: from, pre });
            self.send(ctx, from, Msg::Vote { term, pre, granted: true });
        } else {
            self.send(ctx, from, Msg::Vote { term: self.term, pre, granted: false });
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match timer {
            Timer::Election { epoch } if epoch == self.epoch => self.on_election_timeout(ctx),
            Timer::Disk { seq } => self.on_disk_done(ctx, seq),
            Timer::Heartbeat { term } if term == self.term && self.role == Role::Leader => {
                self.replicate_all(ctx);
                ctx.set_timer(self.config.heartbeat_interval, Timer::Heartbeat { term });
            }
            // etcd `stepLeader`, `MsgCheckQuorum`: step down unless a majority (this leader
            // included) was heard since the last check, then forget who was heard.
            Timer::CheckQuorum { term } if term == self.term && self.role == Role::Leader => {
                let active = self.progress.iter().filter(|p| p.active).count() + 1;
                if active < self.majority() {
                    self.become_follower(ctx, self.term);
                    return;
                }
                self.progress.iter_mut().for_each(|p| p.active = false);
                ctx.set_timer(self.config.election_timeout, Timer::CheckQuorum { term });
            }
            _ => {}
        }
    }
}
