//! What a run is checked against: the [`Invariant`] a check yields (`{name, holds, detail}`; a
//! failed one makes the run exit 1 with the time and a reproduction command) and the checkers
//! that need no simulation words (`linearizability`). It sits below `metrics` and imports
//! nothing above it: each measurement family checks its own invariants (`crashed_instances_detected`
//! and `evictions_explained` in `metrics::detection`, `converged_after_heal` in
//! `metrics::convergence`, the Raft invariants in `metrics::elections`, `linearizable` in
//! `metrics::consistency`, the gateway's in `metrics::api`).

pub mod linearizability;

use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Invariant {
    pub name: &'static str,
    /// Holds, or nothing to check (`not_applicable`).
    pub holds: bool,
    /// Nothing in the run could test it (no crash to detect, no heal to converge after): it
    /// holds vacuously, and reports say "not applicable", not "yes".
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_applicable: bool,
    pub detail: String,
    /// Virtual time of the first violation, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_violation_s: Option<f64>,
}
