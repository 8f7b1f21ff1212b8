//! regsim: a seeded, deterministic discrete-event simulator of service-registry clusters.
//!
//! See DESIGN.md for the layout and the core abstractions. Virtual time, the queue, actors,
//! node hosts, the network and the fault machinery are the `regsim-kernel` crate, which knows
//! no registry words. The modules of this crate, bottom up:
//! `balance` (pure client-side balancers, no simulation inside), `fault` (schedules and
//! targets, resolved into the kernel's actions), `protocol` (sans-IO registry actors), `metrics` and `check`
//! (observations -> statistics and invariants), `report` (JSON, Markdown, SVG), `scenario`
//! (files, overrides, building a world), `run` (one scenario run end to end), `output` (output
//! folders written as a unit, only where the command line says), `sweep` (many
//! runs over parameter grids and seeds, in parallel, sharded and merged), `swarm` (randomized fault
//! schedules, every invariant checked, failures shrunk to a minimal scenario).

pub mod balance;
pub mod check;
pub mod explain;
pub mod fault;
pub mod input;
pub mod metrics;
pub mod monitor;
pub mod output;
pub mod protocol;
pub mod report;
pub mod run;
pub mod scenario;
pub mod swarm;
pub mod sweep;
