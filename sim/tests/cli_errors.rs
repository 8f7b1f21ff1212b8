//! Scenario errors through the real binary: message content and exit code 2.

use std::path::PathBuf;
use std::process::Command;

const GOOD: &str = r#"name = "tiny"
duration = "60s"

[registry.health]
unhealthy_after = "15s"

[instances]
count = 5
"#;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write scenario");
    p
}

/// Runs `regsim args...` and returns (exit code, stderr + stdout).
fn regsim(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_regsim")).args(args).output().expect("run regsim");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

fn expect_bad(text: &str, extra: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(&dir, "s.toml", text);
    let path = p.to_str().expect("utf-8 path");
    for cmd in ["check", "run"] {
        let mut args = vec![cmd, path];
        args.extend_from_slice(extra);
        let (code, out) = regsim(&args);
        assert_eq!(code, 2, "{cmd} {extra:?}: expected exit 2, got {code}: {out}");
        for n in needles {
            assert!(out.contains(n), "{cmd}: expected {n:?} in: {out}");
        }
        assert!(!out.contains("panicked"), "{out}");
        assert!(!dir.path().join("reports").exists());
    }
}

#[test]
fn good_scenario_checks_ok() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(&dir, "s.toml", GOOD);
    let (code, out) = regsim(&["check", p.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn syntax_error_names_line_and_column() {
    expect_bad("name = \"x\"\nduration = \"60s\"\nfoo", &[], &["s.toml:3:4: key with no value, expected `=`"]);
}

#[test]
fn unknown_key_is_named_with_its_path() {
    let text = GOOD.replace("unhealthy_after", "unhealthy_aftr");
    expect_bad(&text, &[], &["s.toml:5:1: registry.health.unhealthy_aftr: unknown field `unhealthy_aftr`"]);
}

#[test]
fn wrong_type_says_what_was_expected() {
    let text = GOOD.replace("unhealthy_after = \"15s\"", "unhealthy_after = 15");
    expect_bad(&text, &[], &["s.toml:5:19: registry.health.unhealthy_after: expected a duration like \"15s\", got 15"]);
}

/// A latency is a table (network latency, service time, Raft's fsync): a bare duration is
/// refused with an example of the table form, not a Rust type name.
#[test]
fn a_latency_given_as_a_duration_shows_the_table_form() {
    let text = format!("{GOOD}\n[network]\nlatency = \"5ms\"\n");
    expect_bad(
        &text,
        &[],
        &[
            "network.latency: invalid type: string \"5ms\", expected a latency table such as { dist = \"constant\", value = \"5ms\" }",
        ],
    );
}

#[test]
fn bad_duration_is_rejected() {
    let text = GOOD.replace("\"15s\"", "\"15 parsecs\"");
    expect_bad(&text, &[], &["s.toml:5:19: registry.health.unhealthy_after", "expected a duration"]);
}

#[test]
fn absurd_sizes_hit_limits() {
    expect_bad(&GOOD.replace("count = 5", "count = 50000000"), &[], &["instances.count: expected at most 1000000"]);
    expect_bad(
        &GOOD.replace("\"60s\"", "\"100000h\""),
        &[],
        &["s.toml:2:12: duration: expected a duration above 0 and at most 30 days"],
    );
}

#[test]
fn bad_fault_target_is_located() {
    let text = format!("{GOOD}\n[[faults]]\nat = \"10s\"\naction = \"crash\"\ntarget = \"instances[9]\"\n");
    expect_bad(&text, &[], &["s.toml:13:10: faults[0].target: index 9 is out of range"]);
}

#[test]
fn overrides_get_the_same_checks() {
    expect_bad(
        GOOD,
        &["--set", "registry.health.unhealthy_after=15"],
        &[
            "--set registry.health.unhealthy_after=15: registry.health.unhealthy_after: expected a duration like \"15s\", got 15",
        ],
    );
    expect_bad(
        GOOD,
        &["--set", "registry.helth.x=1"],
        &["--set registry.helth.x=1: registry.helth: unknown field `helth`"],
    );
    expect_bad(GOOD, &["--set", "no-equals-sign"], &["expected key.path=value"]);
}

#[test]
fn run_writes_a_report_and_checks_determinism() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{GOOD}\n[[faults]]\nat = \"10s\"\naction = \"crash\"\ntarget = \"instances[1]\"\n");
    let p = write(&dir, "s.toml", &text);
    let out_dir = dir.path().join("out");
    let (code, out) = regsim(&[
        "run",
        p.to_str().expect("utf-8"),
        "--out",
        out_dir.to_str().expect("utf-8"),
        "--check-determinism",
        "--seed",
        "7",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("determinism: second run identical"), "{out}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).expect("report.json")).expect("valid json");
    assert_eq!(json["seed"], 7);
    assert_eq!(json["detection"]["unhealthy"]["count"], 1);
    assert!(out_dir.join("report.md").exists() && out_dir.join("detection-cdf.svg").exists());
}

#[test]
fn event_limit_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(&dir, "s.toml", &format!("{GOOD}\n[limits]\nmax_events = 100\n"));
    let out_dir = dir.path().join("out");
    let (code, out) = regsim(&["run", p.to_str().expect("utf-8"), "--out", out_dir.to_str().expect("utf-8")]);
    assert_eq!(code, 3, "{out}");
}

/// `regsim explain`: an instance's or an election's story, written and printed; a wrong
/// pick is exit 2 with what was expected.
#[test]
fn explain_tells_an_instance_or_an_election_story_and_refuses_a_wrong_pick() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cp = root.join("scenarios/raft-election-timing.toml").display().to_string();
    let ap = root.join("scenarios/nacos-crash.toml").display().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = |name: &str| dir.path().join(name).display().to_string();
    let (code, text) = regsim(&["explain", &cp, "--election", "slowest", "--out", &out("e")]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("became leader") && text.contains("granted its vote to"), "{text}");
    assert!(dir.path().join("e/election.svg").is_file() && dir.path().join("e/explain.html").is_file());
    for (args, needle) in [
        (vec!["explain", &cp, "--election", "0"], "expected an election number from 1"),
        (vec!["explain", &cp, "--election", "100000"], "--election takes 1..="),
        (vec!["explain", &ap, "--election", "1"], "AP mode: there are no elections"),
        (vec!["explain", &ap, "--instance", "servers[0]"], "is not an instance"),
    ] {
        let (code, text) = regsim(&args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains(needle), "{args:?}: {text}");
    }
    let (code, text) = regsim(&["explain", &ap]);
    assert_eq!(code, 2, "neither --instance nor --election: {text}");
}
