//! Process-level fuzzing of the `regsim` binary.
//!
//! The promise: every input ends in (a) exit 2 with a *located* message on stderr
//! (`file:line:column`, a `--set` argument, the flag or argument at fault, or the file and a key
//! path) and no report folder left behind, or (b) exit 0, 1 (an invariant failed) or 3 (a run
//! limit), within the time and memory bounds.
//!
//! **What it generates** (`generate.rs`; case `i` of seed `s` is a pure function of `(s, i)`):
//! structure-aware mutants of the shipped scenarios (TOML tables: keys set, added from other
//! scenarios, removed, tables replaced, `[[faults]]` added with odd targets, interesting values
//! such as `0`, `-1`, `4000000000`, `18446744073709551616`, `1e308`, `nan`, `"1us"`,
//! `"99999999h"`, `consumers[random 50%]`, `leader`, `ring:k=4000000000`) for `check`, `run` and
//! `swarm`; random `--set` overrides; byte/line mutations (flips, invalid UTF-8, line
//! deletion/duplication/swap, value replacement, truncation, deep nesting, thousands of
//! `[[faults]]`) of scenarios, shrunk sweeps, rule files and rule unit tests; rule files from a
//! PromQL grammar, including thousands of nested parentheses / `sum(` / `+ up` terms; random
//! argument vectors over every subcommand and flag with odd values.
//!
//! **Bounds** (`exec.rs`): each case runs in its own temp dir under `prlimit --as=2GiB`, killed
//! after 20 s (`check`, `rules`; `FUZZ_TIMEOUT_QUICK`) or 60 s (`run`, `sweep`, `swarm`, argv
//! cases; `FUZZ_TIMEOUT_SLOW`). `run` cases get `--set limits.max_events=200000 --out out`.
//!
//! **Outcome classes**: allowed `located-2`, `ok-0`, `invariant-1`, `limit-3`; failures `PANIC`
//! ("panicked" on stderr), `SIGNAL` (e.g. stack overflow), `TIMEOUT`, `MEMORY` (an allocation
//! past the bound), `UNLOCATED-2`, `OTHER-EXIT`, `LEFT-REPORT` (an output folder after exit 2).
//! An exit-2 message that is a value/type error in serde's words ("invalid type", "value was too
//! large", ...) must also name a key path, even with a `file:line:column` (the README promises
//! both). A table of counts per surface and class is printed; each distinct failure (class +
//! first stderr line, paths and digits normalized) is minimized (ddmin over lines, halving of
//! long repetitions, then ddmin over bytes when under 4 KiB; `FUZZ_MIN_SECS` per failure,
//! default 30, `FUZZ_MIN_TOTAL_SECS` in all, default 90 for the smoke test and 1200 for the long
//! one) and printed with its command line and input (long runs written `{{N*TEXT}}`, as in a
//! `.gen` regression file), and the test fails listing them.
//!
//! **Running**: `fuzz_smoke` (CI; `FUZZ_CASES`, default 1000, a few seconds) and the long campaign
//!
//! ```text
//! FUZZ_CASES=100000 cargo nextest run --release -p regsim --test fuzz --run-ignored only --no-capture
//! ```
//!
//! both take `FUZZ_SEED` (printed), `FUZZ_THREADS` (default 2) and `FUZZ_DUMP=FILE` (one line
//! per case: index, surface, class, first stderr line); `REGSIM_BIN` replaces the
//! binary under test. `fuzz_regressions` runs every file of `sim/tests/fuzz-regressions/`
//! (format in `regress.rs`) and asserts its expected outcome.

mod exec;
mod generate;
mod minimize;
mod regress;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use exec::{Case, Class, Outcome, Surface, run_case};

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

fn threads() -> usize {
    env_u64("FUZZ_THREADS").map_or(2, |t| t.max(1) as usize)
}

fn shell_quote(a: &str) -> String {
    if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c)) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

fn command_line(case: &Case) -> String {
    let args: Vec<String> = case.args.iter().map(|a| shell_quote(a)).collect();
    format!("regsim {}", args.join(" "))
}

/// The main file of a case for printing: whole if short, else head and size.
fn show_input(case: &Case) -> String {
    let Some(m) = case.main else { return "(no input file: the arguments are the input)".into() };
    let (name, bytes) = &case.files[m];
    let text = String::from_utf8_lossy(bytes);
    if bytes.len() <= 3000 {
        return format!("--- {name} ({} bytes) ---\n{text}\n--- end ---", bytes.len());
    }
    let short = minimize::compress(&text);
    if short.len() <= 3000 {
        format!(
            "--- {name} ({} bytes; runs written as {{{{N*TEXT}}}}, as in a .gen file) ---\n{short}\n--- end ---",
            bytes.len()
        )
    } else {
        let head: String = short.chars().take(1500).collect();
        format!(
            "--- {name} ({} bytes; first 1500 characters, runs as {{{{N*TEXT}}}}) ---\n{head}\n--- ... ---",
            bytes.len()
        )
    }
}

fn table(counts: &BTreeMap<(Surface, Class), usize>) -> String {
    let mut s = String::new();
    let _ = write!(s, "{:<12}", "surface");
    let classes: Vec<Class> = Class::ALL.into_iter().filter(|c| counts.keys().any(|(_, k)| k == c)).collect();
    for c in &classes {
        let _ = write!(s, " {:>11}", c.name());
    }
    let _ = writeln!(s, " {:>7}", "total");
    for surf in Surface::ALL {
        let total: usize = counts.iter().filter(|((x, _), _)| *x == surf).map(|(_, n)| n).sum();
        if total == 0 {
            continue;
        }
        let _ = write!(s, "{:<12}", surf.name());
        for c in &classes {
            let _ = write!(s, " {:>11}", counts.get(&(surf, *c)).copied().unwrap_or(0));
        }
        let _ = writeln!(s, " {total:>7}");
    }
    s
}

struct Failure {
    case: Case,
    outcome: Outcome,
    index: usize,
    count: usize,
}

/// `min_total_default`: the default wall-clock budget for minimizing all failures (seconds).
fn campaign(cases: usize, seed: u64, min_total_default: u64) {
    let corpus = generate::Corpus::load();
    println!(
        "fuzz: seed {seed} (FUZZ_SEED={seed}), {cases} cases, {} threads, binary {}",
        threads(),
        exec::regsim_bin().display()
    );
    let start = Instant::now();
    // FUZZ_DUMP=FILE: one line per case (index, surface, class, first stderr line), to audit
    // the classification.
    let dump =
        std::env::var_os("FUZZ_DUMP").map(|p| Mutex::new(std::fs::File::create(p).expect("create the FUZZ_DUMP file")));
    let next = AtomicUsize::new(0);
    let counts: Mutex<BTreeMap<(Surface, Class), usize>> = Mutex::new(BTreeMap::new());
    let failures: Mutex<BTreeMap<String, Failure>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..threads() {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= cases {
                        break;
                    }
                    let case = generate::case(&corpus, seed, i as u64);
                    let out = run_case(&case);
                    *counts.lock().expect("counts").entry((case.surface, out.class)).or_default() += 1;
                    if let Some(d) = &dump {
                        let first = out.stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                        let first: String = first.chars().take(200).collect();
                        let line = format!("{i}\t{}\t{}\t{first}\n", case.surface.name(), out.class.name());
                        let _ = std::io::Write::write_all(&mut *d.lock().expect("dump"), line.as_bytes());
                    }
                    if out.class.is_failure() {
                        let sig = out.signature();
                        let mut f = failures.lock().expect("failures");
                        match f.get_mut(&sig) {
                            Some(x) => {
                                x.count += 1;
                                // Keep the smallest (then earliest) example to minimize.
                                let size = |c: &Case| c.main.map_or(c.args.len(), |m| c.files[m].1.len());
                                if size(&case) < size(&x.case) {
                                    x.case = case;
                                    x.outcome = out;
                                    x.index = i;
                                }
                            }
                            None => {
                                eprintln!("fuzz: case {i} ({}): {sig}", case.surface.name());
                                f.insert(sig, Failure { case, outcome: out, index: i, count: 1 });
                            }
                        }
                    }
                    let done = i + 1;
                    if done.is_multiple_of(500) {
                        eprintln!("fuzz: {done}/{cases} cases, {:.0?}", start.elapsed());
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let counts = counts.into_inner().expect("counts");
    println!(
        "\nfuzz: {cases} cases in {elapsed:.1?} ({:.1} s per 1000 cases)",
        elapsed.as_secs_f64() * 1000.0 / cases.max(1) as f64
    );
    println!("{}", table(&counts));
    let failures = failures.into_inner().expect("failures");
    if failures.is_empty() {
        return;
    }
    let mut report = String::new();
    let total_budget = Instant::now();
    let min_total = std::time::Duration::from_secs(env_u64("FUZZ_MIN_TOTAL_SECS").unwrap_or(min_total_default));
    for (sig, f) in &failures {
        let (case, out, tries) = if total_budget.elapsed() < min_total {
            minimize::minimize(&f.case, &f.outcome)
        } else {
            (f.case.clone(), f.outcome.clone(), 0)
        };
        let stderr: String = out.stderr.lines().take(6).collect::<Vec<_>>().join("\n    ");
        let _ = writeln!(
            report,
            "=== {sig}\n  surface {}; seen {} times; first kept: case {} (FUZZ_SEED={seed}), generator: {}\n  class {} (exit {:?}, {:.1?}); minimized in {tries} runs\n  command (in a folder holding the files): {}\n  stderr:\n    {stderr}\n{}\n",
            f.case.surface.name(),
            f.count,
            f.index,
            f.case.desc,
            out.class.name(),
            out.code,
            out.elapsed,
            command_line(&case),
            show_input(&case),
        );
    }
    println!("{report}");
    panic!(
        "fuzz: {} distinct failures (seed {seed}):\n{}",
        failures.len(),
        failures.keys().cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn fuzz_smoke() {
    let cases = env_u64("FUZZ_CASES").unwrap_or(1000) as usize;
    campaign(cases, env_u64("FUZZ_SEED").unwrap_or(1), 90);
}

#[test]
#[ignore = "long campaign: FUZZ_CASES=100000 cargo nextest run --release -p regsim --test fuzz --run-ignored only --no-capture"]
fn fuzz_long() {
    let cases = env_u64("FUZZ_CASES").unwrap_or(100_000) as usize;
    let seed = env_u64("FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs())
    });
    campaign(cases, seed, 1200);
}

#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("read sim/tests/fuzz-regressions")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    paths.sort();
    let regs: Vec<regress::Regression> = paths.iter().map(|p| regress::load(p)).collect();
    let next = AtomicUsize::new(0);
    let bad: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads() {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = regs.get(i) else { break };
                    let out = run_case(&r.case);
                    let first: String = out.stderr.lines().next().unwrap_or("").chars().take(200).collect();
                    let line = format!(
                        "{}: {} -> {} (exit {:?}, {:.1?}; expected {}) {first}",
                        r.name,
                        command_line(&r.case),
                        out.class.name(),
                        out.code,
                        out.elapsed,
                        r.expect.iter().map(|c| c.name()).collect::<Vec<_>>().join("|"),
                    );
                    println!("{line}");
                    if !r.expect.contains(&out.class) {
                        bad.lock().expect("bad").push(line);
                    }
                }
            });
        }
    });
    let bad = bad.into_inner().expect("bad");
    assert!(bad.is_empty(), "{} of {} regression inputs failed:\n{}", bad.len(), regs.len(), bad.join("\n"));
}
