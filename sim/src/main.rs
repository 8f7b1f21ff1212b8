//! The `regsim` command line: parse arguments, call the library, map errors to exit codes.
//! Exit codes: 0 ran and every invariant held; 1 an invariant failed (or `--check-determinism`
//! found a difference); 2 bad input; 3 a run limit was reached; 141 stdout or stderr was a
//! pipe whose reader went away (see `regsim::output::print_or_exit`).

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use cli::lb::{LB_ABOUT, LbArgs, lb_command};
use cli::swarm::{SwarmArgs, swarm_command};
use regsim::monitor;
use regsim::report;
use regsim::run::{RunOutput, run};
use regsim::scenario::{Override, Scenario, ScenarioError, load};
use regsim::sweep::{self, Aggregate, Progress, RunRecord, Shard};
use regsim::{eprintln, print, println}; // a closed pipe ends the process quietly (regsim::output)

#[derive(Parser)]
#[command(name = "regsim", version, about = "Seeded, deterministic simulator of service-registry clusters")]
#[command(after_help = "Exit codes: 0 ok; 1 an invariant failed; 2 bad input; 3 a run limit was reached.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: summary on stdout, report.json, report.md and SVG plots in --out.
    Run(RunArgs),
    /// Validate a scenario (and overrides) without running it.
    Check(ScenarioArgs),
    /// Run one scenario in several variants (default: AP and CP registry) and compare them side
    /// by side: compare.md, compare.json, cap.svg, and each variant's report in its own folder.
    Compare(CompareArgs),
    /// Evaluate client-side balancers without a cluster: balance and disruption tables.
    #[command(long_about = LB_ABOUT)]
    Lb(LbArgs),
    /// Run a sweep file: a scenario over parameter values × seeds, in parallel; sweep.json,
    /// sweep.csv, sweep.md and SVG plots in --out.
    #[command(long_about = SWEEP_ABOUT)]
    Sweep(SweepArgs),
    /// Merge the shard files of a sharded sweep into exactly what the unsharded sweep writes.
    Merge(MergeArgs),
    /// Swarm testing: run randomized fault schedules over a base scenario, check every invariant,
    /// shrink the first failure to DIR/minimal.toml.
    #[command(long_about = SWARM_ABOUT)]
    Swarm(SwarmArgs),
    /// Prometheus rules: run rule unit tests in promtool's format, or check rule files.
    #[command(long_about = RULES_ABOUT)]
    Rules(RulesArgs),
}

const RULES_ABOUT: &str = "Prometheus rules on regsim's evaluator (the PromQL subset in README, \"Rules\").

`regsim rules test FILE...` runs rule unit-test files in promtool's format (rule_files, evaluation_interval, \
group_eval_order, tests with interval, input_series in the expanding notation a+bxN / a-bxN / _xN / stale, \
alert_rule_test, promql_expr_test) and prints, per file, SUCCESS or FAILED with the reasons, as `promtool test \
rules` does. `regsim rules check FILE...` loads and validates rule files.

Exit codes: 0 every test passed (every file is valid); 1 a test failed; 2 bad input (a file that does not parse, \
an unknown key, an expression outside the subset: file:line:column, key path and what was expected).";

#[derive(Args)]
struct RulesArgs {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Run rule unit-test files (promtool's format): 0 all pass, 1 a test failed, 2 bad input.
    Test(RulesFiles),
    /// Load and validate Prometheus rule files: 0 valid, 2 bad input.
    Check(RulesFiles),
}

#[derive(Args)]
struct RulesFiles {
    /// The files (YAML).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

const SWARM_ABOUT: &str = "Swarm testing: run N randomized variants of a base scenario. Each variant enables a random \
subset of fault kinds (crash/pause of servers and instances, partitions isolate/halves/majorities-ring/bridge, \
clock skew, loss, duplication; in CP mode also faults on the leader and a random follower) at random times within \
a safety phase (the base file's duration), every fault undone before it ends, then a quiet liveness phase; every \
invariant is checked. Variants derive from (--seed, run index), so results are identical for any --jobs.

On the first failing run (lowest index) it prints the run's seed and the command that reproduces it, writes the \
variant to DIR/failing.toml, shrinks it (fewer faults, shorter run, fewer servers, instances and consumers, while \
the same invariant fails) and writes DIR/minimal.toml, a scenario that `regsim run` fails (exit 1).

Exit codes: 0 every run held every invariant (a summary is printed); 1 a run failed an invariant; 2 bad input; \
3 a run stopped at its event limit.";

const SWEEP_ABOUT: &str = "Run a sweep file: a scenario over every combination of parameter values, several seeds \
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
struct SweepArgs {
    /// The sweep file (TOML).
    file: PathBuf,
    /// Threads, one simulation each [default: all cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only shard I of N (0-based: the runs r with r % N == I) and write shard-I-of-N.json, or `auto`
    /// (Kubernetes Indexed Job or Slurm array, see --help).
    #[arg(long, value_name = "I/N|auto")]
    shard: Option<String>,
    /// Shard count N for --shard auto [default: REGSIM_SHARDS, or SLURM_ARRAY_TASK_COUNT in a Slurm array].
    #[arg(long, value_name = "N")]
    shards: Option<u64>,
    /// Output folder [default: reports/sweeps/<sweep name>/].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct MergeArgs {
    /// Shard folders (their shard-I-of-N.json files are read) or shard files.
    #[arg(required = true, value_name = "DIR")]
    inputs: Vec<PathBuf>,
    /// Output folder [default: reports/sweeps/<sweep name>/].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct ScenarioArgs {
    /// The scenario file (TOML).
    file: PathBuf,
    /// Override any scenario option, e.g. --set registry.health.unhealthy_after=20s (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    set: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Output folder [default: reports/<scenario name>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run twice and fail (exit 1) if the two reports differ.
    #[arg(long)]
    check_determinism: bool,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Override the scenario's seed (every variant runs with the same seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Output folder [default: reports/<scenario name>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// A variant: NAME:KEY=VALUE[,KEY=VALUE...] (repeatable) [default: ap:registry.mode=ap and
    /// cp:registry.mode=cp].
    #[arg(long = "variant", value_name = "NAME:OVERRIDES")]
    variants: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(a) => match load_scenario(&a) {
            Ok(s) => {
                for w in &s.warnings {
                    eprintln!("warning: {w}");
                }
                let warned =
                    if s.warnings.is_empty() { String::new() } else { format!(", {} warnings", s.warnings.len()) };
                println!("{}: ok (scenario \"{}\", {} of virtual time{warned})", a.file.display(), s.name, s.duration);
                ExitCode::SUCCESS
            }
            Err(e) => bad_input(&e),
        },
        Command::Run(a) => run_command(&a),
        Command::Compare(a) => compare_command(&a),
        Command::Lb(a) => lb_command(&a),
        Command::Sweep(a) => sweep_command(&a),
        Command::Merge(a) => merge_command(&a),
        Command::Swarm(a) => swarm_command(&a),
        Command::Rules(a) => rules_command(&a),
    }
}

fn rules_command(a: &RulesArgs) -> ExitCode {
    let (RulesCommand::Test(f) | RulesCommand::Check(f)) = &a.command;
    let testing = matches!(a.command, RulesCommand::Test(_));
    let (mut bad, mut failed) = (false, false);
    for path in &f.files {
        if testing {
            match monitor::unittest::run_file(path) {
                Ok(outcome) => {
                    print!("{}", outcome.render());
                    failed |= !outcome.passed();
                }
                Err(e) => {
                    println!("Unit Testing:  {}\n  FAILED (bad input)\n", path.display());
                    eprintln!("error: {e}");
                    bad = true;
                }
            }
        } else {
            match monitor::rulefile::load(path) {
                Ok(rf) => {
                    let rules: usize = rf.groups.iter().map(|g| g.rules.len()).sum();
                    println!("{}: ok ({} groups, {rules} rules)", path.display(), rf.groups.len());
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    bad = true;
                }
            }
        }
    }
    if bad {
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn compare_command(a: &CompareArgs) -> ExitCode {
    let given = if a.variants.is_empty() {
        vec!["ap:registry.mode=ap".to_string(), "cp:registry.mode=cp".to_string()]
    } else {
        a.variants.clone()
    };
    let mut variants = Vec::new();
    for v in &given {
        let Some((name, sets)) = v
            .split_once(':')
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        else {
            eprintln!(
                "error: --variant {v:?}: expected NAME:KEY=VALUE[,KEY=VALUE...] with a name of letters, digits, - or _"
            );
            return ExitCode::from(2);
        };
        if variants.iter().any(|(n, _, _)| n == name) {
            eprintln!("error: --variant {v:?}: the name {name:?} is given twice (each variant writes its own folder)");
            return ExitCode::from(2);
        }
        let sets: Vec<String> = sets.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
        let all = ScenarioArgs { file: a.scenario.file.clone(), set: [a.scenario.set.clone(), sets.clone()].concat() };
        match load_scenario(&all) {
            Ok(s) => variants.push((name.to_string(), sets, s)),
            Err(e) => return bad_input(&e),
        }
    }
    let Some(first) = variants.first() else { return ExitCode::from(2) };
    let name = first.2.name.clone();
    let seed = a.seed.unwrap_or(first.2.seed);
    let dir = a.out.clone().unwrap_or_else(|| Path::new("reports").join("compare").join(&name));
    if let Err(code) = check_out(&dir) {
        return code;
    }
    // Every variant's report goes into DIR/<variant>/, written with compare.* as one set.
    let mut set: Vec<(String, Vec<u8>)> = Vec::new();
    let mut outputs = Vec::new();
    for (vname, _, scenario) in &variants {
        let out = match run(scenario, seed) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {}: {e}", a.scenario.file.display());
                return ExitCode::from(2);
            }
        };
        match report::render(&out.report, &out.analyzer) {
            Ok(files) => set.extend(files.into_iter().map(|(n, b)| (format!("{vname}/{n}"), b))),
            Err(e) => {
                eprintln!("error: rendering the report of variant {vname}: {e}");
                return ExitCode::from(2);
            }
        }
        outputs.push(out);
    }
    let runs: Vec<(String, Vec<String>, &regsim::report::Report)> =
        variants.iter().zip(&outputs).map(|((n, sets, _), o)| (n.clone(), sets.clone(), &o.report)).collect();
    let cmp = report::compare::Comparison::new(&name, seed, &runs);
    let md = report::compare::markdown(&cmp);
    let files = serde_json::to_vec_pretty(&cmp)
        .map_err(|e| e.to_string())
        .and_then(|json| Ok((json, report::compare::cap_svg(&cmp)?)))
        .map(|(json, svg)| {
            vec![
                ("compare.json".to_string(), json),
                ("compare.md".to_string(), md.clone().into_bytes()),
                ("cap.svg".to_string(), svg.into_bytes()),
            ]
        });
    let files = files.map(|mut f| {
        f.append(&mut set);
        f
    });
    match files.map_err(std::io::Error::other).and_then(|f| report::write_atomically(&dir, &f)) {
        Ok(_) => {}
        Err(e) => {
            eprintln!("error: writing {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    print!("{md}");
    println!("report: {}/ (compare.md, compare.json, cap.svg; one folder per variant)", dir.display());
    if outputs.iter().any(|o| o.failed_invariants().next().is_some()) {
        return ExitCode::from(1);
    }
    if outputs.iter().any(RunOutput::hit_limit) {
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

fn load_scenario(a: &ScenarioArgs) -> Result<Scenario, ScenarioError> {
    let overrides = a.set.iter().map(|s| Override::parse(s)).collect::<Result<Vec<_>, _>>()?;
    load(&a.file, &overrides)
}

fn bad_input(e: &ScenarioError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn run_command(a: &RunArgs) -> ExitCode {
    let scenario = match load_scenario(&a.scenario) {
        Ok(s) => s,
        Err(e) => return bad_input(&e),
    };
    let seed = a.seed.unwrap_or(scenario.seed);
    for w in &scenario.warnings {
        eprintln!("warning: {w}");
    }
    let dir = a.out.clone().unwrap_or_else(|| Path::new("reports").join(&scenario.name));
    if let Err(code) = check_out(&dir) {
        return code;
    }
    let started = Instant::now();
    let out = match run(&scenario, seed) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {}: {e}", a.scenario.file.display());
            return ExitCode::from(2);
        }
    };
    let wall = started.elapsed().as_secs_f64();
    eprintln!(
        "events processed {} in {:.2} s wall ({:.2} M events/s)",
        out.report.events,
        wall,
        out.report.events as f64 / wall.max(1e-9) / 1e6
    );
    if a.check_determinism {
        match run(&scenario, seed) {
            Ok(again) if again.report == out.report => {
                eprintln!("determinism: second run identical (digest {})", out.report.digest)
            }
            Ok(again) => {
                eprintln!("determinism: FAILED: digests {} vs {}", out.report.digest, again.report.digest);
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let written = report::render(&out.report, &out.analyzer)
        .map(|mut files| {
            // Every stored Prometheus sample, as OpenMetrics text (monitoring scenarios).
            match out.prometheus_store.as_ref().map(regsim::monitor::openmetrics::export) {
                Some(Ok(text)) => files.push(("metrics.om".to_string(), text.into_bytes())),
                Some(Err(e)) => eprintln!("warning: metrics.om not written: {e}"),
                None => {}
            }
            files
        })
        .map_err(std::io::Error::other)
        .and_then(|files| report::write_atomically(&dir, &files));
    print!("{}", report::summary(&out.report));
    match written {
        Ok(paths) => {
            let names: Vec<String> =
                paths.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
            println!("report     {}/ ({})", dir.display(), names.join(", "));
        }
        Err(e) => {
            eprintln!("error: cannot write the report into {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    exit_code(&out, &a.scenario, seed)
}

fn exit_code(out: &RunOutput, a: &ScenarioArgs, seed: u64) -> ExitCode {
    let failed: Vec<_> = out.failed_invariants().collect();
    if !failed.is_empty() {
        let sets: String = a.set.iter().map(|s| format!(" --set '{s}'")).collect();
        for i in &failed {
            let at = i.first_violation_s.map_or(String::new(), |t| format!(" at {t:.3} s"));
            eprintln!("invariant {} failed{at}: {}", i.name, i.detail);
        }
        eprintln!("reproduce with: regsim run {} --seed {seed}{sets}", a.file.display());
        return ExitCode::from(1);
    }
    if out.hit_limit() {
        eprintln!(
            "run stopped at limits.max_events before the end of virtual time; raise it with --set limits.max_events=N"
        );
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

/// `error: FLAG: message` on stderr, exit 2.
fn sweep_command(a: &SweepArgs) -> ExitCode {
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

fn merge_command(a: &MergeArgs) -> ExitCode {
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

/// A bar on stderr (runs, points, runs/s, ETA) when it is a terminal; nothing otherwise.
fn progress_bar(runs: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(runs);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs, {msg}, ETA {eta} ") {
        bar.set_style(style);
    }
    bar.set_message("points 0/?");
    bar
}

fn usage(flag: &str, message: &str) -> ExitCode {
    eprintln!("error: {flag}: {message}");
    ExitCode::from(2)
}

/// Checks the output folder before any work (regsim::output::check_dir): exit 2 if unusable.
fn check_out(dir: &Path) -> Result<(), ExitCode> {
    regsim::output::check_dir(dir).map_err(|e| usage("--out", &e))
}

/// Writes `files` as one set into `dir` (see regsim::output) and prints where.
fn write_outputs(dir: &Path, files: Result<Vec<(String, Vec<u8>)>, String>) -> Result<(), ExitCode> {
    let written = files.map_err(std::io::Error::other).and_then(|f| report::write_atomically(dir, &f));
    match written {
        Ok(paths) => {
            let names: Vec<String> =
                paths.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
            println!("report     {}/ ({})", dir.display(), names.join(", "));
            Ok(())
        }
        Err(e) => {
            eprintln!("error: cannot write into {}: {e}", dir.display());
            Err(ExitCode::from(2))
        }
    }
}

/// 1 if a run failed an invariant, 3 if one stopped at its event limit, else 0; failed runs
/// (the first 20) on stderr with the command that reproduces them.
fn sweep_exit(records: &[RunRecord], repro: impl Fn(&RunRecord) -> String) -> ExitCode {
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
