//! One run of a scenario: build the world, run it, measure, check invariants, make the report.

use std::collections::BTreeMap;

use crate::check::{self, Timing};
use crate::engine::{FaultRecord, Outcome, SimTime, What};
use crate::metrics::{self, Detection, DetectionParams};
use crate::report::Report;
use crate::report::model::{DetectionReport, FalsePositives};
use crate::scenario::{Scenario, build};

/// Everything a run produced.
pub struct RunOutput {
    pub report: Report,
    pub detection: Detection,
}

impl RunOutput {
    pub fn failed_invariants(&self) -> impl Iterator<Item = &check::Invariant> {
        self.report.invariants.iter().filter(|i| !i.holds)
    }
    pub fn hit_limit(&self) -> bool {
        self.report.outcome == Outcome::EventLimit
    }
}

/// Runs `scenario` with `seed`. The scenario must have been validated by `scenario::load`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<RunOutput, String> {
    let mut built = build(scenario, seed).map_err(|(p, m)| format!("{p}: {m}"))?;
    let end = SimTime(scenario.duration.as_nanos());
    let outcome = built.world.run_until(end, scenario.limits.max_events);
    let world = &built.world;
    let role = |name: &str| built.topology.role(name).map_or(0..0, |r| r.first..r.first + r.count);
    let health = &scenario.registry.health;
    let latency_max = scenario.network.latency.max_bound();
    let links_bounded =
        scenario.network.links.iter().all(|l| l.latency.as_ref().is_none_or(|x| x.max_bound().is_some()));
    let latency_max = latency_max.filter(|_| links_bounded).map(|l| {
        scenario
            .network
            .links
            .iter()
            .filter_map(|x| x.latency.as_ref().and_then(|y| y.max_bound()))
            .fold(l, std::cmp::max)
    });
    let lossless = scenario.network.loss == 0.0 && scenario.network.links.iter().all(|l| l.loss.unwrap_or(0.0) == 0.0);
    let slack = latency_max.map_or(crate::engine::SimDuration::from_secs(1), |l| l.saturating_mul(2));
    let params = DetectionParams {
        instances: role(crate::scenario::build::INSTANCES),
        servers: role(crate::scenario::build::SERVERS),
        lookback: health.unhealthy_after + health.check_interval + slack,
        lossy: !lossless,
        end: world.now(),
    };
    let (detection, server_faults) = metrics::analyze(world.records(), &params);
    let timing = Timing {
        unhealthy_after: health.unhealthy_after,
        check_interval: health.check_interval,
        beat_interval: scenario.instances.beat_interval,
        latency_max,
        lossless,
    };
    let invariants = check::check(&detection, &server_faults, &params, &timing);
    let report = Report {
        scenario: scenario.name.clone(),
        seed,
        regsim_version: env!("CARGO_PKG_VERSION").to_string(),
        virtual_duration_s: world.now().as_secs_f64(),
        events: world.events(),
        digest: world.digest_hex(),
        outcome,
        topology: built.topology.roles.iter().map(|r| (r.name.clone(), r.count)).collect(),
        faults: fault_counts(world.records()),
        detection: DetectionReport::from(&detection),
        false_positives: FalsePositives::from(&detection),
        network: world.network().stats,
        invariants,
    };
    Ok(RunOutput { report, detection })
}

fn fault_counts(records: &[crate::engine::Record<crate::protocol::Obs>]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
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
        };
        *out.entry(key.to_string()).or_insert(0) += 1;
    }
    out
}
