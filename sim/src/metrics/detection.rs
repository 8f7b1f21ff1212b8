//! Failure detection: how long after an instance really crashed did each part of the system
//! notice, and which live instances were wrongly evicted, and why.
//!
//! A *crash episode* runs from the ground-truth `Crashed` record of an instance to its
//! `Restarted` record (or the end of the run). Stages, measured from the crash:
//! - `unhealthy`: the first `MarkedUnhealthy` of the instance (by the responsible server);
//! - `deleted`: the first `Deleted`;
//! - `replicated`: the first moment no server's copy lists it any more;
//! - `views_updated`: the first moment no consumer's view lists it (episodes where no view
//!   listed it at the crash are not counted);
//! - `traffic_stopped`: the last application request sent to it after the crash (0 if none),
//!   only when consumers send traffic.
//!
//! An episode that ends without a stage counts as `missed` for it. A `MarkedUnhealthy` or
//! `Deleted` of an instance that is not crashed is a *false positive*; its cause is read off
//! the ground truth in the window `lookback` before it: the instance cut off by a partition or
//! paused; a server paused, crashed, cut off or clock-skewed; else packet loss if the network
//! loses packets; else `other`. A false positive followed by the instance coming back (healthy
//! again or re-registered) is a *flap*.

use serde::Serialize;

use super::history::History;
use regsim_kernel::{NodeId, SimDuration, SimTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Partition,
    Pause,
    /// The instance itself was crashed in the window and restarted since: a late mark of its
    /// own crash (e.g. a CP health probe sent before the restart that failed after it).
    Restart,
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
    /// The nodes that keep a registry view and balance: the consumers, or the gateways when
    /// consumers send through gateways.
    pub consumers: std::ops::Range<u32>,
    /// The API gateways (empty without).
    pub gateways: std::ops::Range<u32>,
    /// Regions: every per-region role range (servers, instances, consumers, gateways) is split
    /// into this many equal blocks, in order.
    pub regions: u32,
    /// Width of the `api` report's windows.
    pub api_window: SimDuration,
    /// How far back a fault can explain an eviction (unhealthy timeout + check interval + slack).
    pub lookback: SimDuration,
    pub lossy: bool,
    /// Whether consumers send application traffic (enables `traffic_stopped`).
    pub traffic: bool,
    pub sample_interval: SimDuration,
    pub end: SimTime,
}

/// Per-stage latencies (seconds from the crash) and misses.
#[derive(Clone, Debug, Default)]
pub struct Stage {
    pub latencies_s: Vec<f64>,
    pub missed: u64,
}

/// One crash episode of an instance.
#[derive(Clone, Debug)]
pub struct Episode {
    pub instance: NodeId,
    pub crashed: SimTime,
    pub ended: SimTime,
    /// Whether the responsible server listed the instance when it crashed.
    pub listed: bool,
    /// Whether some consumer's view listed it when it crashed.
    pub viewed: bool,
    pub unhealthy: Option<SimTime>,
    pub deleted: Option<SimTime>,
    pub replicated: Option<SimTime>,
    pub views_updated: Option<SimTime>,
    pub last_call: Option<SimTime>,
}

#[derive(Clone, Debug, Default)]
pub struct Detection {
    pub unhealthy: Stage,
    pub deleted: Stage,
    pub replicated: Stage,
    pub views_updated: Stage,
    pub traffic_stopped: Stage,
    pub episodes: Vec<Episode>,
    pub false_positives: Vec<FalsePositive>,
    pub flaps: u64,
}

impl Detection {
    /// Turns finished episodes into per-stage samples.
    pub fn finish(&mut self, traffic: bool) {
        let since = |e: &Episode, t: Option<SimTime>| t.map(|t| (t - e.crashed).as_secs_f64());
        for e in &self.episodes {
            for (stage, at, applicable) in [
                (&mut self.unhealthy, e.unhealthy, e.listed),
                (&mut self.deleted, e.deleted, e.listed),
                (&mut self.replicated, e.replicated, e.listed),
                (&mut self.views_updated, e.views_updated, e.viewed),
            ] {
                if !applicable {
                    continue;
                }
                match since(e, at) {
                    Some(s) => stage.latencies_s.push(s),
                    None => stage.missed += 1,
                }
            }
            if traffic && e.viewed {
                self.traffic_stopped.latencies_s.push(since(e, e.last_call).unwrap_or(0.0));
            }
        }
    }
}

/// Attributes a false positive of `instance` at `t` to the most specific fault in the window.
pub fn cause(h: &History, p: &DetectionParams, instance: NodeId, t: SimTime) -> Cause {
    let from = SimTime(t.0.saturating_sub(p.lookback.0));
    let servers = || p.servers.clone().map(NodeId);
    if h.was_cut(instance, from, t) {
        Cause::Partition
    } else if h.was_paused(instance, from, t) {
        Cause::Pause
    } else if h.was_down(instance, from, t) {
        Cause::Restart
    } else if servers().any(|s| h.was_paused(s, from, t)) {
        Cause::ServerPause
    } else if servers().any(|s| h.was_down(s, from, t)) {
        Cause::ServerCrash
    } else if servers().any(|s| h.was_cut(s, from, t)) {
        Cause::ServerPartition
    } else if servers().any(|s| h.skewed_in(s, from, t)) {
        Cause::ClockSkew
    } else if p.lossy {
        Cause::Loss
    } else {
        Cause::Other
    }
}

/// Whether any server had a fault of any kind in `[from, to]` (or a skewed clock by then).
pub fn servers_faulted(h: &History, p: &DetectionParams, from: SimTime, to: SimTime) -> bool {
    p.servers.clone().map(NodeId).any(|s| {
        h.was_paused(s, from, to) || h.was_down(s, from, to) || h.was_cut(s, from, to) || h.ever_skewed_before(s, to)
    })
}
