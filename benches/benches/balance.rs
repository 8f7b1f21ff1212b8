//! Balancer lookup throughput: `pick` over a batch of 10,000 precomputed keys (and random
//! words), through `Box<dyn Balancer>` as the simulator and `regsim lb` call it, at n = 10,
//! 100 and 1000 nodes. Throughput is reported in elements, so criterion prints lookups/s.
//! Load-aware balancers (bounded, p2c, p2c-ewma) are measured idle: `pick` only, without
//! `on_start`/`on_finish` bookkeeping.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use regsim::balance::hash::splitmix64;
use regsim::balance::parse_spec;
use regsim::balance::stats::probe_keys;

const BATCH: usize = 10_000;
const SPECS: &str = "modn,ring:k=160,jump,rendezvous,maglev,bounded,p2c,p2c-ewma,random,rr";

fn lookups(c: &mut Criterion) {
    let keys = probe_keys(42, BATCH);
    let rands: Vec<u64> = keys.iter().map(|&k| splitmix64(k)).collect();
    let specs = parse_spec(SPECS).expect("valid specs");
    let mut group = c.benchmark_group("pick");
    group.sample_size(20);
    group.throughput(Throughput::Elements(BATCH as u64));
    for n in [10usize, 100, 1000] {
        let nodes: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        for spec in &specs {
            let mut b = spec.build(&nodes).expect("buildable");
            group.bench_function(BenchmarkId::new(spec.to_string(), n), |bench| {
                bench.iter(|| {
                    let mut acc = 0u64;
                    for (&k, &r) in keys.iter().zip(&rands) {
                        acc = acc.wrapping_add(u64::from(b.pick(black_box(k), r).unwrap_or(0)));
                    }
                    black_box(acc)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
