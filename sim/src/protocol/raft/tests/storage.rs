//! Storage latency: what waits for a write to stable storage (the folder's `mod.rs` holds the
//! harness). References: etcd-io/raft `node.go` (`Ready`: persist `HardState` and `Entries`
//! before sending `Messages`; the leader may send `MsgApp` first, `raft.go` `appendEntry`) and
//! LogCabin `Server/RaftConsensus.cc`: `startNewElection` writes term and self-vote
//! (`updateLogMetadata`, an fsync) before any RequestVote leaves, `handleRequestVote` writes
//! the vote before answering, `handleAppendEntries` answers after its entries are synced,
//! and the leader syncs its own entries in `leaderDiskThreadMain`, counting itself towards a
//! commit (`advanceCommitIndex`, `getMatchIndex` = `lastSyncedIndex`) only once they are.

use super::*;

/// With a constant fsync of `w` and a 1 ms one-way latency (no PreVote, so the campaign is the
/// first thing that writes): the votes come back `w + 1 + w + 1` after the campaign (the
/// candidate's write, the request, the voter's write, the answer), and the new leader's no-op
/// commits `max(w, 1 + w + 1)` after it won (its own write in parallel with a follower's).
/// A register at the leader is acked as long after it arrives.
#[test]
fn storage_latency_delays_votes_acks_and_commits() {
    for w in [0, 3, 10] {
        let raft = RaftConfig { pre_vote: false, fsync: LatencySpec::constant(ms(w)), ..paper() };
        let mut net = Net::new(7, &vec![raft; 3]);
        let leader = net.await_leader(&net.servers.clone(), ms(2000));
        net.h.run_for(ms(100));
        let campaigned = net.campaigns()[0].0;
        let (won, _, term) = net.elections()[0];
        assert_eq!(won - campaigned, ms(2 * w + 2), "fsync {w} ms: campaign to victory");
        let commits = net.obs(|o| if let Obs::Committed { index, .. } = o { Some(*index) } else { None });
        assert_eq!(commits[0], (won + ms(w + 2), leader, 1), "fsync {w} ms: the no-op of term {term}");
        net.propose(leader, 1);
        let arrives = net.h.now() + ms(1);
        net.h.run_for(ms(100));
        let acked = net.obs(|o| if let Obs::Acked { index, .. } = o { Some(*index) } else { None });
        assert_eq!(acked, vec![(arrives + ms(w + 2), leader, 2)], "fsync {w} ms: a CP write");
        net.assert_safe("storage");
    }
}

/// Writes are done one after the other; what changes while one is in flight is written by
/// the next one (a group commit), so answers never wait for more than two writes, and a
/// crash loses what was not yet sent but no persisted term or vote.
#[test]
fn writes_in_flight_are_grouped_and_a_crash_loses_their_messages() {
    let raft = RaftConfig { pre_vote: false, fsync: LatencySpec::constant(ms(10)), ..paper() };
    let mut net = Net::new(7, &vec![raft; 3]);
    let leader = net.await_leader(&net.servers.clone(), ms(2000));
    net.h.run_for(ms(100));
    // Three writes arriving 1 ms apart: the first starts a write (done at +10), the next two
    // join the second write (done at +20), so all three are acked by +20 + 2.
    let start = net.h.now();
    for k in 1..=3 {
        net.propose(leader, k);
        net.h.run_for(ms(1));
    }
    net.h.run_for(ms(100));
    let acked: Vec<SimDuration> = net
        .obs(|o| if let Obs::Acked { index, .. } = o { Some(*index) } else { None })
        .iter()
        .map(|(t, _, _)| *t - start)
        .collect();
    assert_eq!(acked.len(), 3, "{acked:?}");
    assert!(acked.iter().all(|d| *d <= ms(10 + 1 + 10 + 2 + 2)), "grouped: {acked:?}");
    // A follower crashes while its answer to a new entry waits for the write: the answer is
    // never sent (the other follower's makes the commit), the entry is kept.
    let (a, _) = others(&net.servers, leader);
    net.propose(leader, 9);
    net.h.run_for(ms(5));
    let crashed = net.h.now();
    net.h.crash(a);
    net.h.run_for(ms(100));
    let from_a = net.h.sent().iter().filter(|s| s.from == a && s.at >= crashed).count();
    assert_eq!(from_a, 0, "the held answer died with the process");
    assert_eq!(net.raft(a).log_terms().len(), 5, "the entry survives the crash (no-op, 3 writes, this one)");
    let acked = net.obs(|o| if let Obs::Acked { index, .. } = o { Some(*index) } else { None });
    assert_eq!(acked.last().map(|x| x.2), Some(5), "committed with the other follower");
}
