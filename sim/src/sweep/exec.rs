//! Running a sweep's runs on a thread pool, and shards.
//!
//! One simulation per thread (rayon, `jobs` threads); results are collected in run order, so
//! the records, and everything computed from them, do not depend on scheduling. Run 0 runs
//! first, alone, to check that every metric path names something in its report: a typo fails
//! the sweep (bad input, exit 2) before hours of runs, not after.
//!
//! Shards: shard `I` of `N` (0-based, `0 <= I < N`) holds the runs `r` with `r % N == I`.
//! Round robin over the point-major run order spreads every point's seeds, and so expensive
//! and cheap points, evenly over the shards.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::plan::Plan;
use super::record::RunRecord;
use crate::scenario::ScenarioError;

/// Most shards a sweep may be cut into.
pub const MAX_SHARDS: u64 = 100_000;

/// Shard `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("expected 1..={MAX_SHARDS} shards, got {count}"));
        }
        if index >= count {
            return Err(format!("shard index {index} is out of range: shards are numbered 0..{}", count - 1));
        }
        Ok(Shard { index, count })
    }

    /// `I/N`, 0-based.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("expected I/N with 0 <= I < N (e.g. 0/4) or auto, got {text:?}");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::new(i, n)
    }

    /// `--shard auto`: the index from a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, with N
    /// from `shards` or `REGSIM_SHARDS`) or a Slurm job array (`SLURM_ARRAY_TASK_ID` minus
    /// `SLURM_ARRAY_TASK_MIN`, divided by `SLURM_ARRAY_TASK_STEP`; N from `shards` or
    /// `SLURM_ARRAY_TASK_COUNT`). `env` reads one variable.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, shards: Option<u64>) -> Result<Shard, String> {
        let num = |name: &str| -> Result<Option<u64>, String> {
            match env(name) {
                None => Ok(None),
                Some(v) => {
                    v.trim().parse().map(Some).map_err(|_| format!("{name}={v:?}: expected a non-negative integer"))
                }
            }
        };
        if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            let n = match shards {
                Some(n) => n,
                None => num("REGSIM_SHARDS")?.ok_or(
                    "--shard auto in a Kubernetes Indexed Job: set REGSIM_SHARDS to the Job's completions \
                     (or pass --shards N)",
                )?,
            };
            return Shard::new(i, n).map_err(|e| format!("JOB_COMPLETION_INDEX={i}, {n} shards: {e}"));
        }
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let n = match shards {
                Some(n) => n,
                None => num("SLURM_ARRAY_TASK_COUNT")?
                    .ok_or("--shard auto in a Slurm array: SLURM_ARRAY_TASK_COUNT is not set (pass --shards N)")?,
            };
            let offset =
                id.checked_sub(min).ok_or(format!("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"))?;
            if offset % step != 0 {
                return Err(format!("SLURM_ARRAY_TASK_ID={id} is not on the array's step {step} from {min}"));
            }
            return Shard::new(offset / step, n).map_err(|e| format!("SLURM_ARRAY_TASK_ID={id}, {n} shards: {e}"));
        }
        Err("--shard auto: neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID \
             (Slurm job array) is set; use --shard I/N"
            .into())
    }

    pub fn contains(&self, run: u64) -> bool {
        run % self.count == self.index
    }

    /// Runs of a sweep of `runs` runs in this shard.
    pub fn runs(&self, runs: u64) -> u64 {
        runs / self.count + u64::from(runs % self.count > self.index)
    }
}

/// Progress of a sweep, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub runs_done: u64,
    pub runs: u64,
    pub points_done: u64,
    pub points: u64,
}

/// Runs the runs of `shard` (all runs without one) on `jobs` threads, calling `progress`
/// after each run (from any thread), and returns their records in run order.
pub fn execute(
    plan: &Plan,
    shard: Option<Shard>,
    jobs: usize,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<RunRecord>, ScenarioError> {
    let seeds = plan.sweep.spec.seeds;
    let total = plan.sweep.runs();
    let mine: Vec<u64> = (0..total).filter(|r| shard.is_none_or(|s| s.contains(*r))).collect();
    let points = plan.sweep.points();
    // Runs of each point in this shard, counted down as they finish.
    let left: Vec<AtomicU64> = (0..points).map(|_| AtomicU64::new(0)).collect();
    for r in &mine {
        left[(r / seeds) as usize].fetch_add(1, Ordering::Relaxed);
    }
    let points_here = left.iter().filter(|n| n.load(Ordering::Relaxed) > 0).count() as u64;
    let runs_done = AtomicU64::new(0);
    let points_done = AtomicU64::new(0);
    let finished = |r: u64| {
        if left[(r / seeds) as usize].fetch_sub(1, Ordering::Relaxed) == 1 {
            points_done.fetch_add(1, Ordering::Relaxed);
        }
        let done = runs_done.fetch_add(1, Ordering::Relaxed) + 1;
        progress(Progress {
            runs_done: done,
            runs: mine.len() as u64,
            points_done: points_done.load(Ordering::Relaxed),
            points: points_here,
        });
    };

    let (first, report) = plan.simulate(0);
    if let Some(report) = &report {
        for (i, m) in plan.sweep.metrics.iter().enumerate() {
            m.check(report).map_err(|e| {
                plan.sweep.error(
                    &format!("metrics[{i}]"),
                    format!(
                        "{e} (report.json of run 0: point 0, seed {}; run it with {})",
                        first.seed,
                        first_repro(plan)
                    ),
                )
            })?;
        }
    }
    let rest: Vec<u64> = mine.iter().copied().filter(|&r| r != 0).collect();
    if mine.first() == Some(&0) {
        finished(0);
    }
    let pool = thread_pool(jobs, "sweep")?;
    let mut records: Vec<RunRecord> = pool.install(|| {
        rest.par_iter()
            .map(|&r| {
                let (rec, _) = plan.simulate(r);
                finished(r);
                rec
            })
            .collect()
    });
    if mine.first() == Some(&0) {
        records.insert(0, first);
    }
    Ok(records)
}

/// The pool of `jobs` threads (at least one) named `regsim-<what>-<i>` that sweeps and swarm
/// runs use: one simulation per thread, with stacks large enough for the deepest run.
pub fn thread_pool(jobs: usize, what: &'static str) -> Result<rayon::ThreadPool, ScenarioError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .thread_name(move |i| format!("regsim-{what}-{i}"))
        .stack_size(8 << 20)
        .build()
        .map_err(|e| ScenarioError {
            location: "--jobs".into(),
            key_path: None,
            message: format!("cannot start {jobs} threads: {e}"),
        })
}

fn first_repro(plan: &Plan) -> String {
    super::plan::repro(&plan.sweep, &plan.meta, 0, plan.sweep.seed(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn shards_partition_the_runs() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).expect("valid")).collect();
        for r in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.contains(r)).count(), 1);
        }
        assert_eq!(shards.iter().map(|s| s.runs(10)).collect::<Vec<_>>(), vec![4, 3, 3]);
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        assert!(Shard::parse("4/4").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn auto_shard_from_kubernetes_and_slurm() {
        let k8s = [("JOB_COMPLETION_INDEX", "2"), ("REGSIM_SHARDS", "5")];
        assert_eq!(Shard::from_env(&env(&k8s), None), Ok(Shard { index: 2, count: 5 }));
        assert_eq!(Shard::from_env(&env(&k8s[..1]), Some(3)), Ok(Shard { index: 2, count: 3 }));
        assert!(Shard::from_env(&env(&k8s[..1]), None).expect_err("no N").contains("REGSIM_SHARDS"));
        let slurm = [("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(Shard::from_env(&env(&slurm), None), Ok(Shard { index: 3, count: 4 }));
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(Shard::from_env(&env(&stepped), None), Ok(Shard { index: 3, count: 4 }));
        assert!(Shard::from_env(&env(&[]), None).expect_err("nothing set").contains("JOB_COMPLETION_INDEX"));
    }
}
