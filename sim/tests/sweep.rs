//! `regsim sweep` and `regsim merge` through the real binary: determinism across thread
//! counts, sharded runs merged back byte for byte, merge errors, bad sweep files (exit 2),
//! failed runs listed with their repro command.

use std::path::{Path, PathBuf};
use std::process::Command;

const SCENARIO: &str = r#"name = "tiny"
duration = "90s"
[network]
latency = { dist = "uniform", min = "1ms", max = "10ms" }
[registry]
servers = 2
[instances]
count = 20
[[faults]]
at = "20s"
action = "crash"
target = "instances[random 10%]"
"#;

const SWEEP: &str = r#"# Question: a tiny sweep for the tests.
scenario = "tiny.toml"
seed = 7
seeds = 2
metrics = ["detection.unhealthy.p99_s", "false_positives.count", "detection.*.p50_s"]
[[params]]
key = "instances.beat_interval"
values = ["1s", "5s"]
[[params]]
key = "network.loss"
values = [0.0, 0.05]
[[plots]]
x = "instances.beat_interval"
y = "detection.unhealthy.p99_s"
series = "network.loss"
"#;

/// A temp folder with the tiny scenario and `sweep.toml` (= `sweep`).
fn setup(sweep: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tiny.toml"), SCENARIO).expect("write scenario");
    let p = dir.path().join("sweep.toml");
    std::fs::write(&p, sweep).expect("write sweep");
    (dir, p)
}

/// Runs `regsim args...` in `cwd` with extra environment; returns (exit code, stderr + stdout).
fn regsim_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regsim"));
    cmd.current_dir(cwd).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run regsim");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
    (out.status.code().unwrap_or(-1), text)
}

fn regsim(cwd: &Path, args: &[&str]) -> (i32, String) {
    regsim_env(cwd, args, &[])
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The files of an output folder other than shard files, by name.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read out dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("shard-")))
        .map(|p| (p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string(), read(&p)))
        .collect();
    v.sort();
    v
}

#[test]
fn same_bytes_for_one_and_two_threads_and_for_merged_shards() {
    let (dir, _) = setup(SWEEP);
    let d = dir.path();
    let (code, out) = regsim(d, &["sweep", "sweep.toml", "--jobs", "1", "--out", "j1"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = regsim(d, &["sweep", "sweep.toml", "--jobs", "2", "--out", "j2"]);
    assert_eq!(code, 0, "{out}");
    let one = outputs(&d.join("j1"));
    let names: Vec<&str> = one.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            ".regsim-output",
            "detection.unhealthy.p99_s-vs-instances.beat_interval.svg",
            "sweep.csv",
            "sweep.html",
            "sweep.json",
            "sweep.md"
        ]
    );
    assert!(one == outputs(&d.join("j2")), "--jobs 1 and --jobs 2 differ");

    // Three shards (one of them through --shard auto, as in a Kubernetes Indexed Job) into one
    // folder, then merged.
    for i in 0..2 {
        let (code, out) = regsim(d, &["sweep", "sweep.toml", "--shard", &format!("{i}/3"), "--out", "shards"]);
        assert_eq!(code, 0, "{out}");
    }
    let k8s = [("JOB_COMPLETION_INDEX", "2"), ("REGSIM_SHARDS", "3")];
    let (code, out) = regsim_env(d, &["sweep", "sweep.toml", "--shard", "auto", "--out", "shards"], &k8s);
    assert_eq!(code, 0, "{out}");
    assert!(d.join("shards/shard-2-of-3.json").exists());
    let (code, out) = regsim(d, &["merge", "shards", "--out", "merged"]);
    assert_eq!(code, 0, "{out}");
    assert!(one == outputs(&d.join("merged")), "merged shards differ from the unsharded sweep");

    let json: serde_json::Value = serde_json::from_slice(&read(&d.join("j1/sweep.json"))).expect("json");
    assert_eq!(json["runs"], 8);
    assert_eq!(json["results"].as_array().map(|a| a.len()), Some(4));
    let p0 = &json["results"][0];
    assert_eq!(p0["params"]["instances.beat_interval"], "1s");
    let s = &p0["metrics"]["detection.unhealthy.p99_s"];
    assert_eq!(s["n"], 2);
    let (lo, mean, hi) = (s["ci95_low"].as_f64(), s["mean"].as_f64(), s["ci95_high"].as_f64());
    assert!(lo <= mean && mean <= hi, "{s}");
    // The wildcard expanded to the stages the report has.
    assert!(json["metrics"].as_array().is_some_and(|m| m.iter().any(|x| x == "detection.deleted.p50_s")));
    let csv = String::from_utf8(read(&d.join("j1/sweep.csv"))).expect("utf-8");
    assert_eq!(csv.lines().count(), 9);
    // Common random numbers: replicate k has the same seed at every point.
    assert_eq!(p0["runs"][1]["seed"], json["results"][3]["runs"][1]["seed"]);
}

#[test]
fn merge_rejects_missing_duplicate_and_foreign_shards() {
    let (dir, _) = setup(SWEEP);
    let d = dir.path();
    for i in 0..2 {
        let (code, out) = regsim(d, &["sweep", "sweep.toml", "--shard", &format!("{i}/2"), "--out", &format!("s{i}")]);
        assert_eq!(code, 0, "{out}");
    }
    let (code, out) = regsim(d, &["merge", "s0", "--out", "m"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("shard(s) 1 of 2 are missing"), "{out}");

    std::fs::create_dir(d.join("dup")).expect("mkdir");
    std::fs::copy(d.join("s0/shard-0-of-2.json"), d.join("dup/shard-0-of-2.json")).expect("copy");
    let (code, out) = regsim(d, &["merge", "s0", "dup", "s1", "--out", "m"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("shard 0 of 2 is given twice"), "{out}");

    // Shard 1 of a different sweep file (one more seed).
    std::fs::write(d.join("sweep.toml"), SWEEP.replace("seeds = 2", "seeds = 1")).expect("write");
    let (code, out) = regsim(d, &["sweep", "sweep.toml", "--shard", "1/2", "--out", "other"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = regsim(d, &["merge", "s0", "other", "--out", "m"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("from another sweep"), "{out}");
    assert!(!d.join("m").exists());
}

fn expect_bad(sweep: &str, needles: &[&str]) {
    let (dir, _) = setup(sweep);
    let (code, out) = regsim(dir.path(), &["sweep", "sweep.toml", "--out", "o"]);
    assert_eq!(code, 2, "expected exit 2: {out}");
    for n in needles {
        assert!(out.contains(n), "expected {n:?} in: {out}");
    }
    assert!(!dir.path().join("o").exists(), "no output on bad input");
}

#[test]
fn bad_sweep_files_exit_2_with_located_messages() {
    expect_bad(&SWEEP.replace("seeds = 2", "seeds = 2\nsedds = 1"), &["sweep.toml:5:1: sedds: unknown field `sedds`"]);
    // A parameter value the scenario rejects: located at the value in the sweep file.
    expect_bad(
        &SWEEP.replace("[0.0, 0.05]", "[0.0, 1.5]"),
        &["sweep.toml:11:16: params[1].values[1]: network.loss=1.5 in", "expected a probability in [0, 1]"],
    );
    expect_bad(&SWEEP.replace("\"1s\", \"5s\"", "\"1s\", \"fast\""), &["params[0].values[1]", "expected a duration"]);
    expect_bad(
        &SWEEP.replace("\"network.loss\"", "\"network.los\""),
        &["params[1].values[0]: network.los=0.0 in tiny.toml: network.los: unknown field `los`"],
    );
    // A metric that is not in the report: the first run's report says what is there.
    expect_bad(
        &SWEEP.replace("false_positives.count", "false_positives.cuont"),
        &["metrics[1]: `false_positives.cuont` is not in the report; `false_positives` has:", "count"],
    );
    expect_bad(&SWEEP.replace("seeds = 2", "seeds = 30000"), &["more than 100000 runs"]);
    expect_bad(
        &SWEEP.replace("scenario = \"tiny.toml\"", "scenario = \"nope.toml\""),
        &["sweep.toml:2:12: scenario: cannot read the scenario"],
    );
    let (dir, _) = setup(SWEEP);
    let (code, out) = regsim(dir.path(), &["sweep", "sweep.toml", "--shard", "3/3"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--shard: shard index 3 is out of range"), "{out}");
    let (code, out) = regsim(dir.path(), &["sweep", "sweep.toml", "--shard", "auto"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("JOB_COMPLETION_INDEX"), "{out}");
}

#[test]
fn runs_that_stop_early_are_listed_with_their_repro_and_do_not_abort() {
    let sweep = SWEEP.replace("seeds = 2", "seeds = 1\nset = [\"limits.max_events=1000\"]");
    let (dir, _) = setup(&sweep);
    let (code, out) = regsim(dir.path(), &["sweep", "sweep.toml", "--out", "o"]);
    // Cut short before any invariant failed: exit 3 (a run stopped at its event limit).
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("reproduce with: regsim run tiny.toml --seed"), "{out}");
    assert!(out.contains("--set limits.max_events=1000 --set instances.beat_interval=1s --set network.loss=0.0"));
    let md = String::from_utf8(read(&dir.path().join("o/sweep.md"))).expect("utf-8");
    assert!(md.contains("4 runs, 4 failed") && md.contains("stopped at limits.max_events"), "{md}");
}

/// The cheap canonical sweeps (the Raft Figure 16 rerun: 30 short runs; the CAP frontier: 24),
/// regenerated and compared with their committed outputs: a change that moves their numbers
/// must come with regenerated reports (scripts/regenerate-reports).
#[test]
fn committed_cheap_sweep_reports_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    for name in ["raft-election-timing", "cap-frontier"] {
        let out = tempfile::tempdir().expect("tempdir");
        let out_dir = out.path().to_str().expect("utf-8 path");
        let file = format!("scenarios/sweeps/{name}.toml");
        let (code, text) = regsim(root, &["sweep", &file, "--out", out_dir]);
        assert_eq!(code, 0, "{text}");
        let committed = outputs(&root.join("reports/sweeps").join(name));
        let fresh = outputs(out.path());
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&committed), names(&fresh));
        for ((f, a), (_, b)) in committed.iter().zip(&fresh) {
            assert!(a == b, "reports/sweeps/{name}/{f} is stale: run scripts/regenerate-reports");
        }
        if name == "raft-election-timing" {
            // 150-150 ms elections take minutes: a few per run, so its statistics are thin;
            // 150-300 ms has one per leader crash (every 2 s) and is not.
            let json: serde_json::Value =
                serde_json::from_slice(&read(&out.path().join("sweep.json"))).expect("sweep.json");
            let point = |randomness: &str| {
                let results = json["results"].as_array().expect("results");
                let at = results.iter().find(|r| {
                    r["params"]["minimum"].to_string().contains("150ms") && r["params"]["randomness"] == randomness
                });
                at.expect("the point")["metrics"]["elections.downtime.p99_s"].clone()
            };
            let (flat, wide) = (point("0ms"), point("150ms"));
            assert_eq!(flat["thin"], true, "{flat}");
            assert!(flat["samples"].as_u64().is_some_and(|n| n < 100 * 5), "{flat}");
            assert!(wide.get("thin").is_none() && wide["samples"].as_u64().is_some_and(|n| n >= 100 * 5), "{wide}");
        }
    }
}
