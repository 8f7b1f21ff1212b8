//! The `regsim-madsim` command line: `run` a scenario on madsim (built with `--cfg madsim`), or
//! with `--real --time-scale F` on real UDP sockets (the plain build), and write the same report
//! as `regsim run`. Exit codes as `regsim`: 0 ran and every invariant held; 1 an invariant
//! failed (or `--check-determinism` found a difference); 2 bad input, including scenario
//! features the chosen driver cannot express; 3 a run limit (events, `--real`'s wall clock)
//! was reached; 141 stdout or stderr was a pipe whose reader went away.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use regsim::scenario::{Override, Scenario, ScenarioError, load_with};
use regsim::{eprintln, print, println}; // a closed pipe ends the process quietly (regsim::output)
use regsim_madsim::{real, support};

#[derive(Parser)]
#[command(
    name = "regsim-madsim",
    version,
    about = "regsim's actors on the madsim simulator (cross-check tier), or on real UDP sockets (--real)"
)]
#[command(after_help = "Exit codes: 0 ok; 1 an invariant failed; 2 bad input or unsupported by the driver; 3 a run \
                        limit was reached.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario on madsim: summary on stdout, report.json, report.md and SVG plots in --out.
    Run(RunArgs),
    /// Check that a scenario is valid and that the madsim tier (or --real) can run it.
    Check(ScenarioArgs),
}

#[derive(Args)]
struct ScenarioArgs {
    /// The scenario file (TOML).
    file: PathBuf,
    /// Override any scenario option, e.g. --set instances.count=1000 (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    set: Vec<String>,
    /// Run on tokio with real UDP sockets on 127.0.0.1 instead of madsim (the plain build only;
    /// not deterministic; at most 500 nodes).
    #[arg(long)]
    real: bool,
    /// With --real: multiply every scenario duration by F (0.05: one virtual hour in 3 minutes).
    #[arg(long, value_name = "F", requires = "real")]
    time_scale: Option<f64>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Override the scenario's seed (also madsim's runtime seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Output folder [default: reports/madsim/<scenario name>/, reports/real/<scenario name>/ with --real].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run twice and fail (exit 1) if the two reports differ.
    #[arg(long)]
    check_determinism: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(a) => match load_scenario(&a) {
            Ok(s) => {
                let tier = if a.real { "--real" } else { "the madsim tier" };
                println!("{}: ok for {tier} (scenario \"{}\")", a.file.display(), s.name);
                ExitCode::SUCCESS
            }
            Err(e) => bad_input(&e),
        },
        Command::Run(a) => run_command(&a),
    }
}

/// Loads with the core's checks, then the madsim tier's (or `--real`'s), located in the file
/// like any error.
fn load_scenario(a: &ScenarioArgs) -> Result<Scenario, ScenarioError> {
    let overrides = a.set.iter().map(|s| Override::parse(s)).collect::<Result<Vec<_>, _>>()?;
    if a.real {
        let f = time_scale(a).map_err(|message| ScenarioError {
            location: "command line".into(),
            key_path: None,
            message,
        })?;
        return load_with(&a.file, &overrides, |s| real::check(s, f));
    }
    load_with(&a.file, &overrides, support::check)
}

/// `--time-scale`, required with `--real` and checked.
fn time_scale(a: &ScenarioArgs) -> Result<f64, String> {
    let f =
        a.time_scale.ok_or("--real needs --time-scale F (e.g. --time-scale 0.05: 20 times faster than real time)")?;
    real::check_time_scale(f)?;
    Ok(f)
}

fn bad_input(e: &ScenarioError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

#[cfg(not(madsim))]
fn run_command(a: &RunArgs) -> ExitCode {
    if !a.scenario.real {
        eprintln!(
            "error: this regsim-madsim was built without madsim, so it runs only --real; for madsim build it with\n  \
             RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/madsim cargo build --release -p regsim-madsim"
        );
        return ExitCode::from(2);
    }
    if a.check_determinism {
        eprintln!("error: --check-determinism: --real runs on real sockets and real time and is not deterministic");
        return ExitCode::from(2);
    }
    let scenario = match load_scenario(&a.scenario) {
        Ok(s) => s,
        Err(e) => return bad_input(&e),
    };
    let Ok(f) = time_scale(&a.scenario) else { unreachable!("checked by load_scenario") };
    for note in real::notes(&scenario, f) {
        eprintln!("note: {note}");
    }
    let seed = a.seed.unwrap_or(scenario.seed);
    let out = match real::driver::run(&scenario, seed, f) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {}: {e}", a.scenario.file.display());
            let code = if matches!(e, real::driver::RealError::Limit(_)) { 3 } else { 2 };
            return ExitCode::from(code);
        }
    };
    let wall = out.wall.as_secs_f64();
    eprintln!(
        "real: {} nodes on 127.0.0.1/udp, time scale {f}: {:.1} s virtual in {wall:.2} s wall; {} events ({:.3} M \
         events/s); {} send errors, {} foreign datagrams; timers at most {} late (virtual)",
        out.nodes,
        out.run.report.virtual_duration_s,
        out.run.report.events,
        out.run.report.events as f64 / wall.max(1e-9) / 1e6,
        out.send_errors,
        out.foreign,
        out.timer_late_max
    );
    let dir = a.out.clone().unwrap_or_else(|| std::path::Path::new("reports").join("real").join(&scenario.name));
    finish(a, &out.run, &dir, "regsim-madsim run --real", seed)
}

/// Writes the report, prints the summary, and maps failed invariants and limits to exit codes.
fn finish(a: &RunArgs, out: &regsim::run::RunOutput, dir: &std::path::Path, command: &str, seed: u64) -> ExitCode {
    let written = regsim::report::render(&out.report, &out.analyzer)
        .map_err(std::io::Error::other)
        .and_then(|files| regsim::report::write_atomically(dir, &files));
    print!("{}", regsim::report::summary(&out.report));
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
    let failed: Vec<_> = out.failed_invariants().collect();
    if !failed.is_empty() {
        let sets: String = a.scenario.set.iter().map(|s| format!(" --set '{s}'")).collect();
        let scale = a.scenario.time_scale.map_or(String::new(), |f| format!(" --time-scale {f}"));
        for i in &failed {
            let at = i.first_violation_s.map_or(String::new(), |t| format!(" at {t:.3} s"));
            eprintln!("invariant {} failed{at}: {}", i.name, i.detail);
        }
        eprintln!("reproduce with: {command} {}{scale} --seed {seed}{sets}", a.scenario.file.display());
        return ExitCode::from(1);
    }
    if out.hit_limit() {
        eprintln!("run stopped at limits.max_events before the end of virtual time");
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

#[cfg(madsim)]
fn run_command(a: &RunArgs) -> ExitCode {
    if a.scenario.real {
        eprintln!(
            "error: --real: this regsim-madsim was built with --cfg madsim (simulated sockets only); build it without \
             for real sockets:\n  cargo build --release -p regsim-madsim"
        );
        return ExitCode::from(2);
    }
    let scenario = match load_scenario(&a.scenario) {
        Ok(s) => s,
        Err(e) => return bad_input(&e),
    };
    for note in support::notes(&scenario) {
        eprintln!("note: {note}");
    }
    let seed = a.seed.unwrap_or(scenario.seed);
    let started = std::time::Instant::now();
    let out = match regsim_madsim::run(&scenario, seed) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {}: {e}", a.scenario.file.display());
            return ExitCode::from(2);
        }
    };
    let wall = started.elapsed().as_secs_f64();
    eprintln!(
        "events processed {} in {:.2} s wall ({:.3} M events/s, madsim {})",
        out.report.events,
        wall,
        out.report.events as f64 / wall.max(1e-9) / 1e6,
        regsim_madsim::driver::MADSIM_VERSION
    );
    if a.check_determinism {
        match regsim_madsim::run(&scenario, seed) {
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
    let dir = a.out.clone().unwrap_or_else(|| std::path::Path::new("reports").join("madsim").join(&scenario.name));
    finish(a, &out, &dir, "regsim-madsim run", seed)
}
