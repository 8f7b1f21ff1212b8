//! The `api` family: what the API gateways saw (issue 9).
//!
//! Collected while the log streams (only what the measures need: per-window tallies, every
//! failed request's time, the gateways' view and breaker changes, and attempts sent to an
//! instance while it was down), then joined with the crash episodes at the end:
//! - **windows**: requests per second, the share answered with an error (any code but 200;
//!   429s count as errors) and latency percentiles of each `window` of virtual time, from the
//!   gateway's side (arrival to answer). Latencies go into a sparse log-linear histogram per
//!   window (exact below 100 µs, then buckets 1 % wide), so a percentile is the lower edge of
//!   its bucket: within 1 % below the exact value, in bounded memory;
//! - **crashes**: for every crash of an instance and every gateway of its region that listed
//!   it when it crashed: when that gateway sent its last attempt to the dead instance
//!   (`stopped`), when its registry view dropped it, when its circuit breaker for it opened;
//!   the attempts to the dead instance that failed and the API requests that failed at that
//!   gateway between the crash and `stopped`. Traffic stops *by breaker* when the last attempt
//!   went out before the view dropped the instance and the breaker had opened by then, *by
//!   registry* otherwise;
//! - the invariant `gateway_stops_by_view_update`: no gateway sends to a dead instance while
//!   its view does not list it (a view that lists it again, e.g. after a poll of a server that
//!   had not heard of the crash yet, may send again: that is the registry's staleness).
//!
//! Failed request times and attempts to dead instances are kept up to [`MAX_EVENTS`] in all;
//! beyond, the crash table's counts are marked `truncated`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::detection::Episode;
use super::family::{Family, Truth};
use super::stats::Summary;
use crate::check::Invariant;
use crate::protocol::Obs;
use crate::protocol::clients::breaker::BreakerState;
use crate::protocol::clients::gateway::{Code, Outcome};
use regsim_kernel::{NodeId, SimDuration, SimTime};

/// Failure times and per-(gateway, instance) events kept at most.
pub const MAX_EVENTS: usize = 10_000_000;

/// The width of the fine windows the crash zoom is drawn from.
pub const FINE: SimDuration = SimDuration::from_millis(100);

/// Fine windows kept at most over all gateways (16 bytes each: 32 MiB); a gateway's windows
/// past it are not kept, and a crash after them gets no zoom.
pub const MAX_FINE: usize = 1 << 21;

/// Points of the crash zoom at most (coarser than [`FINE`] when its span is longer).
const MAX_ZOOM_POINTS: usize = 1_200;

/// One [`FINE`] window of one gateway: the crash zoom's data.
#[derive(Clone, Copy, Debug, Default)]
struct Fine {
    requests: u32,
    errors: u32,
    retried: u32,
    max_us: u32,
}

/// Latency bucket of `us` microseconds: exact below 100, then 1 % wide.
fn bucket(us: u64) -> u16 {
    if us < 100 { us as u16 } else { 100 + ((us as f64 / 100.0).ln() / 1.01_f64.ln()) as u16 }
}

/// The lower edge of bucket `b`, in milliseconds.
fn lower_ms(b: u16) -> f64 {
    if b < 100 { f64::from(b) / 1e3 } else { 0.1 * 1.01_f64.powi(i32::from(b) - 100) }
}

/// The value at quantile `q` (nearest rank) of a bucket histogram, in milliseconds.
fn quantile(h: &BTreeMap<u16, u64>, count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
    let mut seen = 0;
    h.iter()
        .find(|(_, n)| {
            seen += **n;
            seen >= rank
        })
        .map(|(b, _)| lower_ms(*b))
}

#[derive(Clone, Debug, Default)]
struct Window {
    requests: u64,
    errors: u64,
    max_us: u64,
    hist: BTreeMap<u16, u64>,
}

/// A per-(gateway, instance) event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    ViewIn,
    ViewOut,
    Opened,
    /// An attempt sent while the instance was down.
    SentDead,
    /// An attempt to the instance failed while it was down.
    FailedDead,
    /// An attempt to the instance its open breaker stopped while it was down.
    RefusedDead,
}

#[derive(Clone, Debug)]
pub struct ApiCollector {
    window: SimDuration,
    windows: Vec<Window>,
    by_code: BTreeMap<u16, u64>,
    by_outcome: BTreeMap<&'static str, u64>,
    retries: u64,
    openings: BTreeMap<NodeId, u64>,
    /// (gateway, instance) -> events in time order.
    events: BTreeMap<(NodeId, NodeId), Vec<(SimTime, Ev)>>,
    /// Failed API requests per gateway (times), for the crash windows.
    failures: BTreeMap<NodeId, Vec<SimTime>>,
    /// [`FINE`] windows per gateway, from time 0.
    fine: BTreeMap<NodeId, Vec<Fine>>,
    fine_kept: usize,
    kept: usize,
    truncated: bool,
    sum_s: f64,
    min_us: u64,
}

impl ApiCollector {
    pub fn new(window: SimDuration) -> ApiCollector {
        ApiCollector {
            window: window.max(SimDuration::from_millis(1)),
            windows: Vec::new(),
            by_code: BTreeMap::new(),
            by_outcome: BTreeMap::new(),
            retries: 0,
            openings: BTreeMap::new(),
            events: BTreeMap::new(),
            failures: BTreeMap::new(),
            fine: BTreeMap::new(),
            fine_kept: 0,
            kept: 0,
            truncated: false,
            sum_s: 0.0,
            min_us: u64::MAX,
        }
    }

    /// Counts one kept event; false (and `truncated`) past [`MAX_EVENTS`].
    fn keep(&mut self) -> bool {
        self.kept += 1;
        self.truncated |= self.kept > MAX_EVENTS;
        self.kept <= MAX_EVENTS
    }

    fn push(&mut self, gateway: NodeId, instance: NodeId, t: SimTime, ev: Ev) {
        if self.keep() {
            self.events.entry((gateway, instance)).or_default().push((t, ev));
        }
    }

    pub fn done(&mut self, t: SimTime, gateway: NodeId, code: Code, attempts: u8, latency: SimDuration) {
        let w = (t.as_nanos() / self.window.as_nanos()) as usize;
        if self.windows.len() <= w {
            self.windows.resize_with(w + 1, Window::default);
        }
        let win = &mut self.windows[w];
        win.requests += 1;
        let us = latency.as_nanos() / 1_000;
        *win.hist.entry(bucket(us)).or_default() += 1;
        win.max_us = win.max_us.max(us);
        self.min_us = self.min_us.min(us);
        self.sum_s += latency.as_secs_f64();
        if code != Code::Ok {
            win.errors += 1;
            if self.keep() {
                self.failures.entry(gateway).or_default().push(t);
            }
        }
        *self.by_code.entry(code as u16).or_default() += 1;
        self.retries += u64::from(attempts.saturating_sub(1));
        let f = (t.as_nanos() / FINE.as_nanos()) as usize;
        let fine = self.fine.entry(gateway).or_default();
        if fine.len() <= f {
            let grow = f + 1 - fine.len();
            if self.fine_kept + grow > MAX_FINE {
                return;
            }
            self.fine_kept += grow;
            fine.resize(f + 1, Fine::default());
        }
        let w = &mut fine[f];
        w.requests = w.requests.saturating_add(1);
        w.errors = w.errors.saturating_add(u32::from(code != Code::Ok));
        w.retried = w.retried.saturating_add(u32::from(attempts > 1));
        w.max_us = w.max_us.max(u32::try_from(us).unwrap_or(u32::MAX));
    }

    pub fn sent(&mut self, t: SimTime, gateway: NodeId, instance: NodeId, dead: bool) {
        if dead {
            self.push(gateway, instance, t, Ev::SentDead);
        }
    }

    pub fn upstream(&mut self, t: SimTime, gateway: NodeId, instance: NodeId, outcome: Outcome, dead: bool) {
        *self.by_outcome.entry(outcome.as_str()).or_default() += 1;
        // An attempt the breaker refused never reached the instance: not a failed request to it.
        if dead && !matches!(outcome, Outcome::Ok | Outcome::CircuitOpen) {
            self.push(gateway, instance, t, Ev::FailedDead);
        } else if dead && outcome == Outcome::CircuitOpen {
            self.push(gateway, instance, t, Ev::RefusedDead);
        }
    }

    pub fn view(&mut self, t: SimTime, gateway: NodeId, instance: NodeId, present: bool) {
        self.push(gateway, instance, t, if present { Ev::ViewIn } else { Ev::ViewOut });
    }

    pub fn breaker(&mut self, t: SimTime, gateway: NodeId, instance: NodeId, state: BreakerState) {
        if state == BreakerState::Open {
            *self.openings.entry(instance).or_default() += 1;
            self.push(gateway, instance, t, Ev::Opened);
        }
    }

    /// Joins the log with the crash episodes. `gateways` are the gateway nodes.
    pub fn finish(self, episodes: &[Episode], gateways: &[NodeId], shaded: Vec<(f64, f64)>) -> ApiReport {
        let wsec = self.window.as_secs_f64();
        let mut all: BTreeMap<u16, u64> = BTreeMap::new();
        let mut max_us = 0;
        let windows = self
            .windows
            .iter()
            .enumerate()
            .map(|(k, w)| {
                for (b, n) in &w.hist {
                    *all.entry(*b).or_default() += n;
                }
                max_us = max_us.max(w.max_us);
                WindowReport {
                    start_s: k as f64 * wsec,
                    requests_per_s: w.requests as f64 / wsec,
                    error_ratio: if w.requests == 0 { 0.0 } else { w.errors as f64 / w.requests as f64 },
                    p50_ms: quantile(&w.hist, w.requests, 0.5),
                    p99_ms: quantile(&w.hist, w.requests, 0.99),
                    max_ms: (w.requests > 0).then(|| w.max_us as f64 / 1e3),
                }
            })
            .collect();
        let total: u64 = self.by_code.values().sum();
        let q = |p: f64| quantile(&all, total, p).map_or(0.0, |ms| ms / 1e3);
        let latency_s = Summary {
            count: total,
            mean_s: if total == 0 { 0.0 } else { super::stats::round_ns(self.sum_s / total as f64) },
            min_s: if total == 0 { 0.0 } else { self.min_us as f64 / 1e6 },
            p50_s: q(0.5),
            p90_s: q(0.9),
            p99_s: q(0.99),
            max_s: max_us as f64 / 1e6,
        };
        let mut crashes = Vec::new();
        // (gateway, instance, crash) of each entry of `crashes`, for the zoom.
        let mut pairs = Vec::new();
        let mut violations: Vec<(SimTime, String)> = Vec::new();
        // Sends while the gateway's view does not list the instance.
        for (&(g, instance), evs) in &self.events {
            let mut listed = false;
            for &(t, ev) in evs {
                match ev {
                    Ev::ViewIn => listed = true,
                    Ev::ViewOut => listed = false,
                    Ev::SentDead if !listed => violations.push((
                        t,
                        format!(
                            "gateway {g} sent to dead {instance} at {:.3} s while its view did not list it",
                            t.as_secs_f64()
                        ),
                    )),
                    _ => {}
                }
            }
        }
        for e in episodes {
            for &g in gateways {
                let evs: &[(SimTime, Ev)] = self.events.get(&(g, e.instance)).map_or(&[], |v| v.as_slice());
                let from = evs.partition_point(|(t, _)| *t < e.crashed);
                let to = evs.partition_point(|(t, _)| *t < e.ended);
                // Listed at the crash: the last view change before it was an addition.
                let upto = evs.partition_point(|(t, _)| *t <= e.crashed);
                let listed = evs[..upto].iter().rev().find(|(_, v)| matches!(v, Ev::ViewIn | Ev::ViewOut));
                if !matches!(listed, Some((_, Ev::ViewIn))) {
                    continue;
                }
                let (mut last_sent, mut view_out, mut opened, mut failed) = (None, None, None, 0u64);
                for &(t, ev) in &evs[from..to] {
                    match ev {
                        Ev::SentDead => last_sent = Some(t),
                        Ev::ViewOut if view_out.is_none() => view_out = Some(t),
                        Ev::Opened if opened.is_none() => opened = Some(t),
                        Ev::FailedDead => failed += 1,
                        _ => {}
                    }
                }
                let stopped = last_sent.unwrap_or(e.crashed);
                let failed_requests = self.failures.get(&g).map_or(0, |f| {
                    (f.partition_point(|t| *t <= stopped) - f.partition_point(|t| *t < e.crashed)) as u64
                });
                let after = |t: Option<SimTime>| t.map(|t| t.saturating_since(e.crashed).as_secs_f64());
                let stopped_by = match (view_out, opened) {
                    _ if last_sent.is_none() => "no_traffic",
                    (Some(v), Some(o)) if stopped < v && o <= v => "breaker",
                    (None, Some(_)) => "breaker",
                    (Some(_), _) => "registry",
                    (None, None) => "not_stopped",
                };
                pairs.push((g, e.instance, e.crashed));
                crashes.push(CrashReport {
                    instance: e.instance.to_string(),
                    gateway: g.to_string(),
                    crashed_s: e.crashed.as_secs_f64(),
                    stopped_after_s: stopped.saturating_since(e.crashed).as_secs_f64(),
                    view_updated_after_s: after(view_out),
                    breaker_opened_after_s: after(opened),
                    failed_attempts: failed,
                    failed_requests,
                    stopped_by,
                });
            }
        }
        violations.sort();
        let zoom = self.zoom(&crashes, &pairs);
        let stop: Vec<f64> = crashes.iter().map(|c| c.stopped_after_s).collect();
        let errors = total - self.by_code.get(&200).copied().unwrap_or(0);
        let invariant = Invariant {
            not_applicable: false,
            name: "gateway_stops_by_view_update",
            holds: violations.is_empty(),
            detail: match violations.first() {
                None => format!(
                    "no gateway sent to a dead instance its registry view did not list ({} crash x gateway pairs)",
                    crashes.len()
                ),
                Some((_, d)) => format!("{} violations; first: {d}", violations.len()),
            },
            first_violation_s: violations.first().map(|(t, _)| t.as_secs_f64()),
        };
        ApiReport {
            window_s: wsec,
            requests: total,
            by_code: self.by_code.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            error_ratio: if total == 0 { 0.0 } else { errors as f64 / total as f64 },
            latency_s,
            truncated: self.truncated,
            attempts: self.by_outcome.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            retries: self.retries,
            breaker_openings: self.openings.values().sum(),
            breaker_openings_by_instance: self.openings.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
            stopped_after_s: Summary::of(&stop),
            failed_requests_before_stop: crashes.iter().map(|c| c.failed_requests).sum(),
            failed_attempts_to_dead: crashes.iter().map(|c| c.failed_attempts).sum(),
            crashes,
            windows,
            fault_periods_s: shaded,
            zoom,
            invariant,
        }
    }

    /// The crash zoom: the crash x gateway pair with the most failed requests before the
    /// stop, then the latest stop (the earliest crash on ties), in [`FINE`] steps (coarser
    /// past [`MAX_ZOOM_POINTS`]) from 2 s before the crash to 3 s after the last of its
    /// marks (last attempt, breaker opening, view update). None without crashes at a gateway
    /// or when the fine windows of that time were not kept ([`MAX_FINE`]).
    fn zoom(&self, crashes: &[CrashReport], pairs: &[(NodeId, NodeId, SimTime)]) -> Option<ApiZoom> {
        let mut best: Option<usize> = None;
        for (k, c) in crashes.iter().enumerate() {
            let key = |c: &CrashReport| (c.failed_requests, (c.stopped_after_s * 1e9) as u64);
            if best.is_none_or(|b| key(c) > key(&crashes[b])) {
                best = Some(k);
            }
        }
        let k = best?;
        let (c, (g, instance, crashed)) = (&crashes[k], pairs[k]);
        let fine = self.fine.get(&g)?;
        let last_mark = [Some(c.stopped_after_s), c.breaker_opened_after_s, c.view_updated_after_s]
            .into_iter()
            .flatten()
            .fold(0.0_f64, f64::max);
        let fine_ns = FINE.as_nanos();
        let first = (crashed.as_nanos() / fine_ns).saturating_sub(20) as usize;
        let span = (last_mark * 1e9 / fine_ns as f64).ceil() as usize + 20 + 30;
        if first >= fine.len() {
            return None;
        }
        let per = span.div_ceil(MAX_ZOOM_POINTS).max(1);
        let step_s = (per as u64 * fine_ns) as f64 / 1e9;
        let evs: &[(SimTime, Ev)] = self.events.get(&(g, instance)).map_or(&[], |v| v.as_slice());
        let crash_s = crashed.as_secs_f64();
        let mut points = Vec::new();
        for p in 0..span.div_ceil(per) {
            let (lo, hi) = (first + p * per, first + (p + 1) * per);
            let ws = &fine[lo.min(fine.len())..hi.min(fine.len())];
            let t0 = SimTime(lo as u64 * fine_ns);
            let t1 = SimTime(hi as u64 * fine_ns);
            let count = |which: Ev| {
                let (a, b) = (evs.partition_point(|(t, _)| *t < t0), evs.partition_point(|(t, _)| *t < t1));
                evs[a..b].iter().filter(|(_, e)| *e == which).count() as u64
            };
            let requests: u64 = ws.iter().map(|w| u64::from(w.requests)).sum();
            points.push(ZoomPoint {
                from_crash_s: super::stats::round_ns(t0.as_secs_f64() - crash_s),
                requests,
                errors: ws.iter().map(|w| u64::from(w.errors)).sum(),
                retried: ws.iter().map(|w| u64::from(w.retried)).sum(),
                max_ms: (requests > 0).then(|| ws.iter().map(|w| w.max_us).max().unwrap_or(0) as f64 / 1e3),
                sent_to_dead: count(Ev::SentDead),
                failed_to_dead: count(Ev::FailedDead),
                refused_by_breaker: count(Ev::RefusedDead),
            });
        }
        Some(ApiZoom {
            instance: instance.to_string(),
            gateway: g.to_string(),
            crashed_s: crash_s,
            step_s,
            stopped_after_s: c.stopped_after_s,
            breaker_opened_after_s: c.breaker_opened_after_s,
            view_updated_after_s: c.view_updated_after_s,
            points,
        })
    }
}

/// One step of the crash zoom: what one gateway did from `from_crash_s` for `step_s`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ZoomPoint {
    /// The step's start, seconds from the crash (negative before it).
    pub from_crash_s: f64,
    /// API requests the gateway answered in the step, those answered with an error, and
    /// those that needed more than one attempt.
    pub requests: u64,
    pub errors: u64,
    pub retried: u64,
    /// The slowest answer of the step (gateway latency), none without requests.
    pub max_ms: Option<f64>,
    /// Attempts to the crashed instance: sent, failed, and stopped by its open breaker.
    pub sent_to_dead: u64,
    pub failed_to_dead: u64,
    pub refused_by_breaker: u64,
}

/// One crash seen from one gateway at fine resolution: what the whole-run windows cannot show.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ApiZoom {
    pub instance: String,
    pub gateway: String,
    pub crashed_s: f64,
    /// The width of each point (0.1 s unless the span needed more than 1,200 points).
    pub step_s: f64,
    pub stopped_after_s: f64,
    pub breaker_opened_after_s: Option<f64>,
    pub view_updated_after_s: Option<f64>,
    pub points: Vec<ZoomPoint>,
}

impl Family for ApiCollector {
    fn name(&self) -> &'static str {
        "api"
    }

    fn observe(&mut self, t: SimTime, node: NodeId, o: &Obs, truth: &Truth<'_>) {
        match *o {
            Obs::View { instance, present } if truth.is_gateway(node) => self.view(t, node, instance, present),
            Obs::CallSent { instance } if truth.is_gateway(node) => {
                self.sent(t, node, instance, truth.is_down(instance))
            }
            Obs::ApiDone { code, attempts, latency } => self.done(t, node, code, attempts, latency),
            Obs::Upstream { instance, outcome } => self.upstream(t, node, instance, outcome, truth.is_down(instance)),
            Obs::Breaker { instance, state } => self.breaker(t, node, instance, state),
            _ => {}
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WindowReport {
    pub start_s: f64,
    pub requests_per_s: f64,
    pub error_ratio: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CrashReport {
    pub instance: String,
    pub gateway: String,
    pub crashed_s: f64,
    /// The gateway's last attempt to the dead instance, from the crash (0: none after it).
    pub stopped_after_s: f64,
    pub view_updated_after_s: Option<f64>,
    pub breaker_opened_after_s: Option<f64>,
    /// Attempts sent to the dead instance that failed (timeout or refused; not the ones an
    /// open breaker stopped before they left).
    pub failed_attempts: u64,
    /// API requests this gateway answered with an error between the crash and `stopped`.
    pub failed_requests: u64,
    /// `registry`, `breaker`, `no_traffic` (nothing sent after the crash) or `not_stopped`.
    pub stopped_by: &'static str,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ApiReport {
    pub window_s: f64,
    pub requests: u64,
    /// Requests by the status the client got.
    pub by_code: BTreeMap<String, u64>,
    pub error_ratio: f64,
    /// Within 1 % (log buckets); mean, min and max exact.
    pub latency_s: Summary,
    /// Upstream attempts by outcome.
    pub attempts: BTreeMap<String, u64>,
    pub retries: u64,
    pub breaker_openings: u64,
    pub breaker_openings_by_instance: BTreeMap<String, u64>,
    /// From each crash to the gateway's last attempt to the dead instance.
    pub stopped_after_s: Summary,
    pub failed_requests_before_stop: u64,
    pub failed_attempts_to_dead: u64,
    /// More than [`MAX_EVENTS`] failures and attempts to dead instances: the counts above
    /// stop there.
    pub truncated: bool,
    pub crashes: Vec<CrashReport>,
    pub windows: Vec<WindowReport>,
    /// Fault periods (start, end in seconds) the plot shades.
    pub fault_periods_s: Vec<(f64, f64)>,
    /// The slowest crash response at fine resolution ([`ApiCollector::zoom`]).
    pub zoom: Option<ApiZoom>,
    pub invariant: Invariant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_100_us_and_within_1_percent_above() {
        for us in [0u64, 1, 57, 99] {
            assert_eq!(lower_ms(bucket(us)), us as f64 / 1e3);
        }
        for us in [100u64, 101, 1_234, 18_700, 999_999, 60_000_000, u64::from(u32::MAX)] {
            let low = lower_ms(bucket(us)) * 1e3;
            assert!(low <= us as f64 * (1.0 + 1e-9) && low > us as f64 / 1.0101, "{us}: {low}");
        }
    }

    /// A crash of `instance` at `crashed` s, listed and viewed, until 100 s.
    fn episode(instance: NodeId, crashed: f64) -> Episode {
        Episode {
            instance,
            crashed: t(crashed),
            ended: t(100.0),
            listed: true,
            viewed: true,
            unhealthy: None,
            deleted: None,
            replicated: None,
            views_updated: None,
            last_call: None,
        }
    }

    fn t(s: f64) -> SimTime {
        SimTime(SimDuration::from_secs_f64(s).as_nanos())
    }

    /// A send to a dead instance is a violation only while the view does not list it.
    #[test]
    fn the_invariant_follows_the_view() {
        let (g, i) = (NodeId(9), NodeId(3));
        let mut a = ApiCollector::new(SimDuration::from_secs(10));
        a.view(t(1.0), g, i, true);
        a.sent(t(10.0), g, i, true);
        a.view(t(20.0), g, i, false);
        a.view(t(22.0), g, i, true); // a stale server listed it again
        a.sent(t(23.0), g, i, true);
        let ep = |crashed: f64| episode(i, crashed);
        let r = a.clone().finish(&[ep(5.0)], &[g], Vec::new());
        assert!(r.invariant.holds, "{}", r.invariant.detail);
        assert_eq!(r.crashes[0].stopped_after_s, 18.0);
        assert_eq!(r.crashes[0].stopped_by, "registry");
        a.view(t(30.0), g, i, false);
        a.sent(t(31.0), g, i, true);
        let r = a.finish(&[ep(5.0)], &[g], Vec::new());
        assert!(!r.invariant.holds);
        assert_eq!(r.invariant.first_violation_s, Some(31.0));
    }

    #[test]
    fn the_zoom_follows_the_slowest_stop_in_fine_steps() {
        let (g, i, other) = (NodeId(9), NodeId(3), NodeId(4));
        let mut a = ApiCollector::new(SimDuration::from_secs(10));
        a.view(t(1.0), g, i, true);
        a.view(t(1.0), g, other, true);
        let ok = SimDuration::from_millis(10);
        // Crash at 50 s: two attempts fail (the requests retried), then the breaker opens
        // at 50.5 s and stops three more; the view drops it at 52 s.
        for k in 0..100 {
            a.done(t(45.0 + 0.1 * k as f64), g, Code::Ok, 1, ok);
        }
        for at in [50.15, 50.35] {
            a.sent(t(at), g, i, true);
            a.upstream(t(at), g, i, Outcome::Refused, true);
            a.done(t(at + 0.02), g, Code::Ok, 2, SimDuration::from_millis(30));
        }
        a.breaker(t(50.5), g, i, BreakerState::Open);
        for at in [50.7, 51.0, 51.3] {
            a.upstream(t(at), g, i, Outcome::CircuitOpen, true);
        }
        a.view(t(52.0), g, i, false);
        let ep = episode;
        // `other` crashes too but gets no traffic after it: not the slowest stop.
        let r = a.finish(&[ep(other, 47.0), ep(i, 50.0)], &[g], Vec::new());
        let z = r.zoom.expect("a zoom");
        assert_eq!((z.instance.as_str(), z.crashed_s, z.step_s), ("n3", 50.0, 0.1));
        assert_eq!((z.stopped_after_s, z.breaker_opened_after_s, z.view_updated_after_s), (0.35, Some(0.5), Some(2.0)));
        // From 2 s before the crash to 3 s after the last mark (the view at +2 s).
        assert_eq!(z.points.first().map(|p| p.from_crash_s), Some(-2.0));
        assert_eq!(z.points.len(), 70);
        let at = |s: f64| z.points.iter().find(|p| (p.from_crash_s - s).abs() < 1e-9).expect("a step");
        assert_eq!((at(0.1).sent_to_dead, at(0.1).failed_to_dead, at(0.1).retried), (1, 1, 1));
        assert_eq!(at(0.1).max_ms, Some(30.0));
        assert_eq!((at(0.3).sent_to_dead, at(0.7).refused_by_breaker, at(0.8).refused_by_breaker), (1, 1, 0));
        let total = |f: fn(&ZoomPoint) -> u64| z.points.iter().map(f).sum::<u64>();
        assert_eq!(
            (total(|p| p.sent_to_dead), total(|p| p.failed_to_dead), total(|p| p.refused_by_breaker)),
            (2, 2, 3)
        );
        assert_eq!(total(|p| p.requests), 70 + 2, "one a step from 48 s to 55 s plus the two retried");
    }
}
