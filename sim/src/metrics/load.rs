//! Load balance in a cluster run, per balancer (consumers are grouped by the balancer spec
//! they use, so one run can compare several).
//!
//! - **load**: attempts per instance over the run (instances that received at least one),
//!   and the worst 60 s window (instances with at least one request in it): max/mean, CV,
//!   p99/mean, Gini (`balance::stats`);
//! - **latency** of finished requests (all attempts), where instances model service time;
//! - **sent to dead**: attempts sent to an instance that was crashed at the time;
//! - **disruption**: on each change of a consumer's view, the fraction of a fixed probe key set
//!   whose instance moved, beside the ideal `1 - |old ∩ new| / max(|old|, |new|)` (r/n for r
//!   leaves, a/(n+a) for a joins);
//! - **affinity split** (key-based balancers only): sampled, the fraction of probe keys that
//!   the group's running consumers map to different instances because their views differ.

use std::collections::{BTreeMap, BTreeSet};

use crate::balance::keys::{KeyDist, KeySampler};
use crate::balance::{BalancerSpec, stats};
use crate::protocol::clients::instance_name;
use regsim_kernel::{NodeId, SimDuration, SimTime};

const WINDOW: SimDuration = SimDuration::from_secs(60);
const PROBE_KEYS: usize = 256;

/// One balancer's consumers and what they did.
pub struct Group {
    pub label: String,
    spec: BalancerSpec,
    pub consumers: usize,
    pub sent: BTreeMap<NodeId, u64>,
    window: BTreeMap<NodeId, u64>,
    pub worst_window: Option<stats::LoadStats>,
    pub latencies_s: Vec<f64>,
    pub sent_to_dead: u64,
    pub moves: Vec<(f64, f64)>,
    pub split_samples: Vec<f64>,
}

impl Group {
    pub fn key_based(&self) -> bool {
        matches!(
            self.spec,
            BalancerSpec::ModN { .. }
                | BalancerSpec::Ring { .. }
                | BalancerSpec::Jump { .. }
                | BalancerSpec::Rendezvous { .. }
                | BalancerSpec::Maglev { .. }
        )
    }

    pub fn overall(&self) -> Option<stats::LoadStats> {
        let loads: Vec<u64> = self.sent.values().copied().collect();
        stats::load_stats(&loads).ok()
    }
}

pub struct LoadAnalyzer {
    pub groups: Vec<Group>,
    group_of: Vec<usize>,
    probes: Vec<u64>,
    window_end: SimTime,
    /// Per consumer: the view before a change being collected, and the change's time.
    pending: BTreeMap<usize, (SimTime, BTreeSet<NodeId>)>,
}

/// Maps every probe key with `spec` over `view`; `None` when the view is empty.
fn mapping(spec: &BalancerSpec, view: &BTreeSet<NodeId>, probes: &[u64]) -> Vec<Option<NodeId>> {
    let nodes: Vec<NodeId> = view.iter().copied().collect();
    let names: Vec<String> = nodes.iter().map(|n| instance_name(*n)).collect();
    let Ok(mut b) = spec.build(&names) else {
        return vec![None; probes.len()];
    };
    probes.iter().map(|k| b.pick(*k, 0).and_then(|i| nodes.get(i as usize).copied())).collect()
}

impl LoadAnalyzer {
    /// `specs[i]` is consumer i's balancer (with its label); `keys` the scenario's key
    /// distribution (probe keys are its hottest keys, or random ones for `unique`).
    pub fn new(specs: Vec<(String, BalancerSpec)>, keys: &KeySampler, seed: u64) -> Self {
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of = Vec::new();
        for (label, spec) in specs {
            let g = match groups.iter().position(|g| g.label == label) {
                Some(g) => g,
                None => {
                    groups.push(Group {
                        label,
                        spec,
                        consumers: 0,
                        sent: BTreeMap::new(),
                        window: BTreeMap::new(),
                        worst_window: None,
                        latencies_s: Vec::new(),
                        sent_to_dead: 0,
                        moves: Vec::new(),
                        split_samples: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            groups[g].consumers += 1;
            group_of.push(g);
        }
        let probes = match keys.dist() {
            KeyDist::Unique => stats::probe_keys(seed, PROBE_KEYS),
            _ => (0..PROBE_KEYS as u64).map(|r| keys.key_of_rank(r)).collect(),
        };
        LoadAnalyzer { groups, group_of, probes, window_end: SimTime(WINDOW.0), pending: BTreeMap::new() }
    }

    /// Called before each record at time `t`: closes load windows and finished view changes.
    pub fn advance(&mut self, t: SimTime, views: &[BTreeSet<NodeId>]) {
        while t >= self.window_end {
            self.close_window();
            self.window_end += WINDOW;
        }
        let done: Vec<usize> = self.pending.iter().filter(|(_, (at, _))| *at < t).map(|(c, _)| *c).collect();
        for c in done {
            if let Some((_, old)) = self.pending.remove(&c) {
                self.view_changed(c, &old, &views[c]);
            }
        }
    }

    fn close_window(&mut self) {
        for g in &mut self.groups {
            let loads: Vec<u64> = std::mem::take(&mut g.window).into_values().collect();
            if let Ok(s) = stats::load_stats(&loads)
                && g.worst_window.as_ref().is_none_or(|w| s.max_over_mean > w.max_over_mean)
            {
                g.worst_window = Some(s);
            }
        }
    }

    /// Consumer `c`'s view is about to change at `t` (call before applying the delta).
    pub fn view_changing(&mut self, c: usize, t: SimTime, view: &BTreeSet<NodeId>) {
        self.pending.entry(c).or_insert_with(|| (t, view.clone()));
    }

    fn view_changed(&mut self, c: usize, old: &BTreeSet<NodeId>, new: &BTreeSet<NodeId>) {
        let g = &mut self.groups[self.group_of[c]];
        if old.is_empty() || new.is_empty() || old == new {
            return;
        }
        let (a, b) = (mapping(&g.spec, old, &self.probes), mapping(&g.spec, new, &self.probes));
        let moved = a.iter().zip(&b).filter(|(x, y)| x != y).count() as f64 / self.probes.len() as f64;
        let ideal = 1.0 - old.intersection(new).count() as f64 / old.len().max(new.len()) as f64;
        g.moves.push((moved, ideal));
    }

    pub fn sent(&mut self, c: usize, instance: NodeId, dead: bool) {
        let g = &mut self.groups[self.group_of[c]];
        *g.sent.entry(instance).or_insert(0) += 1;
        *g.window.entry(instance).or_insert(0) += 1;
        g.sent_to_dead += u64::from(dead);
    }

    pub fn done(&mut self, c: usize, ok: bool, latency: SimDuration) {
        if ok {
            self.groups[self.group_of[c]].latencies_s.push(latency.as_secs_f64());
        }
    }

    /// Samples affinity splits over the running consumers' current views.
    pub fn sample(&mut self, views: &[BTreeSet<NodeId>], running: &[bool]) {
        for (gi, g) in self.groups.iter_mut().enumerate() {
            if !g.key_based() {
                continue;
            }
            let members: Vec<usize> =
                (0..views.len()).filter(|c| self.group_of[*c] == gi && running[*c] && !views[*c].is_empty()).collect();
            if members.len() < 2 {
                continue;
            }
            // Consumers with identical views map identically: compute each distinct view once.
            let distinct: BTreeSet<&BTreeSet<NodeId>> = members.iter().map(|c| &views[*c]).collect();
            if distinct.len() < 2 {
                g.split_samples.push(0.0);
                continue;
            }
            let maps: Vec<Vec<Option<NodeId>>> = distinct.iter().map(|v| mapping(&g.spec, v, &self.probes)).collect();
            let split = (0..self.probes.len()).filter(|k| maps.iter().any(|m| m[*k] != maps[0][*k])).count();
            g.split_samples.push(split as f64 / self.probes.len() as f64);
        }
    }

    pub fn finish(&mut self, views: &[BTreeSet<NodeId>]) {
        self.close_window();
        for (c, (_, old)) in std::mem::take(&mut self.pending) {
            self.view_changed(c, &old, &views[c]);
        }
    }
}
