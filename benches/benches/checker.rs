//! Linearizability checker throughput (operations checked per second) on correct histories of
//! 1,000 to 100,000 operations on one service: with deregistrations (projection pre-pass, then
//! the Wing & Gong / Lowe search) and grow-only (the greedy pass CP histories take).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use regsim::check::linearizability::{Limits, Outcome, check};
use regsim_benches::synthetic_history;

fn checker(c: &mut Criterion) {
    let mut group = c.benchmark_group("linearizability");
    group.sample_size(10);
    for (name, deregisters) in [("search", true), ("grow_only", false)] {
        for n in [1_000usize, 10_000, 100_000] {
            let h = synthetic_history(n, 42, deregisters);
            let r = check(&h, &Limits::default()).expect("well-formed");
            assert_eq!(r.outcome, Outcome::Linearizable, "the synthetic history is correct");
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| black_box(check(black_box(&h), &Limits::default()).expect("well-formed")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, checker);
criterion_main!(benches);
