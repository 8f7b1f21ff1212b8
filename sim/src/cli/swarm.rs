//! `regsim swarm`: randomized fault plans against one scenario, with shrinking.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use regsim::swarm;
use regsim::{eprintln, println, report}; // a closed pipe ends the process quietly (regsim::output)

use crate::{ScenarioArgs, bad_input, check_out, progress_bar, usage, write_outputs};

#[derive(Args)]
pub struct SwarmArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Variants to run (at most 1000000).
    #[arg(short = 'n', long, default_value_t = 100)]
    runs: u64,
    /// The swarm seed; variant r's seed is derived from (seed, r).
    #[arg(short, long, default_value_t = 1)]
    seed: u64,
    /// Threads, one simulation each [default: all cores].
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Where failing.toml and minimal.toml go [default: reports/swarm/<scenario name>/].
    #[arg(short, long)]
    out: Option<PathBuf>,
}

pub fn swarm_command(a: &SwarmArgs) -> ExitCode {
    if !(1..=swarm::MAX_RUNS).contains(&a.runs) {
        return usage("--runs", &format!("expected 1..={} runs, got {}", swarm::MAX_RUNS, a.runs));
    }
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !(1..=1024).contains(&jobs) {
        return usage("--jobs", &format!("expected 1..=1024 threads, got {jobs}"));
    }
    let base = match swarm::Base::load(&a.scenario.file, &a.scenario.set) {
        Ok(b) => b,
        Err(e) => return bad_input(&e),
    };
    let file = a.scenario.file.display().to_string();
    let sets: String = a.scenario.set.iter().map(|s| format!(" --set '{s}'")).collect();
    eprintln!(
        "swarm {file}: {} runs from seed {}, on {jobs} threads (safety phase {} s, liveness phase {} s)",
        a.runs,
        a.seed,
        base.safety_ms as f64 / 1e3,
        base.liveness_ms as f64 / 1e3
    );
    let dir = a.out.clone().unwrap_or_else(|| Path::new("reports").join("swarm").join(&base.scenario.name));
    if let Err(code) = check_out(&dir) {
        return code;
    }
    let started = Instant::now();
    let bar = progress_bar(a.runs);
    let on_progress = |done: u64| bar.set_position(done);
    let summary = match swarm::execute(&base, a.runs, a.seed, jobs, &on_progress) {
        Ok(s) => s,
        Err(e) => {
            bar.finish_and_clear();
            return bad_input(&e);
        }
    };
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    eprintln!("{} runs in {wall:.2} s wall ({:.1} runs/s)", summary.runs, summary.runs as f64 / wall.max(1e-9));
    let swarm_cmd = format!("regsim swarm {file} --seed {} --runs {}{sets}", a.seed, a.runs);
    let Some(failure) = &summary.failure else {
        print_swarm_summary(&summary);
        let md = report::swarm_md::markdown(&base.scenario.name, &swarm_cmd, a.runs, &summary, None);
        if let Err(code) = write_outputs(&dir, Ok(vec![("swarm.md".to_string(), md.into_bytes())])) {
            return code;
        }
        return ExitCode::SUCCESS;
    };
    let v = &failure.variant;
    println!("run {} (seed {}) failed:", v.run, v.seed);
    for (name, detail) in &failure.failed {
        println!("  invariant {name}: {detail}");
    }
    if failure.signature == "event_limit" {
        println!("  stopped at limits.max_events");
    }
    let failing = dir.join("failing.toml");
    println!("reproduce with: regsim run {}", failing.display());
    println!("           or: regsim swarm {file} --seed {} --runs {}{sets}", a.seed, v.run + 1);
    let shrink_started = Instant::now();
    let shrunk = swarm::shrink(&base, failure);
    let m = &shrunk.variant;
    let header = |what: &str| {
        format!(
            "# {what} found by: {swarm_cmd}\n# run {} (seed {}): invariant {} fails.\n# Run: regsim run {}\n\n",
            v.run,
            v.seed,
            failure.signature,
            dir.join(if what.starts_with("Minimal") { "minimal.toml" } else { "failing.toml" }).display()
        )
    };
    let minimal_text = format!(
        "{}\n# Shrunk from {} faults to {}, {} servers, {} instances, {} consumers, {} s ({} candidate runs).\n\n{}",
        header("Minimal failing scenario").trim_end(),
        v.plan.faults.len(),
        m.plan.faults.len(),
        m.sizes.servers,
        m.sizes.instances,
        m.sizes.consumers,
        (m.safety_ms + m.liveness_ms) as f64 / 1e3,
        shrunk.attempts,
        base.text(m)
    );
    let files = vec![
        ("failing.toml".to_string(), format!("{}{}", header("Failing swarm variant"), base.text(v)).into_bytes()),
        ("minimal.toml".to_string(), minimal_text.into_bytes()),
        (
            "swarm.md".to_string(),
            report::swarm_md::markdown(&base.scenario.name, &swarm_cmd, a.runs, &summary, Some((failure, &shrunk)))
                .into_bytes(),
        ),
    ];
    if let Err(code) = write_outputs(&dir, Ok(files)) {
        return code;
    }
    println!(
        "shrunk in {:.2} s ({} candidate runs): {} of {} faults, {} servers, {} instances, {} consumers, {:.1} s",
        shrink_started.elapsed().as_secs_f64(),
        shrunk.attempts,
        m.plan.faults.len(),
        v.plan.faults.len(),
        m.sizes.servers,
        m.sizes.instances,
        m.sizes.consumers,
        (m.safety_ms + m.liveness_ms) as f64 / 1e3
    );
    println!("minimal: regsim run {}   (exits 1: {} fails)", dir.join("minimal.toml").display(), failure.signature);
    if failure.signature == "event_limit" { ExitCode::from(3) } else { ExitCode::from(1) }
}

fn print_swarm_summary(s: &swarm::Summary) {
    println!("runs       {}, all passed", s.runs);
    println!("virtual    {:.0} s ({:.1} h), {} events", s.virtual_s, s.virtual_s / 3600.0, s.events);
    let faults: Vec<String> = s.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("faults     {}", if faults.is_empty() { "none".to_string() } else { faults.join(", ") });
    println!("invariants (runs checked / applicable)");
    for (name, (checked, applicable, _)) in &s.invariants {
        println!("  {name:<28} {checked} / {applicable}");
    }
}
