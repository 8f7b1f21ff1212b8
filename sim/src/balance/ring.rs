//! Ring consistent hashing with virtual nodes (Karger et al., STOC 1997;
//! virtual nodes as in Chord / Dynamo).
//!
//! Model: every node owns `k` points on the 64-bit circle. Point `i` of node
//! `name` (for `i` in `0..k`, decimal, no padding) is
//! `h(format!("{name}#{i}"))`, e.g. `h("10.0.0.7:8080#0")`, where `h` is the
//! selected [`HashKind`] over the UTF-8 bytes. The ring is a `Vec` of
//! `(point, node)` sorted by point (ties, which need a 64-bit collision,
//! broken by node name so the ring depends only on the set of names). A key
//! goes to the owner of the first point `>= h(key)` (binary search), wrapping
//! to the first point. Hence a node owns the arcs `(previous point, its
//! point]`; with `N = k·n` uniform points a node's share of the keyspace is
//! Beta(k, N−k), whose coefficient of variation is `sqrt((n−1)/(k·n+1))`.
//! Removing a node only moves that node's keys; adding one only moves keys to it.
//!
//! Caveat, measured: with FNV-1a this derivation clusters. A node's names
//! differ only in the trailing `#i`, and FNV-1a's last step `(s ^ byte)·P`
//! (P = 2^40 + 0x1b3) spreads a last-byte difference d to about d·2^40, so a
//! node's points land in a few tight clumps; at n = 20 the share CV is 3.2x
//! the theory for k = 10 and 7.3x for k = 160 (xxHash64: within 2%). This is
//! kept as is, a real pitfall of FNV-based rings; prefer `hash=xxh64`.

use super::hash::HashKind;
use super::{BalanceError, Balancer, NodeIdx, check_nodes, indexable};

/// Default virtual nodes per node.
pub const DEFAULT_VNODES: u32 = 160;

/// A sorted consistent-hash ring.
#[derive(Debug, Clone)]
pub struct Ring {
    points: Vec<(u64, NodeIdx)>,
    nodes: usize,
    hash: HashKind,
}

impl Ring {
    /// Ring over `nodes` with `k >= 1` points per node.
    pub fn new(nodes: &[String], k: u32, hash: HashKind) -> Result<Self, BalanceError> {
        check_nodes(nodes)?;
        check_k(k)?;
        Ok(Self::build(nodes, k, hash))
    }

    /// Ring over `nodes` (may be empty); `k` is clamped to at least 1.
    pub fn build(nodes: &[String], k: u32, hash: HashKind) -> Self {
        let nodes = indexable(nodes);
        let k = k.max(1);
        let mut points = Vec::with_capacity(nodes.len() * k as usize);
        let mut buf = String::new();
        for (idx, name) in nodes.iter().enumerate() {
            for i in 0..k {
                points.push((point(hash, name, i, &mut buf), idx as NodeIdx));
            }
        }
        points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| nodes[a.1 as usize].cmp(&nodes[b.1 as usize])));
        Self { points, nodes: nodes.len(), hash }
    }

    /// The hash this ring uses for points and keys.
    pub fn hash(&self) -> HashKind {
        self.hash
    }

    /// Sorted `(point, node)` pairs.
    pub fn points(&self) -> &[(u64, NodeIdx)] {
        &self.points
    }

    /// Position in [`Ring::points`] of the first point `>= h`, wrapping to 0;
    /// `None` for an empty ring.
    pub fn successor(&self, h: u64) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let pos = self.points.partition_point(|&(p, _)| p < h);
        Some(if pos == self.points.len() { 0 } else { pos })
    }

    /// Owner of the keyspace position `h`.
    pub fn lookup_hash(&self, h: u64) -> Option<NodeIdx> {
        self.successor(h).map(|pos| self.points[pos].1)
    }

    /// Owner of request key `key` (hashed with the ring's hash).
    pub fn lookup(&self, key: u64) -> Option<NodeIdx> {
        self.lookup_hash(self.hash.hash_key(key))
    }

    /// Fraction of the 64-bit keyspace each node owns (sums to 1).
    pub fn shares(&self) -> Vec<f64> {
        let mut shares = vec![0.0; self.nodes];
        let Some(&(last, _)) = self.points.last() else {
            return shares;
        };
        if self.points.len() == 1 {
            shares[self.points[0].1 as usize] = 1.0;
            return shares;
        }
        let mut prev = last;
        for &(p, node) in &self.points {
            shares[node as usize] += p.wrapping_sub(prev) as f64 / 18_446_744_073_709_551_616.0;
            prev = p;
        }
        shares
    }
}

/// Point `i` of node `name`: `hash(name + "#" + i)`. `buf` is scratch space.
pub fn point(hash: HashKind, name: &str, i: u32, buf: &mut String) -> u64 {
    use std::fmt::Write;
    buf.clear();
    buf.push_str(name);
    // Writing into a String cannot fail.
    let _ = write!(buf, "#{i}");
    hash.hash_bytes(buf.as_bytes())
}

pub(super) fn check_k(k: u32) -> Result<(), BalanceError> {
    if k == 0 {
        return Err(BalanceError::Param {
            param: "k",
            value: k.to_string(),
            expected: "at least 1 virtual node per node",
        });
    }
    Ok(())
}

/// [`Ring`] as a [`Balancer`].
#[derive(Debug, Clone)]
pub struct RingBalancer {
    ring: Ring,
    k: u32,
    name: String,
}

impl RingBalancer {
    /// Ring balancer with `k` virtual nodes per node.
    pub fn new(nodes: &[String], k: u32, hash: HashKind) -> Result<Self, BalanceError> {
        Ok(Self { ring: Ring::new(nodes, k, hash)?, k, name: format!("ring:k={k}:hash={hash}") })
    }

    /// The current ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }
}

impl Balancer for RingBalancer {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_nodes(&mut self, nodes: &[String]) {
        self.ring = Ring::build(nodes, self.k, self.ring.hash);
    }
    fn pick(&mut self, key: u64, _rand: u64) -> Option<NodeIdx> {
        self.ring.lookup(key)
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash::{SplitMix64, node_names, removal_and_join_moves};
    use super::*;

    /// RMS over `seeds` rings of the across-node CV of keyspace shares.
    fn rms_cv(n: usize, k: u32, hash: HashKind, seeds: u64) -> f64 {
        let mut sum_cv2 = 0.0;
        for seed in 0..seeds {
            let shares = Ring::build(&node_names(seed * 7919 + u64::from(k), n), k, hash).shares();
            let mean = 1.0 / n as f64;
            let var = shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n as f64;
            sum_cv2 += var / (mean * mean);
        }
        (sum_cv2 / seeds as f64).sqrt()
    }

    #[test]
    fn share_cv_matches_theory() {
        // Shares sum to 1, so the population variance across the n nodes of one
        // ring has expectation exactly Var(Beta(k, kn-k)): the mean of CV^2 over
        // seeds estimates theory^2 without bias. With n = 20 one ring's CV^2 has
        // relative sd ~ 0.35 (k large, ~chi2 with 19 dof) up to ~0.6 (k = 1,
        // exponential arcs); over 300 seeds the RMS CV has relative sd <= 2%.
        // Tolerance 8% relative = 4 sd: it fails if points are not uniform
        // (FNV-1a points give 3x-7x, see below) or a node gets other than k
        // points (k/2 points would be sqrt(2) = 41% off). Measured: k=1 0.9457
        // vs 0.9512, k=10 0.3084 vs 0.3075, k=100 0.0985 vs 0.0974, k=1000
        // 0.0309 vs 0.0308 (all within 2%).
        let n = 20;
        for k in [1, 10, 100, 1000] {
            let theory = ((n as f64 - 1.0) / (f64::from(k) * n as f64 + 1.0)).sqrt();
            let measured = rms_cv(n, k, HashKind::Xxh64, 300);
            let rel = (measured - theory).abs() / theory;
            assert!(rel < 0.08, "k={k}: CV {measured:.4} vs theory {theory:.4}");
        }
    }

    #[test]
    fn fnv1a_points_cluster_as_documented() {
        // Pins the FNV-1a weakness described in the module doc: names that
        // differ only in the trailing "#i" give points within ~i·2^40 of each
        // other, so with k >= 10 the share CV is several times the theory
        // (measured 3.2x at k = 10, 7.3x at k = 160 over 300 seeds); at k = 1
        // every point ends in "#0" and FNV-1a is fine (1.00x). Bounds: > 2x for
        // k >= 10, within 10% for k = 1 (100 seeds: ~3% sd).
        for k in [1, 10, 160] {
            let theory = (19.0 / (f64::from(k) * 20.0 + 1.0)).sqrt();
            let ratio = rms_cv(20, k, HashKind::Fnv1a, 100) / theory;
            if k == 1 {
                assert!((ratio - 1.0).abs() < 0.1, "k=1: {ratio}");
            } else {
                assert!(ratio > 2.0, "k={k}: FNV-1a ring unexpectedly uniform ({ratio})");
            }
        }
    }

    #[test]
    fn lookup_is_first_point_at_or_after_hash_and_wraps() {
        let ring = Ring::new(&node_names(5, 3), 4, HashKind::Xxh64).expect("valid");
        let pts = ring.points().to_vec();
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(ring.lookup_hash(pts[2].0), Some(pts[2].1));
        assert_eq!(ring.lookup_hash(pts[2].0.wrapping_add(1)), Some(pts[3].1));
        assert_eq!(ring.lookup_hash(pts[pts.len() - 1].0.wrapping_add(1)), Some(pts[0].1));
        assert_eq!(ring.lookup_hash(0), Some(pts[0].1));
        // Shares cover the whole circle, including the wrap-around arc.
        let total: f64 = ring.shares().iter().sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        let mut buf = String::new();
        let expected = HashKind::Xxh64.hash_bytes(format!("{}#3", node_names(5, 3)[1]).as_bytes());
        assert_eq!(point(HashKind::Xxh64, &node_names(5, 3)[1], 3, &mut buf), expected);
    }

    #[test]
    fn removal_and_join_move_only_the_affected_keys() {
        let mut rng = SplitMix64::new(11);
        let keys: Vec<u64> = (0..20_000).map(|_| rng.next_u64()).collect();
        let all = node_names(3, 11);
        let mut b = RingBalancer::new(&all[..10], 160, HashKind::Xxh64).expect("valid");
        let (removed_keys, joined_keys) = removal_and_join_moves(&mut b, &all, 4, &keys);
        // Both events must actually move keys (about 1/10 and 1/11 of them).
        assert!(removed_keys > 1000 && joined_keys > 1000, "{removed_keys} {joined_keys}");
    }

    #[test]
    fn ring_depends_on_names_not_order() {
        let nodes = node_names(8, 6);
        let mut rev = nodes.clone();
        rev.reverse();
        let a = Ring::new(&nodes, 50, HashKind::Fnv1a).expect("valid");
        let b = Ring::new(&rev, 50, HashKind::Fnv1a).expect("valid");
        for key in 0..1000u64 {
            let (x, y) = (a.lookup(key), b.lookup(key));
            assert_eq!(x.map(|i| &nodes[i as usize]), y.map(|i| &rev[i as usize]));
        }
        assert!(Ring::new(&nodes, 0, HashKind::Xxh64).is_err());
        assert_eq!(Ring::build(&[], 3, HashKind::Xxh64).lookup(1), None);
    }
}
