//! A sweep ready to run: the checked sweep file, its scenario loaded and validated at every
//! point (with the point's overrides, exactly as `regsim run --set` loads it), and the
//! identity (hash) that shards carry.
//!
//! Runs are numbered point-major: run `r` is point `r / seeds`, replicate `r % seeds`, and
//! replicate `k` has seed [`Sweep::seed`]`(k)` at every point.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::file::{self, Sweep};
use super::record::{Metrics, RunRecord};
use crate::run::run;
use crate::scenario::load::Override;
use crate::scenario::{Scenario, ScenarioError, load_str};

/// Where a sweep came from; stored in shard files and written into `sweep.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub sweep: String,
    pub sweep_file: String,
    pub scenario: String,
    pub scenario_file: String,
    pub regsim_version: String,
    /// xxh64 of the regsim version, the sweep file and the scenario file: shards of one sweep
    /// have the same hash.
    pub hash: String,
}

/// A checked sweep with one validated scenario per point.
pub struct Plan {
    pub sweep: Sweep,
    pub meta: Meta,
    pub scenario_text: String,
    scenarios: Vec<Scenario>,
}

/// `a/b/../c` -> `a/c`, without touching the file system (the path is only shown).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Hash identifying a sweep: regsim version, sweep file and scenario file.
pub fn sweep_hash(sweep_text: &str, scenario_text: &str) -> String {
    let mut bytes = Vec::new();
    for part in [env!("CARGO_PKG_VERSION"), sweep_text, scenario_text] {
        bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
        bytes.extend_from_slice(part.as_bytes());
    }
    format!("{:016x}", xxhash_rust::xxh64::xxh64(&bytes, 0))
}

/// Reads and checks a sweep file and its scenario, and validates every point.
pub fn prepare(sweep_path: &Path) -> Result<Plan, ScenarioError> {
    let text = crate::scenario::read_input(sweep_path, "sweep file")?;
    let stem = sweep_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let sweep = file::parse(&sweep_path.display().to_string(), &stem, &text)?;
    let dir = sweep_path.parent().unwrap_or(Path::new(""));
    let scenario_path = normalize(&dir.join(&sweep.spec.scenario));
    let scenario_text =
        crate::scenario::read_input(&scenario_path, "scenario").map_err(|e| sweep.error("scenario", e.message))?;
    let scenario_file = scenario_path.display().to_string();
    let points = sweep.points();
    let mut scenarios = Vec::with_capacity(points as usize);
    for p in 0..points {
        scenarios.push(load_point(&sweep, &scenario_file, &scenario_text, p)?);
    }
    let meta = Meta {
        sweep: sweep.name.clone(),
        sweep_file: sweep.file.clone(),
        scenario: scenarios[0].name.clone(),
        scenario_file,
        regsim_version: env!("CARGO_PKG_VERSION").to_string(),
        hash: sweep_hash(&text, &scenario_text),
    };
    Ok(Plan { sweep, meta, scenario_text, scenarios })
}

/// Loads the scenario with point `p`'s overrides; an error at an override points at the
/// sweep file entry it came from.
fn load_point(sweep: &Sweep, file: &str, text: &str, p: u64) -> Result<Scenario, ScenarioError> {
    let overrides = sweep.overrides(p);
    load_str(file, text, &overrides).map_err(|e| {
        let Some(k) = overrides.iter().position(|o| e.location == format!("--set {}", o.raw)) else {
            return ScenarioError { message: format!("{} (at sweep point {p})", e.message), ..e };
        };
        let origin = if k < sweep.set.len() {
            format!("set[{k}]")
        } else {
            let mut k = k - sweep.set.len();
            let values = sweep.point_values(p);
            let mut origin = String::new();
            for (i, param) in sweep.params.iter().enumerate() {
                if k < param.keys.len() {
                    origin = format!("params[{i}].values[{}]", values[i]);
                    break;
                }
                k -= param.keys.len();
            }
            origin
        };
        let key = e.key_path.clone().unwrap_or_default();
        sweep.error(&origin, format!("{} in {file}: {key}: {}", overrides[k].raw, e.message))
    })
}

impl Plan {
    pub fn scenario(&self, point: u64) -> &Scenario {
        &self.scenarios[point as usize]
    }

    /// Runs run `r`; also returns the report as JSON (None if the run could not start).
    pub fn simulate(&self, r: u64) -> (RunRecord, Option<Value>) {
        let seeds = self.sweep.spec.seeds;
        let (point, k) = (r / seeds, r % seeds);
        let seed = self.sweep.seed(k);
        let mut rec = RunRecord {
            run: r,
            point,
            seed,
            digest: String::new(),
            outcome: "error".into(),
            events: 0,
            failed_invariants: Vec::new(),
            error: None,
            metrics: Metrics::default(),
            samples: Default::default(),
        };
        let out = match run(self.scenario(point), seed) {
            Ok(out) => out,
            Err(e) => {
                rec.error = Some(e);
                return (rec, None);
            }
        };
        let value = match serde_json::to_value(&out.report) {
            Ok(v) => v,
            Err(e) => {
                rec.error = Some(format!("cannot serialize the report: {e}"));
                return (rec, None);
            }
        };
        rec.digest = out.report.digest.clone();
        rec.outcome = value.get("outcome").and_then(Value::as_str).unwrap_or("unknown").to_string();
        rec.events = out.report.events;
        rec.failed_invariants = out
            .failed_invariants()
            .map(|i| {
                let at = i.first_violation_s.map_or(String::new(), |t| format!(" at {t:.3} s"));
                format!("{}{at}: {}", i.name, i.detail)
            })
            .collect();
        let mut metrics: Vec<(String, Option<f64>)> = Vec::new();
        for (name, v) in self.sweep.metrics.iter().flat_map(|m| m.resolve(&value)) {
            if !metrics.iter().any(|(n, _)| *n == name) {
                metrics.push((name, v));
            }
        }
        rec.samples = metrics
            .iter()
            .filter(|(_, v)| v.is_some())
            .filter_map(|(name, _)| Some((name.clone(), super::metric::samples(&value, name)?)))
            .collect();
        rec.metrics = Metrics(metrics);
        (rec, Some(value))
    }
}

/// The command that reproduces one run of a sweep.
pub fn repro(sweep: &Sweep, meta: &Meta, point: u64, seed: u64) -> String {
    let mut cmd = format!("regsim run {} --seed {seed}", shell_quote(&meta.scenario_file));
    let overrides: Vec<Override> = sweep.overrides(point);
    for o in overrides {
        cmd.push_str(" --set ");
        cmd.push_str(&shell_quote(&o.raw));
    }
    cmd
}

/// Quotes for a POSIX shell when needed.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_lexically() {
        assert_eq!(normalize(Path::new("scenarios/sweeps/../nacos.toml")), PathBuf::from("scenarios/nacos.toml"));
        assert_eq!(normalize(Path::new("./a/./b.toml")), PathBuf::from("a/b.toml"));
        assert_eq!(normalize(Path::new("../x.toml")), PathBuf::from("../x.toml"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("network.loss=0.01"), "network.loss=0.01");
        assert_eq!(shell_quote("consumers.balancers=[\"ring\"]"), "'consumers.balancers=[\"ring\"]'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
