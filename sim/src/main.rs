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
use cli::rules::{RULES_ABOUT, RulesArgs, rules_command};
use cli::swarm::{SwarmArgs, swarm_command};
use cli::sweep::{MergeArgs, SWEEP_ABOUT, SweepArgs, merge_command, sweep_command};
use regsim::report;
use regsim::run::{RunOutput, run_with_progress};
use regsim::scenario::{Override, Scenario, ScenarioError, load};
use regsim::{eprintln, print, println}; // a closed pipe ends the process quietly (regsim::output)

#[derive(Parser)]
#[command(name = "regsim", version = VERSION, about = "Seeded, deterministic simulator of service-registry clusters")]
#[command(after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The exit codes, at the end of `--help` of regsim and of the commands that run scenarios.
const EXIT_CODES: &str = "Exit codes: 0 ran and every invariant held; 1 an invariant failed (or --check-determinism \
found a difference); 2 bad input (file:line:column, key path, what was expected); 3 a run limit \
(limits.max_events) was reached; 141 stdout or stderr was a closed pipe.";

/// `regsim --version`: the crate version and the commit it was built from (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("REGSIM_COMMIT"), ")");

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: summary on stdout; report.json, report.md, report.html and SVG plots in --out.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Validate a scenario (and overrides) without running it.
    #[command(after_help = EXIT_CODES)]
    Check(ScenarioArgs),
    /// Run one scenario in several variants (default: AP and CP registry) and compare them side
    /// by side, every measurement family: compare.md, compare.html, compare.json, cap.svg, and each
    /// variant's report in its own folder.
    #[command(after_help = EXIT_CODES)]
    Compare(CompareArgs),
    /// The story of one instance's crashes (--instance: its last beat, the mark, each server copy
    /// and consumer view catching up, the last requests) or of one Raft election (--election:
    /// timeouts, votes, split rounds, the winner), with the time each step added (explain.md and
    /// timeline SVGs in --out).
    #[command(after_help = EXIT_CODES)]
    Explain(ExplainArgs),
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout, e.g.
    /// `regsim completions bash > ~/.local/share/bash-completion/completions/regsim`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
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

#[derive(Args)]
struct ScenarioArgs {
    /// The scenario file (TOML).
    file: PathBuf,
    /// Override any scenario option, e.g. --set registry.health.unhealthy_after=20s (repeatable).
    #[arg(short = 'S', long = "set", value_name = "KEY.PATH=VALUE")]
    set: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Override the scenario's seed.
    #[arg(short, long)]
    seed: Option<u64>,
    /// Output folder [default: reports/<scenario name>/].
    #[arg(short, long)]
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
    #[arg(short, long)]
    seed: Option<u64>,
    /// Output folder [default: reports/compare/<scenario name>/].
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// A variant: NAME:KEY=VALUE[,KEY=VALUE...] (repeatable) [default: ap:registry.mode=ap and
    /// cp:registry.mode=cp].
    #[arg(short, long = "variant", value_name = "NAME:OVERRIDES")]
    variants: Vec<String>,
}

#[derive(Args)]
struct ExplainArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// The instance, as a scenario target names it: instances[2].
    #[arg(short, long, value_name = "NAME", required_unless_present = "election", conflicts_with = "election")]
    instance: Option<String>,
    /// A Raft election (CP mode): its number in the run (1: the cluster's first) or `slowest`.
    #[arg(short, long, value_name = "N|slowest")]
    election: Option<String>,
    /// Override the scenario's seed.
    #[arg(short, long)]
    seed: Option<u64>,
    /// Output folder [default: reports/explain/<scenario name>/<instance>/].
    #[arg(short, long)]
    out: Option<PathBuf>,
}

fn explain_command(a: &ExplainArgs) -> ExitCode {
    let scenario = match load_scenario(&a.scenario) {
        Ok(s) => s,
        Err(e) => return bad_input(&e),
    };
    let seed = a.seed.unwrap_or(scenario.seed);
    let pick = match a.election.as_deref().map(regsim::explain::election::Pick::parse).transpose() {
        Ok(p) => p,
        Err(e) => return usage("--election", &e),
    };
    let what = match (&a.instance, &a.election) {
        (Some(i), _) => i.clone(),
        (None, Some(e)) => format!("election-{e}"),
        (None, None) => return usage("--instance", "give --instance NAME or --election N|slowest"),
    };
    let folder: String = what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new("reports").join("explain").join(&scenario.name).join(folder.trim_matches('-')));
    if let Err(code) = check_out(&dir) {
        return code;
    }
    let files = match (&a.instance, pick) {
        (Some(instance), _) => match regsim::explain::explain(&scenario, seed, instance) {
            Ok(story) => regsim::explain::render(&story),
            Err(e) => return usage("--instance", &e),
        },
        (None, Some(pick)) => {
            let story = match regsim::explain::election::collect(&scenario, seed) {
                Ok(s) => s,
                Err(e) => return usage("--election", &e),
            };
            match regsim::explain::election::pick(&story, pick) {
                Ok(e) => regsim::explain::election::render(&story, e),
                Err(e) => return usage("--election", &e),
            }
        }
        (None, None) => return usage("--instance", "give --instance NAME or --election N|slowest"),
    };
    let md = files.as_ref().ok().and_then(|f| f.first()).map(|f| String::from_utf8_lossy(&f.1).into_owned());
    if let Err(code) = write_outputs(&dir, files) {
        return code;
    }
    print!("{}", md.unwrap_or_default());
    ExitCode::SUCCESS
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
        Command::Explain(a) => explain_command(&a),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "regsim", &mut out);
            print!("{}", String::from_utf8_lossy(&out));
            ExitCode::SUCCESS
        }
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
        let out = match run_shown(scenario, seed, vname) {
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
    let named: Vec<(&str, &RunOutput)> = variants.iter().zip(&outputs).map(|((n, _, _), o)| (n.as_str(), o)).collect();
    let family_plots = match report::compare::family_plots(&name, &named) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: drawing the comparison's plots: {e}");
            return ExitCode::from(2);
        }
    };
    let plot_names: Vec<String> = family_plots.iter().map(|p| p.0.clone()).collect();
    let md = report::compare::markdown(&cmp, &plot_names);
    // cap.svg only when the variants have what it plots (no plot without data).
    let cap = if report::compare::has_cap(&cmp) { Some(report::compare::cap_svg(&cmp)) } else { None };
    let files = serde_json::to_vec_pretty(&cmp).map_err(|e| e.to_string()).and_then(|json| {
        let mut f = vec![("compare.json".to_string(), json), ("compare.md".to_string(), md.clone().into_bytes())];
        if let Some(svg) = cap {
            f.push(("cap.svg".to_string(), svg?.into_bytes()));
        }
        f.extend(family_plots.into_iter().map(|(n, svg)| (n, svg.into_bytes())));
        Ok(f)
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
    let mut plots = if report::compare::has_cap(&cmp) { vec!["cap.svg".to_string()] } else { Vec::new() };
    plots.extend(plot_names);
    let plots: String = plots.iter().map(|p| format!(", {p}")).collect();
    println!("report: {}/ (compare.md, compare.html, compare.json{plots}; one folder per variant)", dir.display());
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
    let out = match run_shown(&scenario, seed, "run") {
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
        match run_shown(&scenario, seed, "again") {
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

/// One run with a progress bar on stderr in virtual seconds (when stderr is a terminal;
/// nothing otherwise), cleared when the run ends.
fn run_shown(scenario: &Scenario, seed: u64, label: &str) -> Result<RunOutput, String> {
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(scenario.duration.as_nanos() / 1_000_000_000);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} virtual s, {per_sec}, ETA {eta} ")
        {
            bar.set_style(style);
        }
        bar.set_message(format!("{label}: {}", scenario.name));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let out = run_with_progress(scenario, seed, &mut |now, _| bar.set_position(now.as_secs_f64() as u64));
    bar.finish_and_clear();
    out
}

/// A bar on stderr (runs, points, runs/s, ETA) when it is a terminal; nothing otherwise.
fn progress_bar(runs: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(runs);
    // Elapsed time ticks on its own: a heavy base shows life before its first run ends (the
    // ETA only means something once runs have finished).
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {bar:30} {pos}/{len} runs, {msg}, {elapsed} elapsed, ETA {eta} ",
    ) {
        bar.set_style(style);
    }
    bar.set_message("first runs under way");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
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
