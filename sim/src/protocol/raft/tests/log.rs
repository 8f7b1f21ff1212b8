//! Log replication tables (the folder's `mod.rs` holds the harness).

use super::*;

/// Log matching (§5.3; etcd `handleAppendEntries`, log.go `maybeAppend`/`findConflict`): a new
/// leader first sends a follower what follows its own last entry; a follower whose log does not
/// hold the previous entry rejects with a hint, here min(its last index, prev - 1), and the
/// leader retries from there at once; a conflicting suffix is truncated. Committed entries
/// survive every leader change (§5.4, checked by `assert_safe`), uncommitted ones may not.
/// Each build returns (leader, repaired follower) and leaves the follower to be repaired.
#[test]
fn a_new_leader_repairs_a_missing_or_divergent_suffix() {
    struct Case {
        name: &'static str,
        build: fn(&mut Net) -> (NodeId, NodeId),
        /// The follower's AppendOk answers to the new leader, in order.
        answers: &'static [(bool, u32)],
        log: &'static [u64],
    }
    let cases = [
        Case {
            name: "missing suffix: the follower missed three committed entries of term 1",
            build: |net| {
                let servers = net.servers.clone();
                let l = net.await_leader(&servers, ms(600));
                net.h.run_for(ms(100));
                let (f, g) = others(&servers, l);
                net.h.set_filter(move |from, to, m| match m {
                    Msg::Raft(raft::Msg::AppendEntries { .. }) if (from, to) == (l, f) => Verdict::Drop,
                    _ => Verdict::Deliver,
                });
                (1..=3).for_each(|k| net.propose(l, k));
                net.h.run_for(ms(10));
                assert_eq!((net.raft(l).commit(), net.raft(f).log_terms()), (4, vec![1]));
                net.h.crash(l);
                net.h.clear_filter();
                (net.await_leader(&[g], ms(600)), f)
            },
            // Leader's log is [1 1 1 1 2]: prev 4 is past the follower's end, the hint is its
            // last index 1, the retry from 2 fits.
            answers: &[(false, 1), (true, 5)],
            log: &[1, 1, 1, 1, 2],
        },
        Case {
            name: "divergent suffix: the old leader appended two entries nobody else has",
            build: |net| {
                let servers = net.servers.clone();
                let l = net.await_leader(&servers, ms(600));
                net.h.run_for(ms(100));
                let (f, g) = others(&servers, l);
                net.h.cut(l, f);
                net.h.cut(l, g);
                (1..=2).for_each(|k| net.propose(l, k));
                let n1 = net.await_leader(&[f, g], ms(600));
                (3..=4).for_each(|k| net.propose(n1, k));
                net.h.run_for(ms(10));
                assert_eq!(net.raft(n1).commit(), 4);
                assert_eq!(net.raft(l).log_terms(), vec![1, 1, 1], "uncommitted entries of term 1");
                net.h.crash(n1);
                net.h.heal();
                let n2 = if n1 == f { g } else { f };
                (net.await_leader(&[n2], ms(600)), l)
            },
            // Leader's log is [1 2 2 2 3]: the hint backs up one entry per round trip (3, 2, 1)
            // until entry 1 matches; entries 2 and 3 of term 1 are overwritten.
            answers: &[(false, 3), (false, 2), (false, 1), (true, 5)],
            log: &[1, 2, 2, 2, 3],
        },
    ];
    for c in cases {
        let mut net = Net::new(17, &vec![paper(); 3]);
        let (leader, follower) = (c.build)(&mut net);
        net.h.run_for(ms(20));
        let answers: Vec<(bool, u32)> = (net.h.sent().iter())
            .filter(|s| (s.from, s.to) == (follower, leader))
            .filter_map(|s| match s.msg {
                Msg::Raft(raft::Msg::AppendOk { ok, index, .. }) => Some((ok, index)),
                _ => None,
            })
            .collect();
        assert!(answers.starts_with(c.answers), "{}: {answers:?}", c.name);
        assert_eq!(net.raft(leader).log_terms(), c.log.to_vec(), "{}", c.name);
        assert_eq!(net.raft(follower).log_terms(), c.log.to_vec(), "{}", c.name);
        assert_eq!(net.raft(leader).commit(), c.log.len() as u32, "{}: the new term's no-op commits", c.name);
        net.assert_safe(c.name);
    }
}

/// Leader completeness across many leader changes (§5.4): five servers, the leader crashes
/// after every two proposals and restarts once a successor leads; every entry ever committed
/// is in every later leader's log, and in the end all logs are equal.
#[test]
fn committed_entries_survive_leader_changes() {
    let mut net = Net::new(21, &vec![paper(); 5]);
    let servers = net.servers.clone();
    let mut leader = net.await_leader(&servers, ms(600));
    for round in 0..6 {
        net.propose(leader, 2 * round);
        net.propose(leader, 2 * round + 1);
        net.h.run_for(ms(5));
        net.h.crash(leader);
        let rest: Vec<NodeId> = servers.iter().copied().filter(|n| *n != leader).collect();
        let next = net.await_leader(&rest, ms(600));
        net.h.restart(leader);
        leader = next;
    }
    net.h.run_for(ms(200));
    let log = net.raft(leader).log_terms();
    assert_eq!(log.len(), 1 + 6 * 3, "a no-op per term and 12 registrations");
    assert_eq!(net.raft(leader).commit(), 19, "all of it committed");
    for &n in &servers {
        assert_eq!(net.raft(n).log_terms(), log, "{n}");
    }
    net.assert_safe("leader changes");
}
