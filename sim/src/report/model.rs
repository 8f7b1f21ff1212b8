//! The report model, serialized as `report.json` (contract in DESIGN.md). A report is a pure
//! function of (scenario, overrides, seed, regsim version): no wall-clock times, no paths.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::Invariant;
use crate::engine::Outcome;
use crate::metrics::Summary;
use crate::metrics::detection::{Cause, Detection, Eviction};
use crate::net::NetStats;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub regsim_version: String,
    pub virtual_duration_s: f64,
    pub events: u64,
    pub digest: String,
    pub outcome: Outcome,
    /// Node count per role.
    pub topology: BTreeMap<String, u32>,
    /// Ground-truth faults injected, by kind (node-level counts).
    pub faults: BTreeMap<String, u64>,
    pub detection: DetectionReport,
    pub false_positives: FalsePositives,
    pub network: NetStats,
    pub invariants: Vec<Invariant>,
}

/// One entry per stage the model has, measured from the ground-truth crash.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DetectionReport {
    pub unhealthy: StageReport,
    pub deleted: StageReport,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StageReport {
    #[serde(flatten)]
    pub summary: Summary,
    /// Crash episodes that ended (restart or end of run) before this stage happened.
    pub missed: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FalsePositives {
    /// Wrongful evictions of live instances (marked unhealthy or deleted).
    pub count: u64,
    pub unhealthy: u64,
    pub deleted: u64,
    /// Distinct live instances wrongly evicted at least once.
    pub instances: u64,
    /// Wrongly evicted instances that came back (healthy again or re-registered).
    pub flaps: u64,
    pub causes: BTreeMap<Cause, u64>,
}

impl DetectionReport {
    pub fn from(d: &Detection) -> Self {
        let stage = |s: &crate::metrics::detection::Stage| StageReport {
            summary: Summary::of(&s.latencies_s),
            missed: s.missed,
        };
        DetectionReport { unhealthy: stage(&d.unhealthy), deleted: stage(&d.deleted) }
    }
}

impl FalsePositives {
    pub fn from(d: &Detection) -> Self {
        let fps = &d.false_positives;
        let mut causes = BTreeMap::new();
        for f in fps {
            *causes.entry(f.cause).or_insert(0) += 1;
        }
        let distinct: std::collections::BTreeSet<_> = fps.iter().map(|f| f.instance).collect();
        FalsePositives {
            count: fps.len() as u64,
            unhealthy: fps.iter().filter(|f| f.eviction == Eviction::Unhealthy).count() as u64,
            deleted: fps.iter().filter(|f| f.eviction == Eviction::Deleted).count() as u64,
            instances: distinct.len() as u64,
            flaps: d.flaps,
            causes,
        }
    }
}
