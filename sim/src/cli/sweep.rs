//! `regsim sweep` and `regsim merge`: a scenario over a grid of parameter values and seeds,
//! sharded across machines and merged.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use regsim::sweep::{self, Aggregate, Progress, RunRecord, Shard};
use regsim::{eprintln, println};

use crate::{bad_input, check_out, progress_bar, usage, write_outputs};

pub(crate) const SWEEP_ABOUT: &str =
    "Run a sweep file: a scenario over every combination of parameter values, several seeds \
per point, in parallel (one simulation per thread). Writes sweep.json (per point and metric: mean, sd, 95 % \
confidence interval (Student t), min, max, n; per run: seed, digest, metric values, failed invariants), sweep.csv \
(one row per run), sweep.md (a table per metric, failed runs with the command that reproduces them) and one SVG \
per plot into --out (default reports/sweeps/<sweep name>/).

Shards: --shard I/N runs only the runs r with r % N == I (0-based) and writes shard-I-of-N.json; `regsim merge` \
puts the shards back together. --shard auto takes I from JOB_COMPLETION_INDEX (Kubernetes Indexed Job; N from \
--shards or REGSIM_SHARDS) or SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN; N from --shards or \
SLURM_ARRAY_TASK_COUNT).

Exit codes: 0 every run held every invariant; 1 some run failed an invariant (listed, with its repro command; the \
sweep still completes); 2 bad input; 3 some run stopped at its event limit. A shard exits 0 once its shard file is \
written (so a batch system neither retries it nor skips the merge); `regsim merge` exits 1 or 3 instead.";

#[derive(Args)]
pub(crate) struct SweepArgs {
    /// The sweep file (TOML).
    file: PathBuf,
    /// Threads, one simulation each [default: all cores].
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Run only shard I of N (0-based: the runs r with r % N == I) and write shard-I-of-N.json, or `auto`
    /// (Kubernetes Indexed Job or Slurm array, see --help).
    #[arg(long, value_name = "I/N|auto")]
    shard: Option<String>,
    /// Shard count N for --shard auto [default: REGSIM_SHARDS, or SLURM_ARRAY_TASK_COUNT in a Slurm array].
    #[arg(long, value_name = "N")]
    shards: Option<u64>,
    /// Output folder [default: reports/sweeps/<sweep name>/].
    #[arg(short, long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct MergeArgs {
    /// Shard folders (their shard-I-of-N.json files are read) or shard files.
    #[arg(required = true, value_name = "DIR")]
    inputs: Vec<PathBuf>,
    /// Output folder [default: reports/sweeps/<sweep name>/].
    #[arg(short, long)]
    out: Option<PathBuf>,
}

/// `error: FLAG: message` on stderr, exit 2.
pub(crate) fn sweep_command(a: &SweepArgs) -> ExitCode {
    let shard = match a.shard.as_deref() {
        None => None,
        Some("auto") => match Shard::from_env(&|k| std::env::var(k).ok(), a.shards) {
            Ok(s) => Some(s),
            Err(e) => return usage("--shard auto", &e),
        },
        Some(text) => match Shard::parse(text) {
            Ok(s) if a.shards.is_none_or(|n| n == s.count) => Some(s),
            Ok(s) => {
                return usage(
                    "--shards",
                    &format!("{} does not match --shard {text} ({} shards)", a.shards.unwrap_or(0), s.count),
                );
            }
            Err(e) => return usage("--shard", &e),
        },
    };
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !(1..=1024).contains(&jobs) {
        return usage("--jobs", &format!("expected 1..=1024 threads, got {jobs}"));
    }
    let started = Instant::now();
    let plan = match sweep::prepare(&a.file) {
        Ok(p) => p,
        Err(e) => return bad_input(&e),
    };
    let s = &plan.sweep;
    let dir = a.out.clone().unwrap_or_else(|| Path::new("reports").join("sweeps").join(&s.name));
    // A shard writes one file into a folder its sibling shards share; a sweep, a whole set.
    let checked =
        if shard.is_some() { regsim::output::check_shared_dir(&dir) } else { regsim::output::check_dir(&dir) };
    if let Err(e) = checked {
        return usage("--out", &e);
    }
    let runs = shard.map_or(s.runs(), |sh| sh.runs(s.runs()));
    let part = shard.map_or(String::new(), |sh| format!(", shard {} of {}: {runs} runs", sh.index, sh.count));
    eprintln!(
        "sweep {}: scenario {}, {} points × {} seeds = {} runs{part}, on {jobs} threads",
        s.name,
        plan.meta.scenario,
        s.points(),
        s.spec.seeds,
        s.runs()
    );
    let bar = progress_bar(runs);
    let on_progress = |p: Progress| {
        bar.inc(1);
        let rate = p.runs_done as f64 / bar.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("points {}/{}, {rate:.1} runs/s", p.points_done, p.points));
    };
    let records = match sweep::execute(&plan, shard, jobs, &on_progress) {
        Ok(r) => r,
        Err(e) => {
            bar.finish_and_clear();
            return bad_input(&e);
        }
    };
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let events: u64 = records.iter().map(|r| r.events).sum();
    eprintln!(
        "{} runs in {wall:.2} s wall ({:.1} runs/s, {:.2} M events/s)",
        records.len(),
        records.len() as f64 / wall.max(1e-9),
        events as f64 / wall.max(1e-9) / 1e6
    );
    match shard {
        Some(sh) => {
            let written = sweep::shard::shard_json(&plan, sh, &records)
                .map_err(std::io::Error::other)
                .and_then(|json| regsim::output::write_file(&dir, &sweep::shard::file_name(sh), json.as_bytes()));
            match written {
                Ok(p) => println!("report     {}", p.display()),
                Err(e) => {
                    eprintln!("error: cannot write into {}: {e}", dir.display());
                    return ExitCode::from(2);
                }
            }
        }
        None => {
            if let Err(code) = write_outputs(&dir, Aggregate::new(s, &plan.meta, &records).render()) {
                return code;
            }
        }
    }
    let code = sweep_exit(&records, |r| sweep::plan::repro(s, &plan.meta, r.point, r.seed));
    if shard.is_some() {
        // Failed runs are results, not a failed shard: a batch system must not retry it (the
        // same shard fails the same way) nor skip the merge; `regsim merge` exits 1 or 3.
        println!("merge the shards with: regsim merge {} --out DIR", dir.display());
        return ExitCode::SUCCESS;
    }
    code
}

pub(crate) fn merge_command(a: &MergeArgs) -> ExitCode {
    let merged = match sweep::shard::merge(&a.inputs) {
        Ok(m) => m,
        Err(e) => return bad_input(&e),
    };
    eprintln!("merged {} shards of sweep {} ({} runs)", merged.files.len(), merged.meta.sweep, merged.records.len());
    // The checked name of the sweep file the shards carry (letters, digits, '-', '_'), so the
    // default folder stays under reports/sweeps/ whatever else a shard file says.
    let dir = a.out.clone().unwrap_or_else(|| Path::new("reports").join("sweeps").join(&merged.sweep.name));
    if let Err(code) = check_out(&dir) {
        return code;
    }
    let files = Aggregate::new(&merged.sweep, &merged.meta, &merged.records).render();
    if let Err(code) = write_outputs(&dir, files) {
        return code;
    }
    sweep_exit(&merged.records, |r| sweep::plan::repro(&merged.sweep, &merged.meta, r.point, r.seed))
}

/// 1 if a run failed an invariant, 3 if one stopped at its event limit, else 0; failed runs
/// (the first 20) on stderr with the command that reproduces them.
pub(crate) fn sweep_exit(records: &[RunRecord], repro: impl Fn(&RunRecord) -> String) -> ExitCode {
    let failed: Vec<&RunRecord> = records.iter().filter(|r| r.failed()).collect();
    for r in failed.iter().take(20) {
        eprintln!("run {} (point {}, seed {}) failed: {}", r.run, r.point, r.seed, r.reason());
        eprintln!("  reproduce with: {}", repro(r));
    }
    if failed.len() > 20 {
        eprintln!("... and {} more failed runs (see sweep.md / sweep.json)", failed.len() - 20);
    }
    println!("runs       {}, failed {}", records.len(), failed.len());
    if records.iter().any(|r| !r.failed_invariants.is_empty() || r.error.is_some()) {
        ExitCode::from(1)
    } else if records.iter().any(|r| r.hit_limit()) {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}
