//! The `regsim` command line: parse arguments, call the library, map errors to exit codes.
//! Exit codes: 0 ran and every invariant held; 1 an invariant failed (or `--check-determinism`
//! found a difference); 2 bad input; 3 a run limit was reached.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use regsim::report;
use regsim::run::{RunOutput, run};
use regsim::scenario::{Override, Scenario, ScenarioError, load};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(a) => match load_scenario(&a) {
            Ok(s) => {
                println!("{}: ok (scenario \"{}\", {} of virtual time)", a.file.display(), s.name, s.duration);
                ExitCode::SUCCESS
            }
            Err(e) => bad_input(&e),
        },
        Command::Run(a) => run_command(&a),
    }
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
    let dir = a.out.clone().unwrap_or_else(|| Path::new("reports").join(&scenario.name));
    let written = report::render(&out.report, &out.analyzer)
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
