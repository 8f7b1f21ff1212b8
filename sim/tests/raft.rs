//! The Raft paper's Figure 16 (§9.3), qualitatively, from `scenarios/raft-election-timing.toml`
//! at 200 leader crashes per timeout range (400 s), and what storage latency does to it.

mod common;

use regsim::report::model::ElectionsReport;

fn elections(sets: &[&str]) -> ElectionsReport {
    let mut all = vec!["duration=400s"];
    all.extend_from_slice(sets);
    common::run_ok("raft-election-timing.toml", &all).report.elections.expect("elections family")
}

/// Without randomness, elections split again and again: with identical timeouts and perfect
/// clocks no leader is ever elected; with the default drifting clocks (±50 ppm, 100 µs timer
/// jitter) the timers slide apart until one server wins, after minutes (the paper measured
/// elections of over 10 s at 150-150 ms that did end); with 1 ms of randomness elections take
/// many rounds (the paper: over 10 s in the worst case for 150-151 ms).
#[test]
fn no_randomness_means_repeated_split_votes() {
    let perfect = ["registry.raft.election_jitter=0ms", "clocks.max_drift_ppm=0", "clocks.timer_jitter=0s"];
    let none = elections(&perfect);
    assert_eq!(none.leaders_elected, 0);
    assert!(none.max_term > 100, "{none:?}");
    let drifting = elections(&["registry.raft.election_jitter=0ms"]);
    assert!(drifting.leaders_elected > 0 && drifting.downtime.max_s > 10.0, "{drifting:?}");
    let tiny = elections(&["registry.raft.election_jitter=1ms"]);
    assert!(tiny.terms_max >= 10 && tiny.downtime.max_s > 10.0, "{tiny:?}");
}

/// More randomness shortens the worst case (p99 falls from 150-155 to 150-175 to 150-300 ms),
/// and with 150-300 ms every leader crash is followed by a new leader. The minimum downtime is
/// about half the minimum timeout (the crash falls anywhere in the 75 ms heartbeat interval)
/// plus a vote round (two ~15 ms writes and a LAN round trip): about 105 ms; we allow
/// [75, 150] ms. The worst of 200 failovers at 150-300 ms is at most one split round: two
/// rounds of at most 300 ms + 35 ms, so below 0.7 s (the paper: worst case 513 ms at 150-200).
#[test]
fn randomness_shortens_elections_and_the_floor_is_half_the_timeout() {
    let p99 = |j: &str| elections(&[&format!("registry.raft.election_jitter={j}")]);
    let (a, b, c) = (p99("5ms"), p99("25ms"), p99("150ms"));
    assert!(a.downtime.p99_s > b.downtime.p99_s && b.downtime.p99_s > c.downtime.p99_s, "{a:?} {b:?} {c:?}");
    assert!(c.incidents >= 195 && c.unresolved == 0, "{c:?}");
    assert!(c.downtime.max_s < 0.7, "150-300 ms worst case {}", c.downtime.max_s);
    assert!((0.075..=0.15).contains(&c.downtime.min_s), "min downtime {}", c.downtime.min_s);
}

/// What sets the split-vote rate at small randomness is how long a candidate takes to ask: it
/// writes its term and self-vote before any RequestVote leaves, and a server whose timer fires
/// within that write (plus the one-way latency) campaigns too. At 150-155 ms the median
/// downtime grows with the write: the paper's 287 ms lies between this model's medians with a
/// 1 ms write (about 130 ms) and a 3 ms one (about 420 ms); with the thesis's ~15 ms broadcast
/// charged to the write it is several seconds. A sensitivity check of the mechanism, not a
/// fit: the canonical scenario keeps the thesis's figure.
#[test]
fn the_candidates_write_sets_the_split_vote_window() {
    let at = |fsync: &str| {
        let disk = format!("registry.raft.fsync={{dist=\"constant\",value=\"{fsync}\"}}");
        elections(&["registry.raft.election_jitter=5ms", &disk])
    };
    let (fast, mid, thesis) = (at("1ms"), at("3ms"), elections(&["registry.raft.election_jitter=5ms"]));
    assert!(fast.downtime.p50_s < mid.downtime.p50_s && mid.downtime.p50_s < thesis.downtime.p50_s);
    assert!(fast.split_votes < mid.split_votes && mid.split_votes < thesis.split_votes);
    let paper = 0.287;
    assert!(fast.downtime.p50_s < paper && paper < mid.downtime.p50_s, "{fast:?} {mid:?}");
    assert!(thesis.downtime.p50_s > 1.0, "~15 ms write: p50 {}", thesis.downtime.p50_s);
}

fn isolation(sets: &[&str]) -> regsim::report::model::IsolationReport {
    let out = common::run_ok("raft-leader-isolation.toml", sets);
    let mut e = out.report.elections.expect("elections").isolations;
    assert_eq!(e.len(), 1);
    e.remove(0)
}

/// With CheckQuorum the cut-off leader steps down within an election timeout (5 s) plus a
/// heartbeat (0.5 s) and network slack (0.1 s); with PreVote its term does not grow while it
/// is cut off, and after the heal it rejoins without forcing an election. Without PreVote its
/// term grows and the rejoin disrupts the leader; without CheckQuorum it never steps down.
#[test]
fn leader_isolation_with_and_without_prevote_and_checkquorum() {
    let both = isolation(&[]);
    let down = both.stepped_down_after_s.expect("stepped down");
    assert!((5.0..=5.6).contains(&down), "stepped down after {down} s");
    assert_eq!(both.term_growth_while_cut, 0);
    assert_eq!(both.elected_while_cut, 1, "the majority elects a new leader");
    assert_eq!(both.elected_after_heal, 0, "the rejoin disrupted the leader");

    let no_prevote = isolation(&["registry.raft.pre_vote=false"]);
    assert!(no_prevote.term_growth_while_cut >= 5, "{no_prevote:?}");
    assert!(no_prevote.elected_after_heal >= 1, "{no_prevote:?}");

    let no_cq = isolation(&["registry.raft.check_quorum=false"]);
    assert_eq!(no_cq.stepped_down_after_s, None, "{no_cq:?}");
}

/// `target = "follower[random]"` picks, when the fault fires, a running server that is not the
/// leader: crashing one every 2 s (for 1 s) never takes the leader down (one leader, elected
/// once) though a server is down half the time; `target = "leader"` on the same schedule
/// crashes the leader each time.
#[test]
fn follower_and_leader_targets_resolve_when_the_fault_fires() {
    let run_with = |target: &str| {
        let mut s = common::scenario("raft-election-timing.toml", &["duration=100s"]);
        s.faults[0].target = Some(regsim::fault::Targets(vec![target.to_string()]));
        regsim::run::run(&s, 3).expect("runs").report
    };
    let r = run_with("follower[random]");
    let e = r.elections.as_ref().expect("CP run");
    assert_eq!(e.leaders_elected, 1, "the leader was never crashed: {e:?}");
    assert!(r.faults["crashed"] >= 45, "{:?}", r.faults);
    let r = run_with("leader");
    let e = r.elections.as_ref().expect("CP run");
    assert!(e.incidents >= 45 && e.leaders_elected >= 46, "{e:?}");
}
