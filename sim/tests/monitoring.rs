//! Monitoring in the loop (issue 9): Prometheus discovering its targets from the registry,
//! alert latencies against the window the configuration implies, and the `up == 0, for: 1m`
//! alert that mostly never fires because service discovery drops the dead target first.

mod common;

use regsim::metrics::alerts::AlertRuleReport;
use regsim::run::{RunOutput, run};

fn rule<'a>(out: &'a RunOutput, name: &str) -> &'a AlertRuleReport {
    let a = out.report.alerts.as_ref().expect("alerts family");
    a.rules.iter().find(|r| r.alert == name).unwrap_or_else(|| panic!("no alert rule {name}"))
}

/// Network slack: a scrape's answer or an alert takes up to 10 ms per hop.
const SLACK_S: f64 = 0.05;

fn check_windows(out: &RunOutput) {
    let crashes = out.report.alerts.as_ref().map_or(0, |a| a.crashes);
    assert!(crashes >= 10, "the scenario crashes an instance every 10 minutes: {crashes}");
    // TargetsMissing (the job's count of targets up fell; no `for`) fires for every crash,
    // within scrape_interval + scrape_timeout + evaluation_interval = 40 s.
    let t = rule(out, "TargetsMissing");
    assert_eq!((t.window.pending_s, t.window.firing_s, t.window.notified_s), (40.0, 40.0, Some(70.0)));
    assert_eq!(t.alert_firing.count, crashes, "{:?}", t.never_fired);
    assert!(t.alert_firing.min_s > 0.0 && t.alert_firing.max_s <= t.window.firing_s + SLACK_S, "{:?}", t.alert_firing);
    // A refused scrape comes within one scrape interval and its evaluation within one
    // evaluation interval: never later than 30 s here (the timeout only counts for hangs).
    assert!(t.alert_firing.max_s <= 30.0 + SLACK_S, "{:?}", t.alert_firing);
    let n = t.alert_notified.as_ref().expect("alertmanager on");
    assert_eq!(n.count, crashes);
    assert!(n.max_s <= 70.0 + SLACK_S, "{n:?}");
    // Each crash opens a new Alertmanager group (the previous one resolved and was deleted),
    // so every notification comes group_wait = 30 s after the alert fired (+ one hop).
    let wait = n.mean_s - t.alert_firing.mean_s;
    assert!((30.0..=30.0 + SLACK_S).contains(&wait), "notified {wait} s after firing on average");
    assert_eq!(t.beyond_window, 0);
}

fn check_never_fired(out: &RunOutput) {
    let crashes = out.report.alerts.as_ref().map_or(0, |a| a.crashes);
    // InstanceDown (`up == 0`, `for: 1m`): the registry marks the dead instance unhealthy
    // 10-20 s after the crash and discovery (every 30 s) drops it by 50 s; its `up` series goes
    // stale about 2.1 scrape intervals later (`endOfRunStaleness`: the next tick, one more and
    // 10 %, 31.5-46.5 s), and the pending alert vanishes then. Most crashes never fire; one
    // whose `up == 0` went pending early and whose drop came late reaches its minute first.
    let d = rule(out, "InstanceDown");
    assert_eq!(d.alert_firing.count + d.never_fired.len() as u64, crashes);
    assert!(d.alert_firing.count * 4 <= crashes, "mostly never fires: {:?}", d.alert_firing);
    if d.alert_firing.count > 0 {
        assert!((60.0..=60.0 + 30.0 + SLACK_S).contains(&d.alert_firing.max_s), "{:?}", d.alert_firing);
    }
    for n in &d.never_fired {
        assert!(n.reason.starts_with("target dropped by discovery at +"), "{n:?}");
    }
    assert!(
        d.never_fired.iter().any(|n| n.reason.contains("before `for` (60 s) elapsed (pending at +")),
        "some crash got as far as pending: {:?}",
        d.never_fired
    );
    // The ground truth behind the reason: every crashed target was dropped within 50 s (+ one
    // refresh round trip), from the Prometheus's own observations.
    let log = &out.analyzer.monitor;
    for e in &out.analyzer.detection.episodes {
        let dropped = log
            .targets
            .iter()
            .find(|(t, n, present)| *t >= e.crashed && *n == e.instance && !present)
            .map(|(t, _, _)| (*t - e.crashed).as_secs_f64());
        assert!(dropped.is_some_and(|s| s <= 50.0 + SLACK_S), "{} dropped after {dropped:?} s", e.instance);
    }
    // The rules family: the faulty rule (many-to-many matching once two targets are up) is
    // `err` and quarantined after 10 consecutive failures; every other rule, the next one of
    // its group included, kept being evaluated and is healthy; the two alerts without `for`
    // fired, and InstanceDown as often as counted above.
    let rules = out.report.rules.as_ref().expect("rules family");
    assert_eq!(rules.len(), 8);
    for r in rules {
        if r.rule == "job:registry_requests:per_up_wrong" {
            assert_eq!((r.health.as_str(), r.errors, r.quarantined), ("err", 10, true), "{r:?}");
            assert!(r.last_error.as_deref().is_some_and(|e| e.contains("many-to-many matching not allowed")), "{r:?}");
            assert!(r.evaluations <= 20, "quarantined early: {r:?}");
            continue;
        }
        assert_eq!((r.health.as_str(), r.errors, r.quarantined), ("ok", 0, false), "{r:?}");
        assert!(r.evaluations >= 100, "{r:?}");
        let fires = matches!(r.rule.as_str(), "TargetsMissing" | "InstanceDownNow");
        if r.rule == "InstanceDown" {
            assert_eq!(r.times_fired, d.alert_firing.count, "{r:?}");
        } else {
            assert_eq!(r.times_fired > 0, fires, "{r:?}");
        }
    }
}

#[test]
fn monitoring_alert_windows_and_the_alert_that_never_fires() {
    let out = common::run_ok("monitoring.toml", &[]);
    check_windows(&out);
    check_never_fired(&out);
}

#[test]
fn monitoring_holds_for_other_seeds() {
    for seed in [2, 3] {
        let s = common::scenario("monitoring.toml", &[]);
        let out = run(&s, seed).expect("runs");
        check_windows(&out);
        check_never_fired(&out);
    }
}

#[test]
fn monitoring_reports_are_deterministic() {
    let s = common::scenario("monitoring.toml", &[]);
    let a = serde_json::to_string(&run(&s, 7).expect("runs").report).expect("json");
    let b = serde_json::to_string(&run(&s, 7).expect("runs").report).expect("json");
    assert_eq!(a, b);
}

/// Bad rule files and monitoring settings are load errors (exit 2) that point into the file.
#[test]
fn bad_monitoring_input_is_located() {
    let dir = std::env::temp_dir().join(format!("regsim-monitoring-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rules")).expect("mkdir");
    let scenario = "name = \"m\"\nduration = \"60s\"\n[monitoring]\nrule_files = [\"rules/bad.yml\"]\n";
    std::fs::write(dir.join("m.toml"), scenario).expect("write");
    let bad = "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: histogram_quantile(0.9, x)\n";
    std::fs::write(dir.join("rules/bad.yml"), bad).expect("write");
    let err = regsim::scenario::load(&dir.join("m.toml"), &[]).expect_err("outside the subset");
    assert!(err.location.ends_with("bad.yml:5:15"), "{err}");
    assert_eq!(err.key_path.as_deref(), Some("groups[0].rules[0].expr"), "{err}");
    let timeout = "name = \"m\"\nduration = \"60s\"\n[monitoring.prometheus]\nscrape_interval = \"5s\"\nscrape_timeout = \"10s\"\n";
    std::fs::write(dir.join("t.toml"), timeout).expect("write");
    let err = regsim::scenario::load(&dir.join("t.toml"), &[]).expect_err("timeout above interval");
    assert!(err.location.ends_with("t.toml:5:18"), "{err}");
    assert_eq!(err.key_path.as_deref(), Some("monitoring.prometheus.scrape_timeout"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regsim"))
        .arg("check")
        .arg(dir.join("m.toml"))
        .output()
        .expect("spawn");
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `metrics.om` (every stored sample as OpenMetrics) is byte-identical across runs and loads
/// with `promtool tsdb create-blocks-from openmetrics` (promtool from Debian's `prometheus`
/// package, installed by .ci/run; REGSIM_SKIP_PROMTOOL=1 skips only the promtool step).
#[test]
fn metrics_om_is_deterministic_and_promtool_loads_it() {
    om_loads("monitoring.toml", "\nup{instance=\"n3\",job=\"api\"} 0 ");
}

/// The same for the federation scenario: one file for the three servers, each series labelled
/// with the server that stored it.
#[test]
fn federation_metrics_om_loads() {
    om_loads("monitoring-federation.toml", "{instance=\"n9\",job=\"api\",prometheus=\"global\",region=\"eu\"} 0 ");
}

fn om_loads(scenario: &str, failed_scrape: &str) {
    let base = std::env::temp_dir().join(format!("regsim-om-{}-{scenario}", std::process::id()));
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(scenario);
    let mut texts = Vec::new();
    for k in 0..2 {
        let out_dir = base.join(format!("run{k}"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_regsim"))
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .expect("spawn");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        texts.push(std::fs::read(out_dir.join("metrics.om")).expect("metrics.om written"));
    }
    assert!(texts[0] == texts[1], "metrics.om differs between two runs of the same seed");
    let text = String::from_utf8(texts[0].clone()).expect("utf-8");
    assert!(text.ends_with("# EOF\n"));
    assert!(text.contains(failed_scrape), "a failed scrape is exported");
    assert!(text.contains("# TYPE job:up:count unknown\n"), "recording rules are exported");
    let promtool = std::process::Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if !promtool {
        assert!(
            std::env::var("REGSIM_SKIP_PROMTOOL").is_ok_and(|v| v == "1"),
            "promtool not found on PATH: install it (Debian: apt-get install prometheus) or set REGSIM_SKIP_PROMTOOL=1"
        );
        return;
    }
    let tsdb = base.join("tsdb");
    let out = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(base.join("run0/metrics.om"))
        .arg(&tsdb)
        .output()
        .expect("spawn promtool");
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool refused metrics.om: {said}");
    // Every non-stale sample, in the blocks of the 2 h run (a scrape fired late by its timer's
    // jitter may land just past the 2 h block boundary, in a second block).
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    let in_blocks: usize = said
        .lines()
        .filter(|l| !l.starts_with("BLOCK"))
        .filter_map(|l| l.split_whitespace().nth(4).and_then(|n| n.parse::<usize>().ok()))
        .sum();
    assert_eq!(in_blocks, samples, "promtool should report {samples} samples: {said}");
    let _ = std::fs::remove_dir_all(&base);
}
