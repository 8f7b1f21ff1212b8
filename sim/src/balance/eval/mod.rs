//! Evaluate balancers without a cluster: balance of keys and of requests, and
//! disruption under membership churn. Pure and deterministic (`regsim lb`).
//!
//! Model, per balancer spec, over nodes named `"0"`..`"n−1"`:
//! - **Keys** (keyspace share): K probe keys, `stats::probe_keys` of a seeded
//!   SplitMix64 stream (regenerated per pass, never stored), each placed once
//!   with `pick(key, splitmix64(key))` as `stats::assign` does, on an *idle*
//!   balancer (no `on_start`): for bounded loads that is the plain ring owner.
//!   Load of a node = probe keys it owns.
//! - **Churn**: the steps of [`super::churn`] applied in order through
//!   `set_nodes`; per step the fraction of the K probe keys whose owner *name*
//!   changed (moved keys / K), beside the ideal R/n (leave) or A/(n+A) (join).
//!   Only the owner id of each key is stored (4 bytes per key).
//! - **Requests** (closed loop): R requests whose keys come from a
//!   [`KeyDist`], on a fresh balancer over the initial membership. Request i
//!   arrives at t_i = i·RTT/W and holds its node until request i+W arrives, so
//!   at every pick W−1 earlier requests are in flight (Little's law: W = rate
//!   × RTT) and `on_finish(node, rtt, now)` reports rtt = t_{i+W} − t_i ≈ RTT
//!   = [`RTT_NS`] (10 ms). W defaults to n, i.e. one request in flight per
//!   node on average. Every balancer gets `on_start` / `on_finish` (no-ops for
//!   the stateless ones); the random word of each pick comes from its own
//!   stream, and every balancer sees the same keys and the same words.
//!   Approximation: all nodes are equally fast, so peak-EWMA sees no latency
//!   differences and acts on in-flight counts (and its 30 ms default RTT).
//!   Load of a node = requests it received; also the peak in-flight count on
//!   any node.
//!
//! Streams are derived from (seed, name) as `splitmix64(seed ^
//! splitmix64(fnv1a64(name)))`, so the same config gives the same report.
//! Limits keep a run to a few GB and minutes: see the `MAX_*` constants.

use std::collections::VecDeque;

use serde::Serialize;

use super::churn::{ChurnStep, Membership, memberships};
use super::hash::{SplitMix64, fnv1a64, splitmix64};
use super::keys::{KeyDist, KeySampler};
use super::stats::load_stats;
use super::{BalanceError, Balancer, BalancerSpec};

/// Most nodes in any membership.
pub const MAX_EVAL_NODES: usize = 100_000;
/// Most probe keys (the owner table takes 4 bytes per key: 400 MB).
pub const MAX_EVAL_KEYS: u64 = 100_000_000;
/// Most requests.
pub const MAX_EVAL_REQUESTS: u64 = 100_000_000;
/// Largest in-flight window.
pub const MAX_WINDOW: u64 = 10_000_000;
/// Most balancers in one evaluation.
pub const MAX_ALGOS: usize = 32;
/// Most ring points (k × nodes) for ring and bounded (16 bytes each: 512 MiB).
pub const MAX_RING_POINTS: u64 = 1 << 25;
/// Most score hashes for rendezvous (O(n) per lookup), about a minute of CPU.
pub const MAX_RENDEZVOUS_HASHES: u128 = 10_000_000_000;
/// Round-trip time of every request in the closed loop.
pub const RTT_NS: u64 = 10_000_000;

/// What to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// Initial node count n.
    pub nodes: usize,
    /// Probe keys K (keyspace share and disruption).
    pub keys: u64,
    /// Requests R in the closed loop (0 skips it).
    pub requests: u64,
    /// Key distribution of the requests.
    pub dist: KeyDist,
    /// In-flight window W; `None` means n.
    pub window: Option<u64>,
    /// Churn steps, in order.
    pub churn: Vec<ChurnStep>,
    /// Run seed.
    pub seed: u64,
    /// The balancers.
    pub algos: Vec<BalancerSpec>,
}

/// Load statistics over nodes, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSummary {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub max_over_mean: f64,
    pub cv: f64,
    pub p99_over_mean: f64,
    pub gini: f64,
}

/// Request-phase results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestSummary {
    /// Requests per node.
    pub load: LoadSummary,
    /// Largest number of requests in flight on one node at a pick.
    pub in_flight_max: u64,
    /// W / n.
    pub in_flight_mean: f64,
}

/// Disruption of one churn step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChurnResult {
    pub step: String,
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Moved probe keys / K.
    pub moved_fraction: f64,
    pub ideal_fraction: f64,
    pub moved_over_ideal: f64,
}

/// Results for one balancer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlgoReport {
    /// Canonical spec (the balancer's name).
    pub algorithm: String,
    /// The pick depends on the key (hash-based): disruption means something only then.
    pub keyed: bool,
    pub keys: LoadSummary,
    /// `None` when no requests were run.
    pub requests: Option<RequestSummary>,
    pub churn: Vec<ChurnResult>,
}

/// The `lb.json` model: a pure function of the config and the regsim version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub regsim_version: String,
    pub seed: u64,
    pub nodes: usize,
    pub keys: u64,
    pub requests: u64,
    pub dist: String,
    pub window: u64,
    pub rtt_s: f64,
    pub churn: Vec<String>,
    pub algorithms: Vec<AlgoReport>,
}

/// Per-node loads of one balancer (for plots), in node-index order.
#[derive(Debug, Clone, PartialEq)]
pub struct AlgoLoads {
    pub algorithm: String,
    pub keys: Vec<u64>,
    pub requests: Vec<u64>,
}

/// The report and the raw loads behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub report: EvalReport,
    pub loads: Vec<AlgoLoads>,
}

/// Seed of the stream `name` in a run with `seed`.
pub fn stream_seed(seed: u64, name: &str) -> u64 {
    splitmix64(seed ^ splitmix64(fnv1a64(name.as_bytes())))
}

fn param(param: &'static str, value: impl ToString, expected: &'static str) -> BalanceError {
    BalanceError::Param { param, value: value.to_string(), expected }
}

fn check_config(cfg: &EvalConfig, members: &[Membership]) -> Result<u64, BalanceError> {
    if !(1..=MAX_EVAL_KEYS).contains(&cfg.keys) {
        return Err(param("keys", cfg.keys, "1..=100000000 probe keys"));
    }
    if cfg.requests > MAX_EVAL_REQUESTS {
        return Err(param("requests", cfg.requests, "at most 100000000 requests"));
    }
    let window = cfg.window.unwrap_or(cfg.nodes as u64);
    if !(1..=MAX_WINDOW).contains(&window) {
        return Err(param("window", window, "1..=10000000 requests in flight"));
    }
    if cfg.algos.is_empty() || cfg.algos.len() > MAX_ALGOS {
        return Err(param("algo", cfg.algos.len(), "1..=32 balancer specs"));
    }
    let largest = members.iter().map(Membership::len).max().unwrap_or(0) as u64;
    let probes: u128 = members.iter().map(|m| m.len() as u128 * u128::from(cfg.keys)).sum();
    let hashes = probes + cfg.nodes as u128 * u128::from(cfg.requests);
    for spec in &cfg.algos {
        let too_big = |expected: String| BalanceError::Spec { token: spec.to_string(), expected };
        match *spec {
            BalancerSpec::Ring { k, .. } | BalancerSpec::Bounded { k, .. }
                if u64::from(k) * largest > MAX_RING_POINTS =>
            {
                return Err(too_big(format!(
                    "at most {MAX_RING_POINTS} ring points (k x nodes); {k} x {largest} is too many, lower k"
                )));
            }
            BalancerSpec::Rendezvous { .. } if hashes > MAX_RENDEZVOUS_HASHES => {
                return Err(too_big(format!(
                    "at most {MAX_RENDEZVOUS_HASHES} score hashes (nodes x lookups); this needs {hashes}, \
                     lower --keys, --requests or --nodes"
                )));
            }
            _ => {}
        }
    }
    Ok(window)
}

/// Evaluate every balancer of `cfg`.
pub fn evaluate(cfg: &EvalConfig) -> Result<Evaluation, BalanceError> {
    evaluate_with_progress(cfg, &mut |_, _| {})
}

/// [`evaluate`], calling `progress(balancers done, spec being evaluated next)` before each
/// balancer and once at the end (the CLI's progress bar).
pub fn evaluate_with_progress(
    cfg: &EvalConfig,
    progress: &mut dyn FnMut(usize, Option<&str>),
) -> Result<Evaluation, BalanceError> {
    let mut churn_rng = SplitMix64::new(stream_seed(cfg.seed, "lb/churn"));
    let members = memberships(cfg.nodes, &cfg.churn, MAX_EVAL_NODES, &mut churn_rng)?;
    let window = check_config(cfg, &members)?;
    let sampler = KeySampler::new(&cfg.dist, stream_seed(cfg.seed, "lb/key-ids"))?;
    let mut algorithms = Vec::with_capacity(cfg.algos.len());
    let mut loads = Vec::with_capacity(cfg.algos.len());
    for (i, spec) in cfg.algos.iter().enumerate() {
        progress(i, Some(&spec.to_string()));
        let (keys, key_loads, churn) = keys_and_churn(spec, cfg, &members)?;
        let (requests, request_loads) = if cfg.requests > 0 {
            let (summary, l) = closed_loop(spec, cfg, &members[0], &sampler, window)?;
            (Some(summary), l)
        } else {
            (None, Vec::new())
        };
        let algorithm = spec.to_string();
        loads.push(AlgoLoads { algorithm: algorithm.clone(), keys: key_loads, requests: request_loads });
        algorithms.push(AlgoReport { algorithm, keyed: spec.keyed(), keys, requests, churn });
    }
    progress(cfg.algos.len(), None);
    let report = EvalReport {
        regsim_version: env!("CARGO_PKG_VERSION").to_string(),
        seed: cfg.seed,
        nodes: cfg.nodes,
        keys: cfg.keys,
        requests: cfg.requests,
        dist: cfg.dist.to_string(),
        window,
        rtt_s: RTT_NS as f64 / 1e9,
        churn: cfg.churn.iter().map(ToString::to_string).collect(),
        algorithms,
    };
    Ok(Evaluation { report, loads })
}

fn summary(loads: &[u64]) -> Result<LoadSummary, BalanceError> {
    let s = load_stats(loads)?;
    Ok(LoadSummary {
        min: s.min,
        max: s.max,
        mean: s.mean,
        max_over_mean: s.max_over_mean,
        cv: s.cv,
        p99_over_mean: s.p99_over_mean,
        gini: s.gini,
    })
}

/// Owner id of `key` under `b` over `m` (pick as `stats::assign` does).
fn owner(b: &mut dyn Balancer, m: &Membership, key: u64) -> Result<(usize, u32), BalanceError> {
    let idx = b.pick(key, splitmix64(key)).map(|i| i as usize);
    match idx.and_then(|i| m.ids.get(i).map(|&id| (i, id))) {
        Some(found) => Ok(found),
        None => Err(BalanceError::Input(format!("{} picked {idx:?} among {} nodes", b.name(), m.len()))),
    }
}

type KeysOutcome = (LoadSummary, Vec<u64>, Vec<ChurnResult>);

fn keys_and_churn(spec: &BalancerSpec, cfg: &EvalConfig, members: &[Membership]) -> Result<KeysOutcome, BalanceError> {
    let probe_seed = stream_seed(cfg.seed, "lb/probe-keys");
    let first = &members[0];
    let mut b = spec.build(&first.names)?;
    let mut counts = vec![0u64; first.len()];
    let mut owners = Vec::with_capacity(cfg.keys as usize);
    let mut rng = SplitMix64::new(probe_seed);
    for _ in 0..cfg.keys {
        let (i, id) = owner(b.as_mut(), first, rng.next_u64())?;
        counts[i] += 1;
        owners.push(id);
    }
    let mut churn = Vec::with_capacity(cfg.churn.len());
    for (step, pair) in cfg.churn.iter().zip(members.windows(2)) {
        let (before, after) = (&pair[0], &pair[1]);
        b.set_nodes(&after.names);
        let mut rng = SplitMix64::new(probe_seed);
        let mut moved = 0u64;
        for slot in &mut owners {
            let (_, id) = owner(b.as_mut(), after, rng.next_u64())?;
            if *slot != id {
                moved += 1;
                *slot = id;
            }
        }
        let moved_fraction = moved as f64 / cfg.keys as f64;
        let ideal_fraction = step.ideal_fraction(before.len());
        churn.push(ChurnResult {
            step: step.to_string(),
            nodes_before: before.len(),
            nodes_after: after.len(),
            moved_fraction,
            ideal_fraction,
            moved_over_ideal: moved_fraction / ideal_fraction,
        });
    }
    Ok((summary(&counts)?, counts, churn))
}

fn closed_loop(
    spec: &BalancerSpec,
    cfg: &EvalConfig,
    m: &Membership,
    sampler: &KeySampler,
    window: u64,
) -> Result<(RequestSummary, Vec<u64>), BalanceError> {
    let mut b = spec.build(&m.names)?;
    let mut key_rng = SplitMix64::new(stream_seed(cfg.seed, "lb/request-keys"));
    let mut rand_rng = SplitMix64::new(stream_seed(cfg.seed, "lb/request-rand"));
    let arrival_ns = |i: u64| (u128::from(i) * u128::from(RTT_NS) / u128::from(window)) as u64;
    let mut flight: VecDeque<(u32, u64)> = VecDeque::with_capacity(window.min(cfg.requests) as usize);
    let mut in_flight = vec![0u64; m.len()];
    let mut counts = vec![0u64; m.len()];
    let mut in_flight_max = 0;
    for i in 0..cfg.requests {
        let now_ns = arrival_ns(i);
        if flight.len() as u64 == window
            && let Some((node, start_ns)) = flight.pop_front()
        {
            b.on_finish(node, now_ns - start_ns, now_ns);
            in_flight[node as usize] -= 1;
        }
        let key = sampler.next_key(&mut key_rng);
        let node = match b.pick(key, rand_rng.next_u64()) {
            Some(i) if (i as usize) < m.len() => i,
            other => return Err(BalanceError::Input(format!("{} picked {other:?}", b.name()))),
        };
        b.on_start(node);
        let slot = &mut in_flight[node as usize];
        *slot += 1;
        in_flight_max = in_flight_max.max(*slot);
        counts[node as usize] += 1;
        flight.push_back((node, now_ns));
    }
    let summary = RequestSummary {
        load: summary(&counts)?,
        in_flight_max,
        in_flight_mean: window.min(cfg.requests) as f64 / m.len() as f64,
    };
    Ok((summary, counts))
}

/// Parse a request key: decimal, or hex with a `0x` prefix (64 bits).
pub fn parse_key(s: &str) -> Result<u64, BalanceError> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| BalanceError::Spec {
        token: s.to_string(),
        expected: "a 64-bit key, decimal or 0x hex".to_string(),
    })
}

/// A ring (or bounded-load ring) over `nodes` nodes stays within [`MAX_RING_POINTS`]: the
/// same limit for `regsim lb` and for the balancers of scenario consumers and gateways.
pub fn check_ring_points(spec: &BalancerSpec, nodes: u64) -> Result<(), BalanceError> {
    if let BalancerSpec::Ring { k, .. } | BalancerSpec::Bounded { k, .. } = *spec
        && u64::from(k).saturating_mul(nodes) > MAX_RING_POINTS
    {
        return Err(BalanceError::Spec {
            token: spec.to_string(),
            expected: format!("at most {MAX_RING_POINTS} ring points (k x nodes = {k} x {nodes}), lower k"),
        });
    }
    Ok(())
}

/// Node index (0-based, into nodes `"0"`..`"n−1"`) that `spec` picks for the raw request
/// `key`, as `Balancer::pick(key, splitmix64(key))` on an idle balancer: key-based balancers
/// hash the key themselves (e.g. jump gives `jump(hash.hash_key(key), n)`).
pub fn route(spec: &BalancerSpec, nodes: usize, key: u64) -> Result<u32, BalanceError> {
    if !(1..=MAX_EVAL_NODES).contains(&nodes) {
        return Err(param("nodes", nodes, "1..=100000 nodes"));
    }
    check_ring_points(spec, nodes as u64)?;
    let m = Membership::from_ids((0..nodes as u32).collect());
    let mut b = spec.build(&m.names)?;
    owner(b.as_mut(), &m, key).map(|(i, _)| i as u32)
}

#[cfg(test)]
mod tests;
