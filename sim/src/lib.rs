//! regsim: a seeded, deterministic discrete-event simulator of service-registry clusters.
//!
//! See DESIGN.md for the layout and the core abstractions. The modules, bottom up:
//! `balance` (pure client-side balancers, no simulation inside), `engine` (virtual time, queue, actors, world), `net` (latency, loss, partitions), `fault`
//! (schedules and targets), `protocol` (sans-IO registry actors), `metrics` and `check`
//! (observations -> statistics and invariants), `report` (JSON, Markdown, SVG), `scenario`
//! (files, overrides, building a world), `run` (one scenario run end to end), `output` (output
//! folders written as a unit, only where the command line says), `sweep` (many
//! runs over parameter grids and seeds, in parallel, sharded and merged), `swarm` (randomized fault
//! schedules, every invariant checked, failures shrunk to a minimal scenario).

pub mod balance;
pub mod check;
pub mod engine;
pub mod fault;
pub mod input;
pub mod metrics;
pub mod monitor;
pub mod net;
pub mod output;
pub mod protocol;
pub mod report;
pub mod run;
pub mod scenario;
pub mod swarm;
pub mod sweep;
