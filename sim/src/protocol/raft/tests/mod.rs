//! Table tests of Raft (`node.rs`) on the network harness: CP servers (`Node::Raft`, built as
//! `scenario/build.rs` does) exchange real messages through the node dispatch, with a 1 ms
//! one-way latency, so an election with PreVote takes two round trips (4 ms) after the timer.
//! References: the Raft paper (§5, §8, §9.3; ../shared/ANCHORS.md "Raft"), Ongaro's thesis
//! §9.6, and etcd-io/raft `raft.go` (`Step`, `stepLeader`, `stepCandidate`, `campaign`,
//! `tickElection`, `tickHeartbeat`, `handleAppendEntries`) and `log.go` (`maybeAppend`,
//! `findConflict`, `findConflictByTerm`).

use std::sync::Arc;

use crate::protocol::cp::{CpConfig, CpServer};
use crate::protocol::raft::{self, RaftConfig, RaftNode, Role};
use crate::protocol::{Msg, Node, Obs, ServerList, ServiceId, Write, registry};
use regsim_kernel::harness::{Harness, Verdict};
use regsim_kernel::net::LatencySpec;
use regsim_kernel::{NodeId, SimDuration, SimTime};

mod log;
mod storage;
mod votes;

const fn ms(n: u64) -> SimDuration {
    SimDuration::from_millis(n)
}

/// JRaft's timing (`RaftConfig::default()`) with instant storage: the tables below count round
/// trips; `storage_latency_delays_votes_acks_and_commits` adds the disk.
fn jraft() -> RaftConfig {
    RaftConfig { fsync: LatencySpec::constant(SimDuration::ZERO), ..RaftConfig::default() }
}

/// etcd's defaults are `timing(1000, 1000, 100)` (ANCHORS.md: 100 ms ticks, an election after
/// 10 ticks randomized in [T, 2T), a heartbeat every tick); JRaft's are `jraft()`.
fn timing(election_timeout: u64, election_jitter: u64, heartbeat_interval: u64) -> RaftConfig {
    let (election_timeout, election_jitter, heartbeat_interval) =
        (ms(election_timeout), ms(election_jitter), ms(heartbeat_interval));
    RaftConfig { election_timeout, election_jitter, heartbeat_interval, ..jraft() }
}

/// The Raft paper's timing (§9.3, ANCHORS.md: 150–300 ms; heartbeats well under the minimum).
fn paper() -> RaftConfig {
    timing(150, 150, 50)
}

/// A cluster for the election tables: its size and every server's config.
struct Setup {
    name: &'static str,
    servers: usize,
    raft: RaftConfig,
}

/// CP servers `0..n` (one config each) and a silent client `n` (an Alertmanager with nothing
/// to notify sends nothing), which proposes entries by registering at a server.
struct Net {
    h: Harness<Node>,
    servers: Vec<NodeId>,
    client: NodeId,
}

impl Net {
    fn new(seed: u64, configs: &[RaftConfig]) -> Net {
        let mut h = Harness::new(seed);
        let list: ServerList = (0..configs.len() as u32).map(NodeId).collect();
        for (k, raft) in configs.iter().enumerate() {
            let config = Arc::new(CpConfig { raft: raft.clone(), ..CpConfig::default() });
            let id = h.add(Node::Raft(Box::new(CpServer::new(config, list[k], Arc::clone(&list)))));
            assert_eq!(id, list[k]);
        }
        let client = h.add(crate::protocol::testing::silent_node());
        h.run_until(SimTime::ZERO);
        Net { h, servers: list.to_vec(), client }
    }

    fn raft(&self, n: NodeId) -> &RaftNode {
        let Node::Raft(s) = self.h.actor(n) else { panic!("{n} is not a CP server") };
        s.raft()
    }

    /// Runs in 1 ms steps until a server of `among` leads; panics after `limit`.
    fn await_leader(&mut self, among: &[NodeId], limit: SimDuration) -> NodeId {
        let end = self.h.now() + limit;
        while self.h.now() < end {
            self.h.run_for(ms(1));
            if let Some(l) = among.iter().copied().find(|n| self.raft(*n).role() == Role::Leader) {
                return l;
            }
        }
        panic!("no leader among {among:?} within {limit}")
    }

    /// Steps until `from` sends a message `pick` selects; returns that time.
    fn step_until_sent(&mut self, from: NodeId, pick: fn(&Msg) -> bool) -> SimTime {
        loop {
            let seen = self.h.sent().len();
            assert!(self.h.step(), "the queue ran dry");
            if self.h.sent()[seen..].iter().any(|s| s.from == from && pick(&s.msg)) {
                return self.h.now();
            }
        }
    }

    /// Steps until `leader` sends AppendEntries (a heartbeat round); returns that time.
    fn next_heartbeat(&mut self, leader: NodeId) -> SimTime {
        self.step_until_sent(leader, |m| matches!(m, Msg::Raft(raft::Msg::AppendEntries { .. })))
    }

    /// The client registers (service `k`) at `at`, which proposes it if it leads.
    fn propose(&mut self, at: NodeId, k: u32) {
        let write = registry::Msg::Write { kind: Write::Register, service: ServiceId(k), req: u64::from(k) };
        self.h.inject(self.client, at, write);
    }

    fn obs<T>(&self, f: impl Fn(&Obs) -> Option<T>) -> Vec<(SimTime, NodeId, T)> {
        self.h.observed().iter().filter_map(|(t, n, o)| f(o).map(|x| (*t, *n, x))).collect()
    }

    fn elections(&self) -> Vec<(SimTime, NodeId, u64)> {
        self.obs(|o| if let Obs::LeaderElected { term, .. } = o { Some(*term) } else { None })
    }

    fn campaigns(&self) -> Vec<(SimTime, NodeId, u64)> {
        self.obs(|o| if let Obs::Campaign { term } = o { Some(*term) } else { None })
    }

    /// Election safety (§5.2: at most one leader per term) and leader completeness (§5.4:
    /// an entry committed in term T is in the log of every leader of a later term).
    fn assert_safe(&self, name: &str) {
        let elected = self.obs(|o| match o {
            Obs::LeaderElected { term, log } => Some((*term, Arc::clone(log))),
            _ => None,
        });
        for (k, (_, a, (term, _))) in elected.iter().enumerate() {
            let twice = elected[k + 1..].iter().find(|(_, _, (t, _))| t == term);
            assert!(twice.is_none(), "{name}: {a} and {:?} both won term {term}", twice.map(|e| e.1));
        }
        for (at, _, (index, term)) in
            self.obs(|o| if let Obs::Committed { index, term } = o { Some((*index, *term)) } else { None })
        {
            for (won, n, (t, log)) in elected.iter().filter(|(won, _, (t, _))| *won > at && *t > term) {
                let has = log.get(index as usize - 1) == Some(&term);
                assert!(has, "{name}: {n} won term {t} at {won} without entry {index} (term {term}) committed at {at}");
            }
        }
    }
}

/// From a cold start every server is a follower; the first whose election timer, drawn from
/// [T, T + jitter), expires asks for (pre-)votes and wins one round trip later; its heartbeats
/// then keep every other timer from expiring, so there is exactly one election (Raft §5.2;
/// etcd raft.go `tickElection` -> `hup` -> `campaign`, PreVote first as `campaignPreElection`;
/// the new leader appends an empty entry of its term, §8 / etcd `becomeLeader`).
#[test]
fn a_cold_cluster_elects_one_leader() {
    let no_pre_vote = RaftConfig { pre_vote: false, ..paper() };
    let cases = [
        Setup { name: "3 servers, JRaft timing (5 s + [0, 1 s))", servers: 3, raft: jraft() },
        Setup { name: "5 servers, JRaft timing", servers: 5, raft: jraft() },
        Setup { name: "3 servers, etcd timing ([1 s, 2 s))", servers: 3, raft: timing(1000, 1000, 100) },
        Setup { name: "5 servers, paper timing (150-300 ms)", servers: 5, raft: paper() },
        Setup { name: "5 servers, paper timing, no PreVote", servers: 5, raft: no_pre_vote },
    ];
    for c in cases {
        let mut net = Net::new(7, &vec![c.raft.clone(); c.servers]);
        let (t, jitter) = (c.raft.election_timeout, c.raft.election_jitter);
        net.h.run_for((t + jitter).saturating_mul(10));
        let elected = net.elections();
        assert_eq!(elected.len(), 1, "{}: one election, then heartbeats hold: {elected:?}", c.name);
        let (won, leader, term) = elected[0];
        assert_eq!(term, 1, "{}", c.name);
        let campaigns = net.campaigns();
        assert_eq!(campaigns.len(), 1, "{}: no split vote: {campaigns:?}", c.name);
        assert_eq!((campaigns[0].1, campaigns[0].2), (leader, 1), "{}", c.name);
        assert_eq!(won - campaigns[0].0, ms(2), "{}: the votes come back one round trip later", c.name);
        let pre = if c.raft.pre_vote { ms(2) } else { ms(0) };
        let campaigned = campaigns[0].0 - SimTime::ZERO;
        assert!(campaigned >= t + pre && campaigned < t + jitter + pre, "{}: campaigned at {campaigned}", c.name);
        for &n in &net.servers {
            let r = net.raft(n);
            let got = (r.term(), r.leader(), r.commit(), r.log_terms());
            assert_eq!(got, (1, Some(leader), 1, vec![1]), "{} {n}: the no-op committed everywhere", c.name);
        }
        net.assert_safe(c.name);
    }
}

/// Raft §9.3 (Figure 16, ANCHORS.md): the leader crashes just after a heartbeat reached the
/// followers; a new leader of the next term is elected once the first follower's randomized
/// timeout, counted from that heartbeat, expires, plus the (pre-)vote round trips.
#[test]
fn a_crashed_leader_is_replaced_within_the_election_timeout_range() {
    let no_pre_vote = RaftConfig { pre_vote: false, ..paper() };
    let cases = [
        Setup { name: "3 servers, JRaft timing", servers: 3, raft: jraft() },
        Setup { name: "5 servers, paper timing", servers: 5, raft: paper() },
        Setup { name: "5 servers, paper timing, no PreVote", servers: 5, raft: no_pre_vote },
        Setup { name: "3 servers, etcd timing", servers: 3, raft: timing(1000, 1000, 100) },
    ];
    for c in cases {
        let mut net = Net::new(11, &vec![c.raft.clone(); c.servers]);
        let servers = net.servers.clone();
        let old = net.await_leader(&servers, (c.raft.election_timeout + c.raft.election_jitter).saturating_mul(2));
        net.h.run_for(c.raft.heartbeat_interval.saturating_mul(3));
        net.next_heartbeat(old);
        net.h.run_for(ms(1));
        let heard = net.h.now();
        net.h.crash(old);
        let rest: Vec<NodeId> = servers.iter().copied().filter(|n| *n != old).collect();
        let new = net.await_leader(&rest, c.raft.election_timeout + c.raft.election_jitter + ms(10));
        let took = net.elections().last().map(|e| e.0 - heard).expect("an election");
        let rtts = if c.raft.pre_vote { ms(4) } else { ms(2) };
        let (lo, hi) = (c.raft.election_timeout + rtts, c.raft.election_timeout + c.raft.election_jitter + rtts);
        assert!(took >= lo && took < hi, "{}: elected {took} after the last heartbeat, want [{lo}, {hi})", c.name);
        assert_eq!(net.raft(new).term(), 2, "{}", c.name);
        net.assert_safe(c.name);
    }
}

/// A minority cannot elect (§5.2: a candidate needs votes from a majority). With PreVote the
/// survivors' pre-votes fail too, so their term stays (thesis §9.6; etcd `hup` with
/// `campaignPreElection` never bumps the term before a pre-vote quorum); without it each timeout
/// bumps the term. Once a third server of five is back, the majority elects again.
#[test]
fn a_minority_cannot_elect() {
    for pre_vote in [true, false] {
        let raft = RaftConfig { pre_vote, ..paper() };
        let mut net = Net::new(3, &vec![raft; 5]);
        let servers = net.servers.clone();
        let leader = net.await_leader(&servers, ms(600));
        net.h.run_for(ms(100));
        let down: Vec<NodeId> = servers.iter().copied().filter(|n| *n != leader).take(2).chain([leader]).collect();
        down.iter().for_each(|n| net.h.crash(*n));
        let elected = net.elections().len();
        net.h.run_for(ms(3000));
        assert_eq!(net.elections().len(), elected, "pre_vote {pre_vote}: two of five elected a leader");
        let up: Vec<NodeId> = servers.iter().copied().filter(|n| !down.contains(n)).collect();
        for &n in &up {
            let term = net.raft(n).term();
            assert_ne!(net.raft(n).role(), Role::Leader);
            if pre_vote {
                assert_eq!(term, 1, "{n}: a failed pre-vote keeps the term");
            } else {
                assert!(term >= 10, "{n}: each of ~3000/300 timeouts starts a real election (term {term})");
            }
        }
        net.h.restart(down[0]);
        net.await_leader(&servers, ms(700));
        net.assert_safe("minority");
    }
}

/// Split votes (§5.2, §9.3): two candidates of a term that each get one of the two other votes
/// (4 servers, majority 3) both lose. Without randomness they time out together and split
/// forever (the paper's 150-150 ms curve); a randomized timeout lets one go first and win the
/// next term. A and B are held paused until both timers expired, so they campaign at one
/// instant; C hears A first, D hears B first; C and D wait long, so A and B contend.
#[test]
fn a_split_vote_resolves_only_with_randomized_timeouts() {
    for (jitter, resolves) in [(ms(0), false), (ms(150), true)] {
        let fast = RaftConfig { election_timeout: ms(150), election_jitter: jitter, pre_vote: false, ..paper() };
        let slow = RaftConfig { election_timeout: ms(1000), election_jitter: ms(0), ..fast.clone() };
        let mut net = Net::new(5, &[fast.clone(), fast, slow.clone(), slow]);
        let [a, b, c, d] = [0, 1, 2, 3].map(NodeId);
        net.h.set_filter(move |from, to, m| match m {
            Msg::Raft(raft::Msg::RequestVote { .. }) if [(a, d), (b, c)].contains(&(from, to)) => Verdict::Delay(ms(1)),
            _ => Verdict::Deliver,
        });
        net.h.pause(a);
        net.h.pause(b);
        net.h.run_for(ms(400));
        net.h.resume(a);
        net.h.resume(b);
        net.h.run_for(ms(1600));
        let campaigns = net.campaigns();
        let term1: Vec<(SimTime, NodeId)> = campaigns.iter().filter(|c| c.2 == 1).map(|c| (c.0, c.1)).collect();
        assert_eq!(term1, vec![(SimTime(400_000_000), a), (SimTime(400_000_000), b)], "jitter {jitter}");
        let elected = net.elections();
        if resolves {
            assert_eq!(elected.len(), 1, "{elected:?}");
            assert_eq!(elected[0].2, 2, "the next term has one winner");
            let after = elected[0].0 - SimTime(400_000_000);
            assert!(after >= ms(152) && after < ms(302), "won {after} after the split");
            assert!(campaigns.iter().all(|c| c.2 <= 2), "{campaigns:?}");
        } else {
            assert!(elected.is_empty(), "{elected:?}");
            let last = campaigns.iter().map(|c| c.2).max().unwrap_or(0);
            assert_eq!(last, 11, "a split every 150 ms from 400 ms to 2 s");
            for term in 1..=last {
                let who: Vec<NodeId> = campaigns.iter().filter(|c| c.2 == term).map(|c| c.1).collect();
                assert_eq!(who, vec![a, b], "term {term}");
            }
        }
        net.assert_safe("split");
    }
}

/// PreVote (thesis §9.6; etcd raft.go `Step`: a pre-vote never changes a term): an isolated
/// follower's pre-votes fail, so its term stays and, on rejoining, the leader's next heartbeat
/// makes it a follower again. Without PreVote it campaigns at every timeout; back in the
/// network it answers the leader's heartbeat with its higher term and the leader steps down
/// (etcd `Step`, `m.Term < r.Term` branch: "this response with MsgAppResp of higher term would
/// force leader to step down ... This can be prevented with Pre-Vote phase"). The follower is
/// let back just after one of its (pre-)vote requests, so its own timer is not about to fire.
#[test]
fn pre_vote_keeps_a_rejoining_follower_from_disrupting_the_leader() {
    for pre_vote in [true, false] {
        let mut net = Net::new(9, &vec![RaftConfig { pre_vote, ..paper() }; 3]);
        let servers = net.servers.clone();
        let leader = net.await_leader(&servers, ms(600));
        let f = servers.iter().copied().find(|n| *n != leader).expect("a follower");
        net.h.run_for(ms(100));
        net.h.isolate(f);
        let cut_at = net.h.now();
        net.h.run_for(ms(2000));
        net.step_until_sent(f, |m| matches!(m, Msg::Raft(raft::Msg::RequestVote { .. })));
        let isolated_term = net.raft(f).term();
        let campaigns = net.campaigns().iter().filter(|c| c.1 == f && c.0 > cut_at).count();
        net.h.heal();
        net.h.run_for(ms(1500));
        let stepped_down = net.obs(|o| matches!(o, Obs::SteppedDown { .. }).then_some(()));
        let now: Vec<NodeId> = servers.iter().copied().filter(|n| net.raft(*n).role() == Role::Leader).collect();
        assert_eq!(now.len(), 1, "pre_vote {pre_vote}: {now:?}");
        if pre_vote {
            assert_eq!((campaigns, isolated_term), (0, 1), "pre-votes fail without raising the term");
            assert!(stepped_down.is_empty(), "{stepped_down:?}");
            assert_eq!(now[0], leader);
            assert_eq!((net.raft(f).term(), net.raft(f).leader()), (1, Some(leader)));
        } else {
            assert!(campaigns >= 6, "one election per timeout over 2 s: {campaigns}");
            assert_eq!(isolated_term, 1 + campaigns as u64);
            assert_eq!(stepped_down.first().map(|s| s.1), Some(leader), "the leader is disrupted");
            assert!(net.raft(now[0]).term() > isolated_term, "a new election after the rejoin");
        }
        net.assert_safe("pre-vote");
    }
}

/// CheckQuorum as etcd-io/raft does it (`raft.go`: `tickHeartbeat` steps `MsgCheckQuorum`
/// every election timeout of the leader's term; `stepLeader` steps down unless
/// `trk.QuorumActive()`, then clears every follower's `RecentActive`; a follower is active again
/// when it answers). So a leader cut off from its majority steps down at the second check after
/// the last answer it got: between one and two election timeouts after it, at a time fixed by
/// when it became leader, not by its heartbeats. The majority elects a leader of the next term;
/// without CheckQuorum the old one leads on.
#[test]
fn check_quorum_steps_a_cut_off_leader_down() {
    struct Case {
        name: &'static str,
        raft: RaftConfig,
        steps_down: bool,
    }
    let cases = [
        Case { name: "ET 150 ms, HB 50 ms", raft: paper(), steps_down: true },
        Case {
            name: "ET 150 ms, HB 40 ms",
            raft: RaftConfig { heartbeat_interval: ms(40), ..paper() },
            steps_down: true,
        },
        Case { name: "etcd timing", raft: timing(1000, 1000, 100), steps_down: true },
        Case { name: "JRaft timing", raft: jraft(), steps_down: true },
        Case { name: "no CheckQuorum", raft: RaftConfig { check_quorum: false, ..paper() }, steps_down: false },
    ];
    for c in cases {
        let mut net = Net::new(13, &vec![c.raft.clone(); 3]);
        let servers = net.servers.clone();
        let span = c.raft.election_timeout + c.raft.election_jitter;
        let leader = net.await_leader(&servers, span.saturating_mul(2));
        let became = net.elections()[0].0;
        net.h.run_for(c.raft.heartbeat_interval);
        let beat = net.next_heartbeat(leader);
        // The followers' answers to this beat arrive (1 ms each way), then the leader is cut off.
        net.h.run_for(ms(2));
        let last_answer = beat + ms(2);
        net.h.isolate(leader);
        net.h.run_for(span.saturating_mul(3));
        let down: Vec<SimTime> =
            net.obs(|o| matches!(o, Obs::SteppedDown { .. }).then_some(())).iter().map(|s| s.0).collect();
        // Checks at became + k ET: the first after the last answer passes, the next fails.
        let et = c.raft.election_timeout;
        let k = (last_answer - became).as_nanos() / et.as_nanos() + 2;
        let expected = became + SimDuration(et.as_nanos() * k);
        assert_eq!(down, c.steps_down.then_some(expected).into_iter().collect::<Vec<_>>(), "{}", c.name);
        if let Some(d) = down.first() {
            let after = *d - last_answer;
            assert!(after > et && after <= et.saturating_mul(2), "{}: {after} after the last answer", c.name);
        }
        let still_leads = net.raft(leader).role() == Role::Leader;
        assert_eq!((still_leads, net.raft(leader).term()), (!c.steps_down, 1), "{}: a stale leader", c.name);
        let majority: Vec<NodeId> = servers.iter().copied().filter(|n| *n != leader).collect();
        let elected: Vec<(NodeId, u64)> = net.elections().iter().skip(1).map(|e| (e.1, e.2)).collect();
        assert!(elected.len() == 1 && majority.contains(&elected[0].0) && elected[0].1 == 2, "{}: {elected:?}", c.name);
    }
}

fn others(servers: &[NodeId], leader: NodeId) -> (NodeId, NodeId) {
    let mut rest = servers.iter().copied().filter(|n| *n != leader);
    (rest.next().expect("3 servers"), rest.next().expect("3 servers"))
}
