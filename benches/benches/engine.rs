//! Engine throughput on the heartbeat workload (DESIGN.md's reference workload): the full
//! engine with network model, observations, metrics and digest on. Throughput is reported in
//! events, so criterion prints events/s.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use regsim::run::run;
use regsim_benches::{canonical, heartbeat};

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("heartbeat");
    group.sample_size(10);
    // The whole `regsim run scenarios/heartbeat.toml` minus writing files (building the world,
    // the hour of virtual time, metrics and the report), at its 10,000 instances and at 1,000.
    for instances in [1_000u32, 10_000] {
        let s = heartbeat(instances, 3600);
        let events = run(&s, s.seed).expect("runs").report.events;
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("{instances}_instances_3600s"), |b| b.iter(|| run(&s, s.seed).expect("runs")));
    }
    group.finish();
    // Scaling: the same workload over 120 s of virtual time at 1k, 10k and 100k instances
    // (criterion's HTML report plots events/s against the instance count).
    let mut group = c.benchmark_group("heartbeat_scaling");
    group.sample_size(10);
    for instances in [1_000u32, 10_000, 100_000] {
        let s = heartbeat(instances, 120);
        let events = run(&s, s.seed).expect("runs").report.events;
        group.throughput(Throughput::Elements(events));
        group.bench_function(BenchmarkId::new("instances_120s", instances), |b| {
            b.iter(|| run(&s, s.seed).expect("runs"))
        });
    }
    group.finish();
    // The engine alone, as issue 2 defines its budget: network model, observations recorded
    // (drained and dropped every `run::CHUNK` of virtual time, as `run` does) and digest on; world
    // building and metrics excluded.
    let mut group = c.benchmark_group("engine_only");
    group.sample_size(10);
    let s = heartbeat(10_000, 600);
    let end = regsim_kernel::SimTime(s.duration.as_nanos());
    let chunk = regsim::run::CHUNK;
    let run_engine = || {
        let mut built = regsim::scenario::build(&s, s.seed).expect("builds");
        let w = &mut built.world;
        let mut buf = Vec::new();
        while w.now() < end {
            w.run_until((w.now() + chunk).min(end), u64::MAX);
            w.take_records(&mut buf);
            buf.clear();
        }
        w.events()
    };
    group.throughput(Throughput::Elements(run_engine()));
    group.bench_function("heartbeat_10000_instances_600s", |b| b.iter(run_engine));
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
    // Two regions with gateways, three Prometheus servers and Alertmanager (issue 9): the
    // whole run, rule evaluation, federation and the api family included.
    let mut group = c.benchmark_group("monitoring");
    group.sample_size(10);
    let s = canonical("monitoring-federation.toml");
    let events = run(&s, s.seed).expect("runs").report.events;
    group.throughput(Throughput::Elements(events));
    group.bench_function("monitoring-federation_7200s", |b| b.iter(|| run(&s, s.seed).expect("runs")));
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
