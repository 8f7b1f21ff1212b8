//! One run of a scenario: build the world, run it in chunks while the streaming analyzer reads
//! the observations, check invariants, make the report.

use std::collections::BTreeMap;

use crate::check;
use crate::fault::{FaultAction, Topology};
use crate::metrics::consistency::Consistency;
use crate::metrics::detection::Timing;
use crate::metrics::elections::Elections;
use crate::metrics::family::Judge;
use crate::metrics::load::LoadAnalyzer;
use crate::metrics::{Analyzer, DetectionParams};
use crate::report::Report;
use crate::report::model;
use crate::scenario::build::{CONSUMERS, INSTANCES, SERVERS};
use crate::scenario::{Built, Scenario, build};
use regsim_kernel::net::NetStats;
use regsim_kernel::{FaultRecord, Outcome, SimDuration, SimTime, What};

/// Virtual time run between two reads of the observation log. Short, so the log stays in
/// cache: on the heartbeat workload (one record per beat, 2,000 per virtual second) a 60 s chunk
/// made a 5.8 MB log, and writing its records into cold lines cost ~10 % of the run time.
pub const CHUNK: SimDuration = SimDuration::from_secs(1);

/// Everything a run produced.
pub struct RunOutput {
    pub report: Report,
    pub analyzer: Analyzer,
    /// Every sample the Prometheus server stored (monitoring scenarios), for `metrics.om`.
    pub prometheus_store: Option<crate::monitor::Store>,
}

impl RunOutput {
    pub fn failed_invariants(&self) -> impl Iterator<Item = &check::Invariant> {
        self.report.invariants.iter().filter(|i| !i.holds)
    }
    pub fn hit_limit(&self) -> bool {
        self.report.outcome == Outcome::EventLimit
    }
}

/// The largest one-way latency any link can draw, if every distribution is bounded.
pub fn latency_bound(s: &Scenario) -> Option<SimDuration> {
    let mut max = s.network.latency.max_bound()?;
    for l in &s.network.links {
        if let Some(lat) = &l.latency {
            max = max.max(lat.max_bound()?);
        }
    }
    Some(max)
}

/// Runs `world` to `end` (or the event limit) in [`CHUNK`]s of virtual time, handing each
/// chunk's records, in order, and the virtual time reached to `each`: the one loop of
/// `run` and `explain`.
pub fn drive(
    world: &mut regsim_kernel::World<crate::protocol::Node>,
    end: SimTime,
    max_events: u64,
    each: &mut dyn FnMut(&[regsim_kernel::Record<crate::protocol::Obs>], SimTime),
) -> Outcome {
    let mut records = Vec::new();
    loop {
        let stop = (world.now() + CHUNK).min(end);
        let outcome = world.run_until(stop, max_events);
        world.take_records(&mut records);
        each(&records, world.now());
        records.clear();
        match outcome {
            Outcome::ReachedEnd if stop < end => continue,
            other => break other,
        }
    }
}

/// Runs `scenario` with `seed`. The scenario must have been validated by `scenario::load`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<RunOutput, String> {
    run_with_progress(scenario, seed, &mut |_, _| {})
}

/// [`run`], calling `progress(now, end)` after every virtual second (the CLI's progress bar;
/// it cannot change the run).
pub fn run_with_progress(
    scenario: &Scenario,
    seed: u64,
    progress: &mut dyn FnMut(SimTime, SimTime),
) -> Result<RunOutput, String> {
    let mut built = build(scenario, seed).map_err(|(p, m)| format!("{p}: {m}"))?;
    let end = SimTime(scenario.duration.as_nanos());
    let mut collector = Collector::new(scenario, seed, &built.topology, built.world.fault_actions().to_vec())?;
    let outcome = drive(&mut built.world, end, scenario.limits.max_events, &mut |records, now| {
        collector.ingest(records);
        progress(now, end);
    });
    let servers = built.servers();
    let world = &built.world;
    let raft_logs = servers.into_iter().filter_map(|n| world.actor(n).raft_log_terms()).collect();
    let summary = DriverSummary {
        virtual_duration_s: world.now().as_secs_f64(),
        events: world.events(),
        digest: world.digest_hex(),
        outcome,
        network: world.network().stats,
        raft_logs,
    };
    let mut out = collector.finish(scenario, seed, &built.topology, summary);
    out.prometheus_store = prometheus_stores(scenario, &mut built);
    Ok(out)
}

/// Every sample the Prometheus servers stored, in one store for export. With one server, its
/// store as it is; with several, each series gets a `prometheus` label naming its server (the
/// region, or `global`), since a federated series exists on both servers.
fn prometheus_stores(scenario: &Scenario, built: &mut Built) -> Option<crate::monitor::Store> {
    use crate::scenario::build::{GLOBAL_PROMETHEUS, PROMETHEUS};
    let mut servers = Vec::new();
    for (role, name) in [(PROMETHEUS, None), (GLOBAL_PROMETHEUS, Some("global"))] {
        let Some(r) = built.topology.role(role) else { continue };
        for k in 0..r.count {
            let label = name.map(str::to_string).or_else(|| scenario.regions.get(k as usize).cloned());
            servers.push((regsim_kernel::NodeId(r.first + k), label.unwrap_or_else(|| k.to_string())));
        }
    }
    let mut stores: Vec<(String, crate::monitor::Store)> = servers
        .into_iter()
        .filter_map(|(n, label)| match built.world.actor_mut(n) {
            crate::protocol::Node::Prometheus(p) => Some((label, p.take_store())),
            _ => None,
        })
        .collect();
    if stores.len() <= 1 {
        return stores.pop().map(|(_, s)| s);
    }
    let mut merged = crate::monitor::Store::default().with_max_series(usize::MAX);
    for (label, store) in &stores {
        for (labels, samples) in store.series() {
            let mut l = labels.clone();
            l.set("prometheus".into(), label.clone());
            for x in samples {
                // Series are distinct per server and samples in order: appends cannot fail.
                let _ = merged.append(&l, x.t, x.v);
            }
        }
    }
    Some(merged)
}

/// What a driver knows about its run besides the observation log.
pub struct DriverSummary {
    pub virtual_duration_s: f64,
    pub events: u64,
    /// Hex of the driver's event hash (digests of different drivers are not comparable).
    pub digest: String,
    pub outcome: Outcome,
    pub network: NetStats,
    /// CP mode: each server's log terms at the end, in server order.
    pub raft_logs: Vec<Vec<u64>>,
}

/// Turns a driver's observation log into a [`Report`]: every driver (the core `World`, the
/// madsim tier) feeds it records with their true virtual times, so reports come from one code.
pub struct Collector {
    analyzer: Analyzer,
    faults: BTreeMap<String, u64>,
    /// The registry promises convergence after a heal (AP, eventual consistency).
    converges: bool,
}

impl Collector {
    /// `fault_actions` is the schedule that `FaultRecord::Applied` indexes.
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        topology: &Topology,
        fault_actions: Vec<FaultAction>,
    ) -> Result<Collector, String> {
        let end = SimTime(scenario.duration.as_nanos());
        let role = |name: &str| topology.role(name).map_or(0..0, |r| r.first..r.first + r.count);
        let health = &scenario.registry.health;
        let latency_max = latency_bound(scenario);
        let slack = latency_max.map_or(SimDuration::from_secs(1), |l| l.saturating_mul(4));
        let gateways = role(crate::scenario::build::GATEWAYS);
        let params = DetectionParams {
            instances: role(INSTANCES),
            servers: role(SERVERS),
            // Behind gateways, the gateways keep the views and balance.
            consumers: if gateways.is_empty() { role(CONSUMERS) } else { gateways.clone() },
            gateways,
            regions: scenario.region_count(),
            api_window: scenario.metrics.api_window,
            // A fault holds a beat for up to the client's answer timeout (a reply retransmitted
            // behind a partition, a paused server) before the mark can follow.
            lookback: scenario.instances.answer_timeout(scenario.network.transport.registry)
                + health.unhealthy_after
                + health.check_interval
                + slack,
            stream_tail: scenario.network.transport.any_stream().then_some({
                let tcp = &scenario.network.transport.tcp;
                (tcp.rto_min, tcp.rto_max)
            }),
            lossy: !lossless(scenario),
            traffic: scenario.consumers.count > 0 && scenario.consumers.call_rate > 0.0,
            sample_interval: scenario.metrics.sample_interval,
            end,
        };
        let load = if params.traffic { Some(load_analyzer(scenario, seed)?) } else { None };
        // The families and what each promises, chosen from the scenario: a CP registry runs
        // Raft and promises linearizable reads; an AP one promises convergence after a heal.
        let cp = scenario.registry.mode == crate::scenario::schema::RegistryMode::Cp;
        let m = &scenario.metrics;
        let elections = Elections::new(cp);
        let consistency = Consistency::new(m.max_history_ops as usize, cp, m.consistency, m.max_checker_states);
        Ok(Collector {
            analyzer: Analyzer::new(params, fault_actions, load, elections, consistency),
            faults: BTreeMap::new(),
            converges: !cp,
        })
    }

    /// Reads the next records of the log (in time order).
    pub fn ingest(&mut self, records: &[regsim_kernel::Record<crate::protocol::Obs>]) {
        count_faults(records, &mut self.faults);
        self.analyzer.ingest(records);
    }

    /// Checks the invariants and makes the report.
    pub fn finish(self, scenario: &Scenario, seed: u64, topology: &Topology, run: DriverSummary) -> RunOutput {
        let Collector { mut analyzer, faults, converges } = self;
        if matches!(run.outcome, Outcome::EventLimit) {
            analyzer.stop_at(SimTime((run.virtual_duration_s * 1e9) as u64));
        }
        analyzer.finish();
        let api = analyzer.api.take().map(|a| {
            let gateways: Vec<regsim_kernel::NodeId> =
                analyzer.params().gateways.clone().map(regsim_kernel::NodeId).collect();
            // Shaded in the plot: partitions and instance crashes.
            let mut shaded: Vec<(f64, f64)> = analyzer
                .history
                .partition_spans
                .iter()
                .map(|(a, b)| (a.as_secs_f64(), b.as_secs_f64()))
                .chain(analyzer.detection.episodes.iter().map(|e| (e.crashed.as_secs_f64(), e.ended.as_secs_f64())))
                .collect();
            shaded.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            a.finish(&analyzer.detection.episodes, &gateways, shaded)
        });
        let health = &scenario.registry.health;
        let timing = Timing {
            unhealthy_after: health.unhealthy_after,
            check_interval: health.check_interval,
            beat_interval: scenario.instances.beat_interval,
            latency_max: latency_bound(scenario),
            lossless: lossless(scenario),
        };
        let mut invariants =
            crate::metrics::detection::invariants(&analyzer.detection, &analyzer.history, analyzer.params(), &timing);
        if converges {
            let bound = settle_timing(scenario, timing.latency_max).bound();
            let quiet = if timing.lossless {
                quiet_end(&analyzer)
            } else {
                Err("needs a lossless network (with loss, beats and syncs keep getting lost and some copy can be \
                     wrong at every sample)"
                    .to_string())
            };
            // Where the run ended (earlier than the scenario's end when it hit its event limit:
            // convergence after that is not judged).
            let end = analyzer.params().end;
            invariants.push(crate::metrics::convergence::converged_after_heal(&analyzer.settle, quiet, bound, end));
        }
        let end_time = analyzer.params().end;
        let judge = Judge { timing: &timing, raft_logs: &run.raft_logs, end: end_time };
        invariants.extend(analyzer.family_invariants(&judge));
        let mut consistency = analyzer.consistency.report.take().expect("the consistency family finished");
        {
            let (h, p) = (&analyzer.history, analyzer.params());
            let faulted = |from: SimTime, to: SimTime| {
                crate::metrics::detection::servers_faulted(h, p, from, to)
                    || h.partition_spans.iter().any(|&(a, b)| a <= to && b >= from)
            };
            if consistency.stale_lists > 0 {
                let reads = crate::metrics::consistency::stale_reads(&analyzer.consistency.log.ops);
                consistency.stale = crate::metrics::consistency::StaleReads::of(&reads, faulted);
            }
            let v = &consistency.violation;
            if let Some(first) = v.iter().map(|o| o.invoke_s).reduce(f64::min) {
                let last = v.iter().map(|o| o.complete_s.unwrap_or(end_time.as_secs_f64())).fold(first, f64::max);
                let at = |x: f64| SimTime((x * 1e9).round() as u64);
                consistency.witness_during_faults = Some(faulted(at(first), at(last)));
            }
        }
        if let Some(a) = &api {
            invariants.push(a.invariant.clone());
        }
        let mut report = Report {
            scenario: scenario.name.clone(),
            seed,
            regsim_version: env!("CARGO_PKG_VERSION").to_string(),
            virtual_duration_s: run.virtual_duration_s,
            events: run.events,
            digest: run.digest,
            outcome: run.outcome,
            topology: topology.roles.iter().map(|r| (r.name.clone(), r.count)).collect(),
            faults,
            warnings: scenario.warnings.clone(),
            detection: model::DetectionReport::from(&analyzer.detection, analyzer.params()),
            false_positives: model::FalsePositives::from(&analyzer.detection, analyzer.params()),
            availability: model::AvailabilityReport::from(&analyzer.availability),
            staleness: model::StalenessReport::from(&analyzer.staleness, analyzer.params()),
            convergence: analyzer.convergence.iter().map(model::ConvergenceReport::from).collect(),
            load: analyzer.load.as_ref().map(model::load_report),
            elections: model::ElectionsReport::from(&analyzer.elections),
            consistency,
            alerts: scenario.monitoring.as_ref().map(|m| alerts(&analyzer, scenario, m, topology, end_time)),
            rules: scenario.monitoring.as_ref().map(|_| {
                crate::metrics::alerts::rules_report(&analyzer.monitor, &|n| server_name(scenario, topology, n))
            }),
            api,
            slowest_crash: model::SlowestCrash::of(&analyzer.detection, end_time, |n| topology.name(n)),
            network: run.network,
            invariants,
        };
        name_nodes(&mut report, topology);
        RunOutput { report, analyzer, prometheus_store: None }
    }
}

/// Nodes in the report's words by role and index (`instances[2]`, not `n26`): every field
/// that names a node, and node ids in details (`Topology::rename_nodes`).
fn name_nodes(r: &mut Report, t: &Topology) {
    for i in &mut r.invariants {
        i.detail = t.rename_nodes(&i.detail);
    }
    let c = &mut r.consistency;
    c.detail = t.rename_nodes(&c.detail);
    for o in &mut c.violation {
        o.client = t.rename_nodes(&o.client);
        o.op = t.rename_nodes(&o.op);
    }
    for i in r.elections.iter_mut().flat_map(|e| &mut e.isolations) {
        i.leader = t.rename_nodes(&i.leader);
    }
    if let Some(a) = &mut r.api {
        for c in &mut a.crashes {
            c.instance = t.rename_nodes(&c.instance);
            c.gateway = t.rename_nodes(&c.gateway);
        }
        a.breaker_openings_by_instance = std::mem::take(&mut a.breaker_openings_by_instance)
            .into_iter()
            .map(|(k, v)| (t.rename_nodes(&k), v))
            .collect();
        a.invariant.detail = t.rename_nodes(&a.invariant.detail);
        if let Some(z) = &mut a.zoom {
            z.instance = t.rename_nodes(&z.instance);
            z.gateway = t.rename_nodes(&z.gateway);
        }
    }
    if let Some(a) = &mut r.alerts {
        let global = a.global.iter_mut().flat_map(|g| g.rules.iter_mut());
        for rule in a.rules.iter_mut().chain(global) {
            for n in rule.never_fired.iter_mut().chain(rule.never_notified.iter_mut()) {
                n.instance = t.rename_nodes(&n.instance);
                n.reason = t.rename_nodes(&n.reason);
            }
        }
    }
}

/// The name of a Prometheus server in reports: its region (or index), or `global`.
fn server_name(s: &Scenario, topology: &Topology, n: regsim_kernel::NodeId) -> String {
    match topology.role_of(n) {
        Some((r, _)) if r.name == crate::scenario::build::GLOBAL_PROMETHEUS => "global".into(),
        Some((_, k)) => s.regions.get(k as usize).cloned().unwrap_or_else(|| k.to_string()),
        None => n.to_string(),
    }
}

/// The `alerts` family: regional rules on each instance's regional server, global rules on the
/// global server.
fn alerts(
    a: &Analyzer,
    s: &Scenario,
    m: &crate::protocol::monitoring::settings::MonitoringSpec,
    topology: &Topology,
    end: SimTime,
) -> crate::metrics::alerts::AlertsReport {
    use crate::metrics::alerts::{Tier, alerts_report};
    use crate::scenario::build::{GLOBAL_PROMETHEUS, PROMETHEUS};
    use regsim_kernel::NodeId;
    let region_of = |n: NodeId| topology.region_of(n).and_then(|r| s.regions.get(r as usize).cloned());
    let regional_server =
        |n: NodeId| Some(NodeId(topology.role(PROMETHEUS)?.block(topology.region_of(n).unwrap_or(0)).first));
    let global_server = |_: NodeId| topology.role(GLOBAL_PROMETHEUS).map(|r| NodeId(r.first));
    let nodes =
        |role: &str| topology.role(role).map_or(Vec::new(), |r| (r.first..r.first + r.count).map(NodeId).collect());
    let (regional_servers, global_servers) = (nodes(PROMETHEUS), nodes(GLOBAL_PROMETHEUS));
    let regional = Tier {
        groups: &m.loaded,
        server_of: &regional_server,
        region_of: &region_of,
        extra: SimDuration::ZERO,
        evaluation_interval: m.prometheus.evaluation_interval,
        global: false,
        federated_from: None,
        servers: &regional_servers,
        instances: a.params().instances.clone(),
    };
    let global = m.global.as_ref().map(|g| Tier {
        groups: &g.loaded,
        server_of: &global_server,
        region_of: &region_of,
        extra: g.scrape_interval + g.scrape_timeout,
        evaluation_interval: g.evaluation_interval,
        global: true,
        federated_from: Some(&regional_server),
        servers: &global_servers,
        instances: a.params().instances.clone(),
    });
    alerts_report(&a.monitor, &a.detection.episodes, m, end, &regional, global.as_ref())
}

/// The timing `converged_after_heal` derives its bound from.
pub fn settle_timing(s: &Scenario, latency_max: Option<SimDuration>) -> crate::metrics::convergence::SettleTiming {
    let r = &s.registry;
    crate::metrics::convergence::SettleTiming {
        servers: r.servers,
        report_interval: r.membership.report_interval,
        report_timeout: r.membership.report_timeout,
        beat_interval: s.instances.beat_interval,
        request_timeout: s.instances.answer_timeout(s.network.transport.registry),
        unhealthy_after: r.health.unhealthy_after,
        check_interval: r.health.check_interval,
        sync_delay: r.distro.sync_delay,
        sync_timeout: r.distro.sync_timeout,
        sync_retry: r.distro.sync_retry,
        verify_interval: r.distro.verify_interval,
        sample_interval: s.metrics.sample_interval,
        hop: latency_max.unwrap_or(SimDuration::from_secs(1)),
        servers_restart: s.faults.iter().any(|f| {
            use crate::fault::ActionKind::{Crash, Restart};
            let server = |t: &String| t.contains("servers") || t.contains("leader") || t == "all" || t == "rest";
            matches!(f.action, Crash | Restart) && f.target.as_ref().is_none_or(|t| t.0.iter().any(server))
        }),
        views: (s.consumers.count > 0).then(|| {
            let c = &s.consumers;
            // As scenario::build: 10 s with push on, 3 s with push off (AP runs only here).
            let default_poll = if s.registry.push.enabled { 10 } else { 3 };
            crate::metrics::convergence::ViewTiming {
                poll_interval: c.poll_interval.unwrap_or(SimDuration::from_secs(default_poll)),
                backoff_max: c.backoff_max,
                query_timeout: c.answer_timeout(s.network.transport.registry),
            }
        }),
    }
}

/// Whether the run ends quiet: no partition active, every server running, no clock skewed.
fn quiet_end(a: &Analyzer) -> Result<(), String> {
    let h = &a.history;
    if let Some(id) = h.active.keys().next() {
        return Err(format!("partition {id} is still active at the end"));
    }
    if let Some(s) = a.params().servers.clone().map(regsim_kernel::NodeId).find(|s| !h.running(*s)) {
        return Err(format!("server {s} is down or paused at the end"));
    }
    if let Some(n) = a.settle.skewed.first() {
        return Err(format!("node {n}'s clock is still skewed at the end"));
    }
    Ok(())
}

fn lossless(s: &Scenario) -> bool {
    s.network.loss == 0.0 && s.network.links.iter().all(|l| l.loss.unwrap_or(0.0) == 0.0)
}

/// Groups consumers by balancer (consumer i uses `balancers[i % len]`, as the world does);
/// behind gateways, the gateways are the balancers.
fn load_analyzer(s: &Scenario, seed: u64) -> Result<LoadAnalyzer, String> {
    let err = |(p, m): (String, String)| format!("{p}: {m}");
    let (specs, count) = match &s.gateway {
        Some(g) => (vec![crate::scenario::build::gateway_spec(s).map_err(err)?], g.count * s.region_count()),
        None => (crate::scenario::build::balancer_specs(s).map_err(err)?, s.consumers.count * s.region_count()),
    };
    let per_consumer = (0..count as usize).map(|i| {
        let spec = specs[i % specs.len()].clone();
        (spec.to_string(), spec)
    });
    let dist: crate::balance::keys::KeyDist =
        s.consumers.keys.parse().map_err(|e: crate::balance::BalanceError| e.to_string())?;
    let keys = crate::balance::keys::KeySampler::new(&dist, seed).map_err(|e| e.to_string())?;
    Ok(LoadAnalyzer::new(per_consumer.collect(), &keys, seed))
}

fn count_faults(records: &[regsim_kernel::Record<crate::protocol::Obs>], out: &mut BTreeMap<String, u64>) {
    for r in records {
        let What::Fault(f) = r.what else { continue };
        let key = match f {
            FaultRecord::Crashed => "crashed",
            FaultRecord::Restarted => "restarted",
            FaultRecord::Paused => "paused",
            FaultRecord::Resumed => "resumed",
            FaultRecord::Partitioned(_) => "partitioned",
            FaultRecord::Healed(_) => "healed",
            FaultRecord::ClockSkewed { .. } => "clock_skewed",
            FaultRecord::Applied(_) | FaultRecord::Isolated(_) => continue,
        };
        *out.entry(key.to_string()).or_insert(0) += 1;
    }
}
