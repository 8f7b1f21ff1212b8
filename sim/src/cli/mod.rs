//! Subcommands of the `regsim` binary that need nothing from `main.rs` (not part of the library).

pub mod lb;
