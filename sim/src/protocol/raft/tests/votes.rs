//! Vote request and answer tables (the folder's `mod.rs` holds the harness).

use super::*;

/// How a server answers a (pre-)vote request, and what a vote answer does to it, as
/// etcd-io/raft `raft.go` `Step` does: inside a leader's lease (CheckQuorum on, a leader heard
/// within the election timeout, or being the leader) a higher-term request is ignored, no
/// answer and no term change; without CheckQuorum a higher-term vote deposes the leader; a
/// pre-vote never changes the receiver's term; a stale pre-vote is rejected with the
/// receiver's term, and a rejection with a higher term makes the asker a follower at it (so a
/// server left behind catches up instead of pre-voting in vain).
#[test]
fn vote_requests_and_answers_follow_etcd() {
    struct Case {
        name: &'static str,
        check_quorum: bool,
        /// Sent by the follower `a` to `to` (the leader or the other follower `b`).
        to_leader: bool,
        msg: raft::Msg,
        /// The answer `a` gets: (term, granted), or none.
        answer: Option<(u64, bool)>,
        /// The receiver's role and term afterwards.
        after: (Role, u64),
    }
    let vote = |term, pre| raft::Msg::RequestVote { pre, last_index: 1, last_term: 1, term };
    let cases = [
        Case {
            name: "leader in lease ignores a higher-term vote",
            check_quorum: true,
            to_leader: true,
            msg: vote(5, false),
            answer: None,
            after: (Role::Leader, 1),
        },
        Case {
            name: "leader in lease ignores a higher-term pre-vote",
            check_quorum: true,
            to_leader: true,
            msg: vote(5, true),
            answer: None,
            after: (Role::Leader, 1),
        },
        Case {
            name: "follower in lease ignores a higher-term pre-vote",
            check_quorum: true,
            to_leader: false,
            msg: vote(5, true),
            answer: None,
            after: (Role::Follower, 1),
        },
        Case {
            name: "without CheckQuorum a higher-term vote deposes the leader, which grants it",
            check_quorum: false,
            to_leader: true,
            msg: vote(5, false),
            answer: Some((5, true)),
            after: (Role::Follower, 5),
        },
        Case {
            name: "without CheckQuorum a pre-vote for a future term is granted, the term kept",
            check_quorum: false,
            to_leader: false,
            msg: vote(5, true),
            answer: Some((5, true)),
            after: (Role::Follower, 1),
        },
        Case {
            name: "a stale pre-vote is rejected with the receiver's term",
            check_quorum: false,
            to_leader: false,
            msg: vote(0, true),
            answer: Some((1, false)),
            after: (Role::Follower, 1),
        },
        Case {
            name: "a rejected pre-vote with a higher term makes the asker a follower at it",
            check_quorum: true,
            to_leader: false,
            msg: raft::Msg::Vote { pre: true, granted: false, term: 7 },
            answer: None,
            after: (Role::Follower, 7),
        },
    ];
    for c in cases {
        // Heartbeats every 50 ms, elections only after 10 s: nothing moves but the injected message.
        let raft = RaftConfig { check_quorum: c.check_quorum, ..timing(10_000, 10_000, 50) };
        let mut net = Net::new(3, &vec![raft; 3]);
        let servers = net.servers.clone();
        let leader = net.await_leader(&servers, ms(60_000));
        net.h.run_for(ms(200));
        let followers: Vec<NodeId> = servers.iter().copied().filter(|n| *n != leader).collect();
        let (a, b) = (followers[0], followers[1]);
        let to = if c.to_leader { leader } else { b };
        net.h.clear_sent();
        net.h.inject(a, to, c.msg.clone());
        net.h.run_for(ms(5));
        let answers: Vec<(u64, bool)> = net
            .h
            .sent()
            .iter()
            .filter(|s| s.from == to && s.to == a)
            .filter_map(|s| match s.msg {
                Msg::Raft(raft::Msg::Vote { term, granted, .. }) => Some((term, granted)),
                _ => None,
            })
            .collect();
        assert_eq!(answers, c.answer.into_iter().collect::<Vec<_>>(), "{}", c.name);
        assert_eq!((net.raft(to).role(), net.raft(to).term()), c.after, "{}", c.name);
    }
}
