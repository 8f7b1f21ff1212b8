//! Output safety through the real binary: regsim writes only where its command line says, never
//! through a planted symbolic link, refuses system roots and foreign folders before any work,
//! and a run killed at any moment leaves its output folder holding the old report set or the
//! new one, never a mix (regsim::output).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TINY: &str = r#"name = "tiny"
duration = "60s"
[instances]
count = 10
[[faults]]
at = "20s"
action = "crash"
target = "instances[random 2]"
"#;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_regsim")
}

fn regsim(cwd: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin()).current_dir(cwd).args(args).output().expect("run regsim");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

/// Every path under `dir` (relative), sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls").map(|e| e.expect("entry")) {
            let p = e.path();
            out.push(p.strip_prefix(dir).expect("under").to_path_buf());
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_planted_symlink_is_never_written_through() {
    let root = tempfile::tempdir().expect("tempdir");
    let d = root.path();
    std::fs::write(d.join("tiny.toml"), TINY).expect("write");
    let victim = d.join("victim.txt");
    std::fs::write(&victim, "precious").expect("write");
    let (code, out) = regsim(d, &["run", "tiny.toml", "--out", "out"]);
    assert_eq!(code, 0, "{out}");
    // The names the old writer staged through, and the final names themselves.
    for name in [".report.json.tmp", ".report.md.tmp", "report.json.tmp"] {
        std::os::unix::fs::symlink(&victim, d.join("out").join(name)).expect("symlink");
    }
    let (code, out) = regsim(d, &["run", "tiny.toml", "--out", "out", "--seed", "2"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "precious");
    // The folder was replaced as a whole: the planted links went with the old set.
    assert!(!d.join("out/.report.json.tmp").exists());
    // A symbolic link as the output folder itself is refused.
    std::os::unix::fs::symlink(d.join("out"), d.join("link")).expect("symlink");
    let (code, out) = regsim(d, &["run", "tiny.toml", "--out", "link"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("symbolic link"), "{out}");
}

#[test]
fn roots_files_and_foreign_folders_are_refused_before_the_run() {
    let root = tempfile::tempdir().expect("tempdir");
    let d = root.path();
    std::fs::write(d.join("tiny.toml"), TINY).expect("write");
    std::fs::write(d.join("README.md"), "readme").expect("write");
    std::fs::create_dir(d.join("mine")).expect("mkdir");
    std::fs::write(d.join("mine/notes.txt"), "mine").expect("write");
    for (out_dir, needle) in
        [("/", "system"), ("/etc", "system"), ("README.md", "not a folder"), ("mine", "regsim did not write")]
    {
        for cmd in
            [&["run", "tiny.toml"][..], &["compare", "tiny.toml"][..], &["swarm", "tiny.toml", "--runs", "1"][..]]
        {
            let mut args = cmd.to_vec();
            args.extend(["--out", out_dir]);
            let (code, out) = regsim(d, &args);
            assert_eq!(code, 2, "{args:?}: {out}");
            assert!(out.contains("--out") && out.contains(needle), "{args:?}: {out}");
            // Refused before any simulation: nothing a run, a compare or a swarm prints after it.
            for after in ["events processed", " runs in ", "invariants"] {
                assert!(!out.contains(after), "{args:?} ran before refusing: {out}");
            }
        }
    }
    assert_eq!(std::fs::read_to_string(d.join("README.md")).expect("read"), "readme");
    assert_eq!(tree(&d.join("mine")), vec![PathBuf::from("notes.txt")]);
}

#[test]
fn compare_variants_need_distinct_names_and_share_one_set() {
    let root = tempfile::tempdir().expect("tempdir");
    let d = root.path();
    std::fs::write(d.join("tiny.toml"), TINY).expect("write");
    let (code, out) =
        regsim(d, &["compare", "tiny.toml", "--variant", "a:instances.count=5", "--variant", "a:instances.count=6"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("given twice"), "{out}");
    let (code, out) = regsim(
        d,
        &["compare", "tiny.toml", "--variant", "a:instances.count=5", "--variant", "b:instances.count=6", "--out", "c"],
    );
    assert_eq!(code, 0, "{out}");
    let names = tree(&d.join("c"));
    for want in [".regsim-output", "compare.json", "a/report.json", "b/report.json", "detection-cdf.svg"] {
        assert!(names.contains(&PathBuf::from(want)), "{want} in {names:?}");
    }
    // Both variants crash instances (a detection plot per variant) and are AP (no elections).
    assert!(!names.contains(&PathBuf::from("elections-cdf.svg")), "{names:?}");
    let md = std::fs::read_to_string(d.join("c/compare.md")).expect("compare.md");
    assert!(md.contains("](detection-cdf.svg)"), "{md}");
    let svg = std::fs::read_to_string(d.join("c/detection-cdf.svg")).expect("svg");
    assert!(svg.contains("a: marked unhealthy") && svg.contains("b: marked unhealthy"), "one line per variant");
    // No staging folder stays beside it.
    assert_eq!(tree(d).iter().filter(|p| p.to_string_lossy().contains("staging")).count(), 0);
}

const SWEEP: &str = r#"scenario = "tiny.toml"
seed = 7
seeds = 1
metrics = ["false_positives.count"]
[[params]]
key = "instances.beat_interval"
values = ["1s", "5s"]
"#;

#[test]
fn an_edited_shard_cannot_steer_merge_outside_its_folder() {
    let root = tempfile::tempdir().expect("tempdir");
    let work = root.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    std::fs::write(work.join("tiny.toml"), TINY).expect("write");
    std::fs::write(work.join("sw.toml"), SWEEP).expect("write");
    let (code, out) = regsim(&work, &["sweep", "sw.toml", "--shard", "0/1", "--out", "shards"]);
    assert_eq!(code, 0, "{out}");
    let shard = work.join("shards/shard-0-of-1.json");
    let text = std::fs::read_to_string(&shard).expect("read");
    let before = tree(root.path());
    for evil in ["../../../escaped", "/tmp/regsim-escaped", "..", "a/b"] {
        let edited = text.replace("\"sweep\":\"sw\"", &format!("\"sweep\":{evil:?}"));
        assert_ne!(edited, text, "the shard names its sweep");
        std::fs::write(&shard, &edited).expect("write");
        let (code, out) = regsim(&work, &["merge", "shards"]);
        assert_eq!(code, 2, "{evil}: {out}");
        assert!(out.contains("meta.sweep"), "{evil}: {out}");
        assert_eq!(tree(root.path()), before, "{evil}: something was written");
        assert!(!Path::new("/tmp/regsim-escaped").exists());
    }
    // Unedited, the default folder is reports/sweeps/<the sweep's checked name>/.
    std::fs::write(&shard, &text).expect("write");
    let (code, out) = regsim(&work, &["merge", "shards"]);
    assert_eq!(code, 0, "{out}");
    assert!(work.join("reports/sweeps/sw/sweep.json").is_file(), "{out}");
}

/// The report files of a folder and whether they belong together (report.md carries the
/// digest of report.json).
fn consistent_set(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let names = tree(dir);
    let json = std::fs::read_to_string(dir.join("report.json")).map_err(|e| format!("report.json: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| format!("report.json: {e}"))?;
    let digest = v["digest"].as_str().ok_or("no digest")?.to_string();
    let md = std::fs::read_to_string(dir.join("report.md")).map_err(|e| format!("report.md: {e}"))?;
    if !md.contains(&digest) {
        return Err(format!("report.md is not of the report.json with digest {digest}"));
    }
    Ok(names)
}

/// Runs `regsim args` in `d` and sends it SIGKILL (even `k`) or SIGINT (odd `k`) after `after`;
/// the signal's name and whether the process still finished by itself.
fn kill_after(d: &Path, args: &[&str], k: u32, after: Duration) -> (&'static str, bool) {
    let signal = if k.is_multiple_of(2) { "KILL" } else { "INT" };
    let mut child = Command::new(bin())
        .current_dir(d)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(after);
    let _ = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
    (signal, child.wait().expect("wait").success())
}

/// Kills `regsim run` (SIGKILL and SIGINT) at many moments, the file writing included, over a
/// folder holding an earlier set: afterwards the folder holds one whole set, old or new.
#[test]
fn a_killed_run_leaves_the_old_set_or_the_new_one() {
    let root = tempfile::tempdir().expect("tempdir");
    let d = root.path();
    let scenario = TINY.replace("count = 10", "count = 3000").replace("duration = \"60s\"", "duration = \"300s\"");
    std::fs::write(d.join("s.toml"), &scenario).expect("write");
    let (code, out) = regsim(d, &["run", "s.toml", "--out", "out", "--seed", "1"]);
    assert_eq!(code, 0, "{out}");
    let old = consistent_set(&d.join("out")).expect("first set");
    // How long a whole run takes here, to spread the kills over it.
    let started = Instant::now();
    let (code, out) = regsim(d, &["run", "s.toml", "--out", "probe", "--seed", "2"]);
    assert_eq!(code, 0, "{out}");
    let whole = started.elapsed();
    let new = consistent_set(&d.join("probe")).expect("probe set");
    let mut outcomes = [0usize; 2];
    for k in 0..24u32 {
        let seed = (2 + k % 2).to_string();
        let args = ["run", "s.toml", "--out", "out", "--seed", &seed];
        let (signal, finished) = kill_after(d, &args, k, whole.mul_f64(0.5 + f64::from(k) / 24.0 * 0.7));
        let set = consistent_set(&d.join("out")).unwrap_or_else(|e| panic!("kill {k} ({signal}): {e}"));
        assert!(set == old || set == new, "kill {k} ({signal}): a mixed set {set:?}");
        outcomes[usize::from(finished)] += 1;
    }
    // Both cases happened: killed before the move, and finished.
    assert!(outcomes[0] > 0, "no run was killed in time: {outcomes:?}");
}

/// stdout closed by its reader (`regsim run ... | head -c1`): the process ends quietly with
/// 141 (as a shell reports SIGPIPE) instead of panicking, and the report is whole.
#[test]
fn a_closed_stdout_ends_the_process_quietly() {
    let root = tempfile::tempdir().expect("tempdir");
    let d = root.path();
    std::fs::write(d.join("tiny.toml"), TINY).expect("write");
    for args in [&["run", "tiny.toml", "--out", "out"][..], &["check", "tiny.toml"][..], &["--help"][..]] {
        // The read end is closed before the child starts, so its first write fails (closing
        // it after the spawn raced with a quick child under load).
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let child =
            Command::new(bin()).current_dir(d).args(args).stdout(writer).stderr(Stdio::piped()).spawn().expect("spawn");
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // clap ignores a failed help write and exits 0; regsim's own output exits 141.
        let want = if args[0] == "--help" { 0 } else { 141 };
        assert_eq!(out.status.code(), Some(want), "{args:?}: {stderr}");
    }
    consistent_set(&d.join("out")).expect("the report was written before the summary");
}

/// The same for `regsim sweep`: killed at any moment, its folder holds the old sweep's set or
/// the new one's (sweep.json and sweep.md of one sweep seed), never a mix.
#[test]
fn a_killed_sweep_leaves_the_old_set_or_the_new_one() {
    let root = tempfile::tempdir().expect("tempdir");
    let d = root.path();
    let scenario = TINY.replace("count = 10", "count = 300").replace("duration = \"60s\"", "duration = \"200s\"");
    std::fs::write(d.join("tiny.toml"), &scenario).expect("write");
    let sweep = |seed: u32| SWEEP.replace("seed = 7", &format!("seed = {seed}")).replace("seeds = 1", "seeds = 4");
    let seed_of = |dir: &Path| -> Result<u64, String> {
        let json = std::fs::read_to_string(dir.join("sweep.json")).map_err(|e| format!("sweep.json: {e}"))?;
        let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| format!("sweep.json: {e}"))?;
        let seed = v["seed"].as_u64().ok_or("no seed")?;
        let md = std::fs::read_to_string(dir.join("sweep.md")).map_err(|e| format!("sweep.md: {e}"))?;
        if !md.contains(&format!("Sweep seed {seed};")) {
            return Err(format!("sweep.md is not of the sweep.json with seed {seed}"));
        }
        Ok(seed)
    };
    std::fs::write(d.join("sw.toml"), sweep(1)).expect("write");
    let (code, out) = regsim(d, &["sweep", "sw.toml", "--jobs", "1", "--out", "out"]);
    assert_eq!(code, 0, "{out}");
    let files = tree(&d.join("out"));
    std::fs::write(d.join("sw.toml"), sweep(2)).expect("write");
    let started = Instant::now();
    let (code, out) = regsim(d, &["sweep", "sw.toml", "--jobs", "1", "--out", "probe"]);
    assert_eq!(code, 0, "{out}");
    let whole = started.elapsed();
    for k in 0..12u32 {
        let args = ["sweep", "sw.toml", "--jobs", "1", "--out", "out"];
        let (signal, _) = kill_after(d, &args, k, whole.mul_f64(0.5 + f64::from(k) / 12.0 * 0.7));
        let seed = seed_of(&d.join("out")).unwrap_or_else(|e| panic!("kill {k} ({signal}): {e}"));
        assert!(seed == 1 || seed == 2, "kill {k}: seed {seed}");
        assert_eq!(tree(&d.join("out")), files, "kill {k} ({signal}): not one whole set");
    }
}
