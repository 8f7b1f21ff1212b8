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
//! An episode that ends without a stage counts as `missed` for it (`restarted` of those when
//! the instance restarted first, the others ran to the end of the run). A `MarkedUnhealthy` or
//! `Deleted` of an instance that is not crashed is a *false positive*; its cause is read off
//! the ground truth in the window `lookback` before it (the client's answer timeout, for a beat
//! the fault held back, plus `unhealthy_after`, the check interval and latency slack): the instance cut off by a partition or
//! paused; a server paused, crashed, cut off or clock-skewed; else packet loss if the network
//! loses packets; else `other`. A false positive followed by the instance coming back (healthy
//! again or re-registered) is a *flap*.

use serde::Serialize;

use super::history::History;
use crate::check::Invariant;
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
    /// The first eviction of this outage of the instance (a deletion after a wrongful mark,
    /// before the instance came back, is the same outage).
    pub first: bool,
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
    /// TCP's `(rto_min, rto_max)` when some protocol runs on streams: a partition's segments
    /// keep landing after the heal (see [`History::with_stream_tail`]).
    pub stream_tail: Option<(SimDuration, SimDuration)>,
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
    /// Of the missed episodes, those that ended because the instance restarted (the others
    /// ran to the end of the run).
    pub restarted: u64,
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
    pub fn finish(&mut self, traffic: bool, end: SimTime) {
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
                    None => {
                        stage.missed += 1;
                        stage.restarted += u64::from(e.ended < end);
                    }
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

// Invariants of this family (checked on every run):
// - `crashed_instances_detected`: every instance that crashed while listed (registered and
//   healthy in some server's copy) and stayed down at least `bound = unhealthy_after +
//   check_interval + slack` is marked unhealthy (or deleted, or gone from every copy) within
//   `bound` of the crash, unless a server was faulted (crashed, paused, cut off, skewed) in that
//   window. `slack` covers the last beat still in flight at the crash: twice the latency bound,
//   or 1 s when latency is unbounded.
// - `evictions_explained`: when the network is lossless and latency bounded by L with
//   `beat_interval + 4L <= unhealthy_after` (a beat may be proxied: instance -> server ->
//   responsible server, and the answer back), a live instance's beats always arrive in time, so
//   every false positive must have a fault as its cause (none with cause `loss`/`other`). When
//   that condition does not hold the invariant is reported as not applicable.

/// What the invariants need from the scenario.
pub struct Timing {
    pub unhealthy_after: SimDuration,
    pub check_interval: SimDuration,
    pub beat_interval: SimDuration,
    /// Upper bound of one-way latency, if the distribution has one.
    pub latency_max: Option<SimDuration>,
    pub lossless: bool,
}

pub fn invariants(d: &Detection, faults: &History, p: &DetectionParams, t: &Timing) -> Vec<Invariant> {
    vec![crashed_instances_detected(d, faults, p, t), evictions_explained(d, t)]
}

fn crashed_instances_detected(d: &Detection, faults: &History, p: &DetectionParams, t: &Timing) -> Invariant {
    let slack = t.latency_max.map_or(SimDuration::from_secs(1), |l| l.saturating_mul(2));
    let bound = t.unhealthy_after + t.check_interval + slack;
    let mut checked = 0;
    let mut late: Vec<(SimTime, String)> = Vec::new();
    for e in d.episodes.iter().filter(|e| e.listed && e.ended - e.crashed >= bound) {
        if servers_faulted(faults, p, e.crashed, e.crashed + bound) {
            continue;
        }
        checked += 1;
        // Gone from every copy (e.g. dropped by anti-entropy from a responsible server that
        // restarted empty) counts too: no server lists it any more.
        let detected = [e.unhealthy, e.deleted, e.replicated].iter().flatten().any(|m| *m - e.crashed <= bound);
        if !detected {
            let when =
                e.unhealthy.map_or("never".to_string(), |m| format!("after {:.3} s", (m - e.crashed).as_secs_f64()));
            late.push((
                e.crashed + bound,
                format!("instance {} crashed at {:.3} s, marked {when}", e.instance, e.crashed.as_secs_f64()),
            ));
        }
    }
    let holds = late.is_empty();
    let detail = if checked == 0 {
        format!(
            "not applicable: no crash episode of a listed instance lasted the bound of {bound} with every server up"
        )
    } else if holds {
        format!("{checked} crash episodes checked against a bound of {bound}")
    } else {
        format!(
            "{} of {checked} crashed instances not marked unhealthy within {bound}; first: {}",
            late.len(),
            late[0].1
        )
    };
    Invariant {
        not_applicable: checked == 0,
        name: "crashed_instances_detected",
        holds,
        detail,
        first_violation_s: late.first().map(|l| l.0.as_secs_f64()),
    }
}

fn evictions_explained(d: &Detection, t: &Timing) -> Invariant {
    let name = "evictions_explained";
    let applicable =
        t.lossless && t.latency_max.is_some_and(|l| t.beat_interval + l.saturating_mul(4) <= t.unhealthy_after);
    if !applicable {
        return Invariant { not_applicable: true,
            name,
            holds: true,
            detail: "not applicable: needs a lossless network with bounded latency L and beat_interval + 4L <= unhealthy_after".into(),
            first_violation_s: None,
        };
    }
    let bad: Vec<_> = d.false_positives.iter().filter(|f| matches!(f.cause, Cause::Other | Cause::Loss)).collect();
    let holds = bad.is_empty();
    let detail = match bad.first() {
        None => format!(
            "{} wrongful evictions ({} outages of live instances), all explained by injected faults",
            d.false_positives.len(),
            d.false_positives.iter().filter(|f| f.first).count()
        ),
        Some(f) => format!(
            "{} live instances evicted without a fault; first: instance {} marked {:?} at {:.3} s",
            bad.len(),
            f.instance,
            f.eviction,
            f.time.as_secs_f64()
        ),
    };
    Invariant {
        not_applicable: false,
        name,
        holds,
        detail,
        first_violation_s: bad.first().map(|f| f.time.as_secs_f64()),
    }
}
