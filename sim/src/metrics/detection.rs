//! Failure detection: how long after an instance really crashed did the registry notice, and
//! which live instances were wrongly evicted, and why.
//!
//! A *crash episode* runs from the ground-truth `Crashed` record of an instance to its
//! `Restarted` record (or the end of the run). Stage latencies are measured from the crash:
//! `unhealthy` is the first `MarkedUnhealthy` of that instance in the episode, `deleted` the
//! first `Deleted`. An episode that ends without the stage counts as `missed` for it.
//! A `MarkedUnhealthy` or `Deleted` of an instance that is not crashed is a *false positive*;
//! its cause is read off the ground truth in the window `lookback` before it: the instance cut
//! off by a partition or paused, a server paused, crashed, cut off or clock-skewed, else packet
//! loss if the network loses packets, else `other` (e.g. a latency tail). A false positive
//! followed by the instance coming back (healthy again or re-registered) is a *flap*.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{FaultRecord, NodeId, Record, SimDuration, SimTime, What};
use crate::protocol::Obs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Partition,
    Pause,
    ServerPause,
    ServerCrash,
    ServerPartition,
    ClockSkew,
    Loss,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Eviction {
    Unhealthy,
    Deleted,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FalsePositive {
    pub time: SimTime,
    pub instance: NodeId,
    pub eviction: Eviction,
    pub cause: Cause,
}

/// What the analysis needs to know about the scenario.
#[derive(Clone, Debug)]
pub struct DetectionParams {
    pub instances: std::ops::Range<u32>,
    pub servers: std::ops::Range<u32>,
    /// How far back a fault can explain an eviction (unhealthy timeout + check interval + slack).
    pub lookback: SimDuration,
    pub lossy: bool,
    pub end: SimTime,
}

/// Per-stage latencies (seconds from the crash) and misses.
#[derive(Clone, Debug, Default)]
pub struct Stage {
    pub latencies_s: Vec<f64>,
    pub missed: u64,
}

/// One crash episode of an instance, for invariants.
#[derive(Clone, Debug)]
pub struct Episode {
    pub instance: NodeId,
    pub crashed: SimTime,
    pub ended: SimTime,
    /// Whether a server listed the instance when it crashed.
    pub listed: bool,
    pub unhealthy: Option<SimTime>,
    pub deleted: Option<SimTime>,
}

#[derive(Clone, Debug, Default)]
pub struct Detection {
    pub unhealthy: Stage,
    pub deleted: Stage,
    pub episodes: Vec<Episode>,
    pub false_positives: Vec<FalsePositive>,
    pub flaps: u64,
}

/// Fault intervals per node, for cause attribution.
#[derive(Default)]
struct History {
    /// (start, end) of pauses, partitions and down-times, per node.
    paused: BTreeMap<NodeId, Vec<(SimTime, SimTime)>>,
    cut: BTreeMap<NodeId, Vec<(SimTime, SimTime)>>,
    down: BTreeMap<NodeId, Vec<(SimTime, SimTime)>>,
    skewed: BTreeMap<NodeId, Vec<SimTime>>,
}

impl History {
    fn build(records: &[Record<Obs>], end: SimTime) -> History {
        let mut h = History::default();
        let mut open: BTreeMap<(NodeId, u8, u32), SimTime> = BTreeMap::new();
        let close = |map: &mut BTreeMap<NodeId, Vec<(SimTime, SimTime)>>,
                     open: &mut BTreeMap<(NodeId, u8, u32), SimTime>,
                     key,
                     t| {
            if let Some(start) = open.remove(&key) {
                map.entry(key.0).or_default().push((start, t));
            }
        };
        for r in records {
            let What::Fault(f) = r.what else { continue };
            match f {
                FaultRecord::Paused => {
                    open.insert((r.node, 0, 0), r.time);
                }
                FaultRecord::Resumed => close(&mut h.paused, &mut open, (r.node, 0, 0), r.time),
                FaultRecord::Crashed => {
                    open.insert((r.node, 1, 0), r.time);
                }
                FaultRecord::Restarted => close(&mut h.down, &mut open, (r.node, 1, 0), r.time),
                FaultRecord::Partitioned(id) => {
                    open.insert((r.node, 2, id), r.time);
                }
                FaultRecord::Healed(id) => close(&mut h.cut, &mut open, (r.node, 2, id), r.time),
                FaultRecord::ClockSkewed { .. } => h.skewed.entry(r.node).or_default().push(r.time),
            }
        }
        for (key, start) in open {
            let map = match key.1 {
                0 => &mut h.paused,
                1 => &mut h.down,
                _ => &mut h.cut,
            };
            map.entry(key.0).or_default().push((start, end));
        }
        h
    }

    fn overlaps(map: &BTreeMap<NodeId, Vec<(SimTime, SimTime)>>, n: NodeId, from: SimTime, to: SimTime) -> bool {
        map.get(&n).is_some_and(|v| v.iter().any(|(a, b)| *a <= to && *b >= from))
    }

    fn cause(&self, p: &DetectionParams, instance: NodeId, t: SimTime) -> Cause {
        let from = SimTime(t.0.saturating_sub(p.lookback.0));
        let servers = || p.servers.clone().map(NodeId);
        if Self::overlaps(&self.cut, instance, from, t) {
            Cause::Partition
        } else if Self::overlaps(&self.paused, instance, from, t) {
            Cause::Pause
        } else if servers().any(|s| Self::overlaps(&self.paused, s, from, t)) {
            Cause::ServerPause
        } else if servers().any(|s| Self::overlaps(&self.down, s, from, t)) {
            Cause::ServerCrash
        } else if servers().any(|s| Self::overlaps(&self.cut, s, from, t)) {
            Cause::ServerPartition
        } else if servers().any(|s| self.skewed.get(&s).is_some_and(|v| v.iter().any(|x| *x >= from && *x <= t))) {
            Cause::ClockSkew
        } else if p.lossy {
            Cause::Loss
        } else {
            Cause::Other
        }
    }

    /// Whether any server had a fault of any kind in `[from, to]`.
    pub fn servers_faulted(&self, p: &DetectionParams, from: SimTime, to: SimTime) -> bool {
        p.servers.clone().map(NodeId).any(|s| {
            Self::overlaps(&self.paused, s, from, to)
                || Self::overlaps(&self.down, s, from, to)
                || Self::overlaps(&self.cut, s, from, to)
                || self.skewed.get(&s).is_some_and(|v| v.iter().any(|x| *x <= to))
        })
    }
}

/// Per-instance state while scanning the log.
#[derive(Clone, Copy, Default)]
struct InstanceState {
    episode: Option<usize>,
    listed: bool,
    /// Set by a false positive; cleared (and counted as a flap) when the instance comes back.
    wrongly_out: bool,
}

/// Reads the log once and measures detection and false positives.
pub fn analyze(records: &[Record<Obs>], p: &DetectionParams) -> (Detection, ServerFaultWindow) {
    let history = History::build(records, p.end);
    let mut d = Detection::default();
    let base = p.instances.start;
    let mut state = vec![InstanceState::default(); (p.instances.end - p.instances.start) as usize];
    let idx = |n: NodeId| (n.0 >= p.instances.start && n.0 < p.instances.end).then(|| (n.0 - base) as usize);
    for r in records {
        match r.what {
            What::Fault(FaultRecord::Crashed) => {
                if let Some(i) = idx(r.node) {
                    d.episodes.push(Episode {
                        instance: r.node,
                        crashed: r.time,
                        ended: p.end,
                        listed: state[i].listed,
                        unhealthy: None,
                        deleted: None,
                    });
                    state[i].episode = Some(d.episodes.len() - 1);
                }
            }
            What::Fault(FaultRecord::Restarted) => {
                if let Some(e) = idx(r.node).and_then(|i| state[i].episode.take()) {
                    d.episodes[e].ended = r.time;
                }
            }
            What::Fault(_) => {}
            What::Actor(obs) => observe(&mut d, &mut state, &history, p, r.time, obs, idx),
        }
    }
    for e in &d.episodes {
        let since = |t: Option<SimTime>| t.map(|t| (t - e.crashed).as_secs_f64());
        match since(e.unhealthy) {
            Some(s) => d.unhealthy.latencies_s.push(s),
            None => d.unhealthy.missed += 1,
        }
        match since(e.deleted) {
            Some(s) => d.deleted.latencies_s.push(s),
            None => d.deleted.missed += 1,
        }
    }
    (d, ServerFaultWindow { history })
}

fn observe(
    d: &mut Detection,
    state: &mut [InstanceState],
    history: &History,
    p: &DetectionParams,
    t: SimTime,
    obs: Obs,
    idx: impl Fn(NodeId) -> Option<usize>,
) {
    let (instance, eviction) = match obs {
        Obs::MarkedUnhealthy { instance } => (instance, Some(Eviction::Unhealthy)),
        Obs::Deleted { instance } => (instance, Some(Eviction::Deleted)),
        Obs::Registered { instance } | Obs::MarkedHealthy { instance } => (instance, None),
        Obs::Reregistered => return,
    };
    let Some(i) = idx(instance) else { return };
    let s = &mut state[i];
    match obs {
        Obs::Registered { .. } => s.listed = true,
        Obs::Deleted { .. } => s.listed = false,
        _ => {}
    }
    let Some(eviction) = eviction else {
        if std::mem::take(&mut s.wrongly_out) {
            d.flaps += 1;
        }
        return;
    };
    match s.episode {
        Some(e) => {
            let ep = &mut d.episodes[e];
            let slot = if eviction == Eviction::Unhealthy { &mut ep.unhealthy } else { &mut ep.deleted };
            slot.get_or_insert(t);
        }
        None => {
            s.wrongly_out = true;
            d.false_positives.push(FalsePositive { time: t, instance, eviction, cause: history.cause(p, instance, t) });
        }
    }
}

/// Lets invariants ask whether the servers were disturbed during an interval.
pub struct ServerFaultWindow {
    history: History,
}

impl ServerFaultWindow {
    pub fn servers_faulted(&self, p: &DetectionParams, from: SimTime, to: SimTime) -> bool {
        self.history.servers_faulted(p, from, to)
    }
}
