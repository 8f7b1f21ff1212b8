//! Running a swarm's variants on a thread pool, in fixed chunks, until the first failure.
//!
//! Runs go in chunks of [`CHUNK`] run indices (a constant, not a function of the thread
//! count); within a chunk they run in parallel and their results are collected in run order.
//! After a chunk with a failing run the swarm stops, and the failure reported is the one with
//! the lowest run index, so what it finds, and the summary of the runs before it, are the same
//! for any `--jobs`.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::{Base, Variant, signature};
use crate::scenario::ScenarioError;

/// Runs per chunk.
pub const CHUNK: u64 = 32;

/// The first failing run.
#[derive(Clone, Debug)]
pub struct Failure {
    pub variant: Variant,
    /// The first failed invariant (or `event_limit`).
    pub signature: String,
    /// Every failed invariant with its detail.
    pub failed: Vec<(String, String)>,
}

/// What the runs covered.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub runs: u64,
    /// Generated faults per kind (and variants with loss / duplication).
    pub faults: BTreeMap<String, u64>,
    /// Per invariant: (runs that checked it, runs where it applied, runs where it failed).
    pub invariants: BTreeMap<String, (u64, u64, u64)>,
    pub virtual_s: f64,
    pub events: u64,
    pub failure: Option<Failure>,
}

struct Outcome {
    virtual_s: f64,
    events: u64,
    invariants: Vec<(String, bool, bool, String)>,
    signature: Option<String>,
}

fn run_one(base: &Base, v: &Variant) -> Result<Outcome, ScenarioError> {
    let scenario = base.scenario(v)?;
    let out = crate::run::run(&scenario, v.seed).map_err(|m| ScenarioError {
        location: format!("{} (swarm run {})", base.file, v.run),
        key_path: None,
        message: m,
    })?;
    Ok(Outcome {
        virtual_s: out.report.virtual_duration_s,
        events: out.report.events,
        invariants: out
            .report
            .invariants
            .iter()
            .map(|i| (i.name.to_string(), i.holds, !i.not_applicable, i.detail.clone()))
            .collect(),
        signature: signature(&out),
    })
}

/// Runs variants `0..runs` of `base` seeded with `seed` on `jobs` threads, calling `progress`
/// with the runs done after each chunk; stops after the chunk holding the first failure.
pub fn execute(
    base: &Base,
    runs: u64,
    seed: u64,
    jobs: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary, ScenarioError> {
    let pool = crate::sweep::exec::thread_pool(jobs, "swarm")?;
    let mut summary = Summary::default();
    let mut start = 0;
    while start < runs && summary.failure.is_none() {
        let end = (start + CHUNK).min(runs);
        let variants: Vec<Variant> = (start..end).map(|r| base.variant(seed, r)).collect();
        let results: Vec<Result<Outcome, ScenarioError>> =
            pool.install(|| variants.par_iter().map(|v| run_one(base, v)).collect());
        for (v, res) in variants.into_iter().zip(results) {
            let o = res?;
            summary.runs += 1;
            summary.virtual_s += o.virtual_s;
            summary.events += o.events;
            for f in &v.plan.faults {
                *summary.faults.entry(f.kind.name().to_string()).or_insert(0) += 1;
            }
            if v.plan.loss > 0.0 {
                *summary.faults.entry("loss".into()).or_insert(0) += 1;
            }
            if v.plan.duplicate > 0.0 {
                *summary.faults.entry("duplication".into()).or_insert(0) += 1;
            }
            for (name, holds, applies, _) in &o.invariants {
                let e = summary.invariants.entry(name.clone()).or_insert((0, 0, 0));
                e.0 += 1;
                e.1 += u64::from(*applies);
                e.2 += u64::from(!holds);
            }
            if let Some(sig) = o.signature {
                let failed =
                    o.invariants.into_iter().filter(|i| !i.1).map(|(name, _, _, detail)| (name, detail)).collect();
                summary.failure = Some(Failure { variant: v, signature: sig, failed });
                break;
            }
        }
        progress(summary.runs);
        start = end;
    }
    Ok(summary)
}
