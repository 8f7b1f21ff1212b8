//! The streaming analyzer: reads the observation log in order, in chunks, and keeps only what
//! the measurements need (memory stays bounded however many beats a run has).
//!
//! Besides detection (see `detection`) it follows every server's copy and every consumer's
//! view, and samples every `sample_interval` of virtual time:
//! - **staleness**: the fraction of running consumers whose view differs from ground truth
//!   (the instances running and reachable both ways from that consumer, counted from their
//!   first registration so a booting instance is not "missing"), and how long a view
//!   stayed wrong (sampled, so durations are multiples of the interval);
//! - **convergence**: after the last active partition heals, the first sample at which every
//!   running server's healthy list equals the running instances and every view equals truth;
//! - **settling** (`Settle`): the first sample after the last disturbance (a fault record or
//!   an instance's first registration) at which every running server's copy is right, for the
//!   `converged_after_heal` invariant.
//!
//! **Availability** counts each finished request (register, beat, query, call) by outcome,
//! overall, inside and outside fault windows (a partition active or a server down or
//! paused), and by the requester's group in the first active partition.

use std::collections::{BTreeMap, BTreeSet};

use super::detection::{self, Detection, DetectionParams, Episode, Eviction, FalsePositive};
use super::family::{Family, Truth, region};
use super::history::History;
use super::load::LoadAnalyzer;
use crate::fault::FaultAction;
use crate::protocol::{CopyState, Obs, RequestKind};
use regsim_kernel::{FaultRecord, NodeId, Record, SimTime, What};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Count {
    Copies,
    Views,
}

#[derive(Clone, Copy, Debug, Default)]
struct Inst {
    episode: Option<usize>,
    listed: bool,
    /// Registered at least once: from then on it is part of ground truth while running.
    known: bool,
    wrongly_out: bool,
    copies: u32,
    views: u32,
    /// In a crash episode the system has not caught up with yet (see `Analyzer::open_crashes`).
    crash_open: bool,
}

/// Successes and attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: u64,
    pub total: u64,
}

/// Tallies indexed by `RequestKind` (a fixed array: this is on the per-request path).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByKind(pub [Tally; 4]);

impl ByKind {
    pub const KINDS: [RequestKind; 4] =
        [RequestKind::Register, RequestKind::Beat, RequestKind::Query, RequestKind::Call];

    /// The kinds that had requests, with their tallies.
    pub fn iter(&self) -> impl Iterator<Item = (RequestKind, Tally)> + '_ {
        Self::KINDS.iter().zip(self.0.iter()).filter(|(_, t)| t.total > 0).map(|(k, t)| (*k, *t))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Availability {
    pub overall: ByKind,
    pub during_faults: ByKind,
    pub outside_faults: ByKind,
    /// By the requester's side in the first active partition, named by the servers it holds
    /// (`Analyzer::side_name`).
    pub by_side: BTreeMap<String, ByKind>,
}

#[derive(Clone, Debug, Default)]
pub struct Staleness {
    /// (sample time, fraction of running consumers with a wrong view).
    pub series: Vec<(SimTime, f64)>,
    pub worst_wrong: regsim_kernel::SimDuration,
}

/// Convergence after the last disturbance (for the `converged_after_heal` invariant): the
/// last fault record or first registration of an instance, and the first sample at or after it
/// at which every running server's healthy list equals the running instances and every running
/// consumer's view equals the running instances it can reach.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settle {
    pub last_disturbance: SimTime,
    pub converged_at: Option<SimTime>,
    /// Nodes whose clock is skewed (offset or drift) right now.
    pub skewed: BTreeSet<NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Convergence {
    pub healed_at: SimTime,
    pub converged_at: Option<SimTime>,
}

pub struct Analyzer {
    p: DetectionParams,
    /// What the API gateways saw, when there are gateways.
    pub api: Option<super::api::ApiCollector>,
    pub history: History,
    pub detection: Detection,
    pub availability: Availability,
    pub staleness: Staleness,
    pub convergence: Vec<Convergence>,
    pub settle: Settle,
    inst: Vec<Inst>,
    copies: Vec<BTreeMap<NodeId, CopyState>>,
    views: Vec<BTreeSet<NodeId>>,
    wrong_since: Vec<Option<SimTime>>,
    next_sample: SimTime,
    /// Inside a fault window right now: a partition active, a server down, or an instance
    /// crash not yet caught up with (recomputed on every fault record and crash resolution).
    faulted: bool,
    /// Crashed instances whose crash the system has not caught up with: from the crash until
    /// no consumer view lists them (no server copy, without consumers), or their restart.
    open_crashes: u32,
    /// Side names of the first active partition by group (`side_name`), for the partition id
    /// they were computed for: a request during a partition allocates no name.
    side_names: Option<(u32, BTreeMap<Option<u16>, String>)>,
    /// Per-balancer load measurements, when consumers send traffic.
    pub load: Option<LoadAnalyzer>,
    samples_taken: u64,
    /// The families that follow their own observations (see `family`), in the order their
    /// invariants are listed: elections, consistency, alerts (`monitor`), then `api` above.
    pub elections: super::elections::Elections,
    /// Client-visible registry operations, for the linearizability checker.
    pub consistency: super::consistency::Consistency,
    /// What the monitoring actors (Prometheus, Alertmanager) reported.
    pub monitor: super::alerts::MonitorLog,
}

/// A partition side named by the servers it holds: `majority (2 of 3 servers)`, `minority
/// (1 of 3 servers)`, `no servers`; nodes in no group are `unaffected`.
fn side_name(servers: &std::ops::Range<u32>, p: &regsim_kernel::net::Partition, g: Option<u16>) -> String {
    let Some(g) = g else { return "unaffected".to_string() };
    let all = servers.end - servers.start;
    let mine = servers.clone().filter(|s| p.group_of(NodeId(*s)) == Some(g)).count() as u32;
    match mine {
        0 => "no servers".to_string(),
        m if 2 * m > all => format!("majority ({m} of {all} servers)"),
        m => format!("minority ({m} of {all} servers)"),
    }
}

fn offset(r: &std::ops::Range<u32>, n: NodeId) -> Option<usize> {
    (n.0 >= r.start && n.0 < r.end).then(|| (n.0 - r.start) as usize)
}

impl Analyzer {
    pub fn new(
        p: DetectionParams,
        actions: Vec<FaultAction>,
        load: Option<LoadAnalyzer>,
        elections: super::elections::Elections,
        consistency: super::consistency::Consistency,
    ) -> Self {
        let size = |r: &std::ops::Range<u32>| (r.end - r.start) as usize;
        Analyzer {
            inst: vec![Inst::default(); size(&p.instances)],
            copies: vec![BTreeMap::new(); size(&p.servers)],
            views: vec![BTreeSet::new(); size(&p.consumers)],
            wrong_since: vec![None; size(&p.consumers)],
            history: History::new(actions, p.servers.end.max(p.instances.end).max(p.consumers.end) as usize)
                .with_stream_tail(p.stream_tail),
            detection: Detection::default(),
            availability: Availability::default(),
            staleness: Staleness::default(),
            convergence: Vec::new(),
            settle: Settle::default(),
            next_sample: SimTime::ZERO,
            faulted: false,
            open_crashes: 0,
            side_names: None,
            load,
            samples_taken: 0,
            elections,
            consistency,
            monitor: Default::default(),
            api: (!p.gateways.is_empty()).then(|| super::api::ApiCollector::new(p.api_window)),
            p,
        }
    }

    pub fn params(&self) -> &DetectionParams {
        &self.p
    }

    pub fn ingest(&mut self, records: &[Record<Obs>]) {
        for r in records {
            while self.next_sample < r.time && self.next_sample <= self.p.end {
                self.sample(self.next_sample);
                self.next_sample += self.p.sample_interval;
            }
            if let Some(l) = &mut self.load {
                l.advance(r.time, &self.views);
            }
            match &r.what {
                What::Fault(f) => {
                    self.fault(r.time, r.node, *f);
                    let truth = Truth { p: &self.p, history: &self.history };
                    for family in
                        Self::families(&mut self.elections, &mut self.consistency, &mut self.monitor, &mut self.api)
                    {
                        family.fault(r.time, r.node, *f, &truth);
                    }
                }
                What::Actor(o) => {
                    self.observe(r.time, r.node, o);
                    self.route(r.time, r.node, o);
                }
            }
        }
    }

    /// Hands `o` to the separate family it is about (a static match: this runs for every
    /// observation, and most concern no separate family).
    #[inline]
    fn route(&mut self, t: SimTime, node: NodeId, o: &Obs) {
        let truth = Truth { p: &self.p, history: &self.history };
        let family: &mut dyn Family = match o {
            Obs::LeaderElected { .. }
            | Obs::Acked { .. }
            | Obs::Campaign { .. }
            | Obs::Committed { .. }
            | Obs::SteppedDown { .. } => &mut self.elections,
            Obs::OpStart { .. } | Obs::OpDone { .. } => &mut self.consistency,
            Obs::Target { .. } | Obs::ScrapeFailed { .. } | Obs::Alert(_) | Obs::Notified(_) | Obs::Rules(_) => {
                &mut self.monitor
            }
            Obs::ApiDone { .. } | Obs::Upstream { .. } | Obs::Breaker { .. } => match &mut self.api {
                Some(api) => api,
                None => return,
            },
            Obs::View { .. } | Obs::CallSent { .. } if truth.is_gateway(node) => match &mut self.api {
                Some(api) => api,
                None => return,
            },
            _ => return,
        };
        family.observe(t, node, o, &truth);
    }

    /// The separate families of this run, in order.
    fn families<'a>(
        elections: &'a mut super::elections::Elections,
        consistency: &'a mut super::consistency::Consistency,
        monitor: &'a mut super::alerts::MonitorLog,
        api: &'a mut Option<super::api::ApiCollector>,
    ) -> impl Iterator<Item = &'a mut dyn Family> {
        let fixed: [&'a mut dyn Family; 3] = [elections, consistency, monitor];
        fixed.into_iter().chain(api.as_mut().map(|a| a as &mut dyn Family))
    }

    /// The invariants of the separate families, in order.
    pub fn family_invariants(&self, j: &super::family::Judge<'_>) -> Vec<crate::check::Invariant> {
        let fixed: [&dyn Family; 3] = [&self.elections, &self.consistency, &self.monitor];
        fixed.into_iter().chain(self.api.as_ref().map(|a| a as &dyn Family)).flat_map(|f| f.invariants(j)).collect()
    }

    /// The run stopped early (its event limit) at `t`: everything after is left out, so the
    /// work after the run is bounded by what ran (sampling no longer walks to the scenario's
    /// end, e.g. 720 h of per-second samples after 1,000 events).
    pub fn stop_at(&mut self, t: SimTime) {
        self.p.end = self.p.end.min(t);
    }

    /// Samples up to the end and turns episodes into stage samples.
    pub fn finish(&mut self) {
        while self.next_sample <= self.p.end {
            self.sample(self.next_sample);
            self.next_sample += self.p.sample_interval;
        }
        self.history.finish(self.p.end);
        self.detection.finish(self.p.traffic, self.p.end);
        for family in Self::families(&mut self.elections, &mut self.consistency, &mut self.monitor, &mut self.api) {
            family.finish();
        }
        if let Some(l) = &mut self.load {
            l.finish(&self.views);
        }
    }

    fn fault(&mut self, t: SimTime, node: NodeId, f: FaultRecord) {
        self.disturbed(t);
        if let FaultRecord::ClockSkewed { offset_ns, drift_ppm } = f {
            if offset_ns != 0 || drift_ppm != 0 {
                self.settle.skewed.insert(node);
            } else {
                self.settle.skewed.remove(&node);
            }
        }
        let partitioned = !self.history.active.is_empty();
        self.history.ingest(t, node, f);
        if partitioned && self.history.active.is_empty() {
            self.convergence.push(Convergence { healed_at: t, converged_at: None });
        }
        self.refresh_faulted();
        match f {
            FaultRecord::Crashed => {
                if let Some(i) = offset(&self.p.instances, node) {
                    let s = &self.inst[i];
                    // Listed by the registry and healthy in some server's copy: a server that
                    // restarted empty may have lost the only copy before the next beat, and an
                    // instance already marked unhealthy (e.g. after a pause) has nothing left
                    // to detect.
                    let healthy = self.copies.iter().any(|c| c.get(&node) == Some(&CopyState::Healthy));
                    let open = s.views > 0 || (s.listed && healthy);
                    self.detection.episodes.push(Episode {
                        instance: node,
                        crashed: t,
                        ended: self.p.end,
                        listed: s.listed && healthy,
                        viewed: s.views > 0,
                        unhealthy: None,
                        deleted: None,
                        replicated: None,
                        views_updated: None,
                        last_call: None,
                    });
                    self.inst[i].episode = Some(self.detection.episodes.len() - 1);
                    if open {
                        self.inst[i].crash_open = true;
                        self.open_crashes += 1;
                        self.refresh_faulted();
                    }
                } else if let Some(s) = offset(&self.p.servers, node) {
                    for (n, _) in std::mem::take(&mut self.copies[s]) {
                        self.count(Count::Copies, t, n, false);
                    }
                } else if let Some(c) = offset(&self.p.consumers, node) {
                    for n in std::mem::take(&mut self.views[c]) {
                        self.count(Count::Views, t, n, false);
                    }
                }
            }
            FaultRecord::Restarted => {
                if let Some(i) = offset(&self.p.instances, node) {
                    self.close_crash(i);
                    if let Some(e) = self.inst[i].episode.take() {
                        self.detection.episodes[e].ended = t;
                    }
                }
            }
            _ => {}
        }
    }

    fn disturbed(&mut self, t: SimTime) {
        self.settle.last_disturbance = t;
        self.settle.converged_at = None;
    }

    fn refresh_faulted(&mut self) {
        let h = &self.history;
        self.faulted =
            self.open_crashes > 0 || !h.active.is_empty() || self.p.servers.clone().map(NodeId).any(|s| !h.running(s));
    }

    /// The system caught up with instance `i`'s crash (or it restarted): its fault window ends.
    fn close_crash(&mut self, i: usize) {
        if std::mem::take(&mut self.inst[i].crash_open) {
            self.open_crashes -= 1;
            self.refresh_faulted();
        }
    }

    fn episode(&mut self, n: NodeId) -> Option<&mut Episode> {
        let e = offset(&self.p.instances, n).and_then(|i| self.inst[i].episode)?;
        self.detection.episodes.get_mut(e)
    }

    /// A server copy (`Count::Copies`) or consumer view (`Count::Views`) gained or lost instance
    /// `n`; when none is left during a crash episode, that stage is reached.
    fn count(&mut self, which: Count, t: SimTime, n: NodeId, present: bool) {
        let Some(i) = offset(&self.p.instances, n) else { return };
        let c = match which {
            Count::Copies => &mut self.inst[i].copies,
            Count::Views => &mut self.inst[i].views,
        };
        *c = if present { *c + 1 } else { c.saturating_sub(1) };
        if *c == 0
            && let Some(e) = self.episode(n)
        {
            let last = if e.viewed { Count::Views } else { Count::Copies };
            let stage = match which {
                Count::Copies => &mut e.replicated,
                Count::Views => &mut e.views_updated,
            };
            stage.get_or_insert(t);
            if which == last {
                self.close_crash(i);
            }
        }
    }

    fn observe(&mut self, t: SimTime, node: NodeId, o: &Obs) {
        match *o {
            Obs::Copy { instance, state } => {
                let Some(s) = offset(&self.p.servers, node) else { return };
                let before = self.copies[s].get(&instance).copied().unwrap_or(CopyState::Absent);
                if state == CopyState::Absent {
                    self.copies[s].remove(&instance);
                } else {
                    self.copies[s].insert(instance, state);
                }
                match (before == CopyState::Absent, state == CopyState::Absent) {
                    (true, false) => self.count(Count::Copies, t, instance, true),
                    (false, true) => self.count(Count::Copies, t, instance, false),
                    _ => {}
                }
            }
            Obs::View { instance, present } => {
                let Some(c) = offset(&self.p.consumers, node) else { return };
                if let Some(l) = &mut self.load {
                    l.view_changing(c, t, &self.views[c]);
                }
                let changed = if present { self.views[c].insert(instance) } else { self.views[c].remove(&instance) };
                if changed {
                    self.count(Count::Views, t, instance, present);
                }
            }
            Obs::CallSent { instance } => {
                if let Some(e) = self.episode(instance) {
                    e.last_call = Some(t);
                }
                let dead = self.history.is_down.get(&instance).copied().unwrap_or(false);
                if let (Some(l), Some(c)) = (&mut self.load, offset(&self.p.consumers, node)) {
                    l.sent(c, instance, dead);
                }
            }
            Obs::CallDone { ok, latency } => {
                if let (Some(l), Some(c)) = (&mut self.load, offset(&self.p.consumers, node)) {
                    l.done(c, ok, latency);
                }
            }
            Obs::Request { kind, ok } => self.request(t, node, kind, ok),
            Obs::MarkedUnhealthy { instance } => self.eviction(t, instance, Eviction::Unhealthy),
            Obs::Deleted { instance } => self.eviction(t, instance, Eviction::Deleted),
            Obs::Registered { instance } | Obs::MarkedHealthy { instance } => {
                let Some(i) = offset(&self.p.instances, instance) else { return };
                if matches!(o, Obs::Registered { .. }) {
                    if !self.inst[i].known {
                        self.disturbed(t);
                    }
                    self.inst[i].listed = true;
                    self.inst[i].known = true;
                }
                if std::mem::take(&mut self.inst[i].wrongly_out) {
                    self.detection.flaps += 1;
                }
            }
            // The separate families' observations (see `family`).
            Obs::LeaderElected { .. }
            | Obs::Acked { .. }
            | Obs::OpStart { .. }
            | Obs::OpDone { .. }
            | Obs::Campaign { .. }
            | Obs::Committed { .. }
            | Obs::SteppedDown { .. }
            | Obs::Target { .. }
            | Obs::ScrapeFailed { .. }
            | Obs::Alert(_)
            | Obs::Notified(_)
            | Obs::Rules(_)
            | Obs::ApiDone { .. }
            | Obs::Upstream { .. }
            | Obs::Breaker { .. } => {}
            Obs::Member { .. } | Obs::Reregistered | Obs::PreCampaign { .. } | Obs::Voted { .. } => {}
        }
    }

    fn eviction(&mut self, t: SimTime, instance: NodeId, eviction: Eviction) {
        let Some(i) = offset(&self.p.instances, instance) else { return };
        if eviction == Eviction::Deleted {
            self.inst[i].listed = false;
        }
        match self.inst[i].episode {
            Some(e) => {
                let ep = &mut self.detection.episodes[e];
                let slot = if eviction == Eviction::Unhealthy { &mut ep.unhealthy } else { &mut ep.deleted };
                slot.get_or_insert(t);
            }
            None => {
                let first = !std::mem::replace(&mut self.inst[i].wrongly_out, true);
                let cause = detection::cause(&self.history, &self.p, instance, t);
                self.detection.false_positives.push(FalsePositive { time: t, instance, eviction, cause, first });
            }
        }
    }

    fn request(&mut self, _t: SimTime, node: NodeId, kind: RequestKind, ok: bool) {
        let faulted = self.faulted;
        // The requester's side in the first active partition, named once per (partition, group).
        let side = self.history.active.iter().next().map(|(&id, p)| {
            let cache = self.side_names.get_or_insert_with(|| (id, BTreeMap::new()));
            if cache.0 != id {
                *cache = (id, BTreeMap::new());
            }
            let g = p.group_of(node);
            cache.1.entry(g).or_insert_with(|| side_name(&self.p.servers, p, g)).as_str()
        });
        let a = &mut self.availability;
        let k = kind as usize;
        let add = |m: &mut ByKind| {
            m.0[k].total += 1;
            m.0[k].ok += u64::from(ok);
        };
        add(&mut a.overall);
        add(if faulted { &mut a.during_faults } else { &mut a.outside_faults });
        if let Some(side) = side {
            match a.by_side.get_mut(side) {
                Some(m) => add(m),
                None => add(a.by_side.entry(side.to_string()).or_default()),
            }
        }
    }

    /// Instances that count for ground truth: registered once, and running now.
    fn alive(&self) -> impl Iterator<Item = NodeId> + '_ {
        let base = self.p.instances.start;
        self.inst
            .iter()
            .enumerate()
            .map(move |(k, s)| (NodeId(base + k as u32), s))
            .filter(|(n, s)| s.known && self.history.running(*n))
            .map(|(n, _)| n)
    }

    /// Ground truth for consumer `c`: the live instances it can reach both ways.
    fn truth_for(&self, c: NodeId) -> BTreeSet<NodeId> {
        let home = region(&self.p.consumers, self.p.regions, c);
        self.alive()
            .filter(|i| region(&self.p.instances, self.p.regions, *i) == home && self.history.connected(c, *i))
            .collect()
    }

    fn sample(&mut self, t: SimTime) {
        let consumers: Vec<NodeId> = self.p.consumers.clone().map(NodeId).collect();
        let mut running = 0usize;
        let mut wrong = 0usize;
        let mut all_views_right = true;
        for (k, c) in consumers.iter().enumerate() {
            if !self.history.running(*c) {
                self.wrong_since[k] = None;
                continue;
            }
            running += 1;
            let ok = self.views[k] == self.truth_for(*c);
            if ok {
                self.wrong_since[k] = None;
            } else {
                wrong += 1;
                all_views_right = false;
                let since = *self.wrong_since[k].get_or_insert(t);
                self.staleness.worst_wrong = self.staleness.worst_wrong.max(t - since);
            }
        }
        if running > 0 {
            self.staleness.series.push((t, wrong as f64 / running as f64));
        }
        // Affinity splits cost balancer builds: sample them every fifth sample.
        if self.samples_taken.is_multiple_of(5)
            && let Some(l) = &mut self.load
        {
            let up: Vec<bool> = consumers.iter().map(|c| self.history.running(*c)).collect();
            l.sample(&self.views, &up);
        }
        self.samples_taken += 1;
        let pending = all_views_right && self.convergence.iter().any(|c| c.converged_at.is_none());
        if pending || self.settle.converged_at.is_none() {
            let right = self.copies_right();
            if pending && right {
                self.convergence.iter_mut().filter(|c| c.converged_at.is_none()).for_each(|c| c.converged_at = Some(t));
            }
            if right && all_views_right && self.settle.converged_at.is_none() {
                self.settle.converged_at = Some(t);
            }
        }
    }

    /// Whether every running server lists exactly the running instances as healthy.
    fn copies_right(&self) -> bool {
        let regions = self.p.regions.max(1);
        let mut alive = vec![BTreeSet::new(); regions as usize];
        for i in self.alive() {
            alive[region(&self.p.instances, regions, i).min(regions - 1) as usize].insert(i);
        }
        self.p.servers.clone().map(NodeId).enumerate().filter(|(_, s)| self.history.running(*s)).all(|(k, s)| {
            let healthy: BTreeSet<NodeId> =
                self.copies[k].iter().filter(|(_, st)| **st == CopyState::Healthy).map(|(n, _)| *n).collect();
            healthy == alive[region(&self.p.servers, regions, s).min(regions - 1) as usize]
        })
    }
}
