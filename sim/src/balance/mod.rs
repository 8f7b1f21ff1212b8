//! Client-side load balancers for regsim.
//!
//! Model: a client holds the current membership of a service (a list of
//! stable node names such as `"10.0.0.7:8080"` or `"inst-17"`) and, for every
//! request, picks one node. Key-based balancers (modulo, ring, jump,
//! rendezvous, Maglev, bounded loads) map a 64-bit request key to a node;
//! request-based ones (random, round robin, power of two choices, peak EWMA)
//! use a random 64-bit word drawn by the caller from its own seeded stream and,
//! for the load-aware ones, start/finish feedback. Everything is pure and
//! deterministic: no clock, no OS randomness, no hash-map iteration order.
//!
//! Sources: each submodule's doc names the paper or production implementation
//! it follows (Karger et al. 1997, Lamping & Veach 2014, Thaler & Ravishankar
//! 1998, Eisenbud et al. 2016, Mirrokni, Thorup & Zadimoghaddam 2018, Azar et
//! al. 1994 / Mitzenmacher 2001, Finagle / tower / linkerd2-proxy peak EWMA).
//!
//! This file is the module root (it becomes `balance/mod.rs`): submodules
//! reach each other through `super::` paths only.

use std::fmt;

pub mod bounded;
pub mod churn;
pub mod eval;
pub mod hash;
pub mod jump;
pub mod keys;
pub mod maglev;
pub mod p2c;
pub mod rendezvous;
pub mod ring;
pub mod simple;
pub mod spec;
pub mod stats;

pub use bounded::BoundedLoad;
pub use churn::{ChurnStep, parse_churn};
pub use eval::{EvalConfig, EvalReport, Evaluation, evaluate};
pub use hash::HashKind;
pub use jump::{JumpBalancer, jump};
pub use keys::{KeyDist, KeySampler};
pub use maglev::Maglev;
pub use p2c::{P2c, P2cPeakEwma, PeakEwma};
pub use rendezvous::Rendezvous;
pub use ring::{Ring, RingBalancer};
pub use simple::{ModN, RandomBalancer, RoundRobin};
pub use spec::{BalancerSpec, parse_spec};
pub use stats::{LoadStats, disruption, load_stats};

/// Index into the node list a balancer was last built from (`set_nodes`).
pub type NodeIdx = u32;

/// A client-side balancer: picks one node of the current membership per request.
///
/// Object safe: `Box<dyn Balancer>` is what [`BalancerSpec::build`] returns.
/// Feedback contract for load-aware balancers: the caller reports
/// `on_start(node)` when it sends the request it picked and
/// `on_finish(node, ..)` when the reply arrives, with indices into the
/// membership current at the time of the call. `set_nodes` carries the
/// per-node state (in-flight counts, latency estimates) over by node name;
/// state of removed nodes is dropped and feedback with an out-of-range index
/// is ignored, so a caller translates indices of requests that straddle a
/// membership change (or simply drops finishes of removed nodes).
pub trait Balancer: fmt::Debug {
    /// Canonical spec string of this balancer, e.g. `"ring:k=160:hash=xxh64"`.
    fn name(&self) -> &str;
    /// Rebuild for a new membership. An empty list is allowed: `pick` then
    /// returns `None` until nodes come back.
    fn set_nodes(&mut self, nodes: &[String]);
    /// Pick a node for a request with this 64-bit key; `rand` is a random
    /// word the caller draws from its own seeded stream (used by random, p2c...).
    /// `None` only when the membership is empty. Does not count the request as
    /// started: call `on_start` for that.
    fn pick(&mut self, key: u64, rand: u64) -> Option<NodeIdx>;
    /// A request to `node` was sent (load-aware balancers count it in flight).
    fn on_start(&mut self, _node: NodeIdx) {}
    /// A request to `node` finished with round-trip time `rtt_ns`, observed at
    /// virtual time `now_ns`.
    fn on_finish(&mut self, _node: NodeIdx, _rtt_ns: u64, _now_ns: u64) {}
}

/// Errors for bad parameters, bad specs and bad measurement input.
#[derive(Debug, Clone, PartialEq)]
pub enum BalanceError {
    /// A balancer or measurement needs at least one node.
    NoNodes,
    /// The same node name appears twice in a membership.
    DuplicateNode(String),
    /// A numeric parameter is out of range.
    Param {
        /// Parameter name (`k`, `m`, `c`, `tau`, ...).
        param: &'static str,
        /// The offending value, as given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A spec string could not be parsed.
    Spec {
        /// The offending token.
        token: String,
        /// What was expected instead.
        expected: String,
    },
    /// Input to a measurement helper is unusable.
    Input(String),
}

impl fmt::Display for BalanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoNodes => write!(f, "balancer needs at least one node"),
            Self::DuplicateNode(name) => write!(f, "node name {name:?} appears more than once"),
            Self::Param { param, value, expected } => write!(f, "bad {param}={value}: expected {expected}"),
            Self::Spec { token, expected } => {
                write!(f, "bad balancer spec token {token:?}: expected {expected}")
            }
            Self::Input(what) => write!(f, "bad measurement input: {what}"),
        }
    }
}

impl std::error::Error for BalanceError {}

/// Largest membership a balancer indexes (`NodeIdx` is a `u32`).
pub const MAX_NODES: usize = u32::MAX as usize;

/// Validate a membership for a constructor: non-empty, at most
/// [`MAX_NODES`], and no name twice.
pub fn check_nodes(nodes: &[String]) -> Result<(), BalanceError> {
    if nodes.is_empty() {
        return Err(BalanceError::NoNodes);
    }
    if nodes.len() > MAX_NODES {
        return Err(BalanceError::Param {
            param: "nodes",
            value: nodes.len().to_string(),
            expected: "at most u32::MAX nodes",
        });
    }
    let mut sorted: Vec<&String> = nodes.iter().collect();
    sorted.sort();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(BalanceError::DuplicateNode(w[0].clone())),
        None => Ok(()),
    }
}

/// The part of `nodes` a balancer indexes: the first [`MAX_NODES`] names
/// (`set_nodes` is infallible, so a larger list is cut rather than refused).
pub fn indexable(nodes: &[String]) -> &[String] {
    &nodes[..nodes.len().min(MAX_NODES)]
}

/// Shortest exact rendering of a duration: `10s`, `30ms`, `1500us`, `7ns`.
pub fn format_duration(ns: u64) -> String {
    for (unit, scale) in [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)] {
        if ns >= scale && ns.is_multiple_of(scale) {
            return format!("{}{unit}", ns / scale);
        }
    }
    format!("{ns}ns")
}
