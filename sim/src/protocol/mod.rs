//! Sans-IO protocol actors, one folder per protocol, each owning its messages and timers:
//! `registry` (the client API and the vocabulary every registry role shares), `nacos` (AP
//! servers: Distro, membership, tables, push), `raft` (consensus, no registry types), `cp`
//! (the CP registry server on Raft), `clients` (instances, views, consumers, the gateway
//! with its breaker and rate limit) and `monitoring` (Prometheus, Alertmanager).
//!
//! This module joins them into one node type for the world: [`Msg`] and [`Timer`] nest each
//! protocol's own enum under an explicit discriminant (the digest hashes the discriminants,
//! so declaration order does not matter), [`Node`] is every role, dispatched by one macro,
//! and [`Obs`] is what the metrics grade. Adding a protocol: a folder, a variant in `Msg`,
//! `Timer` and `Node` (with its `From` line), a section in the scenario schema and its
//! measurement family. Defaults and mechanisms follow ../shared/ANCHORS.md.

pub mod clients;
pub mod config;
pub mod cp;
pub mod monitoring;
pub mod nacos;
pub mod raft;
pub mod registry;
#[cfg(test)]
pub(crate) mod testing;
pub mod transport;

use std::sync::Arc;

pub use registry::{
    ClientOp, CopyState, Datum, InstRec, InstanceList, QueryAnswer, RequestKind, ServerList, ServiceId, Write,
    java_hash,
};
use regsim_kernel::{Actor, Ctx, NodeId};

/// The node-level [`Msg`] and [`Timer`]: one variant per protocol, nesting that protocol's
/// own enum under an explicit discriminant (`#[repr(u8)]`; numbers are never reused or
/// reordered, the digest hashes them). The macro also writes `From` each protocol's message and
/// timer (so a protocol sends its own type: `ctx.send(to, nacos::Msg::Pull { service })`) and
/// `Hash`, which folds the protocol's discriminant into the inner enum's first word
/// ([`regsim_kernel::Tagged`]): one digest word per event less than a derived `Hash`.
macro_rules! node_enums {
    ($($variant:ident($module:ident) = $tag:literal),* $(,)?) => {
        /// Every message, by protocol.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Msg {
            $($variant($module::Msg) = $tag,)*
        }

        /// Every timer, by protocol (same discriminants as [`Msg`]).
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Timer {
            $($variant($module::Timer) = $tag,)*
        }

        impl std::hash::Hash for Msg {
            #[inline]
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                match self {
                    $(Msg::$variant(m) => m.hash(&mut regsim_kernel::Tagged::new(state, $tag)),)*
                }
            }
        }

        impl std::hash::Hash for Timer {
            #[inline]
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                match self {
                    $(Timer::$variant(t) => t.hash(&mut regsim_kernel::Tagged::new(state, $tag)),)*
                }
            }
        }

        $(
            impl From<$module::Msg> for Msg {
                fn from(m: $module::Msg) -> Msg {
                    Msg::$variant(m)
                }
            }
            impl From<$module::Timer> for Timer {
                fn from(t: $module::Timer) -> Timer {
                    Timer::$variant(t)
                }
            }
        )*
    };
}

node_enums! {
    Registry(registry) = 1,
    Nacos(nacos) = 2,
    Raft(raft) = 3,
    Cp(cp) = 4,
    App(clients) = 5,
    Monitoring(monitoring) = 6,
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
        state: nacos::membership::MemberState,
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
    /// Raft: this server's election timer fired and it asks for pre-votes for `term` (PreVote
    /// on: it does not bump its term until a majority would vote for it).
    PreCampaign {
        term: u64,
    },
    /// Raft: this server granted its (pre-)vote for `term` to `candidate` (for `regsim
    /// explain`: who voted for whom in each round).
    Voted {
        term: u64,
        candidate: NodeId,
        pre: bool,
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
    Alert(Arc<monitoring::prometheus::AlertObs>),
    /// Prometheus: the status of every rule of a group after one evaluation.
    Rules(Arc<monitoring::prometheus::GroupStatus>),
    /// Alertmanager: a notification of an aggregation group.
    Notified(Arc<monitoring::alertmanager::Notification>),
    /// Gateway: an API request finished with `code` after `attempts` upstream attempts.
    ApiDone {
        code: clients::gateway::Code,
        attempts: u8,
        latency: regsim_kernel::SimDuration,
    },
    /// Gateway: an attempt to `instance` ended.
    Upstream {
        instance: NodeId,
        outcome: clients::gateway::Outcome,
    },
    /// Gateway: the circuit breaker of `instance` changed state.
    Breaker {
        instance: NodeId,
        state: clients::breaker::BreakerState,
    },
}

pub type NodeCtx<'a> = Ctx<'a, Msg, Timer, Obs>;

/// Every role in the simulation. Aligned to a cache line: the world keeps actors in one
/// vector and touches a random one per event, so an actor should never straddle two lines.
#[derive(Debug)]
#[repr(align(64))]
pub enum Node {
    Server(Box<nacos::server::RegistryServer>),
    Instance(clients::instance::ServiceInstance),
    Consumer(Box<clients::consumer::Consumer>),
    /// A registry server in CP mode (Raft).
    Raft(Box<cp::CpServer>),
    Prometheus(Box<monitoring::prometheus::Prometheus>),
    Alertmanager(Box<monitoring::alertmanager::Alertmanager>),
    Gateway(Box<clients::gateway::Gateway>),
}

/// Runs `$e` with `$r` bound to the role inside `$node`, whatever the role.
macro_rules! each_role {
    ($node:expr, $r:ident => $e:expr) => {
        match $node {
            Node::Server($r) => $e,
            Node::Instance($r) => $e,
            Node::Consumer($r) => $e,
            Node::Raft($r) => $e,
            Node::Prometheus($r) => $e,
            Node::Alertmanager($r) => $e,
            Node::Gateway($r) => $e,
        }
    };
}

impl Node {
    /// A CP server's Raft log terms (for the Raft invariants at the end of a run); `None` for
    /// every other role.
    pub fn raft_log_terms(&self) -> Option<Vec<u64>> {
        match self {
            Node::Raft(r) => Some(r.raft().log_terms()),
            _ => None,
        }
    }
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = Obs;

    fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        each_role!(self, r => r.on_start(ctx))
    }

    fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        each_role!(self, r => r.on_message(ctx, from, msg))
    }

    fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        each_role!(self, r => r.on_timer(ctx, timer))
    }

    fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId, msg: Msg) {
        each_role!(self, r => r.on_refused(ctx, to, msg))
    }

    fn crash(&mut self) {
        each_role!(self, r => r.crash())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_small() {
        let instance = std::mem::size_of::<clients::instance::ServiceInstance>();
        assert!(instance <= 64, "instance is {instance} bytes");
        assert!(std::mem::size_of::<Msg>() <= 32, "Msg is {} bytes", std::mem::size_of::<Msg>());
        assert!(std::mem::size_of::<Timer>() <= 24, "Timer is {} bytes", std::mem::size_of::<Timer>());
        // 56 since messages nest by protocol (Msg grew from 24 to 32 bytes: the outer tag
        // cannot share the inner enum's, and the queued event can no longer use Msg's niche
        // for its own tag). Shrinking every protocol's largest message to 16 bytes would make it 48.
        let queued = regsim_kernel::world::queued_event_size::<Msg, Timer>();
        assert!(queued <= 56, "a queued event is {queued} bytes");
        assert_eq!(std::mem::size_of::<Node>(), 64, "a node should fill exactly one cache line");
    }
}
