//! Debug aid: prints every observation and fault record of a scenario run, one per line
//! (`cargo run -p regsim --example trace -- FILE [--set K=V ...] [--grep TEXT ...]`), only
//! the lines containing one of the `--grep` texts when any is given.

use regsim::scenario::{Override, build, load};
use regsim_kernel::{SimTime, What};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sets = Vec::new();
    let mut grep = Vec::new();
    let mut i = 1;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--set" => sets.push(Override::parse(&args[i + 1]).expect("override")),
            "--grep" => grep.push(args[i + 1].clone()),
            a => panic!("unknown argument {a}"),
        }
        i += 2;
    }
    let s = load(std::path::Path::new(&args[0]), &sets).expect("scenario");
    let mut b = build::build(&s, s.seed).expect("builds");
    b.world.run_until(SimTime(s.duration.as_nanos()), s.limits.max_events);
    for r in b.world.records() {
        let what = match &r.what {
            What::Actor(o) => format!("{o:?}"),
            What::Fault(f) => format!("FAULT {f:?}"),
        };
        let line = format!("{:>10.3} n{} {what}", r.time.as_secs_f64(), r.node.0);
        if grep.is_empty() || grep.iter().any(|g| line.contains(g.as_str())) {
            println!("{line}");
        }
    }
}
