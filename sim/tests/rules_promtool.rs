//! `regsim rules test` against promtool: the shipped rule files must pass `promtool check
//! rules`, and every shipped rule unit-test file must pass or fail the same way under
//! `promtool test rules` and `regsim rules test`, down to which test cases fail (alert name or
//! expression, and evaluation time). promtool comes from Debian's `prometheus` package, which
//! .ci/run installs; without it these tests fail unless REGSIM_SKIP_PROMTOOL=1 is set.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    v.sort();
    v
}

fn rule_files() -> Vec<PathBuf> {
    yml_files(&root().join("scenarios/rules"))
}

fn test_files() -> Vec<PathBuf> {
    yml_files(&root().join("scenarios/rules/tests"))
}

/// (exit code, stdout + stderr).
fn run(program: &str, args: &[&Path], prefix: &[&str]) -> (i32, String) {
    let out = Command::new(program).args(prefix).args(args).output().expect("spawn");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn regsim(prefix: &[&str], files: &[&Path]) -> (i32, String) {
    run(env!("CARGO_BIN_EXE_regsim"), files, prefix)
}

/// Is promtool there? If not, fail with instructions unless REGSIM_SKIP_PROMTOOL=1.
fn promtool_available() -> bool {
    if Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    if std::env::var("REGSIM_SKIP_PROMTOOL").is_ok_and(|v| v == "1") {
        eprintln!("promtool not found; skipped because REGSIM_SKIP_PROMTOOL=1");
        return false;
    }
    panic!(
        "promtool not found on PATH: install it (Debian: apt-get install prometheus) or set REGSIM_SKIP_PROMTOOL=1 \
         to skip the comparison with promtool"
    );
}

/// The failing test cases in a report, as `alertname: X, time: T` / `expr: "...", time: T` /
/// `rule: R, time: T` (both tools print these prefixes).
fn failing_cases(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with("alertname: ") || l.starts_with("expr: ") || l.starts_with("rule: "))
        .filter_map(|l| {
            let (head, rest) = l.split_once(", time: ")?;
            let time = rest.split(',').next()?.trim();
            Some(format!("{head}, time: {time}"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_rule_tests_pass_and_fail_as_written() {
    let expected_to_fail = ["broken_rule_test.yml", "failing_test.yml"];
    let files = test_files();
    assert!(files.len() >= 4, "expected the shipped test files, found {files:?}");
    for f in &files {
        let (code, out) = regsim(&["rules", "test"], &[f]);
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let want = if expected_to_fail.contains(&name) { 1 } else { 0 };
        assert_eq!(code, want, "{name}: {out}");
    }
    let (code, out) = regsim(&["rules", "check"], &rule_files().iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}");
    // failing_test.yml: each of its four groups fails on its one case.
    let f = root().join("scenarios/rules/tests/failing_test.yml");
    assert_eq!(failing_cases(&regsim(&["rules", "test"], &[&f]).1).len(), 4);
}

#[test]
fn promtool_checks_the_shipped_rule_files() {
    if !promtool_available() {
        return;
    }
    let files = rule_files();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (code, out) = run("promtool", &refs, &["check", "rules"]);
    assert_eq!(code, 0, "promtool check rules: {out}");
}

#[test]
fn regsim_and_promtool_agree_on_every_test_file_and_case() {
    if !promtool_available() {
        return;
    }
    for f in test_files() {
        let (p_code, p_out) = run("promtool", &[&f], &["test", "rules"]);
        let (r_code, r_out) = regsim(&["rules", "test"], &[&f]);
        assert_eq!(
            r_code,
            p_code,
            "{}: promtool exit {p_code}, regsim exit {r_code}\npromtool:\n{p_out}\nregsim:\n{r_out}",
            f.display()
        );
        assert_eq!(
            failing_cases(&r_out),
            failing_cases(&p_out),
            "{}: different failing cases\npromtool:\n{p_out}\nregsim:\n{r_out}",
            f.display()
        );
    }
}

#[test]
fn bad_input_is_exit_2_with_file_line_and_expression() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("r.yml");
    std::fs::write(&rules, "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: topk(1, up)\n")
        .expect("write");
    let (code, out) = regsim(&["rules", "check"], &[&rules]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("r.yml:5:15: groups[0].rules[0].expr: aggregation topk"), "{out}");
    assert!(out.contains("\"topk(1, up)\""), "{out}");
    let test = dir.path().join("t.yml");
    std::fs::write(&test, "rule_files: [r.yml]\ntests: []\n").expect("write");
    let (code, out) = regsim(&["rules", "test"], &[&test]);
    assert_eq!(code, 2, "{out}");
    std::fs::write(&test, "rule_files: []\ntestz: []\n").expect("write");
    let (code, out) = regsim(&["rules", "test"], &[&test]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("t.yml:2:"), "{out}");
}
