//! `regsim lb`: evaluate client-side balancers without a cluster, and `regsim lb route`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use regsim::balance::eval::{self, EvalConfig, MAX_EVAL_KEYS, MAX_EVAL_NODES};
use regsim::balance::{BalanceError, KeyDist, parse_churn, parse_spec};
use regsim::report;
use regsim::{eprintln, print, println}; // a closed pipe ends the process quietly (regsim::output)

pub const LB_ABOUT: &str = "Evaluate client-side balancers on nodes named 0..n-1, without a cluster.

Keys: --keys probe keys, each placed once on an idle balancer (keyspace share); also used for disruption: per \
--churn step, the fraction of probe keys whose node changed, beside the ideal (1/n for one leave, 1/(n+1) for \
one join).
Requests: --requests keys drawn from --dist in a closed loop with --window requests in flight, each held for one \
10 ms rtt and reported to load-aware balancers (bounded, p2c, p2c-ewma) through on_start/on_finish.
Limits: nodes <= 100000; keys <= 100000000 (4 bytes each); requests <= 100000000; ring points k x nodes <= \
33554432; rendezvous nodes x lookups <= 1e10 (O(n) per lookup).";

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LbArgs {
    #[command(subcommand)]
    command: Option<LbCommand>,
    /// Initial number of nodes (named 0..n-1).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Probe keys for keyspace share and disruption.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Balancer specs, comma-separated: random, rr, modn, ring:k=160, jump, rendezvous, maglev:m=65537,
    /// bounded:c=1.25, p2c, p2c-ewma (each key-based one takes :hash=xxh64|fnv1a).
    #[arg(long, value_name = "SPECS", default_value = "ring:k=160,jump,maglev,rendezvous,modn")]
    algo: String,
    /// Churn steps in order, comma-separated: add:N (join at the end), remove:N (random nodes leave),
    /// remove-last:N (the last nodes leave).
    #[arg(long, value_name = "STEPS")]
    churn: Option<String>,
    /// Request key distribution: unique (a new key per request), uniform:k=K, zipf:s=S:k=K (k <= 1e7).
    #[arg(long, value_name = "DIST", default_value = "unique")]
    dist: String,
    /// Requests in the closed loop (0: none).
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Requests in flight in the closed loop [default: --nodes].
    #[arg(long)]
    window: Option<u64>,
    /// Seed of every stream (probe keys, churn victims, request keys, random words).
    #[arg(short, long, default_value_t = 1)]
    seed: u64,
    /// Print the report as JSON (the contents of lb.json) instead of the tables.
    #[arg(long)]
    json: bool,
    /// Also write lb.json, lb.md and SVG plots into this folder.
    #[arg(short, long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum LbCommand {
    /// Print the node index (0..n-1) that a balancer picks for one key.
    Route(RouteArgs),
}

#[derive(Args)]
pub struct RouteArgs {
    /// One balancer spec, e.g. jump or ring:k=160.
    #[arg(long, value_name = "SPEC")]
    algo: String,
    /// Number of nodes (named 0..n-1).
    #[arg(long)]
    nodes: usize,
    /// The raw 64-bit request key (decimal or 0x hex), as passed to Balancer::pick: key-based balancers hash
    /// it first (xxh64 or fnv1a of its 8 little-endian bytes; jump prints jump(xxh64(K), n)); random and p2c
    /// use splitmix64(K) as their random word.
    #[arg(long, value_name = "K")]
    key: String,
}

fn bad_arg(flag: &str, e: &BalanceError) -> ExitCode {
    let msg = match e {
        BalanceError::Spec { token, expected } => format!("bad value {token:?}: expected {expected}"),
        other => other.to_string(),
    };
    eprintln!("error: {flag}: {msg}");
    ExitCode::from(2)
}

fn lb_config(a: &LbArgs) -> Result<EvalConfig, ExitCode> {
    if !(1..=MAX_EVAL_NODES).contains(&a.nodes) {
        eprintln!("error: --nodes {}: expected 1..={MAX_EVAL_NODES}", a.nodes);
        return Err(ExitCode::from(2));
    }
    if !(1..=MAX_EVAL_KEYS).contains(&a.keys) {
        eprintln!("error: --keys {}: expected 1..={MAX_EVAL_KEYS}", a.keys);
        return Err(ExitCode::from(2));
    }
    Ok(EvalConfig {
        nodes: a.nodes,
        keys: a.keys,
        requests: a.requests,
        dist: a.dist.parse::<KeyDist>().map_err(|e| bad_arg("--dist", &e))?,
        window: a.window,
        churn: parse_churn(a.churn.as_deref().unwrap_or_default()).map_err(|e| bad_arg("--churn", &e))?,
        seed: a.seed,
        algos: parse_spec(&a.algo).map_err(|e| bad_arg("--algo", &e))?,
    })
}

pub fn lb_command(a: &LbArgs) -> ExitCode {
    if let Some(LbCommand::Route(r)) = &a.command {
        return route_command(r);
    }
    let cfg = match lb_config(a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(dir) = &a.out
        && let Err(code) = crate::check_out(dir)
    {
        return code;
    }
    let started = Instant::now();
    // A bar per balancer on stderr when it is a terminal (nothing when piped).
    let bar = {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(cfg.algos.len() as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} balancers, {msg} ") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        } else {
            indicatif::ProgressBar::hidden()
        }
    };
    let evaluated = eval::evaluate_with_progress(&cfg, &mut |done, next| {
        bar.set_position(done as u64);
        bar.set_message(next.map_or(String::new(), |n| format!("now {n}")));
    });
    bar.finish_and_clear();
    let e = match evaluated {
        Ok(e) => e,
        Err(e @ BalanceError::Param { param, .. }) => return bad_arg(&format!("--{param}"), &e),
        Err(e) => return bad_arg("lb", &e),
    };
    eprintln!("evaluated {} balancers in {:.2} s wall", cfg.algos.len(), started.elapsed().as_secs_f64());
    if a.json {
        match report::lb::json(&e.report) {
            Ok(j) => print!("{j}"),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", report::lb::table(&e.report));
    }
    let Some(dir) = &a.out else { return ExitCode::SUCCESS };
    match report::lb::render(&e).map_err(std::io::Error::other).and_then(|f| report::write_atomically(dir, &f)) {
        Ok(paths) => {
            let names: Vec<String> =
                paths.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
            eprintln!("report     {}/ ({})", dir.display(), names.join(", "));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: cannot write the report into {}: {err}", dir.display());
            ExitCode::from(2)
        }
    }
}

fn route_command(r: &RouteArgs) -> ExitCode {
    let spec = match parse_spec(&r.algo) {
        Ok(specs) if specs.len() == 1 => specs[0].clone(),
        Ok(specs) => {
            eprintln!("error: --algo: expected one balancer spec, got {}", specs.len());
            return ExitCode::from(2);
        }
        Err(e) => return bad_arg("--algo", &e),
    };
    let key = match eval::parse_key(&r.key) {
        Ok(k) => k,
        Err(e) => return bad_arg("--key", &e),
    };
    match eval::route(&spec, r.nodes, key) {
        Ok(node) => {
            println!("{node}");
            ExitCode::SUCCESS
        }
        Err(e) => bad_arg("--algo/--nodes", &e),
    }
}
