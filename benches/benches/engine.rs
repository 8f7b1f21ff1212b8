//! Engine throughput on the heartbeat workload (DESIGN.md's reference workload): the full
//! engine with network model, observations, metrics and digest on. Throughput is reported in
//! events, so criterion prints events/s.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use regsim::run::run;
use regsim_benches::{canonical, heartbeat};

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("heartbeat");
    group.sample_size(10);
    for instances in [1_000u32, 10_000] {
        let s = heartbeat(instances, "600s");
        let events = run(&s, s.seed).expect("runs").report.events;
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("{instances}_instances_600s"), |b| b.iter(|| run(&s, s.seed).expect("runs")));
    }
    group.finish();
    let mut group = c.benchmark_group("ap_cluster");
    group.sample_size(10);
    for file in ["nacos-crash.toml", "nacos-partition.toml"] {
        let s = canonical(file);
        let events = run(&s, s.seed).expect("runs").report.events;
        group.throughput(Throughput::Elements(events));
        group.bench_function(file.trim_end_matches(".toml"), |b| b.iter(|| run(&s, s.seed).expect("runs")));
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
