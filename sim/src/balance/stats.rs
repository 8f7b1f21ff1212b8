//! Pure measurement helpers for balancer reports.
//!
//! Over per-node loads x_1..x_n (request counts, keyspace shares, in-flight
//! counts; any non-negative numbers) with mean μ:
//! - max/mean: max_i x_i / μ (1 = perfect balance);
//! - coefficient of variation: σ/μ with the population σ (divide by n), the
//!   quantity whose ring theory is `sqrt((n−1)/(k·n+1))`;
//! - p99/mean: the nearest-rank 99th percentile (the ⌈0.99·n⌉-th smallest
//!   value) over μ;
//! - Gini: Σ_i Σ_j |x_i − x_j| / (2·n²·μ), 0 for equal loads and (n−1)/n when
//!   one node has everything.
//!
//! All-zero loads count as perfectly balanced (ratios 1, CV and Gini 0).
//! Disruption: the fraction of a fixed probe key set whose node *name*
//! changed between two memberships (indices shift when nodes come and go).

use super::hash::SplitMix64;
use super::{BalanceError, Balancer, NodeIdx};

/// A per-node load value.
pub trait Load: Copy {
    /// As `f64`.
    fn to_f64(self) -> f64;
}

macro_rules! impl_load {
    ($($t:ty),*) => {$(
        impl Load for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
impl_load!(u64, u32, usize, f64);

/// Summary of a per-node load vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadStats {
    /// Number of nodes.
    pub nodes: usize,
    /// Sum of loads.
    pub total: f64,
    /// Mean load.
    pub mean: f64,
    /// Smallest load.
    pub min: f64,
    /// Largest load.
    pub max: f64,
    /// max / mean.
    pub max_over_mean: f64,
    /// Population standard deviation / mean.
    pub cv: f64,
    /// Nearest-rank p99 / mean.
    pub p99_over_mean: f64,
    /// Gini coefficient.
    pub gini: f64,
}

/// All the statistics of `loads` (non-empty, finite, non-negative).
pub fn load_stats<T: Load>(loads: &[T]) -> Result<LoadStats, BalanceError> {
    let mut xs = Vec::with_capacity(loads.len());
    for (i, l) in loads.iter().enumerate() {
        let x = l.to_f64();
        if !(x.is_finite() && x >= 0.0) {
            return Err(BalanceError::Input(format!("load {i} is {x}, expected finite >= 0")));
        }
        xs.push(x);
    }
    if xs.is_empty() {
        return Err(BalanceError::Input("no loads".to_string()));
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len() as f64;
    let total: f64 = xs.iter().sum();
    let mean = total / n;
    let (min, max) = (xs[0], xs[xs.len() - 1]);
    let rank = ((0.99 * n).ceil() as usize).clamp(1, xs.len());
    let p99 = xs[rank - 1];
    let (max_over_mean, cv, p99_over_mean, gini) = if total > 0.0 {
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        // Sorted form of the pairwise-difference Gini: Σ (2i − n − 1) x_(i) / (n² μ).
        let weighted: f64 = xs.iter().enumerate().map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x).sum();
        (max / mean, var.sqrt() / mean, p99 / mean, weighted / (n * total))
    } else {
        (1.0, 0.0, 1.0, 0.0)
    };
    Ok(LoadStats { nodes: xs.len(), total, mean, min, max, max_over_mean, cv, p99_over_mean, gini })
}

/// max / mean of `loads`.
pub fn max_over_mean<T: Load>(loads: &[T]) -> Result<f64, BalanceError> {
    load_stats(loads).map(|s| s.max_over_mean)
}

/// Coefficient of variation (population σ / mean) of `loads`.
pub fn coefficient_of_variation<T: Load>(loads: &[T]) -> Result<f64, BalanceError> {
    load_stats(loads).map(|s| s.cv)
}

/// Nearest-rank p99 / mean of `loads`.
pub fn p99_over_mean<T: Load>(loads: &[T]) -> Result<f64, BalanceError> {
    load_stats(loads).map(|s| s.p99_over_mean)
}

/// Gini coefficient of `loads`.
pub fn gini<T: Load>(loads: &[T]) -> Result<f64, BalanceError> {
    load_stats(loads).map(|s| s.gini)
}

/// `count` deterministic probe keys from `seed` (SplitMix64 stream).
pub fn probe_keys(seed: u64, count: usize) -> Vec<u64> {
    let mut rng = SplitMix64::new(seed);
    (0..count).map(|_| rng.next_u64()).collect()
}

/// Where `balancer` sends each key; `rand` for key `k` is `splitmix64(k)` so
/// request-based balancers give reproducible answers too.
pub fn assign(balancer: &mut dyn Balancer, keys: &[u64]) -> Vec<Option<NodeIdx>> {
    keys.iter().map(|&k| balancer.pick(k, super::hash::splitmix64(k))).collect()
}

/// Requests per node from an assignment over `n` nodes (out-of-range and
/// `None` entries are not counted).
pub fn counts(assignment: &[Option<NodeIdx>], n: usize) -> Vec<u64> {
    let mut c = vec![0u64; n];
    for slot in assignment.iter().flatten() {
        if let Some(x) = c.get_mut(*slot as usize) {
            *x += 1;
        }
    }
    c
}

/// Fraction of probes whose node name differs between `before` (indices into
/// `before_nodes`) and `after` (indices into `after_nodes`); a probe that
/// goes from `None` to a node or back counts as moved.
pub fn disruption(
    before: &[Option<NodeIdx>],
    before_nodes: &[String],
    after: &[Option<NodeIdx>],
    after_nodes: &[String],
) -> Result<f64, BalanceError> {
    if before.len() != after.len() || before.is_empty() {
        return Err(BalanceError::Input(format!(
            "probe sets differ or are empty: {} before, {} after",
            before.len(),
            after.len()
        )));
    }
    let name = |idx: Option<NodeIdx>, nodes: &[String]| -> Result<Option<String>, BalanceError> {
        idx.map(|i| {
            nodes
                .get(i as usize)
                .cloned()
                .ok_or_else(|| BalanceError::Input(format!("node index {i} out of range ({} nodes)", nodes.len())))
        })
        .transpose()
    };
    let mut moved = 0usize;
    for (&b, &a) in before.iter().zip(after) {
        if name(b, before_nodes)? != name(a, after_nodes)? {
            moved += 1;
        }
    }
    Ok(moved as f64 / before.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::super::HashKind;
    use super::super::hash::node_names;
    use super::super::ring::RingBalancer;
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        // Exact formulas on small integers: only f64 rounding.
        (a - b).abs() < 1e-12
    }

    #[test]
    fn equal_and_all_on_one() {
        let s = load_stats(&[5u64; 8]).expect("valid");
        assert!(close(s.gini, 0.0) && close(s.cv, 0.0) && close(s.max_over_mean, 1.0));
        for n in [1usize, 2, 10, 101] {
            let mut loads = vec![0u64; n];
            loads[n / 2] = 42;
            let s = load_stats(&loads).expect("valid");
            assert!(close(s.gini, (n as f64 - 1.0) / n as f64), "n={n}: {}", s.gini);
            assert!(close(s.max_over_mean, n as f64));
            // CV of one-hot: sqrt(n - 1).
            assert!(close(s.cv, (n as f64 - 1.0).sqrt()), "n={n}: {}", s.cv);
        }
    }

    #[test]
    fn known_values() {
        // [1, 3]: mean 2, σ 1, CV 0.5, Gini |1-3|*2 / (2*4*2) = 0.25.
        let s = load_stats(&[1.0, 3.0]).expect("valid");
        assert!(close(s.cv, 0.5) && close(s.gini, 0.25) && close(s.max_over_mean, 1.5));
        // 1..=100: nearest-rank p99 = 99, mean 50.5.
        let v: Vec<u32> = (1..=100).collect();
        assert!(close(p99_over_mean(&v).expect("valid"), 99.0 / 50.5));
        // Gini of 1..=n is (n-1)/(3n) for the uniform ramp: n=100 -> 0.33.
        assert!(close(gini(&v).expect("valid"), 99.0 / 300.0));
        assert!(close(max_over_mean(&[2usize, 2, 8]).expect("valid"), 2.0));
        assert!(close(coefficient_of_variation(&[0u64, 0]).expect("valid"), 0.0));
        assert!(load_stats::<u64>(&[]).is_err());
        assert!(load_stats(&[1.0, -1.0]).is_err());
        assert!(load_stats(&[1.0, f64::NAN]).is_err());
    }

    #[test]
    fn disruption_by_name() {
        let before_nodes = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let after_nodes = vec!["c".to_string(), "a".to_string()];
        // a->a (index 0 -> 1), b->c, c->c (2 -> 0), None->a.
        let before = [Some(0), Some(1), Some(2), None];
        let after = [Some(1), Some(0), Some(0), Some(1)];
        let d = disruption(&before, &before_nodes, &after, &after_nodes).expect("valid");
        assert!(close(d, 0.5));
        assert!(disruption(&before, &before_nodes, &after[..3], &after_nodes).is_err());
        assert!(disruption(&[Some(7)], &before_nodes, &[Some(0)], &after_nodes).is_err());
    }

    #[test]
    fn ring_removal_disruption_is_the_removed_share() {
        // End to end: removing 1 of 10 ring nodes moves exactly that node's
        // probes, about 1/10 of 20_000 (sd of a k=160 share ~ 0.024 relative
        // to 0.1 is 0.0075; with the probe noise we allow 0.05..0.15).
        let nodes = node_names(12, 10);
        let keys = probe_keys(3, 20_000);
        let mut b = RingBalancer::new(&nodes, 160, HashKind::Xxh64).expect("valid");
        let before = assign(&mut b, &keys);
        let removed_share = counts(&before, 10)[0] as f64 / keys.len() as f64;
        b.set_nodes(&nodes[1..]);
        let after = assign(&mut b, &keys);
        let d = disruption(&before, &nodes, &after, &nodes[1..]).expect("valid");
        assert!(close(d, removed_share), "{d} vs {removed_share}");
        assert!((0.05..0.15).contains(&d), "{d}");
    }
}
