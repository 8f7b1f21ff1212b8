//! The CAP comparison (`scenarios/cap-partition.toml`): the same partition against the AP and
//! the CP registry, and the consistency checks on both.

mod common;

use common::{run_ok, scenario};
use regsim::report::model::{Ratio, Report};
use regsim::run::run;

fn side(r: &Report, group: &str, kind: regsim::protocol::RequestKind) -> Ratio {
    r.availability.by_side[group][&kind].clone()
}

fn fraction(r: Ratio) -> f64 {
    r.fraction.expect("requests were made")
}

use regsim::protocol::RequestKind::{Query, Register};

/// CP: the minority side (2 of 5 servers) can neither write nor read; the majority
/// side keeps both; every list is linearizable and none is stale; the Raft invariants hold.
#[test]
fn cp_gives_up_the_minority_side_and_stays_linearizable() {
    let r = run_ok("cap-partition.toml", &["registry.mode=cp"]).report;
    assert_eq!(r.consistency.verdict, "linearizable", "{}", r.consistency.detail);
    assert_eq!(r.consistency.stale_lists, 0);
    assert!(r.consistency.lists > 1000, "{} lists", r.consistency.lists);
    for kind in [Register, Query] {
        let minority = side(&r, "minority (2 of 5 servers)", kind);
        assert!(minority.total > 0 && minority.ok == 0, "{kind:?} on the minority side: {minority:?}");
        assert!(fraction(side(&r, "majority (3 of 5 servers)", kind)) > 0.95, "{kind:?} on the majority side");
    }
    let names: Vec<&str> = r.invariants.iter().map(|i| i.name).collect();
    for n in
        ["one_leader_per_term", "log_matching", "committed_entries_durable", "acknowledged_writes_kept", "linearizable"]
    {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
}

/// AP: both sides keep answering reads, and reads go stale: the checker finds a violation,
/// shrunk to a register and a list that missed it.
#[test]
fn ap_stays_available_and_serves_stale_reads() {
    let r = run_ok("cap-partition.toml", &["registry.mode=ap"]).report;
    for group in ["minority (2 of 5 servers)", "majority (3 of 5 servers)"] {
        assert!(fraction(side(&r, group, Query)) > 0.95, "reads on {group}");
    }
    assert_eq!(r.consistency.verdict, "violation", "{}", r.consistency.detail);
    assert!(r.consistency.stale_lists > 10, "{} stale lists", r.consistency.stale_lists);
    assert!((2..=4).contains(&r.consistency.violation.len()), "{:?}", r.consistency.violation);
}

/// The checker bites on CP too: with Nacos 1.x style local reads (any server answers from what
/// it applied) the minority side serves stale lists and the `linearizable` invariant fails.
#[test]
fn cp_with_local_reads_fails_linearizability() {
    let s = scenario("cap-partition.toml", &["registry.mode=cp", "registry.raft.reads=local"]);
    let out = run(&s, s.seed).expect("runs");
    let failed: Vec<&str> = out.failed_invariants().map(|i| i.name).collect();
    assert_eq!(failed, ["linearizable"], "{:?}", out.report.invariants);
    assert!(fraction(side(&out.report, "minority (2 of 5 servers)", Query)) > 0.95, "local reads stay available");
}

/// Lease reads without CheckQuorum are unsafe, so the scenario is rejected.
#[test]
fn lease_reads_need_check_quorum() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/cap-partition.toml");
    let sets: Vec<_> = ["registry.mode=cp", "registry.raft.reads=lease", "registry.raft.check_quorum=false"]
        .iter()
        .map(|s| regsim::scenario::Override::parse(s).expect("override"))
        .collect();
    let err = regsim::scenario::load(&path, &sets).expect_err("rejected").to_string();
    assert!(err.contains("registry.raft.reads") && err.contains("check_quorum"), "{err}");
}

/// `bugs.apply_before_commit` (the old Nacos Raft quirk) shows as a dirty read with lease
/// reads: an isolated leader serves a registration it never commits. It needs the leader on
/// the minority side when a cut starts, which depends on the seed (with Raft on TCP, 3 of
/// seeds 1..=12 and 2 of 1..=6; with datagrams it was 5 of 6: the elections, and so who leads
/// at each cut, differ), so the test asks for some seed to show it; with the quirk off, or
/// with read-index reads, every seed is linearizable.
#[test]
fn apply_before_commit_shows_as_a_dirty_read_under_lease_reads() {
    let verdict = |seed: u64, sets: &[&str]| {
        let s = scenario("cp-dirty-read.toml", sets);
        let out = run(&s, seed).expect("runs");
        out.report.consistency.verdict
    };
    let seeds = 1..=6u64;
    let caught = seeds.clone().filter(|s| verdict(*s, &[]) == "violation").count();
    assert!(caught >= 1, "the quirk showed in {caught} of 6 seeds");
    for seed in seeds {
        assert_eq!(verdict(seed, &["bugs.apply_before_commit=false"]), "linearizable", "seed {seed}, quirk off");
        assert_eq!(verdict(seed, &["registry.raft.reads=read_index"]), "linearizable", "seed {seed}, read index");
    }
}
