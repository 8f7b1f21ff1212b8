//! Helpers shared by the scenario-level tests.

use regsim::run::{RunOutput, run};
use regsim::scenario::{Override, Scenario, load};

/// `scenarios/<file>` with `--set` style overrides.
pub fn scenario(file: &str, sets: &[&str]) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file);
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).expect("valid override")).collect();
    load(&path, &overrides).expect("scenario loads")
}

/// Runs `scenarios/<file>` with overrides at its own seed and asserts every invariant held.
#[allow(dead_code)] // not every test file uses it
pub fn run_ok(file: &str, sets: &[&str]) -> RunOutput {
    let s = scenario(file, sets);
    let out = run(&s, s.seed).expect("runs");
    assert!(out.failed_invariants().next().is_none(), "{:?}", out.report.invariants);
    out
}
