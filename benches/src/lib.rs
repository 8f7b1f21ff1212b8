//! Shared helpers for the benches: the heartbeat workload at a chosen size.

use regsim::scenario::{Override, Scenario, load};

/// `scenarios/heartbeat.toml` with `instances` instances and `duration` of virtual time.
pub fn heartbeat(instances: u32, duration: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/heartbeat.toml");
    let sets =
        [format!("instances.count={instances}"), format!("duration={duration}"), "faults[0].at=300s".to_string()];
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).expect("valid override")).collect();
    load(&path, &overrides).expect("heartbeat.toml loads")
}

/// A canonical scenario file from `scenarios/`, unchanged.
pub fn canonical(file: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file);
    load(&path, &[]).expect("scenario loads")
}
