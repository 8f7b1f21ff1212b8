//! Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam,
//! "Consistent Hashing with Bounded Loads", SODA 2018; as deployed in
//! HAProxy and Vimeo's proxies).
//!
//! Model: the ring of [`super::ring`] plus per-node in-flight counts. With
//! `m` requests in flight *including the one being placed* and `n` nodes,
//! every node has capacity `⌈c·m/n⌉` (c ≥ 1, default 1.25). A key goes to its
//! ring owner if that node has spare capacity (load < capacity), else to the
//! owner of the next point clockwise that does, and so on. Since the other
//! m−1 requests cannot fill n nodes of capacity ≥ m/n, a node with spare
//! capacity always exists, so a placement never exceeds capacity. Loads are
//! tracked through `on_start` / `on_finish`; `pick` does not count the
//! request itself. As in the paper, the bound holds at placement time: later
//! departures lower `m` and may leave a node above the new, smaller bound
//! until its own requests finish (nothing is migrated).

use std::collections::BTreeMap;

use super::hash::HashKind;
use super::ring::{Ring, check_k};
use super::{BalanceError, Balancer, NodeIdx, check_nodes, indexable};

/// Default load factor c.
pub const DEFAULT_C: f64 = 1.25;

/// Capacity `⌈c·m/n⌉` for `m` in-flight requests (counting the one being
/// placed) on `n` nodes, never below `⌈m/n⌉` (guards against `f64` rounding
/// for c = 1); 0 when `n == 0`.
pub fn capacity(c: f64, m: u64, n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    let exact = (c * m as f64 / n as f64).ceil() as u64;
    exact.max(m.div_ceil(n as u64))
}

/// Check a load factor: finite and at least 1.
pub fn check_c(c: f64) -> Result<(), BalanceError> {
    if !(c.is_finite() && c >= 1.0) {
        return Err(BalanceError::Param {
            param: "c",
            value: c.to_string(),
            expected: "a finite load factor >= 1 (e.g. 1.25)",
        });
    }
    Ok(())
}

/// Bounded-load consistent hashing balancer.
#[derive(Debug, Clone)]
pub struct BoundedLoad {
    ring: Ring,
    names: Vec<String>,
    loads: Vec<u64>,
    total: u64,
    c: f64,
    k: u32,
    name: String,
}

impl BoundedLoad {
    /// Bounded loads over `nodes` with factor `c` and `k` points per node.
    pub fn new(nodes: &[String], c: f64, k: u32, hash: HashKind) -> Result<Self, BalanceError> {
        check_nodes(nodes)?;
        check_c(c)?;
        check_k(k)?;
        let nodes = indexable(nodes);
        Ok(Self {
            ring: Ring::build(nodes, k, hash),
            names: nodes.to_vec(),
            loads: vec![0; nodes.len()],
            total: 0,
            c,
            k,
            name: format!("bounded:c={c}:k={k}:hash={hash}"),
        })
    }

    /// In-flight count per node.
    pub fn loads(&self) -> &[u64] {
        &self.loads
    }

    /// Total in flight.
    pub fn in_flight(&self) -> u64 {
        self.total
    }

    /// Capacity a node has for the next placement (m = in flight + 1).
    pub fn next_capacity(&self) -> u64 {
        capacity(self.c, self.total + 1, self.loads.len())
    }

    /// Node for `key` given the current loads (pure).
    pub fn lookup(&self, key: u64) -> Option<NodeIdx> {
        let start = self.ring.successor(self.ring.hash().hash_key(key))?;
        let cap = self.next_capacity();
        let points = self.ring.points();
        (0..points.len())
            .map(|step| points[(start + step) % points.len()].1)
            .find(|&node| self.loads[node as usize] < cap)
            // Unreachable when c >= 1 (see the module doc); fall back to the owner.
            .or(Some(points[start].1))
    }
}

impl Balancer for BoundedLoad {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_nodes(&mut self, nodes: &[String]) {
        let nodes = indexable(nodes);
        let old: BTreeMap<&str, u64> = self.names.iter().map(String::as_str).zip(self.loads.iter().copied()).collect();
        let loads: Vec<u64> = nodes.iter().map(|n| old.get(n.as_str()).copied().unwrap_or(0)).collect();
        self.total = loads.iter().sum();
        self.loads = loads;
        self.names = nodes.to_vec();
        self.ring = Ring::build(nodes, self.k, self.ring.hash());
    }
    fn pick(&mut self, key: u64, _rand: u64) -> Option<NodeIdx> {
        self.lookup(key)
    }
    fn on_start(&mut self, node: NodeIdx) {
        if let Some(l) = self.loads.get_mut(node as usize) {
            *l += 1;
            self.total += 1;
        }
    }
    fn on_finish(&mut self, node: NodeIdx, _rtt_ns: u64, _now_ns: u64) {
        if let Some(l) = self.loads.get_mut(node as usize)
            && *l > 0
        {
            *l -= 1;
            self.total -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash::{SplitMix64, node_names};
    use super::*;

    #[test]
    fn capacity_formula() {
        assert_eq!(capacity(1.25, 1, 10), 1);
        assert_eq!(capacity(1.25, 80, 10), 10);
        assert_eq!(capacity(1.25, 81, 10), 11);
        assert_eq!(capacity(1.0, 20, 10), 2);
        assert_eq!(capacity(1.0, 21, 10), 3);
        assert!(check_c(0.99).is_err() && check_c(f64::NAN).is_err() && check_c(1.0).is_ok());
    }

    /// Random arrivals (half on one hot key) and departures; returns how many
    /// placements spilled off the ring owner.
    fn simulate(c: f64, n: usize, steps: usize, seed: u64) -> usize {
        let nodes = node_names(seed, n);
        let mut b = BoundedLoad::new(&nodes, c, 40, HashKind::Xxh64).expect("valid");
        let mut rng = SplitMix64::new(seed);
        let mut in_flight: Vec<NodeIdx> = Vec::new();
        let mut spilled = 0;
        for step in 0..steps {
            // First half: arrivals only, so m never drops and *every* node must
            // stay within the current bound. Second half: 60% arrivals.
            let arrive = step < steps / 2 || rng.unit() < 0.6 || in_flight.is_empty();
            if arrive {
                let key = if rng.unit() < 0.5 { 42 } else { rng.next_u64() };
                let node = b.pick(key, 0).expect("non-empty");
                if Some(node) != b.ring.lookup(key) {
                    spilled += 1;
                }
                b.on_start(node);
                in_flight.push(node);
                let m = in_flight.len() as u64;
                let cap = capacity(c, m, n);
                // No tolerance: the bound is a hard guarantee.
                assert!(b.loads()[node as usize] <= cap, "c={c} m={m}: placed over {cap}");
                if step < steps / 2 {
                    assert!(b.loads().iter().all(|&l| l <= cap), "c={c} m={m}");
                }
            } else {
                let i = rng.below(in_flight.len() as u64) as usize;
                let node = in_flight.swap_remove(i);
                b.on_finish(node, 0, 0);
            }
            assert_eq!(b.in_flight(), in_flight.len() as u64);
        }
        spilled
    }

    #[test]
    fn never_exceeds_capacity() {
        for (c, n, seed) in [(1.25, 10, 1), (1.0, 10, 2), (1.5, 7, 3), (1.25, 50, 4)] {
            let spilled = simulate(c, n, 20_000, seed);
            // The hot key must overflow its owner, or the test proves nothing.
            assert!(spilled > 1000, "c={c}: only {spilled} spills");
        }
    }

    #[test]
    fn light_load_follows_the_ring_and_state_survives_membership_change() {
        let nodes = node_names(8, 6);
        let mut b = BoundedLoad::new(&nodes, 100.0, 160, HashKind::Fnv1a).expect("valid");
        for key in 0..500u64 {
            assert_eq!(b.pick(key, 0), b.ring.lookup(key));
        }
        b.on_start(2);
        b.on_start(2);
        b.on_start(5);
        b.on_finish(9, 0, 0); // out of range: ignored
        let moved: Vec<String> = vec![nodes[5].clone(), "new".to_string(), nodes[2].clone()];
        b.set_nodes(&moved);
        assert_eq!(b.loads(), &[1, 0, 2]);
        assert_eq!(b.in_flight(), 3);
        b.set_nodes(&[]);
        assert_eq!(b.pick(1, 0), None);
        assert!(BoundedLoad::new(&nodes, 0.5, 10, HashKind::Xxh64).is_err());
        assert!(BoundedLoad::new(&nodes, 1.25, 0, HashKind::Xxh64).is_err());
    }
}
