//! What the madsim tier can run, and the small pieces both builds share.
//!
//! madsim has one global network configuration: a uniform latency range and one loss rate,
//! plus clogged nodes and links. Anything a scenario asks for beyond that (per-link profiles,
//! other latency distributions, duplication, clock skew, role targets resolved at fire time,
//! partitions too large to list as clogged links) is rejected here, with the key path, before
//! anything runs, rather than approximated.
//!
//! One thing cannot be rejected without rejecting every canonical scenario: madsim adds 1 ms
//! to every send and 1 ms to every receive (`NetSim::rand_delay`, floored by its 1 ms sleep
//! minimum), so a message takes at least [`HOP_FLOOR`]. The driver subtracts the floor from
//! the scenario's latency range; a minimum below the floor is raised to it, and [`notes`]
//! says so on stderr (it is documented in the README and bounded in the cross-check test).

use regsim::fault::ActionKind;
use regsim::scenario::{Layout, Scenario};
use regsim_kernel::net::Partition;
use regsim_kernel::net::latency::DistKind;
use regsim_kernel::{NodeId, SimDuration};

/// madsim's per-message floor: 1 ms in `send_to_raw` and 1 ms in `recv_from_raw`.
pub const HOP_FLOOR: SimDuration = SimDuration::from_millis(2);

/// At most this many directed node pairs are clogged for one partition (madsim keeps one
/// `HashSet` entry per clogged link).
pub const MAX_CLOGGED_LINKS: u64 = 1_000_000;

/// A rejection: (key path, message), located in the file by `regsim::scenario::load_with`.
pub type Rejection = (String, String);

/// The one-way latency range `[min, max]` the scenario asks for (after [`check`]).
pub fn latency_range(s: &Scenario) -> (SimDuration, SimDuration) {
    let l = &s.network.latency;
    match l.dist {
        DistKind::Constant => {
            let v = l.value.unwrap_or(SimDuration::ZERO);
            (v, v)
        }
        _ => (l.min.unwrap_or(SimDuration::ZERO), l.max.unwrap_or(SimDuration::ZERO)),
    }
}

/// madsim's `send_latency` (half-open, in ns) so that send floor + latency + receive floor
/// spans the scenario's range, as far as the floor allows.
pub fn send_latency_ns(s: &Scenario) -> (u64, u64) {
    let (min, max) = latency_range(s);
    let lo = min.0.saturating_sub(HOP_FLOOR.0);
    let hi = max.0.saturating_sub(HOP_FLOOR.0).max(lo) + 1;
    (lo, hi)
}

/// Approximations the run will make (printed on stderr before it starts).
pub fn notes(s: &Scenario) -> Vec<String> {
    let (min, max) = latency_range(s);
    let mut out = Vec::new();
    if min < HOP_FLOOR {
        let floor = HOP_FLOOR.max(min);
        out.push(format!(
            "network.latency: min {min} is below madsim's {HOP_FLOOR} per-message floor (1 ms send + 1 ms receive); \
             messages take [{floor}, {}] instead of [{min}, {max}]",
            max.max(HOP_FLOOR)
        ));
    }
    if s.network.loss > 0.0 {
        out.push(
            "network.loss: dropped by madsim's own packet_loss_rate, which counts nothing: \
             report network.dropped_loss stays 0"
                .to_string(),
        );
    }
    out
}

/// The first fault neither driver outside the core can carry out: clock skew (`clock`: why the
/// driver has one clock) and role targets resolved when the fault fires (not wired to
/// `wired_to`). Returns (key path, what is not supported).
pub fn unwired_fault(s: &Scenario, clock: &str, wired_to: &str) -> Option<(String, String)> {
    s.faults.iter().enumerate().find_map(|(i, f)| {
        if f.action == ActionKind::Skew {
            return Some((format!("faults[{i}].action"), format!("\"skew\" ({clock})")));
        }
        let role = f
            .target
            .as_ref()
            .is_some_and(|t| t.0.iter().any(|x| matches!(x.replace(' ', "").as_str(), "leader" | "follower[random]")));
        role.then(|| {
            (
                format!("faults[{i}].target"),
                format!(
                    "\"leader\" and \"follower[random]\" (targets resolved when the fault fires are not wired to \
                     {wired_to})"
                ),
            )
        })
    })
}

/// Rejects what madsim cannot express (see the module doc).
pub fn check(s: &Scenario) -> Result<(), Rejection> {
    let n = &s.network;
    let l = &n.latency;
    let reject = |path: &str, msg: &str| Err((path.to_string(), format!("not supported by the madsim tier: {msg}")));
    if !matches!(l.dist, DistKind::Uniform | DistKind::Constant) {
        return reject(
            "network.latency.dist",
            "expected \"uniform\" or \"constant\" (madsim draws one uniform latency range for every message)",
        );
    }
    if l.tail.is_some() {
        return reject("network.latency.tail", "expected no tail (madsim draws latency from one uniform range)");
    }
    if n.duplicate > 0.0 {
        return reject("network.duplicate", "expected 0 (madsim never duplicates a datagram)");
    }
    if !n.links.is_empty() {
        return reject(
            "network.links",
            "expected no per-role link profiles (madsim has one global latency range and loss rate)",
        );
    }
    if let Some((path, msg)) = unwired_section(s, "madsim") {
        return reject(path, &msg);
    }
    if let Some((path, msg)) = unwired_fault(s, "madsim has one clock for every node", "madsim yet") {
        return reject(&path, &msg);
    }
    Ok(())
}

/// The scenario sections neither the madsim driver nor `--real` runs yet (monitoring, the
/// gateway, regions): (key path, reason), `tier` naming the driver in the reason.
pub fn unwired_section(s: &Scenario, tier: &str) -> Option<(&'static str, String)> {
    if s.monitoring.is_some() {
        return Some(("monitoring", format!("the Prometheus and Alertmanager actors are not wired to {tier} yet")));
    }
    if s.gateway.is_some() {
        return Some(("gateway", format!("the gateway actor is not cross-checked on {tier} yet")));
    }
    if !s.regions.is_empty() {
        return Some(("regions", format!("multi-region layouts are not cross-checked on {tier} yet")));
    }
    None
}

/// Rejects partitions that would clog more than [`MAX_CLOGGED_LINKS`] directed links.
pub fn check_layout(s: &Scenario, layout: &Layout) -> Result<(), Rejection> {
    let n = layout.nodes.len();
    for (_, action) in &layout.faults {
        let regsim::fault::FaultAction::Partition { id, partition } = action else { continue };
        let links = cut_link_count(partition, n);
        if links > MAX_CLOGGED_LINKS {
            let i = partition_spec(s, *id).unwrap_or(0);
            return Err((
                format!("faults[{i}].shape"),
                format!(
                    "not supported by the madsim tier: this partition cuts {links} directed links, more than the \
                     {MAX_CLOGGED_LINKS} it clogs one by one"
                ),
            ));
        }
    }
    Ok(())
}

/// The `[[faults]]` entry that first names partition `id` (ids are interned in file order,
/// `name` or `#i`, as `regsim::fault::resolve` does).
fn partition_spec(s: &Scenario, id: u32) -> Option<usize> {
    let mut names: Vec<String> = Vec::new();
    for (i, f) in s.faults.iter().enumerate() {
        if f.action != ActionKind::Partition {
            continue;
        }
        let name = f.name.clone().unwrap_or_else(|| format!("#{i}"));
        if !names.contains(&name) {
            names.push(name);
            if names.len() - 1 == id as usize {
                return Some(i);
            }
        }
    }
    None
}

/// Groups of a partition: (one member, member count) per side, in side order.
fn sides(p: &Partition, n: usize) -> Vec<(NodeId, u64)> {
    let mut out: Vec<(NodeId, u64)> = Vec::new();
    for k in 0..n as u32 {
        if let Some(g) = p.group_of(NodeId(k)) {
            let g = usize::from(g);
            if out.len() <= g {
                out.resize(g + 1, (NodeId(u32::MAX), 0));
            }
            if out[g].1 == 0 {
                out[g].0 = NodeId(k);
            }
            out[g].1 += 1;
        }
    }
    out
}

/// How many directed node pairs `p` cuts in a world of `n` nodes.
pub fn cut_link_count(p: &Partition, n: usize) -> u64 {
    let sides = sides(p, n);
    let mut links = 0;
    for (a, na) in &sides {
        for (b, nb) in &sides {
            if *na > 0 && *nb > 0 && a != b && !p.allows(*a, *b) {
                links += na * nb;
            }
        }
    }
    links
}

/// The directed node pairs `p` cuts (check [`cut_link_count`] first).
pub fn cut_links(p: &Partition, n: usize) -> Vec<(NodeId, NodeId)> {
    let mut members: Vec<Vec<NodeId>> = Vec::new();
    for k in 0..n as u32 {
        if let Some(g) = p.group_of(NodeId(k)) {
            let g = usize::from(g);
            if members.len() <= g {
                members.resize(g + 1, Vec::new());
            }
            members[g].push(NodeId(k));
        }
    }
    let mut out = Vec::new();
    for (i, a) in members.iter().enumerate() {
        for (j, b) in members.iter().enumerate() {
            let (Some(ra), Some(rb)) = (a.first(), b.first()) else { continue };
            if i == j || p.allows(*ra, *rb) {
                continue;
            }
            for x in a {
                out.extend(b.iter().map(|y| (*x, *y)));
            }
        }
    }
    out
}

/// Two-sample Kolmogorov–Smirnov statistic: the largest distance between the empirical CDFs
/// of `a` and `b` (0 when either is empty). Ties are handled by stepping both CDFs past a
/// shared value before comparing.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// The KS statistic with a shift tolerance `delta`: the smallest `d` with
/// `F_a(x - delta) - d <= F_b(x) <= F_a(x + delta) + d` for every `x`, i.e. the largest amount
/// by which one empirical CDF exceeds the other moved `delta` to the right. Differences
/// smaller than `delta` in the values cost nothing (`delta = 0` gives [`ks_statistic`]).
pub fn ks_statistic_shifted(a: &[f64], b: &[f64], delta: f64) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let cdf = |v: &[f64], x: f64| v.partition_point(|y| *y <= x) as f64 / v.len() as f64;
    // F_b(x - delta) - F_a(x) is largest where its first term jumps: x = b_j + delta.
    let over = |p: &[f64], q: &[f64]| p.iter().map(|y| cdf(p, *y) - cdf(q, y + delta)).fold(0.0, f64::max);
    over(&b, &a).max(over(&a, &b))
}

/// The two-sample KS critical value `c(alpha) * sqrt((n + m) / (n * m))`.
pub fn ks_critical(c_alpha: f64, n: usize, m: usize) -> f64 {
    let (n, m) = (n as f64, m as f64);
    c_alpha * ((n + m) / (n * m)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use regsim_kernel::net::Shape;

    #[test]
    fn ks_of_identical_and_disjoint_samples() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(ks_statistic(&a, &a), 0.0);
        assert_eq!(ks_statistic(&a, &[10.0, 11.0]), 1.0);
        // a = {1,2,3,4}, b = {2.5}: at x = 2 the CDFs are 0.5 and 0; at 2.5, 0.5 and 1.
        assert_eq!(ks_statistic(&a, &[2.5]), 0.5);
        // Ties: {1,1,2} vs {1,2,2}: at 1, 2/3 vs 1/3.
        let d = ks_statistic(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]);
        assert!((d - 1.0 / 3.0).abs() < 1e-12, "{d}");
    }

    #[test]
    fn shifted_ks_forgives_small_shifts_only() {
        let a = [12.271, 17.271, 17.271, 17.271];
        let b: Vec<f64> = a.iter().map(|x| x + 0.015).collect();
        assert_eq!(ks_statistic(&a, &b), 0.75);
        assert_eq!(ks_statistic_shifted(&a, &b, 0.0), 0.75);
        assert_eq!(ks_statistic_shifted(&a, &b, 0.02), 0.0);
        assert_eq!(ks_statistic_shifted(&b, &a, 0.02), 0.0);
        // A 5 s jump (one missed health check) is not forgiven.
        let c = [12.271, 17.271, 17.271, 22.271];
        assert_eq!(ks_statistic_shifted(&a, &c, 0.1), 0.25);
        let d = ks_statistic_shifted(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0], 0.0);
        assert!((d - 1.0 / 3.0).abs() < 1e-12, "{d}");
    }

    #[test]
    fn ks_critical_value_shrinks_with_samples() {
        let small = ks_critical(1.95, 10, 10);
        let large = ks_critical(1.95, 100, 100);
        assert!((small - 1.95 * (0.2f64).sqrt()).abs() < 1e-12);
        assert!(large < small);
    }

    #[test]
    fn cut_links_of_isolate_and_halves() {
        let isolate = Partition::build(&Shape::Isolate(vec![NodeId(0)]), 5, false).expect("valid");
        assert_eq!(cut_link_count(&isolate, 5), 8);
        let links = cut_links(&isolate, 5);
        assert_eq!(links.len(), 8);
        assert!(links.contains(&(NodeId(0), NodeId(4))) && links.contains(&(NodeId(3), NodeId(0))));
        let ids: Vec<NodeId> = (0..4).map(NodeId).collect();
        let one_way = Partition::build(&Shape::Halves(ids), 6, true).expect("valid");
        // Only {0,1} -> {2,3} is cut; nodes 4 and 5 are unaffected.
        assert_eq!(cut_link_count(&one_way, 6), 4);
        assert!(cut_links(&one_way, 6).iter().all(|(a, b)| a.0 < 2 && (2..4).contains(&b.0)));
    }
}
