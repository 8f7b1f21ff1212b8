//! Hash functions and small integer helpers shared by the balancers.
//!
//! Two well-known 64-bit hashes are selectable ([`HashKind`]):
//! - xxHash64 (Yann Collet), through the `xxhash-rust` crate, seed 0 unless a
//!   seed is given;
//! - FNV-1a 64 (Fowler, Noll, Vo; offset basis `0xcbf29ce484222325`, prime
//!   `0x100000001b3`), written out below. A "seeded" FNV-1a hashes the 8
//!   little-endian bytes of the seed before the data.
//!
//! Request keys (`u64`) are hashed as their 8 little-endian bytes. Also here:
//! the SplitMix64 generator and finalizer (Steele, Lea & Flood 2014) used for
//! deterministic probe keys, Lemire's multiply-shift range reduction
//! (Lemire 2019) for turning a random word into an index, and a primality
//! test for Maglev table sizes.

use std::fmt;
use std::str::FromStr;

use super::BalanceError;

/// FNV-1a 64-bit offset basis.
pub const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_from(FNV_OFFSET_BASIS, bytes)
}

fn fnv1a64_from(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Which 64-bit hash a key-based balancer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum HashKind {
    /// xxHash64 (default).
    #[default]
    Xxh64,
    /// FNV-1a 64.
    Fnv1a,
}

impl HashKind {
    /// Spec spelling: `xxh64` or `fnv1a`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Xxh64 => "xxh64",
            Self::Fnv1a => "fnv1a",
        }
    }

    /// Hash of a byte string.
    pub fn hash_bytes(self, bytes: &[u8]) -> u64 {
        self.hash_seeded(bytes, 0)
    }

    /// Keyed hash: xxHash64 with `seed`, or FNV-1a over `seed`'s 8
    /// little-endian bytes followed by `bytes` (for FNV-1a, seed 0 is *not*
    /// the same as [`HashKind::hash_bytes`]; unseeded calls use `hash_bytes`).
    pub fn hash_seeded(self, bytes: &[u8], seed: u64) -> u64 {
        match self {
            Self::Xxh64 => xxhash_rust::xxh64::xxh64(bytes, seed),
            Self::Fnv1a if seed == 0 => fnv1a64(bytes),
            Self::Fnv1a => fnv1a64_from(fnv1a64(&seed.to_le_bytes()), bytes),
        }
    }

    /// Hash of a request key: the hash of its 8 little-endian bytes.
    pub fn hash_key(self, key: u64) -> u64 {
        self.hash_bytes(&key.to_le_bytes())
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashKind {
    type Err = BalanceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "xxh64" | "xxhash64" => Ok(Self::Xxh64),
            "fnv1a" | "fnv1a64" | "fnv" => Ok(Self::Fnv1a),
            _ => Err(BalanceError::Spec { token: s.to_string(), expected: "a hash name: xxh64 or fnv1a".to_string() }),
        }
    }
}

/// SplitMix64 finalizer: a bijective 64-bit mixer.
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The SplitMix64 generator: deterministic, seedable, tiny.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Next 64-bit word.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix64(self.state)
    }

    /// Uniform in `0..n` by multiply-shift; `0` when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Map a random word to `0..n` (Lemire's multiply-shift; `0` when `n == 0`).
/// Unbiased to within `n / 2^64`.
pub fn reduce(rand: u64, n: u32) -> u32 {
    ((u128::from(rand) * u128::from(n)) >> 64) as u32
}

/// Deterministic primality test by trial division (fine for table sizes up
/// to 2^32: at most 2^15 odd divisors).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3u64;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// `n` distinct node names that look like `10.a.b.i:port`, varying with `seed`.
#[cfg(test)]
pub(super) fn node_names(seed: u64, n: usize) -> Vec<String> {
    let mut rng = SplitMix64::new(seed);
    let (a, b, port) = (rng.below(256), rng.below(256), 8000 + rng.below(1000));
    (0..n).map(|i| format!("10.{a}.{b}.{i}:{port}")).collect()
}

/// Node name each probe key goes to (`rand` = 0).
#[cfg(test)]
pub(super) fn owners<'a>(b: &mut dyn super::Balancer, nodes: &'a [String], keys: &[u64]) -> Vec<Option<&'a str>> {
    keys.iter().map(|&k| b.pick(k, 0).map(|i| nodes[i as usize].as_str())).collect()
}

/// Minimal disruption, checked exactly: `b` was built on the first ten names of `all` (eleven);
/// removing `all[removed]` must move only that node's keys, and then joining `all[10]` only
/// keys to the new node. Returns (keys moved by the removal, keys moved by the join).
#[cfg(test)]
pub(super) fn removal_and_join_moves(
    b: &mut dyn super::Balancer,
    all: &[String],
    removed: usize,
    keys: &[u64],
) -> (usize, usize) {
    let (ten, gone) = (&all[..10], &all[removed]);
    let fewer: Vec<String> = ten.iter().filter(|n| *n != gone).cloned().collect();
    let before = owners(b, ten, keys);
    b.set_nodes(&fewer);
    let after_remove = owners(b, &fewer, keys);
    b.set_nodes(all);
    let after_join = owners(b, all, keys);
    let (mut removed_keys, mut joined_keys) = (0, 0);
    for i in 0..keys.len() {
        if before[i] == Some(gone.as_str()) {
            removed_keys += 1;
        } else {
            assert_eq!(before[i], after_remove[i], "{}: a key not on the removed node moved", b.name());
        }
        if after_join[i] != before[i] {
            assert_eq!(after_join[i], Some(all[10].as_str()), "{}: the join moved a key elsewhere", b.name());
            joined_keys += 1;
        }
    }
    (removed_keys, joined_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_vectors() {
        // Vectors from the FNV reference test suite (Landon Curt Noll).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn xxh64_reference_vector() {
        // xxHash64 of the empty input with seed 0 (xxHash reference).
        assert_eq!(HashKind::Xxh64.hash_bytes(b""), 0xef46_db37_51d8_e999);
        assert_ne!(HashKind::Xxh64.hash_seeded(b"x", 1), HashKind::Xxh64.hash_seeded(b"x", 2));
        assert_ne!(HashKind::Fnv1a.hash_seeded(b"x", 1), HashKind::Fnv1a.hash_seeded(b"x", 2));
    }

    #[test]
    fn hash_kind_round_trip() {
        for h in [HashKind::Xxh64, HashKind::Fnv1a] {
            assert_eq!(h.as_str().parse::<HashKind>(), Ok(h));
        }
        assert!("md5".parse::<HashKind>().is_err());
    }

    #[test]
    fn primes() {
        let small: Vec<u64> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, vec![2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65_537));
        assert!(is_prime(251));
        assert!(!is_prime(65_535));
        assert!(!is_prime(65_537 * 3));
    }

    #[test]
    fn reduce_stays_in_range() {
        assert_eq!(reduce(u64::MAX, 10), 9);
        assert_eq!(reduce(0, 10), 0);
        assert_eq!(reduce(12345, 0), 0);
        let mut rng = SplitMix64::new(1);
        assert!((0..1000).all(|_| rng.below(7) < 7));
        assert!((0..1000).all(|_| (0.0..1.0).contains(&rng.unit())));
    }
}
