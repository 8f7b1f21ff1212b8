//! The report model, serialized as `report.json` (contract in DESIGN.md). A report is a pure
//! function of (scenario, overrides, seed, regsim version): no wall-clock times, no paths.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::Invariant;
use crate::metrics::Summary;
use crate::metrics::analyzer::{Availability, ByKind, Convergence, Staleness};
pub use crate::metrics::consistency::{ConsistencyReport, OpReport};
use crate::metrics::detection::{Cause, Detection, DetectionParams, Eviction, Stage};
use crate::metrics::stats::round_ns;
use crate::protocol::RequestKind;
use regsim_kernel::Outcome;
use regsim_kernel::net::NetStats;

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
    /// Settings that ran but cannot work as meant (`Scenario::threshold_warnings`, located).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub detection: DetectionReport,
    pub false_positives: FalsePositives,
    pub availability: AvailabilityReport,
    /// Present when the scenario has consumers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staleness: Option<StalenessReport>,
    /// One entry per heal of the last active partition.
    pub convergence: Vec<ConvergenceReport>,
    /// CP mode: leader elections after leader crashes or pauses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elections: Option<ElectionsReport>,
    /// Per balancer (by canonical spec), when consumers send traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<BTreeMap<String, LoadReport>>,
    pub consistency: ConsistencyReport,
    /// Monitoring: alert latencies after crashes and the crashes no alert fired for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<crate::metrics::alerts::AlertsReport>,
    /// Monitoring: every rule's health, evaluations, errors, quarantine, times fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<crate::metrics::alerts::RuleReport>>,
    /// API gateways: request rate, errors and latency per window, traffic to dead instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<crate::metrics::api::ApiReport>,
    /// The crash episode the system took longest to catch up with, stage by stage (the report's
    /// pointer to `regsim explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowest_crash: Option<SlowestCrash>,
    pub network: NetStats,
    pub invariants: Vec<Invariant>,
}

/// The slowest-detected crash: per stage, seconds from the crash (absent: not reached).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SlowestCrash {
    pub instance: String,
    pub crashed_at_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarted_at_s: Option<f64>,
    /// (stage, seconds from the crash), in pipeline order.
    pub stages: Vec<(String, Option<f64>)>,
}

impl SlowestCrash {
    /// The episode whose last applicable stage (every view updated, else gone from every
    /// server) came latest; episodes that never got there do not compete (they are counted
    /// as "never" in the detection table).
    pub fn of(
        d: &Detection,
        end: regsim_kernel::SimTime,
        name: impl Fn(regsim_kernel::NodeId) -> String,
    ) -> Option<SlowestCrash> {
        let last = |e: &crate::metrics::detection::Episode| {
            let t = if e.viewed { e.views_updated } else { e.replicated };
            t.map(|t| t - e.crashed)
        };
        let e = d.episodes.iter().filter(|e| e.listed).filter_map(|e| last(e).map(|l| (l, e))).max_by_key(|x| x.0)?.1;
        let since = |t: Option<regsim_kernel::SimTime>| t.map(|t| round_ns((t - e.crashed).as_secs_f64()));
        let mut stages = vec![
            ("unhealthy".to_string(), since(e.unhealthy)),
            ("deleted".to_string(), since(e.deleted)),
            ("replicated".to_string(), since(e.replicated)),
        ];
        if e.viewed {
            stages.push(("views_updated".to_string(), since(e.views_updated)));
            if e.last_call.is_some() {
                stages.push(("traffic_stopped".to_string(), since(e.last_call)));
            }
        }
        Some(SlowestCrash {
            instance: name(e.instance),
            crashed_at_s: e.crashed.as_secs_f64(),
            restarted_at_s: (e.ended < end).then(|| e.ended.as_secs_f64()),
            stages,
        })
    }
}

/// One entry per stage the model has, measured from the ground-truth crash.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DetectionReport {
    pub unhealthy: StageReport,
    pub deleted: StageReport,
    pub replicated: StageReport,
    /// Present when the scenario has consumers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub views_updated: Option<StageReport>,
    /// Present when consumers send traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_stopped: Option<StageReport>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StageReport {
    #[serde(flatten)]
    pub summary: Summary,
    /// Crash episodes that ended (restart or end of run) before this stage happened.
    pub missed: u64,
    /// Of `missed`, the episodes the instance's restart ended ("restarted before detection");
    /// the rest ran to the end of the run.
    pub restarted_first: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FalsePositives {
    /// Wrongful evictions of live instances: each outage of a live instance counted once (a
    /// wrongful mark and the deletion that follows it before the instance comes back are one).
    pub count: u64,
    /// `count` per instance-hour (instances in the topology × virtual hours).
    pub per_instance_hour: f64,
    /// Wrongful marks (unhealthy) and wrongful deletions, each counted.
    pub unhealthy: u64,
    pub deleted: u64,
    /// Distinct live instances wrongly evicted at least once.
    pub instances: u64,
    /// Wrongly evicted instances that came back (healthy again or re-registered).
    pub flaps: u64,
    pub causes: BTreeMap<Cause, u64>,
}

impl StageReport {
    pub fn from(s: &Stage) -> Self {
        StageReport { summary: Summary::of(&s.latencies_s), missed: s.missed, restarted_first: s.restarted }
    }
}

impl DetectionReport {
    pub fn from(d: &Detection, p: &DetectionParams) -> Self {
        let consumers = p.consumers.end > p.consumers.start;
        DetectionReport {
            unhealthy: StageReport::from(&d.unhealthy),
            deleted: StageReport::from(&d.deleted),
            replicated: StageReport::from(&d.replicated),
            views_updated: consumers.then(|| StageReport::from(&d.views_updated)),
            traffic_stopped: p.traffic.then(|| StageReport::from(&d.traffic_stopped)),
        }
    }

    /// (stage name, report) in pipeline order, for tables and plots.
    pub fn stages(&self) -> Vec<(&'static str, &StageReport)> {
        let mut v = vec![("unhealthy", &self.unhealthy), ("deleted", &self.deleted), ("replicated", &self.replicated)];
        if let Some(s) = &self.views_updated {
            v.push(("views_updated", s));
        }
        if let Some(s) = &self.traffic_stopped {
            v.push(("traffic_stopped", s));
        }
        v
    }
}

/// Successes over attempts, per request kind.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Ratio {
    pub ok: u64,
    pub total: u64,
    /// `ok / total`; absent when there were no requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
}

pub type RatioByKind = BTreeMap<RequestKind, Ratio>;

fn ratios(m: &ByKind) -> RatioByKind {
    m.iter()
        .map(|(k, t)| {
            let fraction = (t.total > 0).then(|| round_ns(t.ok as f64 / t.total as f64));
            (k, Ratio { ok: t.ok, total: t.total, fraction })
        })
        .collect()
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AvailabilityReport {
    pub overall: RatioByKind,
    /// While a partition was active, a server down or paused, or a crashed instance still listed
    /// (in a consumer view; in a server copy, without consumers) and not restarted.
    pub during_faults: RatioByKind,
    pub outside_faults: RatioByKind,
    /// By the requester's side in the first active partition, named by the servers it holds:
    /// `majority (2 of 3 servers)`, `minority (1 of 3 servers)`, `no servers`, `unaffected`.
    pub by_side: BTreeMap<String, RatioByKind>,
}

impl AvailabilityReport {
    pub fn from(a: &Availability) -> Self {
        AvailabilityReport {
            overall: ratios(&a.overall),
            during_faults: ratios(&a.during_faults),
            outside_faults: ratios(&a.outside_faults),
            by_side: a.by_side.iter().map(|(side, v)| (side.clone(), ratios(v))).collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StalenessReport {
    pub sample_interval_s: f64,
    pub samples: u64,
    /// Time-weighted mean of the fraction of running consumers whose view is wrong.
    pub mean_fraction_wrong: f64,
    pub max_fraction_wrong: f64,
    /// The longest a single consumer's view stayed wrong (sampled).
    pub worst_wrong_duration_s: f64,
}

impl StalenessReport {
    pub fn from(s: &Staleness, p: &DetectionParams) -> Option<Self> {
        if p.consumers.end == p.consumers.start {
            return None;
        }
        let n = s.series.len();
        let mean = if n == 0 { 0.0 } else { s.series.iter().map(|x| x.1).sum::<f64>() / n as f64 };
        Some(StalenessReport {
            sample_interval_s: p.sample_interval.as_secs_f64(),
            samples: n as u64,
            mean_fraction_wrong: round_ns(mean),
            max_fraction_wrong: s.series.iter().map(|x| x.1).fold(0.0, f64::max),
            worst_wrong_duration_s: s.worst_wrong.as_secs_f64(),
        })
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ConvergenceReport {
    pub healed_at_s: f64,
    /// Seconds from the heal until every server copy and view matched ground truth (sampled);
    /// absent if that never happened before the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converged_after_s: Option<f64>,
}

impl ConvergenceReport {
    pub fn from(c: &Convergence) -> Self {
        ConvergenceReport {
            healed_at_s: c.healed_at.as_secs_f64(),
            converged_after_s: c.converged_at.map(|t| (t - c.healed_at).as_secs_f64()),
        }
    }
}

impl FalsePositives {
    pub fn from(d: &Detection, p: &DetectionParams) -> Self {
        let fps = &d.false_positives;
        let count = fps.iter().filter(|f| f.first).count() as u64;
        let hours = f64::from(p.instances.end - p.instances.start) * p.end.as_secs_f64() / 3600.0;
        let mut causes = BTreeMap::new();
        for f in fps.iter().filter(|f| f.first) {
            *causes.entry(f.cause).or_insert(0) += 1;
        }
        let distinct: std::collections::BTreeSet<_> = fps.iter().map(|f| f.instance).collect();
        FalsePositives {
            count,
            per_instance_hour: if hours > 0.0 { round_ns(count as f64 / hours) } else { 0.0 },
            unhealthy: fps.iter().filter(|f| f.eviction == Eviction::Unhealthy).count() as u64,
            deleted: fps.iter().filter(|f| f.eviction == Eviction::Deleted).count() as u64,
            instances: distinct.len() as u64,
            flaps: d.flaps,
            causes,
        }
    }
}

/// Balance statistics of per-instance request counts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Balance {
    pub instances: u64,
    pub max_over_mean: f64,
    pub cv: f64,
    pub p99_over_mean: f64,
    pub gini: f64,
}

impl Balance {
    fn from(s: &crate::balance::stats::LoadStats) -> Self {
        Balance {
            instances: s.nodes as u64,
            max_over_mean: round_ns(s.max_over_mean),
            cv: round_ns(s.cv),
            p99_over_mean: round_ns(s.p99_over_mean),
            gini: round_ns(s.gini),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LoadReport {
    pub consumers: u64,
    /// Attempts sent (retries included).
    pub requests: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overall: Option<Balance>,
    /// The 60 s window with the highest max/mean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_window: Option<Balance>,
    /// Latency of successful requests, all attempts included.
    pub latency: Summary,
    pub sent_to_dead: u64,
    pub sent_to_dead_fraction: f64,
    /// View changes seen by this balancer's consumers, with (key-based balancers only) the
    /// mean fraction of probe keys that moved and the mean ideal fraction.
    pub view_changes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_moved: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_ideal: Option<f64>,
    /// Key-based balancers: mean fraction of probe keys mapped differently by consumers whose
    /// views differ (sampled every 5 samples).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity_split: Option<f64>,
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { round_ns(sum / n as f64) }
}

pub fn load_report(l: &crate::metrics::load::LoadAnalyzer) -> BTreeMap<String, LoadReport> {
    l.groups
        .iter()
        .map(|g| {
            let requests: u64 = g.sent.values().sum();
            let r = LoadReport {
                consumers: g.consumers as u64,
                requests,
                overall: g.overall().as_ref().map(Balance::from),
                worst_window: g.worst_window.as_ref().map(Balance::from),
                latency: Summary::of(&g.latencies_s),
                sent_to_dead: g.sent_to_dead,
                sent_to_dead_fraction: if requests == 0 {
                    0.0
                } else {
                    round_ns(g.sent_to_dead as f64 / requests as f64)
                },
                view_changes: g.moves.len() as u64,
                mean_moved: g.key_based().then(|| mean(g.moves.iter().map(|m| m.0))),
                mean_ideal: g.key_based().then(|| mean(g.moves.iter().map(|m| m.1))),
                affinity_split: (g.key_based() && !g.split_samples.is_empty())
                    .then(|| mean(g.split_samples.iter().copied())),
            };
            (g.label.clone(), r)
        })
        .collect()
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ElectionsReport {
    /// Leader crashes or pauses followed by a new leader.
    pub incidents: u64,
    /// Seconds from the leader's crash to the next leader elected.
    pub downtime: Summary,
    /// Terms an incident used (1 = the first election won).
    pub terms_mean: f64,
    pub terms_max: u64,
    /// Elections that produced no leader (terms used beyond the first), over all incidents.
    pub split_votes: u64,
    /// Incidents with no leader at the end of the run.
    pub unresolved: u64,
    pub leaders_elected: u64,
    pub max_term: u64,
    /// Leader isolations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub isolations: Vec<IsolationReport>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct IsolationReport {
    pub leader: String,
    pub cut_at_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healed_at_s: Option<f64>,
    /// Seconds from the cut until the old leader stepped down (CheckQuorum); absent: it never did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stepped_down_after_s: Option<f64>,
    pub campaigns_while_cut: u64,
    /// How far the cut-off node's term grew while cut off.
    pub term_growth_while_cut: u64,
    pub elected_while_cut: u64,
    /// Leaders elected after the heal (0: the rejoin disrupted nothing).
    pub elected_after_heal: u64,
}

impl ElectionsReport {
    pub fn from(e: &crate::metrics::elections::Elections) -> Option<Self> {
        if e.leaders_elected == 0 && e.max_term == 0 {
            return None;
        }
        let downtimes: Vec<f64> = e.incidents.iter().map(|x| x.0).collect();
        Some(ElectionsReport {
            incidents: e.incidents.len() as u64,
            downtime: Summary::of(&downtimes),
            terms_mean: mean(e.incidents.iter().map(|x| x.1 as f64)),
            terms_max: e.incidents.iter().map(|x| x.1).max().unwrap_or(0),
            split_votes: e.incidents.iter().map(|x| x.1.saturating_sub(1)).sum(),
            unresolved: e.unresolved,
            leaders_elected: e.leaders_elected,
            max_term: e.max_term,
            isolations: e
                .isolations
                .iter()
                .map(|i| IsolationReport {
                    leader: i.leader.to_string(),
                    cut_at_s: i.cut_at.as_secs_f64(),
                    healed_at_s: i.healed_at.map(|t| t.as_secs_f64()),
                    stepped_down_after_s: i.stepped_down_at.map(|t| (t - i.cut_at).as_secs_f64()),
                    campaigns_while_cut: i.campaigns_while_cut,
                    term_growth_while_cut: i.max_term_while_cut - i.term,
                    elected_while_cut: i.elected_while_cut,
                    elected_after_heal: i.elected_after_heal,
                })
                .collect(),
        })
    }
}
