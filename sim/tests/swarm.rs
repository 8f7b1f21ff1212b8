//! The checks bite: `regsim swarm` finds each deliberate defect of `[bugs]` within a stated
//! number of runs, shrinks it to a schedule of at most a few faults that still fails, and the
//! same swarms pass with every defect off.

use std::path::{Path, PathBuf};
use std::process::Command;

use regsim::swarm::{self, Base};

fn base(file: &str, sets: &[&str]) -> Base {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/swarm").join(file);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Base::load(&path, &sets).expect("swarm base loads")
}

/// Runs `runs` variants (seed 1, two threads) and returns the summary.
fn swarm(b: &Base, runs: u64) -> swarm::Summary {
    swarm::execute(b, runs, 1, 2, &|_| {}).expect("swarm runs")
}

/// The defect is found within `within` runs as `invariant`, and shrinks to at most `max_faults`
/// faults in a scenario that, written out and loaded again, still fails that invariant.
fn finds(file: &str, bug: &str, invariant: &str, within: u64, max_faults: usize) {
    let b = base(file, &[&format!("bugs.{bug}=true")]);
    let s = swarm(&b, within);
    let f = s.failure.as_ref().unwrap_or_else(|| panic!("{bug}: not found in {within} runs"));
    assert_eq!(f.signature, invariant, "{bug}: {:?}", f.failed);
    let shrunk = swarm::shrink(&b, f);
    let m = &shrunk.variant;
    assert!(m.plan.faults.len() <= max_faults, "{bug}: shrunk to {} faults:\n{}", m.plan.faults.len(), b.text(m));
    assert!(m.plan.faults.len() <= f.variant.plan.faults.len());
    let text = b.text(m);
    let scenario = regsim::scenario::load_str("minimal.toml", &text, &[]).expect("minimal loads");
    let out = regsim::run::run(&scenario, scenario.seed).expect("runs");
    assert!(out.failed_invariants().any(|i| i.name == invariant), "{bug}: minimal passes:\n{text}");
    eprintln!(
        "{bug}: found at run {} of {within}, shrunk from {} to {} faults ({} candidate runs)",
        f.variant.run,
        f.variant.plan.faults.len(),
        m.plan.faults.len(),
        shrunk.attempts
    );
}

#[test]
fn swarm_finds_skip_anti_entropy() {
    // Shrinks to 4 faults since health flags spread by status reports (5 s) instead of Distro
    // syncs; to 3 (a crash and two partitions) before that, to 2 when every message was a
    // datagram.
    finds("ap.toml", "skip_anti_entropy", "converged_after_heal", 100, 4);
}

#[test]
fn swarm_finds_vote_twice() {
    finds("cp.toml", "vote_twice", "one_leader_per_term", 100, 2);
}

/// Within 400 runs (it stops at the first failure): since the Raft model follows etcd's
/// CheckQuorum window, a cut-off leader keeps its role for one to two election timeouts, and an
/// uncommitted write it applies has to meet a read in that window. Since Raft writes to disk
/// before it answers, the first failure of sweep seed 1 (run 84) shrinks to 6 faults (two
/// partitions and four pauses; swarm seeds 2-5 shrink to 1, 2, 4 and 2); before, to 3.
#[test]
fn swarm_finds_apply_before_commit() {
    finds("cp.toml", "apply_before_commit", "linearizable", 400, 6);
}

#[test]
fn swarm_passes_with_every_bug_off() {
    for file in ["ap.toml", "cp.toml"] {
        let s = swarm(&base(file, &[]), 200);
        assert!(s.failure.is_none(), "{file}: {:?}", s.failure.map(|f| (f.variant.run, f.failed)));
        assert_eq!(s.runs, 200);
        assert!(s.faults.len() >= 9, "{file}: fault kinds {:?}", s.faults);
        let applicable = |name: &str| s.invariants.get(name).map_or(0, |c| c.1);
        if file == "ap.toml" {
            assert!(applicable("converged_after_heal") > 100, "{:?}", s.invariants);
        } else {
            assert!(applicable("linearizable") == 200 && applicable("one_leader_per_term") == 200);
        }
    }
}

/// The failure found and the summary before it do not depend on the thread count.
#[test]
fn swarm_results_do_not_depend_on_jobs() {
    let b = base("ap.toml", &["bugs.skip_anti_entropy=true"]);
    let one = swarm::execute(&b, 100, 7, 1, &|_| {}).expect("runs");
    let three = swarm::execute(&b, 100, 7, 3, &|_| {}).expect("runs");
    assert_eq!(one.runs, three.runs);
    assert_eq!(one.events, three.events);
    assert_eq!(one.faults, three.faults);
    let run = |s: &swarm::Summary| s.failure.as_ref().map(|f| (f.variant.run, f.variant.seed, f.signature.clone()));
    assert_eq!(run(&one), run(&three));
    assert!(run(&one).is_some());
}

fn regsim(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_regsim")).args(args).output().expect("run regsim");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

fn swarm_file(name: &str) -> String {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/swarm").join(name);
    p.display().to_string()
}

/// Through the binary: exit 1, seed and repro command printed, minimal.toml fails `regsim run`.
#[test]
fn cli_swarm_writes_a_minimal_failing_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().display().to_string();
    let file = swarm_file("cp.toml");
    let (code, text) = regsim(&["swarm", &file, "--runs", "50", "--set", "bugs.vote_twice=true", "--out", &out]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("(seed ") && text.contains("reproduce with: regsim run"), "{text}");
    assert!(text.contains("one_leader_per_term"), "{text}");
    let minimal = dir.path().join("minimal.toml").display().to_string();
    let failing = dir.path().join("failing.toml").display().to_string();
    for f in [&minimal, &failing] {
        let report = dir.path().join("report").display().to_string();
        let (code, text) = regsim(&["run", f, "--out", &report]);
        assert_eq!(code, 1, "{f}: {text}");
        assert!(text.contains("invariant one_leader_per_term failed"), "{text}");
    }
    let page = std::fs::read_to_string(dir.path().join("swarm.md")).expect("swarm.md");
    let row = page.lines().find(|l| l.starts_with("| one_leader_per_term |")).expect("its row");
    assert!(row.ends_with("** |"), "the failed count in bold: {row}");
    assert!(
        page.contains("failed:\n\n- **one_leader_per_term**") && page.contains("## The smallest scenario"),
        "{page}"
    );
    assert!(dir.path().join("swarm.html").is_file());
    let (code, text) = regsim(&["swarm", &swarm_file("ap.toml"), "--runs", "20", "--out", &out]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("runs       20, all passed") && text.contains("converged_after_heal"), "{text}");
    let page = std::fs::read_to_string(dir.path().join("swarm.md")).expect("swarm.md of a passing swarm");
    assert!(page.contains("20 runs, each") && page.contains("Every run passed"), "{page}");
    assert!(!dir.path().join("minimal.toml").exists(), "a fresh set replaces the failing one");
}

#[test]
fn cli_swarm_bad_input_exits_2() {
    let file = swarm_file("ap.toml");
    for (args, needle) in [
        (vec!["swarm", &file, "--runs", "0"], "--runs"),
        (vec!["swarm", &file, "--jobs", "0"], "--jobs"),
        (vec!["swarm", "nope.toml"], "cannot read"),
        (vec!["swarm", &file, "--set", "bugs.vote_twice=2"], "bugs.vote_twice"),
        (vec!["swarm", &file, "--set", "duration=1s"], "at least 4s"),
    ] {
        let (code, text) = regsim(&args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains(needle), "{args:?}: {text}");
    }
}

/// Minimal scenarios of failures that swarms found with the bugs off (each a flaw of the model
/// or of a checker, fixed since; the header says which): every invariant must hold now.
#[test]
fn swarm_regressions_hold() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/swarm-regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("regressions folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    for f in &files {
        let s = regsim::scenario::load(f, &[]).expect("loads");
        let out = regsim::run::run(&s, s.seed).expect("runs");
        let bad: Vec<_> = out.failed_invariants().map(|i| format!("{}: {}", i.name, i.detail)).collect();
        assert!(bad.is_empty(), "{}: {bad:?}", f.display());
    }
}
