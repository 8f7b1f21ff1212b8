//! The CP registry server (see the folder's doc).

use crate::protocol::{cp, nacos, registry};
use std::sync::Arc;

use crate::protocol::cp::check::{CheckConfig, Checks, Outcome};
use crate::protocol::nacos::distro::responsible;
use crate::protocol::nacos::membership::{Membership, MembershipConfig};
use crate::protocol::nacos::status;
use crate::protocol::nacos::table::Table;
use crate::protocol::raft::{Cmd, RaftConfig, RaftNode, Role};
use crate::protocol::{InstRec, Msg, NodeCtx, Obs, ServerList, ServiceId, Timer, Write};
use regsim_kernel::NodeId;

pub use crate::protocol::raft::ReadMode;

#[derive(Clone, Debug, PartialEq)]
pub struct CpConfig {
    /// Raft's settings, with how reads are served (`raft.reads`).
    pub raft: RaftConfig,
    pub apply_before_commit: bool,
    /// Java `hashCode` of each service's name, indexed by `ServiceId` (Distro responsibility).
    pub service_hashes: Arc<[i32]>,
    /// The servers' membership reports (`[registry.membership]`).
    pub membership: MembershipConfig,
    /// The TCP health check.
    pub check: CheckConfig,
    /// `[registry.health] protect_threshold` (see `nacos::server::HealthConfig`).
    pub protect_threshold: f64,
}

impl Default for CpConfig {
    fn default() -> Self {
        CpConfig {
            raft: RaftConfig::default(),
            apply_before_commit: false,
            service_hashes: Arc::from([crate::protocol::java_hash("DEFAULT_GROUP@@demo-service")]),
            membership: MembershipConfig::default(),
            check: CheckConfig::default(),
            protect_threshold: 0.0,
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

#[derive(Debug)]
pub struct CpServer {
    raft: RaftNode,
    config: Arc<CpConfig>,
    me: NodeId,
    /// Registered instances of each service with this server's health flags, by `ServiceId`.
    tables: Vec<Table>,
    applied: u32,
    /// The term this server leads, once it noticed it won.
    leading: Option<u64>,
    writes: Vec<PendingWrite>,
    reads: Vec<PendingRead>,
    membership: Membership,
    /// Cached `membership.healthy_servers()`.
    healthy: Vec<NodeId>,
    peers: Vec<NodeId>,
    checks: Checks,
}

impl CpServer {
    pub fn new(config: Arc<CpConfig>, me: NodeId, servers: ServerList) -> Self {
        let membership = Membership::new(config.membership.clone(), me, &servers);
        CpServer {
            raft: RaftNode::new(config.raft.clone(), me, servers),
            tables: vec![Table::default(); config.service_hashes.len()],
            config,
            me,
            applied: 0,
            leading: None,
            writes: Vec::new(),
            reads: Vec::new(),
            healthy: membership.healthy_servers(),
            peers: membership.peers().collect(),
            membership,
            checks: Checks::default(),
        }
    }

    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// This server's copy of `service`.
    pub fn table(&self, service: ServiceId) -> Option<&Table> {
        self.tables.get(service.0 as usize)
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        self.raft.on_start(ctx);
        self.membership.on_start(ctx);
        status::on_start(ctx);
    }

    /// The state machine, the health flags and every pending request are volatile; the Raft
    /// log is not.
    pub fn crash(&mut self) {
        self.raft.crash();
        self.tables.iter_mut().for_each(Table::clear);
        self.applied = 0;
        self.leading = None;
        self.writes.clear();
        self.reads.clear();
        self.membership.reset();
        self.healthy = self.membership.healthy_servers();
        self.checks.clear();
    }

    fn is_leader(&self) -> bool {
        self.raft.role() == Role::Leader
    }

    /// Whether this server is Distro-responsible for `service` in its membership view.
    fn is_responsible(&self, service: ServiceId) -> bool {
        let hash = self.config.service_hashes.get(service.0 as usize);
        hash.and_then(|h| responsible(*h, &self.healthy)) == Some(self.me)
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
            Msg::Cp(cp::Msg::ProbeOk { round }) => self.probed(ctx, from, round, Outcome::Connected),
            Msg::Nacos(m) => {
                if self.membership.on_message(ctx, from, &m) == Some(true) {
                    self.healthy = self.membership.healthy_servers();
                }
                // No push in CP mode: a changed flag is read by the next query.
                status::on_message(ctx, from, &mut self.tables, &m);
            }
            Msg::Raft(m) => self.raft.on_message(ctx, from, m),
            _ => {}
        }
        self.sync(ctx);
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match timer {
            Timer::Cp(cp::Timer::Check { service }) => {
                let responsible = self.is_responsible(service);
                if let Some(t) = self.tables.get(service.0 as usize) {
                    self.checks.run(ctx, &self.config.check, service, t, responsible);
                }
            }
            Timer::Cp(cp::Timer::ProbeTimeout { instance, round }) => {
                self.probed(ctx, instance, round, Outcome::TimedOut)
            }
            Timer::Nacos(t @ (nacos::Timer::Report | nacos::Timer::ReportTimeout { .. }))
                if self.membership.on_timer(ctx, &t) == Some(true) =>
            {
                self.healthy = self.membership.healthy_servers()
            }
            Timer::Nacos(nacos::Timer::StatusReport) => {
                status::report(ctx, &self.tables, &self.peers, |s| self.is_responsible(s));
            }
            Timer::Raft(t) => self.raft.on_timer(ctx, t),
            _ => {}
        }
        self.sync(ctx);
    }

    /// A refused connect fails the check at once (`checkFailNow`); a refused membership report
    /// marks the peer down.
    pub fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId, msg: Msg) {
        match msg {
            Msg::Cp(cp::Msg::Probe { round }) => self.probed(ctx, to, round, Outcome::Refused),
            Msg::Nacos(nacos::Msg::Report { .. }) if self.membership.on_refused(ctx, to) => {
                self.healthy = self.membership.healthy_servers()
            }
            _ => {}
        }
    }

    /// The outcome of connect `round` to `instance`, if it is the one in flight.
    fn probed(&mut self, ctx: &mut NodeCtx<'_>, instance: NodeId, round: u32, outcome: Outcome) {
        let Some(service) = self.checks.pending(instance, round) else { return };
        let responsible = self.is_responsible(service);
        let Some(t) = self.tables.get_mut(service.0 as usize) else { return };
        self.checks.finish(ctx, &self.config.check, instance, outcome, t, responsible);
    }

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

    fn answer(&self, ctx: &mut NodeCtx<'_>, client: NodeId, service: ServiceId, req: u64) {
        let protect = self.config.protect_threshold;
        let (instances, registered) =
            self.table(service).map(|t| (t.served(protect), t.registered())).unwrap_or_default();
        ctx.send(
            client,
            registry::Msg::QueryOk { req, answer: Arc::new(crate::protocol::QueryAnswer { instances, registered }) },
        );
    }

    /// Applies a command to the state machine. A registration keeps the flag of an instance
    /// already listed (`Cluster.updateIps`) and starts the service's health check here.
    fn apply(&mut self, ctx: &mut NodeCtx<'_>, cmd: Cmd) {
        let Cmd::Register { service, instance } = cmd else { return };
        let Some(t) = self.tables.get_mut(service.0 as usize) else { return };
        let known = t.get(instance).copied();
        if known.is_none() {
            t.put(ctx, InstRec { instance, healthy: true, last_beat: ctx.now() });
            if self.is_leader() {
                ctx.observe(Obs::Registered { instance });
            }
        }
        self.checks.add_service(ctx, &self.config.check, service);
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
            }
            return;
        }
        if self.leading != Some(self.raft.term()) {
            self.leading = Some(self.raft.term());
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
}
