//! Sans-IO protocol actors for a Nacos 1.x naming cluster (AP mode, ephemeral instances).
//!
//! One file per mechanism: `membership` (server reports, SUSPICIOUS/DOWN), `distro` (the
//! responsible-server rule, delayed sync, checksum verify), `table` (a server's copy of one
//! service), `push` (UDP push to subscribers), `server` (the registry server tying them
//! together with the beat health check and request forwarding), `instance` (register and
//! beat) and `consumer` (subscription cache, polling, requests to instances). Every role is a
//! variant of [`Node`], so the world dispatches statically. Defaults and mechanisms follow
//! ../shared/ANCHORS.md.

pub mod alertmanager;
pub mod breaker;
pub mod consumer;
pub mod cp;
pub mod distro;
pub mod gateway;
pub mod instance;
pub mod membership;
pub mod prometheus;
pub mod push;
pub mod raft;
pub mod ratelimit;
pub mod server;
pub mod table;
#[cfg(test)]
pub(crate) mod testing;
pub mod view;

use std::sync::Arc;

pub use consumer::{Consumer, ConsumerConfig};
pub use instance::{InstanceConfig, ServiceInstance};
use regsim_kernel::{Actor, Ctx, NodeId, SimTime};
pub use server::{RegistryServer, ServerConfig};

/// A registered service, interned to a small id so messages stay small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServiceId(pub u32);

/// One instance as a server's copy holds it (and as Distro ships it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InstRec {
    pub instance: NodeId,
    pub healthy: bool,
    /// Local time of the responsible server when it last heard a beat.
    pub last_beat: SimTime,
}

/// A service's instance list as shipped between servers (sorted by instance).
pub type Datum = Arc<Vec<InstRec>>;

/// The healthy instances of a service, as pushed or returned to consumers (sorted).
pub type InstanceList = Arc<Vec<NodeId>>;

/// A server's answer to a list query: the healthy instances (what the consumer's cache keeps)
/// and every registered instance, healthy or not (Nacos returns all hosts with a health flag
/// and the client filters). Behind one `Arc` so messages stay small.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct QueryAnswer {
    pub instances: InstanceList,
    pub registered: InstanceList,
}

/// Which client write a forwarded request carries.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Write {
    Register,
    Beat,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Msg {
    /// Instance -> server: `POST /nacos/v1/ns/instance` (register) or `PUT .../beat`.
    Write {
        kind: Write,
        service: ServiceId,
        req: u64,
    },
    /// `found = false` is Nacos' RESOURCE_NOT_FOUND (20404) for a beat: re-register at once.
    WriteOk {
        req: u64,
        found: bool,
    },
    /// Server -> responsible server: a client write proxied by `DistroFilter`.
    Forward {
        origin: NodeId,
        kind: Write,
        service: ServiceId,
        req: u64,
    },
    ForwardOk {
        origin: NodeId,
        req: u64,
        found: bool,
    },
    /// Distro: the sender's copy of `service` (a delayed sync, or the answer to a pull).
    Sync {
        service: ServiceId,
        data: Datum,
        seq: u32,
    },
    SyncOk {
        service: ServiceId,
        seq: u32,
    },
    /// Distro verify: checksums of the services the sender is responsible for.
    Verify {
        checksums: Arc<Vec<(ServiceId, u64)>>,
    },
    Pull {
        service: ServiceId,
    },
    /// Membership: `/v1/core/cluster/report`.
    Report {
        req: u64,
    },
    ReportOk {
        req: u64,
    },
    /// Consumer <-> server: `GET /nacos/v1/ns/instance/list` (subscribes the caller to pushes).
    Query {
        service: ServiceId,
        req: u64,
    },
    QueryOk {
        req: u64,
        answer: Arc<QueryAnswer>,
    },
    /// CP mode: this server is not the leader; retry at `leader` if it knows one.
    Redirect {
        req: u64,
        leader: Option<NodeId>,
    },
    /// CP mode: the leader's health check of a persistent instance (a TCP connect) and its answer.
    Probe {
        round: u32,
    },
    ProbeOk {
        round: u32,
    },
    /// Server -> consumer: UDP push of the healthy instance list; the consumer acks it.
    Push {
        service: ServiceId,
        instances: InstanceList,
        push_id: u64,
    },
    PushAck {
        push_id: u64,
    },
    /// Consumer <-> instance: an application request.
    Call {
        req: u64,
    },
    CallOk {
        req: u64,
    },
    /// Raft: a (pre-)vote request for `term` with the candidate's last log entry (32-bit
    /// index and term keep the message small), its answer, log replication and its answer.
    RequestVote {
        term: u64,
        pre: bool,
        last_index: u32,
        last_term: u32,
    },
    Vote {
        term: u64,
        pre: bool,
        granted: bool,
    },
    AppendEntries {
        term: u64,
        body: Arc<raft::Append>,
    },
    AppendOk {
        term: u64,
        ok: bool,
        /// On success the follower's last matching index; on failure a hint where to retry.
        index: u32,
        /// The leader's broadcast round this answers (for read-index confirmation).
        round: u32,
    },
    /// Prometheus -> instance: scrape `GET /metrics` (the scrape's sequence number).
    Scrape {
        seq: u32,
    },
    /// Instance -> Prometheus: the instance's counters (registry requests it sent, calls it
    /// served since its process started).
    ScrapeOk {
        seq: u32,
        registry_requests: u64,
        calls_served: u64,
    },
    /// Prometheus -> Alertmanager: `POST /api/v2/alerts` with firing and resolved alerts.
    Alerts {
        batch: Arc<Vec<alertmanager::AlertMsg>>,
    },
    // New variants go last: the digest hashes a message's variant index.
    /// Gateway -> consumer: the request failed with this HTTP status (429, 502, 503, 504).
    CallFailed {
        req: u64,
        code: u16,
    },
    /// Global Prometheus -> regional Prometheus: `GET /federate?match[]=...`.
    Federate {
        seq: u32,
        query: Arc<prometheus::FederateQuery>,
    },
    /// A scrape answered with labelled samples (a gateway's metrics, a federation endpoint).
    Exposition {
        seq: u32,
        body: Arc<Exposition>,
    },
}

/// A scrape's answer in the text exposition's terms: samples with their labels (without the
/// target's `job` and `instance`, which the scraper adds) and, for federation, their own
/// timestamps (ms).
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub samples: Vec<(crate::monitor::Labels, f64, Option<i64>)>,
}

// Values compare and hash by their bits (a NaN equals itself), so messages stay `Eq + Hash`.
impl PartialEq for Exposition {
    fn eq(&self, other: &Self) -> bool {
        self.samples.len() == other.samples.len()
            && self
                .samples
                .iter()
                .zip(&other.samples)
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits() && a.2 == b.2)
    }
}

impl Eq for Exposition {}

impl std::hash::Hash for Exposition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.samples.len().hash(state);
        for (l, v, t) in &self.samples {
            l.hash(state);
            v.to_bits().hash(state);
            t.hash(state);
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Timer {
    HealthCheck,
    Beat,
    /// Attempt `attempt` of a request timed out (a later attempt's timer is another one).
    RequestTimeout {
        req: u64,
        attempt: u16,
    },
    Report,
    ReportTimeout {
        req: u64,
    },
    SyncDelay {
        service: ServiceId,
    },
    SyncTimeout {
        peer: NodeId,
        service: ServiceId,
        seq: u32,
    },
    SyncRetry {
        peer: NodeId,
        service: ServiceId,
    },
    Verify,
    PushDebounce {
        service: ServiceId,
    },
    PushTimeout {
        push_id: u64,
    },
    Poll,
    QueryTimeout {
        req: u64,
        attempt: u16,
    },
    NextCall,
    CallTimeout {
        req: u64,
        attempt: u32,
    },
    /// An instance finished serving call `req` of `client`.
    Served {
        client: NodeId,
        req: u64,
    },
    /// Raft timers; stale ones (older epoch or term) are ignored.
    Election {
        epoch: u32,
    },
    Heartbeat {
        term: u64,
    },
    /// CP mode: the leader's next health-check round, and the end of round `round`.
    ProbeRound {
        term: u64,
    },
    ProbeTimeout {
        round: u32,
    },
    /// Prometheus: the next service-discovery refresh.
    Refresh,
    /// Prometheus: the next scrape of `target` (a stale `generation` is a dropped target's timer).
    Scrape {
        target: NodeId,
        generation: u32,
    },
    ScrapeTimeout {
        target: NodeId,
        seq: u32,
    },
    /// Prometheus: the next evaluation of rule group `group`.
    Evaluate {
        group: u32,
    },
    /// Alertmanager: flush aggregation group `group`.
    Flush {
        group: u32,
    },
}

/// A server's copy of one instance, as observations report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyState {
    Absent,
    Healthy,
    Unhealthy,
}

/// A client-visible registry operation, for the linearizability checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// The instance registers itself.
    Register(ServiceId),
    /// A consumer lists the service's instances.
    List(ServiceId),
}

/// What actors report; the metrics grade these against ground truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Obs {
    /// The responsible server added `instance` to its table.
    Registered {
        instance: NodeId,
    },
    /// The responsible server's health check marked `instance` unhealthy.
    MarkedUnhealthy {
        instance: NodeId,
    },
    /// A beat made an unhealthy `instance` healthy again.
    MarkedHealthy {
        instance: NodeId,
    },
    /// The responsible server removed `instance` (no beat for `delete_after`).
    Deleted {
        instance: NodeId,
    },
    /// This server's copy of `instance` changed (by its own decision or by Distro).
    Copy {
        instance: NodeId,
        state: CopyState,
    },
    /// This server now sees `peer` in `state`.
    Member {
        peer: NodeId,
        state: membership::MemberState,
    },
    /// An instance re-registered because a beat was answered "not found".
    Reregistered,
    /// A client request finished: which kind, and whether it succeeded.
    Request {
        kind: RequestKind,
        ok: bool,
    },
    /// A consumer's view (cache of healthy instances) gained or lost `instance`.
    View {
        instance: NodeId,
        present: bool,
    },
    /// A consumer sent an application request (attempt) to `instance`.
    CallSent {
        instance: NodeId,
    },
    /// A consumer's request (all attempts) finished after `latency`.
    CallDone {
        ok: bool,
        latency: regsim_kernel::SimDuration,
    },
    /// Raft: the leader committed log entries up to `index` (the entry there has `term`).
    Committed {
        index: u32,
        term: u64,
    },
    /// Raft: this server started an election for `term`, won it, or stepped down as leader.
    Campaign {
        term: u64,
    },
    /// `log`: the terms of the new leader's log entries when it won (for the check that every
    /// acknowledged write is in every later leader's log).
    LeaderElected {
        term: u64,
        log: Arc<Vec<u64>>,
    },
    SteppedDown {
        term: u64,
    },
    /// CP: the leader acknowledged a client write stored at `index` in `term`.
    Acked {
        index: u32,
        term: u64,
    },
    /// A client invoked registry operation `op` (request `req`; failovers keep the id).
    OpStart {
        req: u64,
        op: ClientOp,
    },
    /// Operation `req` completed; a list carries every registered instance it returned.
    /// An operation given up on never completes (it may or may not have taken effect).
    OpDone {
        req: u64,
        result: Option<InstanceList>,
    },
    /// Prometheus: service discovery added (`present`) or dropped a scrape target.
    Target {
        instance: NodeId,
        present: bool,
    },
    /// Prometheus: a scrape of `instance` failed (refused or timed out): `up = 0`.
    ScrapeFailed {
        instance: NodeId,
    },
    /// Prometheus: an alert changed state (pending, firing, resolved).
    Alert(Arc<prometheus::AlertObs>),
    /// Prometheus: the status of every rule of a group after one evaluation.
    Rules(Arc<prometheus::GroupStatus>),
    /// Alertmanager: a notification of an aggregation group.
    Notified(Arc<alertmanager::Notification>),
    /// Gateway: an API request finished with `code` after `attempts` upstream attempts.
    ApiDone {
        code: gateway::Code,
        attempts: u8,
        latency: regsim_kernel::SimDuration,
    },
    /// Gateway: an attempt to `instance` ended.
    Upstream {
        instance: NodeId,
        outcome: gateway::Outcome,
    },
    /// Gateway: the circuit breaker of `instance` changed state.
    Breaker {
        instance: NodeId,
        state: breaker::BreakerState,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Register = 0,
    Beat = 1,
    Query = 2,
    Call = 3,
}

pub type NodeCtx<'a> = Ctx<'a, Msg, Timer, Obs>;

/// Every role in the simulation. Aligned to a cache line: the world keeps actors in one
/// vector and touches a random one per event, so an actor should never straddle two lines.
#[derive(Debug)]
#[repr(align(64))]
pub enum Node {
    Server(Box<RegistryServer>),
    Instance(ServiceInstance),
    Consumer(Box<Consumer>),
    /// A registry server in CP mode (Raft).
    Raft(Box<cp::CpServer>),
    Prometheus(Box<prometheus::Prometheus>),
    Alertmanager(Box<alertmanager::Alertmanager>),
    Gateway(Box<gateway::Gateway>),
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = Obs;

    fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        match self {
            Node::Server(s) => s.on_start(ctx),
            Node::Instance(i) => i.on_start(ctx),
            Node::Consumer(c) => c.on_start(ctx),
            Node::Raft(r) => r.on_start(ctx),
            Node::Prometheus(p) => p.on_start(ctx),
            Node::Alertmanager(a) => a.on_start(ctx),
            Node::Gateway(g) => g.on_start(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        match self {
            Node::Server(s) => s.on_message(ctx, from, msg),
            Node::Instance(i) => i.on_message(ctx, from, msg),
            Node::Consumer(c) => c.on_message(ctx, from, msg),
            Node::Raft(r) => r.on_message(ctx, from, msg),
            Node::Prometheus(p) => p.on_message(ctx, from, msg),
            Node::Alertmanager(a) => a.on_message(ctx, from, msg),
            Node::Gateway(g) => g.on_message(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match self {
            Node::Server(s) => s.on_timer(ctx, timer),
            Node::Instance(i) => i.on_timer(ctx, timer),
            Node::Consumer(c) => c.on_timer(ctx, timer),
            Node::Raft(r) => r.on_timer(ctx, timer),
            Node::Prometheus(p) => p.on_timer(ctx, timer),
            Node::Alertmanager(a) => a.on_timer(ctx, timer),
            Node::Gateway(g) => g.on_timer(ctx, timer),
        }
    }

    fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId, msg: Msg) {
        match self {
            Node::Server(s) => s.on_refused(ctx, to, msg),
            Node::Instance(i) => i.on_refused(ctx, to, msg),
            Node::Consumer(c) => c.on_refused(ctx, to, msg),
            Node::Raft(r) => r.on_refused(ctx, to, msg),
            Node::Prometheus(p) => p.on_refused(ctx, to, msg),
            Node::Alertmanager(a) => a.on_refused(ctx, to, msg),
            Node::Gateway(g) => g.on_refused(ctx, to, msg),
        }
    }

    fn crash(&mut self) {
        match self {
            Node::Server(s) => s.crash(),
            Node::Instance(i) => i.crash(),
            Node::Consumer(c) => c.crash(),
            Node::Raft(r) => r.crash(),
            Node::Prometheus(p) => p.crash(),
            Node::Alertmanager(a) => a.crash(),
            Node::Gateway(g) => g.crash(),
        }
    }
}

/// Resolves the scenario's role targets (`fault::role`) among the running nodes: `leader` is
/// the running CP server with the highest leader term; `follower[random]` a running CP server
/// other than that leader, drawn from the world's fault stream (nothing is drawn when there is
/// none).
pub struct ConsensusRoles;

impl regsim_kernel::Resolve<Node> for ConsensusRoles {
    fn resolve(
        &self,
        who: regsim_kernel::RoleTarget,
        running: &[(NodeId, &Node)],
        rng: &mut regsim_kernel::SimRng,
    ) -> Option<NodeId> {
        let leader = running
            .iter()
            .filter_map(|(n, a)| match a {
                Node::Raft(r) if r.raft().role() == raft::Role::Leader => Some((r.raft().term(), *n)),
                _ => None,
            })
            .max()
            .map(|(_, n)| n);
        if who == crate::fault::role::LEADER {
            return leader;
        }
        let followers: Vec<NodeId> =
            running.iter().filter(|(n, a)| Some(*n) != leader && matches!(a, Node::Raft(_))).map(|(n, _)| *n).collect();
        if followers.is_empty() {
            return None;
        }
        Some(followers[rand::RngExt::random_range(rng, 0..followers.len())])
    }
}

// Events are stored inline in the event queue: keep messages and timers small (bulk payloads
// behind thin `Arc<Vec<_>>` pointers). Checked by a test below.

/// The list of registry servers every client is configured with.
pub type ServerList = Arc<[NodeId]>;

/// Java's `String.hashCode` (UTF-16 code units, wrapping `31 * h + c`), which Nacos uses
/// for the responsible-server rule.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_small() {
        assert!(
            std::mem::size_of::<ServiceInstance>() <= 64,
            "instance is {} bytes",
            std::mem::size_of::<ServiceInstance>()
        );
        assert!(std::mem::size_of::<Msg>() <= 32, "Msg is {} bytes", std::mem::size_of::<Msg>());
        assert!(std::mem::size_of::<Timer>() <= 16, "Timer is {} bytes", std::mem::size_of::<Timer>());
        assert!(regsim_kernel::world::queued_event_size::<Msg, Timer>() <= 48, "queued event too large");
        assert_eq!(std::mem::size_of::<Node>(), 64, "a node should fill exactly one cache line");
    }

    #[test]
    fn java_hash_matches_java() {
        // Values from Java: "".hashCode() = 0, "a" = 97, "hello" = 99162322, and the famous
        // "polygenelubricants".hashCode() = Integer.MIN_VALUE.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
    }
}
