//! Jump consistent hash (Lamping & Veach, "A Fast, Minimal Memory, Consistent
//! Hash Algorithm", 2014).
//!
//! Model: buckets are `0..n`; [`jump`] is the paper's loop verbatim, with the
//! 64-bit LCG `key = key·2862933555777941757 + 1` and
//! `j = (b+1) · (2^31 / ((key >> 33) + 1))` in `f64`, so results match the
//! paper, Guava's `Hashing.consistentHash` and Go's `go-jump` (the golden
//! values from their test suites are checked below). Growing from n to n+1
//! buckets moves a 1/(n+1) fraction of keys, all to the new bucket. Buckets are
//! positions, not names: the mapping is consistent only when nodes are added
//! or removed at the end of the list, and removing a middle node renumbers
//! every later one. [`JumpBalancer`] feeds `h(key)` (xxHash64 or FNV-1a of the
//! key's 8 little-endian bytes) to [`jump`], so sequential request ids spread
//! as well as random ones.

use super::hash::HashKind;
use super::{BalanceError, Balancer, NodeIdx, check_nodes, indexable};

/// Jump consistent hash of `key` into `0..buckets`, exactly as in Lamping &
/// Veach 2014. `buckets == 0` has no bucket; this returns 0 for it (see
/// [`jump_checked`] for the fallible form).
pub fn jump(mut key: u64, buckets: u32) -> u32 {
    let n = i64::from(buckets);
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < n {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    // b is in 0..buckets when buckets > 0.
    b.max(0) as u32
}

/// [`jump`] that refuses `buckets == 0`.
pub fn jump_checked(key: u64, buckets: u32) -> Result<u32, BalanceError> {
    if buckets == 0 {
        return Err(BalanceError::Param { param: "buckets", value: "0".to_string(), expected: "at least 1 bucket" });
    }
    Ok(jump(key, buckets))
}

/// Jump hash as a [`Balancer`]: node = `jump(h(key), n)`.
#[derive(Debug, Clone)]
pub struct JumpBalancer {
    n: u32,
    hash: HashKind,
    name: String,
}

impl JumpBalancer {
    /// Jump balancer over `nodes`, bucket i = `nodes[i]`.
    pub fn new(nodes: &[String], hash: HashKind) -> Result<Self, BalanceError> {
        check_nodes(nodes)?;
        Ok(Self { n: indexable(nodes).len() as u32, hash, name: format!("jump:hash={hash}") })
    }

    /// Node for `key` (pure).
    pub fn lookup(&self, key: u64) -> Option<NodeIdx> {
        (self.n > 0).then(|| jump(self.hash.hash_key(key), self.n))
    }
}

impl Balancer for JumpBalancer {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_nodes(&mut self, nodes: &[String]) {
        self.n = indexable(nodes).len() as u32;
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
    fn golden_values_from_guava_and_go_jump() {
        // Guava HashingTest.testConsistentHash_linearCongruentialGeneratorCompatibility
        // and dgryski/go-jump jump_test.go use the same vectors.
        let golden100 = [0, 55, 62, 8, 45, 59, 86, 97, 82, 59, 73, 37, 17, 56, 86, 21, 90, 37, 38, 83];
        for (key, &want) in golden100.iter().enumerate() {
            assert_eq!(jump(key as u64, 100), want, "key {key}");
        }
        assert_eq!(jump(10_863_919_174_838_991, 11), 6);
        assert_eq!(jump(2_016_238_256_797_177_309, 11), 3);
        assert_eq!(jump(1_673_758_223_894_951_030, 11), 5);
        assert_eq!(jump(2, 100_001), 80_343);
        assert_eq!(jump(2201, 100_001), 22_152);
        assert_eq!(jump(2202, 100_001), 15_018);
    }

    #[test]
    fn edge_cases() {
        assert_eq!(jump(12345, 1), 0);
        assert_eq!(jump(12345, 0), 0);
        assert!(jump_checked(1, 0).is_err());
        assert_eq!(jump_checked(2, 100_001), Ok(80_343));
        assert!(JumpBalancer::new(&[], HashKind::Xxh64).is_err());
    }

    #[test]
    fn adding_a_bucket_moves_one_over_n_plus_one_only_to_it() {
        // Expected moved fraction 1/(n+1); with K = 100_000 keys the binomial
        // sd is sqrt(p(1-p)/K) ~ 0.0009 at n = 10: tolerance 5 sd.
        const K: usize = 100_000;
        let all = node_names(4, 41);
        for n in [1usize, 10, 40] {
            let before = JumpBalancer::new(&all[..n], HashKind::Xxh64).expect("valid");
            let after = JumpBalancer::new(&all[..=n], HashKind::Xxh64).expect("valid");
            let mut rng = SplitMix64::new(n as u64);
            let mut moved = 0usize;
            for _ in 0..K {
                let key = rng.next_u64();
                let (b, a) = (before.lookup(key), after.lookup(key));
                if a != b {
                    assert_eq!(a, Some(n as u32), "moved key must go to the new bucket");
                    moved += 1;
                }
            }
            let p = 1.0 / (n + 1) as f64;
            let frac = moved as f64 / K as f64;
            let sd = (p * (1.0 - p) / K as f64).sqrt();
            assert!((frac - p).abs() < 5.0 * sd, "n={n}: moved {frac}, expected {p}");
        }
    }

    #[test]
    fn buckets_are_balanced() {
        // 200_000 keys into 20 buckets: count sd ~ sqrt(1e4 * 0.95) ~ 97;
        // +-500 (> 5 sd) around 10_000.
        let mut counts = [0u32; 20];
        let mut rng = SplitMix64::new(5);
        for _ in 0..200_000 {
            counts[jump(rng.next_u64(), 20) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c.abs_diff(10_000) < 500), "{counts:?}");
    }
}
