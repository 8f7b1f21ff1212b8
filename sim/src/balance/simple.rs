//! The three baseline balancers: uniform random, round robin, modulo hashing.
//!
//! - Random: node = `reduce(rand, n)` (Lemire multiply-shift of the caller's
//!   random word), i.e. the "one choice" of the balls-into-bins literature.
//! - Round robin: the i-th pick (i = 0, 1, ...) returns `(offset + i) mod n`,
//!   with `offset` given at construction so that clients do not all start on
//!   node 0. The counter survives membership changes.
//! - Modulo hashing: node = `h(key) mod n` with `h` one of [`HashKind`]. The
//!   textbook non-consistent scheme: going from n to n+1 nodes keeps a key
//!   only if `h mod n == h mod (n+1)`, i.e. moves about n/(n+1) of all keys.

use super::hash::{HashKind, reduce};
use super::{BalanceError, Balancer, NodeIdx, check_nodes, indexable};

/// Uniform pick among `n` nodes from a random word; `None` when `n == 0`.
pub fn random_pick(rand: u64, n: u32) -> Option<NodeIdx> {
    (n > 0).then(|| reduce(rand, n))
}

/// Modulo hashing: `key_hash mod n`; `None` when `n == 0`.
pub fn modulo_pick(key_hash: u64, n: u32) -> Option<NodeIdx> {
    (n > 0).then(|| (key_hash % u64::from(n)) as NodeIdx)
}

fn count(nodes: &[String]) -> u32 {
    indexable(nodes).len() as u32
}

/// Uniform random balancer (uses only `rand`).
#[derive(Debug, Clone)]
pub struct RandomBalancer {
    n: u32,
}

impl RandomBalancer {
    /// Random balancer over `nodes`.
    pub fn new(nodes: &[String]) -> Result<Self, BalanceError> {
        check_nodes(nodes)?;
        Ok(Self { n: count(nodes) })
    }
}

impl Balancer for RandomBalancer {
    fn name(&self) -> &str {
        "random"
    }
    fn set_nodes(&mut self, nodes: &[String]) {
        self.n = count(nodes);
    }
    fn pick(&mut self, _key: u64, rand: u64) -> Option<NodeIdx> {
        random_pick(rand, self.n)
    }
}

/// Round robin from a start offset (ignores key and `rand`).
#[derive(Debug, Clone)]
pub struct RoundRobin {
    n: u32,
    offset: u32,
    counter: u64,
    name: String,
}

impl RoundRobin {
    /// Round robin over `nodes`, first pick `offset mod n`.
    pub fn new(nodes: &[String], offset: u32) -> Result<Self, BalanceError> {
        check_nodes(nodes)?;
        Ok(Self { n: count(nodes), offset, counter: 0, name: format!("rr:offset={offset}") })
    }
}

impl Balancer for RoundRobin {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_nodes(&mut self, nodes: &[String]) {
        self.n = count(nodes);
    }
    fn pick(&mut self, _key: u64, _rand: u64) -> Option<NodeIdx> {
        if self.n == 0 {
            return None;
        }
        let i = (u64::from(self.offset) + self.counter % u64::from(self.n)) % u64::from(self.n);
        self.counter = self.counter.wrapping_add(1);
        Some(i as NodeIdx)
    }
}

/// Modulo hashing `h(key) mod n`.
#[derive(Debug, Clone)]
pub struct ModN {
    n: u32,
    hash: HashKind,
    name: String,
}

impl ModN {
    /// Modulo hashing over `nodes` with hash `hash`.
    pub fn new(nodes: &[String], hash: HashKind) -> Result<Self, BalanceError> {
        check_nodes(nodes)?;
        Ok(Self { n: count(nodes), hash, name: format!("modn:hash={hash}") })
    }

    /// Node for `key` (pure).
    pub fn lookup(&self, key: u64) -> Option<NodeIdx> {
        modulo_pick(self.hash.hash_key(key), self.n)
    }
}

impl Balancer for ModN {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_nodes(&mut self, nodes: &[String]) {
        self.n = count(nodes);
    }
    fn pick(&mut self, key: u64, _rand: u64) -> Option<NodeIdx> {
        self.lookup(key)
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash::{SplitMix64, node_names};
    use super::*;

    #[test]
    fn round_robin_cycles_from_offset() {
        let nodes = node_names(1, 4);
        let mut rr = RoundRobin::new(&nodes, 6).expect("valid");
        let got: Vec<_> = (0..6).filter_map(|_| rr.pick(0, 0)).collect();
        assert_eq!(got, vec![2, 3, 0, 1, 2, 3]);
        rr.set_nodes(&nodes[..3]);
        assert!(rr.pick(0, 0).is_some_and(|i| i < 3));
        rr.set_nodes(&[]);
        assert_eq!(rr.pick(0, 0), None);
    }

    #[test]
    fn random_is_uniform_enough() {
        // 100_000 draws into 10 nodes: each count has sd sqrt(1e5*0.1*0.9) ~ 95,
        // so +-600 around 10_000 is > 6 sd: fails only on a real bias.
        let mut b = RandomBalancer::new(&node_names(2, 10)).expect("valid");
        let mut rng = SplitMix64::new(3);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let i = b.pick(0, rng.next_u64()).expect("non-empty");
            counts[i as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c.abs_diff(10_000) < 600), "{counts:?}");
    }

    #[test]
    fn modulo_moves_about_n_over_n_plus_1_on_join() {
        // A key stays iff h mod n == h mod (n+1), probability 1/(n+1). With
        // K = 100_000 keys the moved fraction has binomial sd
        // sqrt(p(1-p)/K) ~ 0.0009 at n = 10; tolerance 5 sd.
        const K: usize = 100_000;
        for (n, hash) in [(10usize, HashKind::Xxh64), (10, HashKind::Fnv1a), (37, HashKind::Xxh64)] {
            let nodes = node_names(n as u64, n + 1);
            let before = ModN::new(&nodes[..n], hash).expect("valid");
            let after = ModN::new(&nodes, hash).expect("valid");
            let mut rng = SplitMix64::new(99);
            let moved = (0..K).map(|_| rng.next_u64()).filter(|&k| before.lookup(k) != after.lookup(k)).count();
            let p = n as f64 / (n + 1) as f64;
            let frac = moved as f64 / K as f64;
            let sd = (p * (1.0 - p) / K as f64).sqrt();
            assert!((frac - p).abs() < 5.0 * sd, "n={n} {hash}: moved {frac}, expected {p}");
        }
    }

    #[test]
    fn constructors_reject_bad_membership() {
        assert_eq!(ModN::new(&[], HashKind::Xxh64).err(), Some(BalanceError::NoNodes));
        let dup = vec!["a".to_string(), "a".to_string()];
        assert_eq!(RandomBalancer::new(&dup).err(), Some(BalanceError::DuplicateNode("a".to_string())));
    }
}
