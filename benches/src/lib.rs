//! Shared helpers for the benches: the heartbeat workload at a chosen size.

use regsim::scenario::{Override, Scenario, load};

/// `scenarios/heartbeat.toml` with `instances` instances and `duration_s` seconds of virtual time.
pub fn heartbeat(instances: u32, duration_s: u64) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/heartbeat.toml");
    // The file's crash wave (1 % of the instances) halfway through.
    let sets = [
        format!("instances.count={instances}"),
        format!("duration={duration_s}s"),
        format!("faults[0].at={}s", duration_s / 2),
    ];
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).expect("valid override")).collect();
    load(&path, &overrides).expect("heartbeat.toml loads")
}

/// A canonical scenario file from `scenarios/`, unchanged.
pub fn canonical(file: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file);
    load(&path, &[]).expect("scenario loads")
}

/// A correct register/deregister/list history on one service for the checker benches: 10
/// clients issue operations of 1-5 ms with think times of 0-10 ms over 32 instances; each takes
/// effect at a random point of its interval on a real set, which also yields the list results.
/// `deregisters = false` gives a grow-only history (CP persistent instances).
pub fn synthetic_history(n: usize, seed: u64, deregisters: bool) -> Vec<regsim::check::linearizability::Op> {
    use regsim::check::linearizability::{Op, OpKind};
    const MS: u64 = 1_000_000;
    let mut state = seed;
    let mut below = |m: u64| {
        state = regsim::balance::hash::splitmix64(state);
        state % m
    };
    let mut clock = [0u64; 10];
    let mut ops = Vec::with_capacity(n);
    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % clock.len();
        let invoke = clock[c] + below(10 * MS);
        let complete = invoke + MS + below(4 * MS);
        clock[c] = complete;
        let instance = below(32) as u32;
        let kind = match below(10) {
            0..4 => OpKind::Register { instance },
            4..7 if deregisters => OpKind::Deregister { instance },
            _ => OpKind::List { result: Vec::new() },
        };
        points.push((invoke + below(complete - invoke + 1), i));
        ops.push(Op { client: c as u32, service: 0, invoke, complete: Some(complete), kind });
    }
    points.sort_unstable();
    let mut set = std::collections::BTreeSet::new();
    for (_, i) in points {
        match &mut ops[i].kind {
            OpKind::Register { instance } => drop(set.insert(*instance)),
            OpKind::Deregister { instance } => drop(set.remove(instance)),
            OpKind::List { result } => *result = set.iter().copied().collect(),
        }
    }
    ops
}
