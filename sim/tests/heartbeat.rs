//! The heartbeat scenario's expected outcome (issue 2, ANCHORS.md), at 2,000 instances so the
//! test stays quick, plus determinism of the whole report.

mod common;

use regsim::run::run;
use regsim::scenario::Scenario;

fn scenario(extra: &[&str]) -> Scenario {
    let mut sets = vec!["instances.count=2000", "duration=700s"];
    sets.extend_from_slice(extra);
    common::scenario("heartbeat.toml", &sets)
}

/// Expected: exactly the 20 crashed instances (1 %) are marked unhealthy, each 10-20 s after
/// the crash (the last beat was 0-5 s before the crash, the check runs every 5 s and marks
/// after 15 s of silence) plus at most one network latency (10 ms); deleted 25-35 s after it;
/// no false positives. The mean of 20 latencies spread over [10, 20] s has a standard error of
/// about 0.65 s, so "mean near 15 s" is checked within 2.5 s (~4 standard errors).
#[test]
fn crashed_instances_detected_within_the_nacos_window() {
    let s = scenario(&[]);
    let out = run(&s, s.seed).expect("runs");
    let r = &out.report;
    assert!(out.failed_invariants().next().is_none(), "{:?}", r.invariants);
    assert_eq!(r.faults.get("crashed"), Some(&20));
    assert_eq!(r.detection.unhealthy.summary.count, 20);
    assert_eq!(r.detection.unhealthy.missed, 0);
    assert_eq!(r.false_positives.count, 0);
    let u = &r.detection.unhealthy.summary;
    assert!(u.min_s >= 10.0 && u.max_s <= 20.0 + 0.010, "unhealthy {u:?}");
    assert!((u.mean_s - 15.0).abs() < 2.5, "mean {}", u.mean_s);
    let d = &r.detection.deleted.summary;
    assert_eq!(d.count, 20);
    assert!(d.min_s >= 25.0 && d.max_s <= 35.0 + 0.010, "deleted {d:?}");
}

#[test]
fn same_seed_same_report_bytes_on_any_thread() {
    let s = scenario(&[]);
    let render = |seed| {
        let out = run(&s, seed).expect("runs");
        regsim::report::render(&out.report, &out.analyzer).expect("renders")
    };
    let a = render(1);
    let b = std::thread::scope(|scope| {
        let h1 = scope.spawn(|| render(1));
        let h2 = scope.spawn(|| render(1));
        (h1.join().expect("thread"), h2.join().expect("thread"))
    });
    assert_eq!(a, b.0, "same seed, other thread: different report");
    assert_eq!(a, b.1, "same seed, concurrent run: different report");
    let other = run(&s, 2).expect("runs");
    let first = run(&s, 1).expect("runs");
    assert_ne!(first.report.digest, other.report.digest, "different seeds gave the same digest");
}

/// A scenario change that alters the event sequence must alter the digest (the digest sees
/// every event, not just the summary).
#[test]
fn digest_sees_small_changes() {
    let base = scenario(&[]);
    let tweaked = scenario(&["network.latency.max=11ms"]);
    let a = run(&base, 1).expect("runs").report.digest;
    let b = run(&tweaked, 1).expect("runs").report.digest;
    assert_ne!(a, b);
}

/// Without faults and on a lossless network nothing is ever evicted; with 30 % loss some
/// healthy instances are (false positives rise with loss), and they are attributed to loss.
#[test]
fn false_positives_need_faults_or_loss() {
    let calm = scenario(&["faults=[]"]);
    let out = run(&calm, 3).expect("runs");
    assert_eq!(out.report.false_positives.count, 0);
    let lossy = scenario(&["faults=[]", "network.loss=0.3"]);
    let out = run(&lossy, 3).expect("runs");
    let fp = &out.report.false_positives;
    assert!(fp.count > 0, "30 % loss caused no false positive");
    assert_eq!(fp.causes.keys().map(|c| format!("{c:?}")).collect::<Vec<_>>(), vec!["Loss"]);
    assert!(fp.flaps > 0, "evicted live instances should come back");
}
