//! Subcommands of the `regsim` binary (they may use `main.rs`'s shared helpers) (not part of the library).

pub mod lb;
pub mod rules;
pub mod swarm;
pub mod sweep;
