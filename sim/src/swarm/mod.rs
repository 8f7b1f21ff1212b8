//! Swarm runs (`regsim swarm`): many randomized fault schedules over one base scenario, every
//! invariant checked, the first failure shrunk to a minimal scenario file.
//!
//! Swarm testing (Groce et al., ISSTA 2012): instead of every run drawing from every fault kind
//! (where, say, frequent partitions keep a cluster from ever reaching the state in which a
//! crash bites), each *variant* enables a random subset of the kinds, at random rates and
//! times. A variant has two phases:
//! - the **safety phase**, as long as the base file's `duration`: the faults of its [`Plan`],
//!   each undone by its paired verb (restart, resume, heal, clock reset) before the phase ends;
//! - the **liveness phase**: no faults, long enough for the cluster to converge (twice the
//!   `converged_after_heal` bound, at least 60 s), so the liveness invariants have a quiet end to
//!   judge.
//!
//! Every variant *is* a scenario file: the base file's TOML table (with `--set` overrides)
//! plus the generated `[[faults]]`, loss and duplication, seed and duration, serialized to text
//! and loaded with the normal loader (`scenario::load_str`), so whatever a swarm reports,
//! `regsim run` on the written file reproduces. Variant `r`'s seed is the r-th output of
//! SplitMix64 seeded with the swarm seed (as sweeps derive theirs); its plan is drawn from the
//! `swarm/plan` stream of that seed. Runs are executed in fixed chunks on a thread pool and the
//! first failure is the one with the lowest run index, so the result does not depend on
//! `--jobs`. Shrinking ([`shrink`]) is sequential and deterministic.

pub mod exec;
pub mod plan;
pub mod shrink;

use std::path::Path;

pub use exec::{Failure, Summary, execute};
pub use plan::{FaultKind, GenFault, Plan, Sizes};
pub use shrink::{Shrunk, shrink};

use crate::run::RunOutput;
use crate::scenario::schema::RegistryMode;
use crate::scenario::{Override, Scenario, ScenarioError, load_str, table_with_overrides};
use regsim_kernel::{SimDuration, stream};

/// Most runs one swarm may ask for.
pub const MAX_RUNS: u64 = 1_000_000;

/// The base scenario of a swarm.
#[derive(Clone, Debug)]
pub struct Base {
    /// The file as given (for messages and repro commands).
    pub file: String,
    /// The `--set` arguments as given.
    pub sets: Vec<String>,
    pub table: toml::Table,
    pub scenario: Scenario,
    pub sizes: Sizes,
    pub safety_ms: u64,
    pub liveness_ms: u64,
}

/// One variant: a plan on a (possibly shrunk) cluster, and its seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub run: u64,
    pub seed: u64,
    pub plan: Plan,
    pub sizes: Sizes,
    pub safety_ms: u64,
    pub liveness_ms: u64,
}

impl Base {
    /// Loads and validates the base file with overrides (exactly as `regsim run --set`).
    pub fn load(path: &Path, sets: &[String]) -> Result<Base, ScenarioError> {
        let file = path.display().to_string();
        let text = crate::scenario::read_input(path, "scenario")?;
        Base::from_text(&file, &text, sets)
    }

    pub fn from_text(file: &str, text: &str, sets: &[String]) -> Result<Base, ScenarioError> {
        let overrides = sets.iter().map(|s| Override::parse(s)).collect::<Result<Vec<_>, _>>()?;
        let scenario = load_str(file, text, &overrides)?;
        let table = table_with_overrides(file, text, &overrides)?;
        let safety_ms = scenario.duration.as_nanos() / 1_000_000;
        if safety_ms < 4_000 {
            return Err(ScenarioError {
                location: file.to_string(),
                key_path: Some("duration".into()),
                message: "a swarm base needs a duration of at least 4s (it is the safety phase)".into(),
            });
        }
        if !scenario.regions.is_empty() {
            // The plans index whole roles (`servers[k]`), which with regions would fault region 0
            // only and cut across independent clusters.
            return Err(ScenarioError {
                location: file.to_string(),
                key_path: Some("regions".into()),
                message: "a swarm base has one region (its fault plans index whole roles)".into(),
            });
        }
        let cp = scenario.registry.mode == RegistryMode::Cp;
        let bound = crate::run::settle_timing(&scenario, crate::run::latency_bound(&scenario)).bound();
        let liveness = bound.saturating_mul(2).max(SimDuration::from_secs(60));
        let sizes = Sizes {
            cp,
            lease: cp && scenario.registry.raft.reads == crate::protocol::cp::ReadMode::Lease,
            servers: scenario.registry.servers,
            instances: scenario.instances.count,
            consumers: scenario.consumers.count,
        };
        Ok(Base {
            file: file.to_string(),
            sets: sets.to_vec(),
            table,
            sizes,
            safety_ms,
            liveness_ms: liveness.as_nanos() / 1_000_000,
            scenario,
        })
    }

    /// Seed of run `r`: the r-th output of SplitMix64 seeded with the swarm seed (53 bits).
    pub fn run_seed(swarm_seed: u64, r: u64) -> u64 {
        regsim_kernel::rng::mix64(swarm_seed.wrapping_add(r.wrapping_mul(0x9E37_79B9_7F4A_7C15))) >> 11
    }

    /// Variant `r` of the swarm seeded with `swarm_seed`.
    pub fn variant(&self, swarm_seed: u64, r: u64) -> Variant {
        let seed = Base::run_seed(swarm_seed, r);
        let plan = Plan::random(&mut stream(seed, "swarm/plan"), &self.sizes, self.safety_ms);
        self.with_plan(r, seed, plan)
    }

    /// A variant with a given plan (e.g. from proptest).
    pub fn with_plan(&self, run: u64, seed: u64, plan: Plan) -> Variant {
        Variant { run, seed, plan, sizes: self.sizes, safety_ms: self.safety_ms, liveness_ms: self.liveness_ms }
    }

    /// The variant as a scenario table: the base table, then seed, duration, node counts, loss,
    /// duplication, and the base's faults followed by the plan's.
    pub fn table(&self, v: &Variant) -> toml::Table {
        let mut t = self.table.clone();
        t.insert("seed".into(), toml::Value::Integer(v.seed as i64));
        t.insert("duration".into(), toml::Value::String(format!("{}ms", v.safety_ms + v.liveness_ms)));
        let mut set = |section: &str, key: &str, value: toml::Value| {
            let entry = t.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(s) = entry {
                s.insert(key.to_string(), value);
            }
        };
        if v.sizes != self.sizes {
            set("registry", "servers", toml::Value::Integer(i64::from(v.sizes.servers)));
            set("instances", "count", toml::Value::Integer(i64::from(v.sizes.instances)));
            set("consumers", "count", toml::Value::Integer(i64::from(v.sizes.consumers)));
        }
        if v.plan.loss > 0.0 {
            set("network", "loss", toml::Value::Float(v.plan.loss));
        }
        if v.plan.duplicate > 0.0 {
            set("network", "duplicate", toml::Value::Float(v.plan.duplicate));
        }
        let mut faults = match t.remove("faults") {
            Some(toml::Value::Array(a)) => a,
            _ => Vec::new(),
        };
        faults.extend(v.plan.fault_tables(&v.sizes));
        t.insert("faults".into(), toml::Value::Array(faults));
        t
    }

    /// The variant as scenario text (what `minimal.toml` holds, without its header).
    pub fn text(&self, v: &Variant) -> String {
        toml::to_string(&self.table(v)).unwrap_or_default()
    }

    /// Loads the variant through the normal scenario loader.
    pub fn scenario(&self, v: &Variant) -> Result<Scenario, ScenarioError> {
        load_str(&format!("{} (swarm run {})", self.file, v.run), &self.text(v), &[])
    }
}

/// What a run's failure is: the first failed invariant's name, or `event_limit`.
pub fn signature(out: &RunOutput) -> Option<String> {
    if let Some(i) = out.failed_invariants().next() {
        return Some(i.name.to_string());
    }
    out.hit_limit().then(|| "event_limit".to_string())
}

/// Whether `out` fails the way `signature` says.
pub fn fails_with(out: &RunOutput, signature: &str) -> bool {
    if signature == "event_limit" {
        return out.hit_limit();
    }
    out.failed_invariants().any(|i| i.name == signature)
}
