//! Request-key distributions for evaluating balancers: which 64-bit key each
//! request carries.
//!
//! Model: a service sees requests for K distinct keys (user ids, cache keys,
//! shard keys). Three shapes, with spec strings:
//! - `uniform:k=K`: every request picks one of K keys with probability 1/K;
//! - `zipf:s=S:k=K`: the key of rank r (r = 0 the hottest) has probability
//!   (r+1)^−s / H(K, s), H(K, s) = Σ_{i=1..K} i^−s; s ≈ 1 is the classic
//!   web/cache popularity skew (Breslau et al., "Web Caching and Zipf-like
//!   Distributions", 1999), s = 0 is uniform;
//! - `unique`: a fresh random key per request, i.e. no affinity at all.
//!
//! Sampling is by exact inverse CDF: the cumulative probabilities of the K
//! ranks are tabulated once (8 bytes per key, hence K ≤ [`MAX_ZIPF_KEYS`]) and
//! a uniform draw with 53 random bits is located by binary search. We chose
//! this over `rand_distr::Zipf` (rejection-inversion) because the table makes
//! the frequencies exact up to f64 rounding and ties the output to our own
//! code rather than to a crate's algorithm, so reports stay the same across
//! dependency upgrades. Uniform draws come from a caller's [`SplitMix64`]
//! stream (balance depends on no other regsim module, hence not the engine's
//! ChaCha streams). A rank becomes a key as `splitmix64(salt + rank)` with a
//! salt derived from the seed: a bijection, so distinct ranks are distinct
//! keys, and the hot key lands on a different node for every seed.

use std::fmt;
use std::str::FromStr;

use super::BalanceError;
use super::hash::{SplitMix64, splitmix64};

/// Largest K for `zipf` (the CDF table takes 8 bytes per key: 80 MB).
pub const MAX_ZIPF_KEYS: u64 = 10_000_000;
/// Largest accepted Zipf exponent.
pub const MAX_ZIPF_S: f64 = 100.0;

/// A request-key distribution (see the module doc).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum KeyDist {
    /// Uniform over `k` keys.
    Uniform { k: u64 },
    /// Zipf with exponent `s` over `k` keys.
    Zipf { s: f64, k: u64 },
    /// A new random key per request.
    #[default]
    Unique,
}

impl fmt::Display for KeyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uniform { k } => write!(f, "uniform:k={k}"),
            Self::Zipf { s, k } => write!(f, "zipf:s={s}:k={k}"),
            Self::Unique => write!(f, "unique"),
        }
    }
}

fn dist_err(token: &str, expected: impl Into<String>) -> BalanceError {
    BalanceError::Spec { token: token.to_string(), expected: expected.into() }
}

impl FromStr for KeyDist {
    type Err = BalanceError;

    /// Parse `uniform:k=1000`, `zipf:s=1.1:k=1000` or `unique` (parameters in
    /// any order, each once, all required).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().split(':').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let allowed: &[&str] = match name {
            "uniform" => &["k"],
            "zipf" => &["s", "k"],
            "unique" => &[],
            _ => return Err(dist_err(name, "a key distribution: uniform:k=K, zipf:s=S:k=K or unique")),
        };
        let (mut k, mut exp) = (None, None);
        for part in parts {
            let Some((key, value)) = part.split_once('=') else {
                return Err(dist_err(part, format!("key=value after {name:?}")));
            };
            let (key, value) = (key.trim(), value.trim());
            if !allowed.contains(&key) {
                return Err(dist_err(part, format!("a parameter of {name:?}: {}", one_of(allowed))));
            }
            if (key == "k" && k.is_some()) || (key == "s" && exp.is_some()) {
                return Err(dist_err(part, format!("{key} given once only")));
            }
            if key == "k" {
                let max = if name == "zipf" { MAX_ZIPF_KEYS } else { 1 << 62 };
                match value.parse::<u64>() {
                    Ok(v) if (1..=max).contains(&v) => k = Some(v),
                    _ => return Err(dist_err(part, format!("k=<number of keys, 1..={max}>"))),
                }
            } else {
                match value.parse::<f64>() {
                    Ok(v) if (0.0..=MAX_ZIPF_S).contains(&v) => exp = Some(v),
                    _ => return Err(dist_err(part, format!("s=<Zipf exponent, 0..={MAX_ZIPF_S}>"))),
                }
            }
        }
        let missing = |p: &str| dist_err(s.trim(), format!("{name} needs {p}=..."));
        match name {
            "uniform" => Ok(Self::Uniform { k: k.ok_or_else(|| missing("k"))? }),
            "zipf" => Ok(Self::Zipf { s: exp.ok_or_else(|| missing("s"))?, k: k.ok_or_else(|| missing("k"))? }),
            _ => Ok(Self::Unique),
        }
    }
}

fn one_of(allowed: &[&str]) -> String {
    if allowed.is_empty() { "none accepted".to_string() } else { format!("one of {}", allowed.join(", ")) }
}

/// Draws request keys from a [`KeyDist`] (the CDF table built once).
#[derive(Debug, Clone)]
pub struct KeySampler {
    dist: KeyDist,
    /// Zipf only: cumulative probability of ranks 0..=r, last entry exactly 1.
    cdf: Vec<f64>,
    salt: u64,
}

impl KeySampler {
    /// Sampler for `dist` whose key identities depend on `salt` (derive it from the run seed).
    pub fn new(dist: &KeyDist, salt: u64) -> Result<Self, BalanceError> {
        let cdf = match *dist {
            KeyDist::Zipf { s, k } => zipf_cdf(s, k)?,
            KeyDist::Uniform { k: 0 } => {
                return Err(BalanceError::Param { param: "k", value: "0".into(), expected: "at least 1 key" });
            }
            _ => Vec::new(),
        };
        Ok(Self { dist: dist.clone(), cdf, salt })
    }

    /// The distribution.
    pub fn dist(&self) -> &KeyDist {
        &self.dist
    }

    /// Rank of the next request's key (0 = hottest for Zipf); `None` for `unique`.
    pub fn next_rank(&self, rng: &mut SplitMix64) -> Option<u64> {
        match self.dist {
            KeyDist::Uniform { k } => Some(rng.below(k)),
            KeyDist::Zipf { .. } => {
                let u = rng.unit();
                // First rank whose cumulative probability exceeds u; the last is 1 > u.
                let r = self.cdf.partition_point(|&c| c <= u);
                Some(r.min(self.cdf.len().saturating_sub(1)) as u64)
            }
            KeyDist::Unique => None,
        }
    }

    /// The 64-bit key of `rank`.
    pub fn key_of_rank(&self, rank: u64) -> u64 {
        splitmix64(self.salt.wrapping_add(rank))
    }

    /// The next request's key.
    pub fn next_key(&self, rng: &mut SplitMix64) -> u64 {
        match self.next_rank(rng) {
            Some(r) => self.key_of_rank(r),
            None => rng.next_u64(),
        }
    }
}

/// Probability of each rank 0..k under Zipf(s), in rank order.
pub fn zipf_pmf(s: f64, k: u64) -> Vec<f64> {
    let w: Vec<f64> = (1..=k).map(|i| (i as f64).powf(-s)).collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|x| x / total).collect()
}

fn zipf_cdf(s: f64, k: u64) -> Result<Vec<f64>, BalanceError> {
    if !(1..=MAX_ZIPF_KEYS).contains(&k) || !(0.0..=MAX_ZIPF_S).contains(&s) {
        return Err(BalanceError::Param {
            param: "zipf",
            value: format!("s={s}:k={k}"),
            expected: "0 <= s <= 100 and 1 <= k <= 10000000",
        });
    }
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = zipf_pmf(s, k)
        .into_iter()
        .map(|p| {
            acc += p;
            acc
        })
        .collect();
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    Ok(cdf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frequencies(dist: &KeyDist, draws: usize, seed: u64) -> Vec<u64> {
        let sampler = KeySampler::new(dist, 7).expect("valid");
        let mut rng = SplitMix64::new(seed);
        let k = match *dist {
            KeyDist::Uniform { k } | KeyDist::Zipf { k, .. } => k as usize,
            KeyDist::Unique => 0,
        };
        let mut f = vec![0u64; k];
        for _ in 0..draws {
            f[sampler.next_rank(&mut rng).expect("ranked") as usize] += 1;
        }
        f
    }

    #[test]
    fn zipf_top_ranks_match_theory() {
        // N = 10^6 draws: a rank of probability p has count sd sqrt(N p (1-p)).
        // Tolerance 5 sd for each of the top 10 ranks (a wrong exponent, an
        // off-by-one rank or a 1-based index fails by far more: at s = 1.1,
        // k = 1000 p0 = 0.1794, p1 = 0.0837; 5 sd of rank 0 is 0.0019).
        const N: usize = 1_000_000;
        for (s, k, seed) in [(1.1, 1000u64, 1u64), (0.8, 100, 2), (2.0, 10_000, 3)] {
            let f = frequencies(&KeyDist::Zipf { s, k }, N, seed);
            let pmf = zipf_pmf(s, k);
            for r in 0..10 {
                let p = pmf[r];
                let sd = (N as f64 * p * (1.0 - p)).sqrt();
                let diff = (f[r] as f64 - N as f64 * p).abs();
                assert!(diff < 5.0 * sd, "s={s} k={k} rank {r}: {} vs {:.1} (sd {sd:.1})", f[r], N as f64 * p);
            }
        }
        // Theory checked independently (Python): H(1000, 1.1) = 5.572827, so
        // p0 = 0.179442 and p1 = 2^-1.1 p0 = 0.083713.
        let pmf = zipf_pmf(1.1, 1000);
        assert!((pmf[0] - 0.179_442).abs() < 1e-6 && (pmf[1] - 0.083_713).abs() < 1e-6, "{:?}", &pmf[..2]);
    }

    #[test]
    fn uniform_is_flat_and_unique_is_fresh() {
        // 200_000 draws over 20 keys: count sd ~ sqrt(1e4 * 0.95) ~ 97; +-500.
        let f = frequencies(&KeyDist::Uniform { k: 20 }, 200_000, 4);
        assert!(f.iter().all(|&c| c.abs_diff(10_000) < 500), "{f:?}");
        let sampler = KeySampler::new(&KeyDist::Unique, 1).expect("valid");
        let mut rng = SplitMix64::new(5);
        let mut keys: Vec<u64> = (0..10_000).map(|_| sampler.next_key(&mut rng)).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 10_000);
        // Zipf with s = 0 is uniform too; rank keys are distinct and salted.
        let z = KeySampler::new(&KeyDist::Zipf { s: 0.0, k: 4 }, 9).expect("valid");
        let ids: Vec<u64> = (0..4).map(|r| z.key_of_rank(r)).collect();
        assert!(ids.windows(2).all(|w| w[0] != w[1]));
        assert_ne!(z.key_of_rank(0), KeySampler::new(&KeyDist::Unique, 10).expect("valid").key_of_rank(0));
    }

    #[test]
    fn spec_round_trip_and_errors() {
        for text in ["uniform:k=1000", "zipf:s=1.1:k=1000", "unique", "zipf:s=0:k=1"] {
            let d: KeyDist = text.parse().expect("valid");
            assert_eq!(d.to_string(), text);
        }
        assert_eq!(" zipf : k=5 : s=1 ".parse::<KeyDist>(), Ok(KeyDist::Zipf { s: 1.0, k: 5 }));
        let cases = [
            ("zipf:s=1.1", "zipf:s=1.1", "needs k"),
            ("zipf:s=-1:k=3", "s=-1", "Zipf exponent"),
            ("zipf:s=1:k=0", "k=0", "number of keys"),
            ("zipf:s=1:k=20000000", "k=20000000", "1..=10000000"),
            ("uniform:k=10:s=1", "s=1", "one of k"),
            ("unique:k=1", "k=1", "none accepted"),
            ("pareto", "pareto", "a key distribution"),
            ("uniform:k=1:k=2", "k=2", "once only"),
            ("uniform:k", "k", "key=value"),
        ];
        for (input, token, expected) in cases {
            match input.parse::<KeyDist>() {
                Err(BalanceError::Spec { token: t, expected: e }) => {
                    assert_eq!(t, token, "{input}");
                    assert!(e.contains(expected), "{input}: {e}");
                }
                other => panic!("{input}: {other:?}"),
            }
        }
    }
}
