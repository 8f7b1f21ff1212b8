//! Balancer spec strings: parse `ring:k=160,jump,maglev:m=251,...` into
//! [`BalancerSpec`]s and build boxed [`Balancer`]s from them.
//!
//! Grammar (regsim's own): specs are separated by `,`; a spec is a name
//! followed by `:key=value` parameters, any order, each at most once,
//! surrounding whitespace ignored. Names and parameters (defaults after `=`):
//!
//! | name | parameters |
//! | --- | --- |
//! | `random` | — |
//! | `rr` | `offset=0` |
//! | `modn` | `hash=xxh64` |
//! | `ring` | `k=160` virtual nodes, `hash` |
//! | `jump` | `hash` |
//! | `rendezvous` (`hrw`) | `hash` |
//! | `maglev` | `m=65537` prime table size, `hash` |
//! | `bounded` | `c=1.25` load factor ≥ 1, `k=160`, `hash` |
//! | `p2c` | — |
//! | `p2c-ewma` | `tau=10s`, `rtt0=30ms` default RTT |
//!
//! `hash` is `xxh64` or `fnv1a`; durations are a number with a unit
//! `ns`, `us`, `ms` or `s` (`1.5s`, `250us`). `Display` prints the canonical
//! spec with every parameter, which parses back to the same value and is the
//! balancer's `name()`.

use std::fmt;
use std::str::FromStr;

use super::bounded::{BoundedLoad, DEFAULT_C, check_c};
use super::hash::HashKind;
use super::jump::JumpBalancer;
use super::maglev::{DEFAULT_TABLE_SIZE, Maglev, check_table_size};
use super::p2c::{DEFAULT_RTT_NS, DEFAULT_TAU_NS, P2c, P2cPeakEwma, check_duration};
use super::rendezvous::Rendezvous;
use super::ring::{DEFAULT_VNODES, RingBalancer, check_k};
use super::simple::{ModN, RandomBalancer, RoundRobin};
use super::{BalanceError, Balancer, check_nodes, format_duration};

/// One parsed balancer spec.
#[derive(Debug, Clone, PartialEq)]
pub enum BalancerSpec {
    /// Uniform random.
    Random,
    /// Round robin from `offset`.
    RoundRobin { offset: u32 },
    /// `h(key) mod n`.
    ModN { hash: HashKind },
    /// Karger ring with `k` points per node.
    Ring { k: u32, hash: HashKind },
    /// Jump consistent hash.
    Jump { hash: HashKind },
    /// Rendezvous / HRW.
    Rendezvous { hash: HashKind },
    /// Maglev with prime table size `m`.
    Maglev { m: u32, hash: HashKind },
    /// Consistent hashing with bounded loads.
    Bounded { c: f64, k: u32, hash: HashKind },
    /// Power of two choices on in-flight requests.
    P2c,
    /// Power of two choices on peak-EWMA latency × (pending + 1).
    P2cEwma { tau_ns: u64, default_rtt_ns: u64 },
}

impl BalancerSpec {
    /// Whether the pick depends on the request key (hash-based balancers): only those keep a
    /// key on a node, so "keys moved per view change" means something only for them.
    pub fn keyed(&self) -> bool {
        !matches!(
            self,
            BalancerSpec::Random | BalancerSpec::RoundRobin { .. } | BalancerSpec::P2c | BalancerSpec::P2cEwma { .. }
        )
    }
}

const NAMES: &str = "random, rr, modn, ring, jump, rendezvous, maglev, bounded, p2c, p2c-ewma";

/// Parse a comma-separated list of specs (at least one).
pub fn parse_spec(s: &str) -> Result<Vec<BalancerSpec>, BalanceError> {
    s.split(',').map(str::parse).collect()
}

impl BalancerSpec {
    /// Build the balancer over `nodes` (non-empty, distinct names).
    pub fn build(&self, nodes: &[String]) -> Result<Box<dyn Balancer>, BalanceError> {
        check_nodes(nodes)?;
        Ok(match *self {
            Self::Random => Box::new(RandomBalancer::new(nodes)?),
            Self::RoundRobin { offset } => Box::new(RoundRobin::new(nodes, offset)?),
            Self::ModN { hash } => Box::new(ModN::new(nodes, hash)?),
            Self::Ring { k, hash } => Box::new(RingBalancer::new(nodes, k, hash)?),
            Self::Jump { hash } => Box::new(JumpBalancer::new(nodes, hash)?),
            Self::Rendezvous { hash } => Box::new(Rendezvous::new(nodes, hash)?),
            Self::Maglev { m, hash } => Box::new(Maglev::new(nodes, m, hash)?),
            Self::Bounded { c, k, hash } => Box::new(BoundedLoad::new(nodes, c, k, hash)?),
            Self::P2c => Box::new(P2c::new(nodes)?),
            Self::P2cEwma { tau_ns, default_rtt_ns } => Box::new(P2cPeakEwma::new(nodes, tau_ns, default_rtt_ns)?),
        })
    }
}

impl FromStr for BalancerSpec {
    type Err = BalanceError;

    /// Parse one spec (no commas).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let token = s.trim();
        let mut parts = token.split(':').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let allowed: &[&str] = match name {
            "random" | "p2c" => &[],
            "rr" => &["offset"],
            "modn" | "jump" | "rendezvous" | "hrw" => &["hash"],
            "ring" => &["k", "hash"],
            "maglev" => &["m", "hash"],
            "bounded" => &["c", "k", "hash"],
            "p2c-ewma" => &["tau", "rtt0"],
            _ => return Err(spec_err(name, format!("a balancer name ({NAMES})"))),
        };
        let mut params = Params::default();
        for part in parts {
            let Some((key, value)) = part.split_once('=') else {
                return Err(spec_err(part, format!("key=value after {name:?}")));
            };
            let (key, value) = (key.trim(), value.trim());
            if !allowed.contains(&key) {
                let expected = if allowed.is_empty() {
                    format!("no parameters for {name:?}")
                } else {
                    format!("a parameter of {name:?}: one of {}", allowed.join(", "))
                };
                return Err(spec_err(part, expected));
            }
            if params.seen.contains(&key) {
                return Err(spec_err(part, format!("{key} given once only")));
            }
            params.seen.push(key);
            params.set(key, value, part)?;
        }
        let hash = params.hash.unwrap_or_default();
        let k = params.k.unwrap_or(DEFAULT_VNODES);
        Ok(match name {
            "random" => Self::Random,
            "p2c" => Self::P2c,
            "rr" => Self::RoundRobin { offset: params.offset.unwrap_or(0) },
            "modn" => Self::ModN { hash },
            "jump" => Self::Jump { hash },
            "rendezvous" | "hrw" => Self::Rendezvous { hash },
            "ring" => Self::Ring { k, hash },
            "maglev" => Self::Maglev { m: params.m.unwrap_or(DEFAULT_TABLE_SIZE), hash },
            "bounded" => Self::Bounded { c: params.c.unwrap_or(DEFAULT_C), k, hash },
            _ => Self::P2cEwma {
                tau_ns: params.tau.unwrap_or(DEFAULT_TAU_NS),
                default_rtt_ns: params.rtt0.unwrap_or(DEFAULT_RTT_NS),
            },
        })
    }
}

fn spec_err(token: &str, expected: String) -> BalanceError {
    BalanceError::Spec { token: token.to_string(), expected }
}

#[derive(Default)]
struct Params<'a> {
    seen: Vec<&'a str>,
    hash: Option<HashKind>,
    k: Option<u32>,
    m: Option<u32>,
    c: Option<f64>,
    offset: Option<u32>,
    tau: Option<u64>,
    rtt0: Option<u64>,
}

impl Params<'_> {
    fn set(&mut self, key: &str, value: &str, part: &str) -> Result<(), BalanceError> {
        let int = |what: &str| value.parse::<u32>().map_err(|_| spec_err(part, format!("{key}=<{what}>")));
        // Range errors from the shared checks, re-labelled with the token.
        let ranged = |e: BalanceError| match e {
            BalanceError::Param { expected, .. } => spec_err(part, expected.to_string()),
            other => other,
        };
        match key {
            "hash" => {
                let h =
                    value.parse::<HashKind>().map_err(|_| spec_err(part, "hash=xxh64 or hash=fnv1a".to_string()))?;
                self.hash = Some(h);
            }
            "k" => {
                let k = int("virtual nodes per node, >= 1")?;
                check_k(k).map_err(ranged)?;
                self.k = Some(k);
            }
            "m" => {
                let m = int("prime table size")?;
                check_table_size(m).map_err(ranged)?;
                self.m = Some(m);
            }
            "offset" => self.offset = Some(int("start offset")?),
            "c" => {
                let c = value.parse::<f64>().map_err(|_| spec_err(part, "c=<load factor >= 1>".to_string()))?;
                check_c(c).map_err(ranged)?;
                self.c = Some(c);
            }
            _ => {
                let ns = parse_duration(value)
                    .ok_or_else(|| spec_err(part, format!("{key}=<duration with unit ns|us|ms|s>")))?;
                let param = if key == "tau" { "tau" } else { "rtt0" };
                check_duration(param, ns).map_err(ranged)?;
                if key == "tau" {
                    self.tau = Some(ns);
                } else {
                    self.rtt0 = Some(ns);
                }
            }
        }
        Ok(())
    }
}

/// Parse `1.5s`, `30ms`, `250us`, `7ns` into ns (rounded); `None` if malformed.
pub fn parse_duration(s: &str) -> Option<u64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let scale = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    let v = num.parse::<f64>().ok()? * scale;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then(|| v.round() as u64)
}

impl fmt::Display for BalancerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random => write!(f, "random"),
            Self::RoundRobin { offset } => write!(f, "rr:offset={offset}"),
            Self::ModN { hash } => write!(f, "modn:hash={hash}"),
            Self::Ring { k, hash } => write!(f, "ring:k={k}:hash={hash}"),
            Self::Jump { hash } => write!(f, "jump:hash={hash}"),
            Self::Rendezvous { hash } => write!(f, "rendezvous:hash={hash}"),
            Self::Maglev { m, hash } => write!(f, "maglev:m={m}:hash={hash}"),
            Self::Bounded { c, k, hash } => write!(f, "bounded:c={c}:k={k}:hash={hash}"),
            Self::P2c => write!(f, "p2c"),
            Self::P2cEwma { tau_ns, default_rtt_ns } => {
                write!(f, "p2c-ewma:tau={}:rtt0={}", format_duration(*tau_ns), format_duration(*default_rtt_ns))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash::node_names;
    use super::*;

    const EXAMPLE: &str = "ring:k=160,jump,maglev,rendezvous,modn,ring:k=100:hash=fnv1a,\
                           bounded:c=1.25,p2c,p2c-ewma,random,rr,maglev:m=251";

    #[test]
    fn parses_the_example_list() {
        let specs = parse_spec(EXAMPLE).expect("valid list");
        use HashKind::{Fnv1a, Xxh64};
        let expected = vec![
            BalancerSpec::Ring { k: 160, hash: Xxh64 },
            BalancerSpec::Jump { hash: Xxh64 },
            BalancerSpec::Maglev { m: 65_537, hash: Xxh64 },
            BalancerSpec::Rendezvous { hash: Xxh64 },
            BalancerSpec::ModN { hash: Xxh64 },
            BalancerSpec::Ring { k: 100, hash: Fnv1a },
            BalancerSpec::Bounded { c: 1.25, k: 160, hash: Xxh64 },
            BalancerSpec::P2c,
            BalancerSpec::P2cEwma { tau_ns: 10_000_000_000, default_rtt_ns: 30_000_000 },
            BalancerSpec::Random,
            BalancerSpec::RoundRobin { offset: 0 },
            BalancerSpec::Maglev { m: 251, hash: Xxh64 },
        ];
        assert_eq!(specs, expected);
        // Canonical form parses back, and is the built balancer's name.
        let nodes = node_names(1, 5);
        for spec in &specs {
            let text = spec.to_string();
            assert_eq!(text.parse::<BalancerSpec>().as_ref(), Ok(spec), "{text}");
            let mut b = spec.build(&nodes).expect("buildable");
            assert_eq!(b.name(), text);
            for key in 0..50 {
                let i = b.pick(key, key.wrapping_mul(0x9e37_79b9_7f4a_7c15)).expect("non-empty");
                assert!(i < 5);
                b.on_start(i);
                b.on_finish(i, 1_000_000, key * 1_000_000);
            }
            b.set_nodes(&[]);
            assert_eq!(b.pick(1, 1), None, "{text}");
        }
    }

    #[test]
    fn accepts_variants() {
        let got = parse_spec(" hrw:hash=fnv , rr:offset=3, p2c-ewma:rtt0=1.5ms:tau=2s ").expect("valid list");
        assert_eq!(
            got,
            vec![
                BalancerSpec::Rendezvous { hash: HashKind::Fnv1a },
                BalancerSpec::RoundRobin { offset: 3 },
                BalancerSpec::P2cEwma { tau_ns: 2_000_000_000, default_rtt_ns: 1_500_000 },
            ]
        );
        assert_eq!(got[2].to_string(), "p2c-ewma:tau=2s:rtt0=1500us");
        assert_eq!(format_duration(7), "7ns");
        assert_eq!(parse_duration("250us"), Some(250_000));
    }

    #[test]
    fn rejects_bad_specs_naming_the_token() {
        let cases = [
            ("ring:k=0", "k=0", "at least 1"),
            ("ring:k=ten", "k=ten", "k=<virtual nodes"),
            ("maglev:m=100", "m=100", "prime"),
            ("bounded:c=0.9", "c=0.9", ">= 1"),
            ("bounded:c=nan", "c=nan", ">= 1"),
            ("rign", "rign", "a balancer name"),
            ("ring,,jump", "", "a balancer name"),
            ("ring:hash=md5", "hash=md5", "xxh64 or"),
            ("jump:k=3", "k=3", "one of hash"),
            ("p2c:x=1", "x=1", "no parameters"),
            ("ring:k", "k", "key=value"),
            ("ring:k=1:k=2", "k=2", "once only"),
            ("p2c-ewma:tau=10", "tau=10", "unit ns|us|ms|s"),
            ("p2c-ewma:rtt0=0ms", "rtt0=0ms", "positive"),
        ];
        for (input, token, expected) in cases {
            match parse_spec(input) {
                Err(BalanceError::Spec { token: t, expected: e }) => {
                    assert_eq!(t, token, "{input}");
                    assert!(e.contains(expected), "{input}: {e}");
                    let msg = BalanceError::Spec { token: t, expected: e }.to_string();
                    assert!(msg.contains(token), "{msg}");
                }
                other => panic!("{input}: expected a spec error, got {other:?}"),
            }
        }
        let spec = BalancerSpec::Ring { k: 0, hash: HashKind::Xxh64 };
        assert!(spec.build(&node_names(1, 3)).is_err(), "k=0 built");
        assert_eq!(BalancerSpec::P2c.build(&[]).err(), Some(BalanceError::NoNodes));
    }
}
