//! The CP registry server (see the folder's doc).

use crate::protocol::{cp, registry};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::RngExt;

use crate::protocol::raft::{Cmd, RaftConfig, RaftNode, Role};
use crate::protocol::{CopyState, InstanceList, Msg, NodeCtx, Obs, ServerList, ServiceId, Timer, Write};
use regsim_kernel::{NodeId, SimDuration};

pub use crate::protocol::raft::ReadMode;

#[derive(Clone, Debug, PartialEq)]
pub struct CpConfig {
    /// Raft's settings, with how reads are served (`raft.reads`).
    pub raft: RaftConfig,
    pub apply_before_commit: bool,
    pub probe_timeout: SimDuration,
    /// Rounds are `probe_base + rand(0, rand(0, probe_jitter))` apart.
    pub probe_base: SimDuration,
    pub probe_jitter: SimDuration,
    /// Consecutive failed (successful) probes that make an instance unhealthy (healthy).
    pub probe_failures: u32,
    pub probe_successes: u32,
}

impl Default for CpConfig {
    fn default() -> Self {
        CpConfig {
            raft: RaftConfig::default(),
            apply_before_commit: false,
            probe_timeout: SimDuration::from_millis(500),
            probe_base: SimDuration::from_secs(2),
            probe_jitter: SimDuration::from_secs(5),
            probe_failures: 3,
            probe_successes: 3,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct PendingWrite {
    index: u32,
    term: u64,
    client: NodeId,
    req: u64,
}

#[derive(Clone, Copy, Debug)]
struct PendingRead {
    client: NodeId,
    req: u64,
    service: ServiceId,
    /// Answer once applied up to here...
    index: u32,
    /// ...and a majority answered this round (0: no confirmation needed).
    round: u32,
}

/// The leader's health-check state of one instance.
#[derive(Clone, Copy, Debug, Default)]
struct Check {
    fails: u32,
    oks: u32,
    /// A status change proposed and not applied yet.
    proposed: Option<bool>,
}

#[derive(Debug)]
pub struct CpServer {
    raft: RaftNode,
    config: Arc<CpConfig>,
    /// Registered instances of each service and whether they are healthy.
    state: BTreeMap<ServiceId, BTreeMap<NodeId, bool>>,
    applied: u32,
    /// The term this server leads, once it noticed it won.
    leading: Option<u64>,
    writes: Vec<PendingWrite>,
    reads: Vec<PendingRead>,
    checks: BTreeMap<NodeId, Check>,
    probe_round: u32,
    answered: BTreeSet<NodeId>,
}

impl CpServer {
    pub fn new(config: Arc<CpConfig>, me: NodeId, servers: ServerList) -> Self {
        CpServer {
            raft: RaftNode::new(config.raft.clone(), me, servers),
            config,
            state: BTreeMap::new(),
            applied: 0,
            leading: None,
            writes: Vec::new(),
            reads: Vec::new(),
            checks: BTreeMap::new(),
            probe_round: 0,
            answered: BTreeSet::new(),
        }
    }

    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        self.raft.on_start(ctx);
    }

    /// The state machine and every pending request are volatile; the Raft log is not.
    pub fn crash(&mut self) {
        self.raft.crash();
        self.state.clear();
        self.applied = 0;
        self.leading = None;
        self.writes.clear();
        self.reads.clear();
        self.checks.clear();
        self.answered.clear();
    }

    fn is_leader(&self) -> bool {
        self.raft.role() == Role::Leader
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Registry(registry::Msg::Write { kind: Write::Register, service, req }) => {
                self.register(ctx, from, service, req)
            }
            // Persistent instances do not beat; an ephemeral client's beat finds nothing.
            Msg::Registry(registry::Msg::Write { kind: Write::Beat, req, .. }) => {
                ctx.send(from, registry::Msg::WriteOk { req, found: false })
            }
            Msg::Registry(registry::Msg::Query { service, req }) => self.read(ctx, from, service, req),
            Msg::Cp(cp::Msg::ProbeOk { round }) if self.is_leader() && round == self.probe_round => {
                self.answered.insert(from);
            }
            Msg::Raft(m) => self.raft.on_message(ctx, from, m),
            _ => {}
        }
        self.sync(ctx);
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match timer {
            Timer::Cp(cp::Timer::ProbeRound { term }) if self.leading == Some(term) && self.is_leader() => {
                self.probe(ctx)
            }
            Timer::Cp(cp::Timer::ProbeTimeout { round }) if round == self.probe_round && self.is_leader() => {
                self.grade_probes(ctx);
                self.schedule_probes(ctx);
            }
            Timer::Raft(t) => self.raft.on_timer(ctx, t),
            _ => {}
        }
        self.sync(ctx);
    }

    /// A refused probe counts as a failure when its round ends, as an unanswered one does.
    pub fn on_refused(&mut self, _ctx: &mut NodeCtx<'_>, _to: NodeId, _msg: Msg) {}

    fn redirect(&self, ctx: &mut NodeCtx<'_>, client: NodeId, req: u64) {
        ctx.send(client, registry::Msg::Redirect { req, leader: self.raft.leader() });
    }

    fn register(&mut self, ctx: &mut NodeCtx<'_>, client: NodeId, service: ServiceId, req: u64) {
        let cmd = Cmd::Register { service, instance: client };
        let Some(index) = self.raft.propose(ctx, cmd) else {
            return self.redirect(ctx, client, req);
        };
        self.writes.push(PendingWrite { index, term: self.raft.term(), client, req });
        if self.config.apply_before_commit {
            self.apply(ctx, cmd);
        }
    }

    fn read(&mut self, ctx: &mut NodeCtx<'_>, client: NodeId, service: ServiceId, req: u64) {
        let mode = self.config.raft.reads;
        if mode == ReadMode::Local {
            return self.answer(ctx, client, service, req);
        }
        if !self.is_leader() {
            return self.redirect(ctx, client, req);
        }
        let ready = self.raft.term_committed();
        if mode == ReadMode::Lease && ready && self.raft.lease_valid(ctx) {
            return self.answer(ctx, client, service, req);
        }
        let round = self.raft.broadcast(ctx);
        // Before this term's no-op commits, the read waits for it: what earlier leaders
        // committed lies below it.
        let index = if ready { self.raft.commit() } else { self.raft.term_start() };
        self.reads.push(PendingRead { client, req, service, index, round });
    }

    fn list(&self, service: ServiceId) -> (InstanceList, InstanceList) {
        let Some(s) = self.state.get(&service) else { return Default::default() };
        let healthy = s.iter().filter(|(_, h)| **h).map(|(n, _)| *n).collect();
        (Arc::new(healthy), Arc::new(s.keys().copied().collect()))
    }

    fn answer(&self, ctx: &mut NodeCtx<'_>, client: NodeId, service: ServiceId, req: u64) {
        let (instances, registered) = self.list(service);
        ctx.send(
            client,
            registry::Msg::QueryOk { req, answer: Arc::new(crate::protocol::QueryAnswer { instances, registered }) },
        );
    }

    /// Applies a command to the state machine, reporting what changed.
    fn apply(&mut self, ctx: &mut NodeCtx<'_>, cmd: Cmd) {
        let (service, instance, healthy) = match cmd {
            Cmd::Noop => return,
            Cmd::Register { service, instance } => (service, instance, true),
            Cmd::Health { service, instance, healthy } => (service, instance, healthy),
        };
        let entries = self.state.entry(service).or_default();
        let before = entries.insert(instance, healthy);
        if let Some(c) = self.checks.get_mut(&instance)
            && c.proposed == Some(healthy)
        {
            c.proposed = None;
        }
        if before == Some(healthy) {
            return;
        }
        ctx.observe(Obs::Copy { instance, state: if healthy { CopyState::Healthy } else { CopyState::Unhealthy } });
        if self.is_leader() {
            ctx.observe(match (before, healthy) {
                (None, _) => Obs::Registered { instance },
                (Some(_), true) => Obs::MarkedHealthy { instance },
                (Some(_), false) => Obs::MarkedUnhealthy { instance },
            });
        }
    }

    /// After every event: apply what committed, notice leadership changes, answer what is ready.
    fn sync(&mut self, ctx: &mut NodeCtx<'_>) {
        while self.applied < self.raft.commit() {
            self.applied += 1;
            let Some(e) = self.raft.entry(self.applied).copied() else { break };
            self.apply(ctx, e.cmd);
        }
        if !self.is_leader() {
            if self.leading.take().is_some() {
                // Clients of a deposed leader time out and retry elsewhere.
                self.writes.clear();
                self.reads.clear();
                self.checks.clear();
            }
            return;
        }
        if self.leading != Some(self.raft.term()) {
            self.leading = Some(self.raft.term());
            self.checks.clear();
            self.schedule_probes(ctx);
        }
        let commit = self.raft.commit();
        let mut k = 0;
        while k < self.writes.len() {
            let w = self.writes[k];
            if w.index > commit {
                k += 1;
                continue;
            }
            self.writes.swap_remove(k);
            if self.raft.entry(w.index).is_some_and(|e| e.term == w.term) {
                ctx.send(w.client, registry::Msg::WriteOk { req: w.req, found: true });
                ctx.observe(Obs::Acked { index: w.index, term: w.term });
            }
        }
        let mut k = 0;
        while k < self.reads.len() {
            let r = self.reads[k];
            if self.applied >= r.index && self.raft.round_confirmed(r.round) {
                self.reads.swap_remove(k);
                self.answer(ctx, r.client, r.service, r.req);
            } else {
                k += 1;
            }
        }
    }

    fn schedule_probes(&mut self, ctx: &mut NodeCtx<'_>) {
        let jitter = self.config.probe_jitter.as_nanos();
        let inner = if jitter == 0 { 0 } else { ctx.rng().random_range(0..jitter) };
        let extra = if inner == 0 { 0 } else { ctx.rng().random_range(0..inner) };
        ctx.set_timer(self.config.probe_base + SimDuration(extra), cp::Timer::ProbeRound { term: self.raft.term() });
    }

    fn probe(&mut self, ctx: &mut NodeCtx<'_>) {
        self.probe_round = self.probe_round.wrapping_add(1);
        self.answered.clear();
        let round = self.probe_round;
        for instances in self.state.values() {
            for n in instances.keys() {
                ctx.send(*n, cp::Msg::Probe { round });
            }
        }
        ctx.set_timer(self.config.probe_timeout, cp::Timer::ProbeTimeout { round });
    }

    fn grade_probes(&mut self, ctx: &mut NodeCtx<'_>) {
        let mut proposals = Vec::new();
        for (service, instances) in &self.state {
            for (n, healthy) in instances {
                let c = self.checks.entry(*n).or_default();
                if self.answered.contains(n) {
                    (c.oks, c.fails) = (c.oks + 1, 0);
                } else {
                    (c.oks, c.fails) = (0, c.fails + 1);
                }
                let wanted = if *healthy && c.fails >= self.config.probe_failures {
                    Some(false)
                } else if !*healthy && c.oks >= self.config.probe_successes {
                    Some(true)
                } else {
                    None
                };
                if let Some(h) = wanted.filter(|h| c.proposed != Some(*h)) {
                    c.proposed = Some(h);
                    proposals.push(Cmd::Health { service: *service, instance: *n, healthy: h });
                }
            }
        }
        for cmd in proposals {
            if self.raft.propose(ctx, cmd).is_some() && self.config.apply_before_commit {
                self.apply(ctx, cmd);
            }
        }
    }
}
