//! Validation of the CP registry's health check (ANCHORS "Persistent instances": a TCP connect
//! from the Distro-responsible server, a refused connect fails at once, a timed-out one counts
//! toward 3, the period adapts; Nacos 1.4.6 `TcpSuperSenseProcessor`, `HealthCheckCommon`).

use regsim::run::RunOutput;

const BASE: &str = r#"name = "cp-check"
seed = 3
duration = "400s"
[network]
latency = { dist = "uniform", min = "1ms", max = "5ms" }
[registry]
mode = "cp"
servers = 3
[instances]
count = 20
start_spread = "10s"
[consumers]
count = 2
"#;

fn run(faults: &str) -> RunOutput {
    let text = format!("{BASE}{faults}");
    let s = regsim::scenario::load_str("cp-check.toml", &text, &[]).expect("valid");
    regsim::run::run(&s, s.seed).expect("runs")
}

/// A process crash (host up): the next connect is refused and marks the instance at once. The
/// period of a healthy service shrinks to its 1 s floor within seconds (`reEvaluateCheckRT`:
/// 0.75 of the period plus a quarter of a round trip each time), so detection takes less than
/// a second plus the refusal's round trip (up to 10 ms here). The old leader-probe model (three
/// failed rounds 2-7 s apart, committed through Raft) took 6-15 s.
#[test]
fn a_crashed_process_is_marked_within_a_check_period() {
    let out = run(r#"
[[faults]]
at = "60s"
every = "30s"
action = "crash"
target = "instances[random 2]"
duration = "20s"
"#);
    let r = &out.report;
    let u = &r.detection.unhealthy;
    let crashed = *r.faults.get("crashed").expect("crashes");
    assert!(crashed >= 18, "{crashed} crashes");
    assert_eq!((u.summary.count, u.missed), (crashed, 0), "{u:?}");
    assert!(u.summary.min_s > 0.0 && u.summary.max_s <= 1.0 + 0.011, "{:?}", u.summary);
    // Spread over the period: the crash falls at a uniform point of it.
    assert!((0.3..=0.7).contains(&u.summary.mean_s), "{:?}", u.summary);
    assert_eq!(r.false_positives.count, 0);
}

/// An unreachable host (the instance cut off by a partition): each connect times out after
/// 500 ms and stretches the period by a quarter (`2 norm` counts as the response time), so the
/// third timeout, which marks it, comes about 1 s + 1.25 s + 0.5 s after the first connect
/// that failed: 2.75-3.75 s after the cut, by where in the 1 s period it falls.
#[test]
fn an_unreachable_instance_is_marked_after_three_timeouts() {
    let out = run(r#"
[[faults]]
at = "100s"
every = "40s"
action = "partition"
shape = "groups"
groups = [["instances[random 1]"], ["rest"]]
duration = "15s"
"#);
    let r = &out.report;
    let fp = &r.false_positives;
    // The cut-off instance is alive: its mark is a false positive explained by the partition.
    assert!(fp.count >= 6, "{fp:?}");
    // Cuts at 100 s, 140 s, ...: how long after its cut each mark came.
    let marks = &out.analyzer.detection.false_positives;
    let after: Vec<f64> = marks.iter().map(|m| (m.time.as_secs_f64() - 100.0).rem_euclid(40.0)).collect();
    assert!(after.iter().all(|x| (2.75..=3.8).contains(x)), "marks after the cut: {after:?}");
}
