//! Sweeps: a scenario run over a grid of parameter values × seeds, in parallel (one
//! simulation per thread, never parallel inside one), aggregated per point into mean, standard
//! deviation and 95 % confidence interval per metric, with tables and plots; shards of a sweep
//! for clusters (Kubernetes Indexed Jobs, Slurm arrays) and merging them back.
//!
//! The result is a pure function of the sweep file, the scenario file and the code: run seeds
//! derive from the sweep seed, records are collected in run order whatever the thread count,
//! and a merged sharded sweep goes through the same output code as an unsharded one. Nothing
//! here reads a clock; the progress bar lives in the CLI (a callback).
//!
//! - [`file`]: the sweep file schema and its checks.
//! - [`metric`]: report.json paths, with wildcards, over `serde_json::Value`.
//! - [`plan`]: every point's scenario loaded and validated up front; run seeds; repro commands.
//! - [`exec`]: the thread pool, shards.
//! - [`record`], [`stats`], [`output`], [`plot`]: per-run records, aggregates, files, SVGs.
//! - [`shard`]: shard files and merge.

pub mod exec;
pub mod file;
pub mod metric;
pub mod output;
pub mod plan;
pub mod plot;
pub mod record;
pub mod shard;
pub mod stats;

pub use exec::{Progress, Shard, execute};
pub use output::Aggregate;
pub use plan::{Meta, Plan, prepare};
pub use record::RunRecord;
