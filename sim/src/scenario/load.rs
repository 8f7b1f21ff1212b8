//! Loading a scenario: TOML text -> overrides -> typed `Scenario` -> validation, with errors
//! that name the file, line, column and key path and say what was expected.
//!
//! Overrides (`--set key.path=value`) are applied to the parsed table before typing, so they
//! pass through exactly the same checks as the file. A value that parses as TOML is used as
//! such (`10`, `0.5`, `true`, `"x"`, `{ dist = "constant", value = "1ms" }`); anything else is
//! taken as a string (`15s`). An error at an overridden key is reported against the `--set`
//! argument; any other error is located in the file by walking the key path through a
//! span-preserving parse of the original text.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::schema::Scenario;
use crate::protocol::monitoring::settings::RulesError;

/// A user error in a scenario or an override: exit code 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// `file:line:col` or `--set key=value` or just the file.
    pub location: String,
    pub key_path: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key_path {
            Some(p) if !p.is_empty() => write!(f, "{}: {p}: {}", self.location, self.message),
            _ => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// One `--set key.path=value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub raw: String,
    pub path: Vec<Seg>,
    pub value: toml::Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Parses `a.b[2].c` into segments.
pub fn parse_key_path(s: &str) -> Option<Vec<Seg>> {
    let mut out = Vec::new();
    for part in s.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return None;
        }
        out.push(Seg::Key(key.to_string()));
        while let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            out.push(Seg::Index(r[..close].parse().ok()?));
            rest = &r[close + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

pub(crate) fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

impl Override {
    pub fn parse(raw: &str) -> Result<Override, ScenarioError> {
        let err = |m: &str| ScenarioError { location: format!("--set {raw}"), key_path: None, message: m.to_string() };
        let (key, value) = raw.split_once('=').ok_or_else(|| err("expected key.path=value"))?;
        let path = parse_key_path(key.trim())
            .ok_or_else(|| err("expected a key path like registry.health.unhealthy_after or faults[0].at"))?;
        let text = value.trim();
        let value = match toml::from_str::<toml::Table>(&format!("v = {text}")) {
            Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(text.to_string())),
            Err(_) => toml::Value::String(text.to_string()),
        };
        Ok(Override { raw: raw.to_string(), path, value })
    }

    fn apply(&self, root: &mut toml::Value) -> Result<(), ScenarioError> {
        let err = |m: String| ScenarioError {
            location: format!("--set {}", self.raw),
            key_path: Some(path_string(&self.path)),
            message: m,
        };
        let mut cur: &mut toml::Value = root;
        for (i, seg) in self.path.iter().enumerate() {
            let last = i + 1 == self.path.len();
            let here = path_string(&self.path[..i]);
            cur = match (seg, cur) {
                (Seg::Key(k), toml::Value::Table(t)) => {
                    if last {
                        t.insert(k.clone(), self.value.clone());
                        return Ok(());
                    }
                    let next_is_index = matches!(self.path.get(i + 1), Some(Seg::Index(_)));
                    t.entry(k.clone()).or_insert_with(|| {
                        if next_is_index {
                            toml::Value::Array(Vec::new())
                        } else {
                            toml::Value::Table(toml::Table::new())
                        }
                    })
                }
                (Seg::Index(n), toml::Value::Array(a)) => {
                    let len = a.len();
                    let slot = a
                        .get_mut(*n)
                        .ok_or_else(|| err(format!("index {n} is out of range: {here} has {len} entries")))?;
                    if last {
                        *slot = self.value.clone();
                        return Ok(());
                    }
                    slot
                }
                (_, other) => return Err(err(format!("{here} is a {}, not a table or array", other.type_str()))),
            };
        }
        Ok(())
    }
}

/// Loads and validates a scenario file with overrides.
pub fn load(path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = read_input(path, "scenario")?;
    load_str(&file, &text, overrides)
}

/// Reads a TOML input file (scenario, sweep, swarm base) within
/// [`crate::input::MAX_INPUT_BYTES`], as a located error on failure.
pub fn read_input(path: &Path, what: &str) -> Result<String, ScenarioError> {
    crate::input::read(path, what, crate::input::MAX_INPUT_BYTES).map_err(|e| ScenarioError {
        location: e.location,
        key_path: None,
        message: e.message,
    })
}

/// Like [`load`], then `check` (what one driver cannot run, e.g. the madsim tier), whose
/// (key path, message) errors are located in the file or the `--set` like any other.
pub fn load_with(
    path: &Path,
    overrides: &[Override],
    check: impl Fn(&Scenario) -> Result<(), (String, String)>,
) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = read_input(path, "scenario")?;
    let scenario = load_str(&file, &text, overrides)?;
    check(&scenario).map_err(|(p, m)| locate(&file, &text, overrides, &p, m))?;
    Ok(scenario)
}

/// The file's TOML table with `overrides` applied (untyped, unvalidated: [`load_str`] checks
/// it). `regsim swarm` builds its variants on this table.
pub fn table_with_overrides(file: &str, text: &str, overrides: &[Override]) -> Result<toml::Table, ScenarioError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| syntax_error(file, text, &e))?;
    let mut root = toml::Value::Table(table);
    for o in overrides {
        o.apply(&mut root)?;
    }
    match root {
        toml::Value::Table(t) => Ok(t),
        _ => Err(ScenarioError { location: file.to_string(), key_path: None, message: "expected a table".into() }),
    }
}

/// Like [`load`], from text; `file` is only used in messages.
pub fn load_str(file: &str, text: &str, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
    let root = toml::Value::Table(table_with_overrides(file, text, overrides)?);
    let scenario: Scenario = serde_path_to_error::deserialize(root).map_err(|e| {
        let path = e.path().to_string();
        let message = plain_message(e.inner().message().trim());
        locate(file, text, overrides, if path == "." { "" } else { &path }, message)
    })?;
    let mut scenario = scenario;
    scenario.validate().map_err(|(p, m)| locate(file, text, overrides, &p, m))?;
    if let Some(m) = &mut scenario.monitoring {
        // Rule files are relative to the scenario file; errors point into the rule file.
        let base = Path::new(file).parent().unwrap_or(Path::new("."));
        m.load_rules(base).map_err(|e| match e {
            // A rule file that cannot be read: at its entry in the scenario.
            RulesError::Entry { key_path, message } => locate(file, text, overrides, &key_path, message),
            RulesError::File(e) => ScenarioError { location: e.location, key_path: e.key_path, message: e.message },
        })?;
    }
    super::build::check(&scenario).map_err(|(p, m)| locate(file, text, overrides, &p, m))?;
    scenario.warnings = scenario
        .threshold_warnings()
        .into_iter()
        .map(|(p, m)| locate(file, text, overrides, &p, m).to_string())
        .collect();
    Ok(scenario)
}

/// serde's words for an integer past i64, in a user's: TOML integers are 64-bit signed.
pub(crate) fn plain_message(m: &str) -> String {
    if m.contains("as i128") || m.contains("u64 value was too large") {
        "integer out of range: TOML integers are 64-bit signed (at most 9223372036854775807)".into()
    } else {
        m.to_string()
    }
}

/// A TOML syntax error, at its line and column, with the key path of the line's key when the
/// line has one (`[registry.health]` then `unhealthy_after = ...` gives
/// `registry.health.unhealthy_after`; the k-th `[[faults]]` gives `faults[k]`).
pub(crate) fn syntax_error(file: &str, text: &str, e: &toml::de::Error) -> ScenarioError {
    let offset = e.span().map_or(0, |s| s.start);
    let (line, col) = line_col(text, offset);
    let message = plain_message(e.message().trim());
    ScenarioError { location: format!("{file}:{line}:{col}"), key_path: key_path_at(text, line), message }
}

/// The key path of line `line` (1-based) from the table headers above it, if the line is a
/// `key = value` line with a bare or dotted key.
fn key_path_at(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    let mut arrays: BTreeMap<String, usize> = BTreeMap::new();
    let plain = |k: &str| {
        !k.is_empty()
            && k.split('.').all(|p| {
                !p.trim().is_empty() && p.trim().chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
    };
    for (n, l) in text.lines().enumerate() {
        let t = l.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()).filter(|h| plain(h)) {
            let h = h.replace(' ', "");
            let k = arrays.entry(h.clone()).and_modify(|k| *k += 1).or_insert(0);
            table = format!("{h}[{k}]");
        } else if let Some(h) = t.strip_prefix('[').and_then(|r| r.split(']').next()).filter(|h| plain(h)) {
            table = h.replace(' ', "");
        }
        if n + 1 == line {
            let key = t.split_once('=').map(|(k, _)| k.trim()).filter(|k| plain(k))?.replace(' ', "");
            return Some(if table.is_empty() { key } else { format!("{table}.{key}") });
        }
    }
    None
}

/// Turns (key path, message) into an error pointing at the `--set` or the file position.
fn locate(file: &str, text: &str, overrides: &[Override], path: &str, message: String) -> ScenarioError {
    let segs = parse_key_path(path).unwrap_or_default();
    // An unknown key: point at the key itself.
    let mut target = segs.clone();
    let unknown_key = message.starts_with("unknown field `");
    if let Some(field) = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next())
        && !matches!(segs.last(), Some(Seg::Key(k)) if k == field)
    {
        target.push(Seg::Key(field.to_string()));
    }
    let key_path = Some(path_string(&target));
    for o in overrides.iter().rev() {
        if target.starts_with(&o.path) || o.path.starts_with(&target) && !target.is_empty() {
            return ScenarioError { location: format!("--set {}", o.raw), key_path, message };
        }
    }
    let location = match span_of(text, &target, unknown_key) {
        Some(offset) => {
            let (line, col) = line_col(text, offset);
            format!("{file}:{line}:{col}")
        }
        None => file.to_string(),
    };
    ScenarioError { location, key_path, message }
}

/// Byte offset of the deepest existing item on `path` in `text`: the value of a leaf (its key
/// when `key_of_leaf`, e.g. for an unknown key), the key of a table.
pub(crate) fn span_of(text: &str, path: &[Seg], key_of_leaf: bool) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let mut table: &DeTable = doc.get_ref();
    let mut value: Option<&DeValue> = None;
    let mut best = Some(0usize);
    for seg in path {
        match (seg, value) {
            (Seg::Key(k), None) | (Seg::Key(k), Some(DeValue::Table(_))) => {
                if let Some(DeValue::Table(t)) = value {
                    table = t;
                }
                let Some((key, v)) = table.iter().find(|(key, _)| key.get_ref().as_ref() == k.as_str()) else {
                    return best;
                };
                let container = matches!(v.get_ref(), DeValue::Table(_) | DeValue::Array(_));
                best = Some(if container || key_of_leaf { key.span().start } else { v.span().start });
                value = Some(v.get_ref());
            }
            (Seg::Index(i), Some(DeValue::Array(a))) => {
                let Some(v) = a.get(*i) else {
                    return best;
                };
                best = Some(v.span().start);
                value = Some(v.get_ref());
            }
            _ => return best,
        }
    }
    best
}

/// 1-based line and column (in characters) of byte `offset`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
