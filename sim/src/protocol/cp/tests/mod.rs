//! Table tests of the CP registry server (`server.rs`) on the network harness: three CP servers
//! (`Node::Raft`, built as `scenario/build.rs` does) with the Raft paper's timing (150-300 ms
//! elections, 50 ms heartbeats), two silent clients whose every reply the test reads in
//! `sent()` (Alertmanagers with nothing to notify send nothing), and, for the end-to-end and
//! health tests, a real persistent `ServiceInstance`. One-way latency 1 ms, so a round trip
//! from the leader to a majority takes 2 ms. References: ../shared/ANCHORS.md (Nacos registry,
//! Raft), etcd-io/raft `raft.go` / `read_only.go` (read index, lease reads), Nacos naming
//! `healthcheck/v2` (`HealthCheckTaskV2`, `HealthCheckCommonV2`, `TcpHealthCheckProcessor`).

mod check;

use std::sync::Arc;

use crate::protocol::clients::instance::{InstanceConfig, ServiceInstance};
use crate::protocol::cp::{self, CpConfig, CpServer, ReadMode};
use crate::protocol::raft::{self, RaftConfig, RaftNode, Role};
use crate::protocol::{CopyState, Msg, Node, Obs, ServerList, ServiceId, Write, registry};
use regsim_kernel::harness::{Harness, Verdict};
use regsim_kernel::{NodeId, SimDuration, SimTime};

const fn ms(n: u64) -> SimDuration {
    SimDuration::from_millis(n)
}

const SERVICE: ServiceId = ServiceId(0);
/// The silent clients (after servers 0, 1, 2).
const CLIENT: NodeId = NodeId(3);
const OTHER: NodeId = NodeId(4);

fn config(reads: ReadMode, apply_before_commit: bool) -> CpConfig {
    let raft = RaftConfig {
        election_timeout: ms(150),
        election_jitter: ms(150),
        heartbeat_interval: ms(50),
        reads,
        // Instant storage: the tables count round trips (raft/tests.rs adds the disk).
        fsync: regsim_kernel::net::LatencySpec::constant(SimDuration::ZERO),
        ..RaftConfig::default()
    };
    CpConfig { raft, apply_before_commit, ..CpConfig::default() }
}

struct Net {
    h: Harness<Node>,
    servers: Vec<NodeId>,
}

impl Net {
    fn new(seed: u64, config: CpConfig) -> Net {
        let mut h = Harness::new(seed);
        let list: ServerList = (0..3).map(NodeId).collect();
        let config = Arc::new(config);
        for &id in list.iter() {
            assert_eq!(h.add(Node::Raft(Box::new(CpServer::new(Arc::clone(&config), id, Arc::clone(&list))))), id);
        }
        for id in [CLIENT, OTHER] {
            assert_eq!(h.add(crate::protocol::testing::silent_node()), id);
        }
        h.run_until(SimTime::ZERO);
        Net { h, servers: list.to_vec() }
    }

    /// A persistent instance of `SERVICE` (CP mode: it registers once and answers probes).
    fn add_instance(&mut self) -> NodeId {
        let config = InstanceConfig {
            service: SERVICE,
            service_name: Arc::from("svc"),
            servers: self.servers.iter().copied().collect(),
            beat_interval: SimDuration::from_secs(5),
            request_timeout: SimDuration::from_secs(3),
            service_time: None,
            concurrency: 0,
            queue_max: 0,
            persistent: true,
        };
        self.h.add(Node::Instance(ServiceInstance::new(Arc::new(config))))
    }

    fn raft(&self, n: NodeId) -> &RaftNode {
        let Node::Raft(s) = self.h.actor(n) else { panic!("{n} is not a CP server") };
        s.raft()
    }

    /// Runs until a server leads, then 100 ms more (the no-op is committed everywhere).
    fn elect(&mut self) -> NodeId {
        for _ in 0..1000 {
            self.h.run_for(ms(1));
            if let Some(l) = self.servers.iter().copied().find(|n| self.raft(*n).role() == Role::Leader) {
                self.h.run_for(ms(100));
                return l;
            }
        }
        panic!("no leader within 1 s")
    }

    fn followers(&self, leader: NodeId) -> Vec<NodeId> {
        self.servers.iter().copied().filter(|n| *n != leader).collect()
    }

    /// Steps until `leader` sends AppendEntries; returns that time.
    fn next_heartbeat(&mut self, leader: NodeId) -> SimTime {
        loop {
            let seen = self.h.sent().len();
            assert!(self.h.step(), "the queue ran dry");
            let beat = |m: &Msg| matches!(m, Msg::Raft(raft::Msg::AppendEntries { .. }));
            if self.h.sent()[seen..].iter().any(|s| s.from == leader && beat(&s.msg)) {
                return self.h.now();
            }
        }
    }

    /// Registry messages sent to `to`: (time, from, message).
    fn replies(&self, to: NodeId) -> Vec<(SimTime, NodeId, registry::Msg)> {
        let sent = self.h.sent().iter().filter(|s| s.to == to);
        sent.filter_map(|s| if let Msg::Registry(m) = &s.msg { Some((s.at, s.from, m.clone())) } else { None })
            .collect()
    }

    fn obs(&self, pick: impl Fn(&Obs) -> bool) -> Vec<(SimTime, NodeId, Obs)> {
        self.h.observed().into_iter().filter(|(_, _, o)| pick(o)).collect()
    }
}

fn register(req: u64) -> registry::Msg {
    registry::Msg::Write { kind: Write::Register, service: SERVICE, req }
}

/// Writes go to the leader (ANCHORS.md: "Writes go to the leader"): a follower answers
/// `Redirect` with the leader it knows (none before the first election); the leader appends a
/// `Register` and acknowledges it only once a majority stores it (Raft §5.3 commitment, etcd
/// `stepLeader` `MsgProp` then `maybeCommit` on `MsgAppResp`): one round trip, 2 ms, after it
/// arrived. A leader cut off from both followers cannot commit and never acknowledges.
#[test]
fn a_register_is_redirected_to_the_leader_and_acked_after_commit() {
    enum Reply {
        Redirect { to_leader: bool },
        AckAfter(SimDuration),
        Never,
    }
    struct Case {
        name: &'static str,
        /// Prepares the cluster and returns (the server written to, the leader if any).
        prepare: fn(&mut Net) -> (NodeId, Option<NodeId>),
        reply: Reply,
    }
    let cases = [
        Case {
            name: "at a follower: redirected to the leader it follows",
            prepare: |net| {
                let l = net.elect();
                (net.followers(l)[0], Some(l))
            },
            reply: Reply::Redirect { to_leader: true },
        },
        Case {
            name: "at the leader: acked one round trip later, when a majority stores it",
            prepare: |net| {
                let l = net.elect();
                (l, Some(l))
            },
            reply: Reply::AckAfter(ms(2)),
        },
        Case {
            name: "before the first election: no leader to name",
            prepare: |_| (NodeId(1), None),
            reply: Reply::Redirect { to_leader: false },
        },
        Case {
            name: "at a leader cut off from its majority: never acked",
            prepare: |net| {
                let l = net.elect();
                net.followers(l).into_iter().for_each(|f| net.h.cut(l, f));
                (l, Some(l))
            },
            reply: Reply::Never,
        },
    ];
    for c in cases {
        let mut net = Net::new(5, config(ReadMode::ReadIndex, false));
        let (at, leader) = (c.prepare)(&mut net);
        let log_before = leader.map(|l| net.raft(l).log_terms().len());
        net.h.inject(CLIENT, at, register(7));
        let arrived = net.h.now() + ms(1);
        net.h.run_for(ms(1000));
        let replies = net.replies(CLIENT);
        let acked = net.obs(|o| matches!(o, Obs::Acked { .. }));
        match c.reply {
            Reply::Redirect { to_leader } => {
                let want = registry::Msg::Redirect { leader: leader.filter(|_| to_leader), req: 7 };
                assert_eq!(replies, vec![(arrived, at, want)], "{}", c.name);
                let log_after = leader.map(|l| net.raft(l).log_terms().len());
                assert_eq!(log_after, log_before, "{}: nothing proposed", c.name);
            }
            Reply::AckAfter(d) => {
                let want = registry::Msg::WriteOk { found: true, req: 7 };
                assert_eq!(replies, vec![(arrived + d, at, want)], "{}", c.name);
                let entry = Obs::Acked { index: 2, term: 1 };
                assert_eq!(acked, vec![(arrived + d, at, entry)], "{}: the entry after the no-op", c.name);
            }
            Reply::Never => {
                assert_eq!((replies, acked), (vec![], vec![]), "{}", c.name);
                assert_ne!(net.raft(at).role(), Role::Leader, "{}: CheckQuorum deposed it", c.name);
            }
        }
    }
}

/// End to end with a real persistent instance (Nacos 1.x client, `instance.rs`): it registers
/// at a random server; a follower redirects it and it retries at the leader at once; the
/// leader acks after commit, the instance reports the operation done, and every server applies
/// the registration (followers when the next heartbeat brings the commit index, Raft §5.3).
/// Seeds are chosen so both paths (straight to the leader, via a follower) occur.
#[test]
fn a_persistent_instance_registers_through_the_leader() {
    let mut paths = Vec::new();
    for seed in 1..=6 {
        let mut net = Net::new(seed, config(ReadMode::ReadIndex, false));
        let leader = net.elect();
        let inst = net.add_instance();
        net.h.run_for(ms(200));
        let writes: Vec<NodeId> = (net.h.sent().iter())
            .filter(|s| s.from == inst && matches!(s.msg, Msg::Registry(registry::Msg::Write { .. })))
            .map(|s| s.to)
            .collect();
        let answers: Vec<registry::Msg> = net.replies(inst).into_iter().map(|r| r.2).collect();
        let ok = registry::Msg::WriteOk { found: true, req: 0 };
        if writes[0] == leader {
            assert_eq!((writes.clone(), answers), (vec![leader], vec![ok]), "seed {seed}");
        } else {
            let redirect = registry::Msg::Redirect { leader: Some(leader), req: 0 };
            assert_eq!((writes.clone(), answers), (vec![writes[0], leader], vec![redirect, ok]), "seed {seed}");
        }
        paths.push(writes.len());
        let done = net.obs(|o| matches!(o, Obs::OpDone { req: 0, result: None }));
        assert_eq!(done.iter().map(|d| d.1).collect::<Vec<_>>(), vec![inst], "seed {seed}");
        let copies = net.obs(|o| *o == Obs::Copy { instance: inst, state: CopyState::Healthy });
        let mut at: Vec<NodeId> = copies.iter().map(|c| c.1).collect();
        at.sort();
        assert_eq!(at, net.servers, "seed {seed}: every server applied it once");
        assert_eq!(net.obs(|o| *o == Obs::Registered { instance: inst }).len(), 1, "seed {seed}");
    }
    assert!(paths.contains(&1) && paths.contains(&2), "both paths: {paths:?}");
}

/// Reads by `ReadMode`. `read_index` (Raft thesis §6.4, etcd `ReadOnlySafe`): the leader
/// confirms it still leads with a heartbeat round to a majority, 2 ms, then answers; followers
/// redirect. `lease` (thesis §6.4.1, etcd `ReadOnlyLeaseBased`, which etcd allows only with
/// CheckQuorum): the leader answers at once while a majority acknowledged a round sent within
/// the election timeout (150 ms); past that it falls back to a read index, which a cut-off
/// leader cannot complete (etcd's lease leader would answer until CheckQuorum deposes it, ET
/// to 2 ET after the cut). `local` (Nacos 1.x `InstanceController.doSrvIpxt`, ANCHORS.md):
/// any server answers from memory at once, so a follower misses a write the leader already
/// acked until the next heartbeat brings the commit index; with `bugs.apply_before_commit` (the
/// old Nacos Raft quirk, ANCHORS.md) the leader even shows a write no majority stores.
#[test]
fn reads_in_each_mode() {
    enum Reply {
        /// Answered this long after arrival, listing these instances.
        Answer(SimDuration, &'static [NodeId]),
        Redirect,
        Never,
    }
    struct Case {
        name: &'static str,
        reads: ReadMode,
        apply_before_commit: bool,
        /// After `CLIENT` registered and every server applied it: returns the server to ask.
        ask: fn(&mut Net, NodeId) -> NodeId,
        reply: Reply,
    }
    let leader = |_: &mut Net, l: NodeId| l;
    let follower = |net: &mut Net, l: NodeId| net.followers(l)[0];
    // A write by OTHER committed (and acked) at the leader just after a heartbeat went out.
    let acked_at_leader = |net: &mut Net, l: NodeId| {
        net.next_heartbeat(l);
        net.h.run_for(ms(1));
        net.h.inject(OTHER, l, register(1));
        net.h.run_for(ms(4));
        assert_eq!(net.replies(OTHER).len(), 1, "acked");
        net.followers(l)[0]
    };
    // The leader is cut from both followers 2 ms after a heartbeat (its acks are in); the
    // read arrives `read_at` ms after that heartbeat.
    fn cut_after_beat(net: &mut Net, l: NodeId, read_at: u64) -> NodeId {
        let beat = net.next_heartbeat(l);
        net.h.run_for(ms(2));
        net.followers(l).into_iter().for_each(|f| net.h.cut(l, f));
        net.h.run_until(beat + ms(read_at - 1));
        l
    }
    let pending_at_leader = |net: &mut Net, l: NodeId| {
        net.followers(l).into_iter().for_each(|f| net.h.cut(l, f));
        net.h.inject(OTHER, l, register(1));
        net.h.run_for(ms(5));
        l
    };
    use ReadMode::{Lease, Local, ReadIndex};
    use Reply::{Answer, Never, Redirect};
    let cases = [
        Case {
            name: "read_index at the leader",
            reads: ReadIndex,
            apply_before_commit: false,
            ask: leader,
            reply: Answer(ms(2), &[CLIENT]),
        },
        Case {
            name: "read_index at a follower",
            reads: ReadIndex,
            apply_before_commit: false,
            ask: follower,
            reply: Redirect,
        },
        Case {
            name: "read_index, cut off 38 ms ago",
            reads: ReadIndex,
            apply_before_commit: false,
            ask: |n, l| cut_after_beat(n, l, 40),
            reply: Never,
        },
        Case {
            name: "lease at the leader",
            reads: Lease,
            apply_before_commit: false,
            ask: leader,
            reply: Answer(ms(0), &[CLIENT]),
        },
        Case { name: "lease at a follower", reads: Lease, apply_before_commit: false, ask: follower, reply: Redirect },
        Case {
            name: "lease, cut off 38 ms ago",
            reads: Lease,
            apply_before_commit: false,
            ask: |n, l| cut_after_beat(n, l, 40),
            reply: Answer(ms(0), &[CLIENT]),
        },
        Case {
            name: "lease, cut off 168 ms ago",
            reads: Lease,
            apply_before_commit: false,
            ask: |n, l| cut_after_beat(n, l, 170),
            reply: Never,
        },
        Case {
            name: "local at the leader",
            reads: Local,
            apply_before_commit: false,
            ask: leader,
            reply: Answer(ms(0), &[CLIENT]),
        },
        Case {
            name: "local at a follower: stale",
            reads: Local,
            apply_before_commit: false,
            ask: acked_at_leader,
            reply: Answer(ms(0), &[CLIENT]),
        },
        Case {
            name: "local, write pending at the leader",
            reads: Local,
            apply_before_commit: false,
            ask: pending_at_leader,
            reply: Answer(ms(0), &[CLIENT]),
        },
        Case {
            name: "local, apply_before_commit",
            reads: Local,
            apply_before_commit: true,
            ask: pending_at_leader,
            reply: Answer(ms(0), &[CLIENT, OTHER]),
        },
    ];
    for c in cases {
        let mut net = Net::new(5, config(c.reads, c.apply_before_commit));
        let l = net.elect();
        net.h.inject(CLIENT, l, register(1));
        net.h.run_for(ms(100));
        let at = (c.ask)(&mut net, l);
        let seen = net.replies(CLIENT).len();
        net.h.inject(CLIENT, at, registry::Msg::Query { service: SERVICE, req: 2 });
        let arrived = net.h.now() + ms(1);
        net.h.run_for(ms(1000));
        let got: Vec<(SimTime, registry::Msg)> =
            net.replies(CLIENT)[seen..].iter().map(|r| (r.0, r.2.clone())).collect();
        match c.reply {
            Redirect => {
                assert_eq!(got, vec![(arrived, registry::Msg::Redirect { leader: Some(l), req: 2 })], "{}", c.name)
            }
            Never => assert_eq!(got, vec![], "{}", c.name),
            Answer(after, registered) => {
                let [(t, registry::Msg::QueryOk { req: 2, answer })] = got.as_slice() else {
                    panic!("{}: {got:?}", c.name)
                };
                assert_eq!((*t, answer.registered.as_slice()), (arrived + after, registered), "{}", c.name);
                assert_eq!(answer.instances, answer.registered, "{}: all healthy", c.name);
            }
        }
    }
}
