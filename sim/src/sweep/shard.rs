//! Shard files and merging them.
//!
//! A shard (`regsim sweep --shard I/N`) writes `shard-I-of-N.json`: the sweep's identity
//! ([`Meta`], whose hash covers the regsim version, the sweep file and the scenario file), the
//! sweep file's text (so a merge needs nothing else), and the records of its runs. `regsim
//! merge` reads shard files, checks that they are the N distinct shards of one sweep with
//! every run present once, and hands the records, in run order, to the same code that writes
//! an unsharded sweep's outputs, so both write the same bytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::exec::Shard;
use super::file::{self, Sweep};
use super::plan::{Meta, Plan};
use super::record::RunRecord;
use crate::scenario::ScenarioError;

/// The `format` of shard files this version reads and writes.
pub const FORMAT: &str = "regsim-sweep-shard/1";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFile {
    pub format: String,
    pub shard: u64,
    pub shards: u64,
    pub runs_total: u64,
    pub meta: Meta,
    pub sweep_text: String,
    pub runs: Vec<RunRecord>,
}

pub fn file_name(s: Shard) -> String {
    format!("shard-{}-of-{}.json", s.index, s.count)
}

/// The JSON of a shard's results.
pub fn shard_json(plan: &Plan, shard: Shard, records: &[RunRecord]) -> Result<String, String> {
    let file = ShardFile {
        format: FORMAT.into(),
        shard: shard.index,
        shards: shard.count,
        runs_total: plan.sweep.runs(),
        meta: plan.meta.clone(),
        sweep_text: plan.sweep.text.clone(),
        runs: records.to_vec(),
    };
    Ok(serde_json::to_string(&file).map_err(|e| e.to_string())? + "\n")
}

/// A sweep put back together from its shards.
pub struct Merged {
    pub sweep: Sweep,
    pub meta: Meta,
    pub records: Vec<RunRecord>,
    /// The shard files read, in shard order.
    pub files: Vec<PathBuf>,
}

fn bad(location: &Path, message: impl Into<String>) -> ScenarioError {
    ScenarioError { location: location.display().to_string(), key_path: None, message: message.into() }
}

fn is_shard_name(name: &str) -> bool {
    name.strip_prefix("shard-")
        .and_then(|r| r.strip_suffix(".json"))
        .and_then(|r| r.split_once("-of-"))
        .is_some_and(|(i, n)| i.parse::<u64>().is_ok() && n.parse::<u64>().is_ok())
}

/// The shard files named by `inputs`: files as given, folders by their `shard-I-of-N.json`.
fn shard_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|e| bad(input, format!("cannot read the folder: {e}")))?;
            let mut found: Vec<PathBuf> = Vec::new();
            for e in entries {
                let e = e.map_err(|e| bad(input, format!("cannot read the folder: {e}")))?;
                if e.file_name().to_str().is_some_and(is_shard_name) {
                    found.push(e.path());
                }
            }
            if found.is_empty() {
                return Err(bad(input, "no shard-I-of-N.json files in this folder (written by regsim sweep --shard)"));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    // The same file named twice (a folder and a file in it) counts once.
    let mut seen = Vec::new();
    out.retain(|p| {
        let key = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    Ok(out)
}

/// Reads and checks shard files (or folders of them) and puts the sweep back together.
pub fn merge(inputs: &[PathBuf]) -> Result<Merged, ScenarioError> {
    if inputs.is_empty() {
        return Err(bad(Path::new("merge"), "expected at least one shard folder or file"));
    }
    let paths = shard_files(inputs)?;
    let mut shards: Vec<(PathBuf, ShardFile)> = Vec::new();
    for p in paths {
        let text = crate::input::read(&p, "shard file", crate::input::MAX_SHARD_BYTES).map_err(|e| ScenarioError {
            location: e.location,
            key_path: None,
            message: e.message,
        })?;
        // The format first (any other fields), then the whole file straight from the text: a
        // `serde_json::Value` would sort the metrics of each run.
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
        }
        let head: Head = serde_json::from_str(&text).map_err(|e| bad(&p, format!("not a shard file (JSON: {e})")))?;
        let format = head.format.unwrap_or_else(|| "none".into());
        if format != FORMAT {
            return Err(bad(&p, format!("shard format {format:?}, this regsim reads {FORMAT:?}")));
        }
        let shard: ShardFile =
            serde_json::from_str(&text).map_err(|e| bad(&p, format!("not a valid shard file: {e}")))?;
        shards.push((p, shard));
    }
    let (first_path, first) = &shards[0];
    for (p, s) in &shards[1..] {
        if s.meta.hash != first.meta.hash {
            return Err(bad(
                p,
                format!(
                    "from another sweep than {}: sweep {} ({}, scenario {}, regsim {}, hash {}) vs sweep {} ({}, \
                     scenario {}, regsim {}, hash {}); shards must come from the same sweep file, scenario file and \
                     regsim version",
                    first_path.display(),
                    s.meta.sweep,
                    s.meta.sweep_file,
                    s.meta.scenario_file,
                    s.meta.regsim_version,
                    s.meta.hash,
                    first.meta.sweep,
                    first.meta.sweep_file,
                    first.meta.scenario_file,
                    first.meta.regsim_version,
                    first.meta.hash
                ),
            ));
        }
        if s.shards != first.shards || s.runs_total != first.runs_total {
            return Err(bad(
                p,
                format!(
                    "shard {} of {} does not fit with {} (shard {} of {}): all shards must be cut the same way",
                    s.shard,
                    s.shards,
                    first_path.display(),
                    first.shard,
                    first.shards
                ),
            ));
        }
    }
    let n = first.shards;
    let mut by_index: Vec<Option<&PathBuf>> = vec![None; n as usize];
    for (p, s) in &shards {
        let slot = by_index
            .get_mut(s.shard as usize)
            .ok_or_else(|| bad(p, format!("shard index {} is not below its shard count {n}", s.shard)))?;
        if let Some(other) = slot {
            return Err(bad(p, format!("shard {} of {n} is given twice: also {}", s.shard, other.display())));
        }
        *slot = Some(p);
    }
    let missing: Vec<String> =
        by_index.iter().enumerate().filter(|(_, p)| p.is_none()).map(|(i, _)| i.to_string()).collect();
    if !missing.is_empty() {
        return Err(bad(
            first_path,
            format!("shard(s) {} of {n} are missing; {} given", missing.join(", "), shards.len()),
        ));
    }
    let meta = first.meta.clone();
    if meta.sweep.is_empty() || !meta.sweep.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(bad(
            first_path,
            format!("meta.sweep: expected a sweep name of letters, digits, '-' and '_', got {:?}", meta.sweep),
        ));
    }
    let sweep = file::parse(&meta.sweep_file, &meta.sweep, &first.sweep_text)?;
    // The name picks the default output folder (reports/sweeps/<name>/); `parse` checked the
    // sweep's own (letters, digits, '-', '_'), so an edited `meta.sweep` cannot steer the writes.
    if sweep.name != meta.sweep {
        return Err(bad(
            first_path,
            format!("meta.sweep: {:?} is not the name of the sweep the shard carries ({:?})", meta.sweep, sweep.name),
        ));
    }
    if sweep.runs() != first.runs_total {
        return Err(bad(first_path, "the shard's run count does not match its sweep file"));
    }
    let mut records = Vec::with_capacity(first.runs_total as usize);
    shards.sort_by_key(|s| s.1.shard);
    let mut files = Vec::new();
    for (p, s) in shards {
        let shard = Shard::new(s.shard, s.shards).map_err(|e| bad(&p, e))?;
        let expected = shard.runs(s.runs_total);
        if s.runs.len() as u64 != expected || s.runs.iter().any(|r| !shard.contains(r.run) || r.run >= s.runs_total) {
            return Err(bad(&p, format!("expected the {expected} runs r with r % {} == {}", s.shards, s.shard)));
        }
        records.extend(s.runs);
        files.push(p);
    }
    records.sort_by_key(|r| r.run);
    if records.windows(2).any(|w| w[0].run == w[1].run) {
        return Err(bad(&files[0], "a run appears twice across the shards"));
    }
    Ok(Merged { sweep, meta, records, files })
}
