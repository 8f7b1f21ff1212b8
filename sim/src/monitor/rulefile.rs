//! Prometheus rule files: parsing and validation, with errors that point into the file.
//!
//! Model: the YAML format of Prometheus's `rulefmt` (2.x): `groups` of `name`, optional
//! `interval` and `limit`, and `rules`, each either an alerting rule (`alert`, `expr`, `for`,
//! `keep_firing_for`, `labels`, `annotations`) or a recording rule (`record`, `expr`,
//! `labels`). Unknown keys are rejected (promtool does the same), and so is everything
//! `rulefmt` rejects (both or neither of `alert`/`record`, `for` on a recording rule, a
//! repeated group name, bad metric or label names). On top of that, each `expr` must lie in
//! regsim's PromQL subset ([`super::query`]) and each template in the supported part
//! ([`super::template`]): a rule the simulator could not evaluate is refused when the file
//! is loaded, with `file:line:column`, the key path (`groups[0].rules[2].expr`), the
//! expression and what was expected, never discovered during a run.
//!
//! YAML is read with `serde-saphyr` (maintained, pure Rust, panic-free, spans on values).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::duration::parse_ms;
use super::labels::{valid_label_name, valid_metric_name};
use super::query::Query;
use super::template;

/// Bound on a rule file's size (bytes): rule files are hand-written; this keeps a wrong path
/// (a log file, a dump) from being read whole.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// A load error: where, which key, what was expected. Exit code 2 in the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// `file:line:column`, or just the file.
    pub location: String,
    pub key_path: Option<String>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key_path {
            Some(p) if !p.is_empty() => write!(f, "{}: {p}: {}", self.location, self.message),
            _ => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// A loaded rule file.
#[derive(Clone, Debug)]
pub struct RuleFile {
    pub file: String,
    pub groups: Vec<GroupSpec>,
}

/// One rule group as written.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub file: String,
    pub name: String,
    /// The group's own `interval`, if set (else the server's evaluation interval).
    pub interval_ms: Option<i64>,
    /// `limit`: at most this many alerts / series per rule (0: no limit).
    pub limit: usize,
    pub rules: Vec<RuleSpec>,
}

/// One rule as written.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// The alert name or the recorded metric name.
    pub name: String,
    pub kind: RuleKind,
    pub query: Query,
    pub labels: BTreeMap<String, String>,
    /// Line of the rule's `expr` in its file (1-based).
    pub line: usize,
}

#[derive(Clone, Debug)]
pub enum RuleKind {
    Alert { for_ms: i64, keep_firing_for_ms: i64, annotations: BTreeMap<String, String> },
    Record,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    #[serde(default)]
    interval: Option<Spanned<String>>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<Spanned<String>>,
    #[serde(default)]
    alert: Option<Spanned<String>>,
    #[serde(default)]
    expr: Option<Spanned<String>>,
    #[serde(default, rename = "for")]
    for_: Option<Spanned<String>>,
    #[serde(default)]
    keep_firing_for: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Reads and validates a rule file.
pub fn load(path: &Path) -> Result<RuleFile, LoadError> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    parse(&text, &file)
}

/// Reads a YAML input file with the size bound, as a load error on failure.
pub fn read_text(path: &Path) -> Result<String, LoadError> {
    crate::input::read(path, "file", MAX_FILE_BYTES).map_err(|e| LoadError {
        location: e.location,
        key_path: None,
        message: e.message,
    })
}

/// Deserializes YAML `text` into `T`, mapping errors to `file:line:column`, key path and message.
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, LoadError> {
    let options = serde_saphyr::options! { with_snippet: false };
    // The closure must return the YAML crate's own error (else it goes on to complain about the
    // rest of the input), so the key path is carried out beside it.
    let mut path: Option<String> = None;
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = Some(e.path().to_string());
            e.into_inner()
        })
    });
    let inner = match result {
        Ok(v) => return Ok(v),
        Err(inner) => inner,
    };
    let location = match inner.location() {
        Some(l) if l.line() > 0 => format!("{file}:{}:{}", l.line(), l.column()),
        _ => file.to_string(),
    };
    let message = first_line(&inner.to_string());
    Err(LoadError { location, key_path: path.map(|p| clean_path(&p)).filter(|p| p != "." && !p.is_empty()), message })
}

/// Removes the `value` segments the `Spanned` wrapper adds to key paths
/// (`groups[0].rules[1].value.fro` -> `groups[0].rules[1].fro`); a real `value` key
/// (`exp_samples[0].value` in test files) is kept.
fn clean_path(p: &str) -> String {
    let mut out = p.replace(".value.", ".");
    if let Some(head) = out.strip_suffix(".value")
        && !head.rsplit('.').next().is_some_and(|last| last.starts_with("exp_samples["))
    {
        out = head.to_string();
    }
    out
}

/// The message without a trailing location ("at line 3 column 5") the YAML crate may add.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    match line.rfind(" at line ") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}

/// Parses and validates rule-file `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<RuleFile, LoadError> {
    let raw: RawFile = from_yaml(text, file)?;
    let mut names = BTreeSet::new();
    let mut groups = Vec::new();
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let at = |s: &serde_saphyr::Location, key: &str, message: String| LoadError {
            location: format!("{file}:{}:{}", s.line(), s.column()),
            key_path: Some(format!("groups[{gi}]{key}")),
            message,
        };
        let name = g.name.value.clone();
        if name.is_empty() {
            return Err(at(&g.name.referenced, ".name", "expected a non-empty group name".into()));
        }
        if !names.insert(name.clone()) {
            return Err(at(&g.name.referenced, ".name", format!("group name {name:?} is repeated in the same file")));
        }
        let interval_ms = match &g.interval {
            Some(i) => Some(parse_ms(&i.value).map_err(|e| at(&i.referenced, ".interval", e))?),
            None => None,
        };
        let mut rules = Vec::new();
        for (ri, r) in g.rules.into_iter().enumerate() {
            rules.push(rule(file, gi, ri, r)?);
        }
        groups.push(GroupSpec { file: file.to_string(), name, interval_ms, limit: g.limit.unwrap_or(0), rules });
    }
    Ok(RuleFile { file: file.to_string(), groups })
}

fn rule(file: &str, gi: usize, ri: usize, r: Spanned<RawRule>) -> Result<RuleSpec, LoadError> {
    let path = format!("groups[{gi}].rules[{ri}]");
    let err = |loc: &serde_saphyr::Location, key: &str, message: String| LoadError {
        location: format!("{file}:{}:{}", loc.line(), loc.column()),
        key_path: Some(format!("{path}{key}")),
        message,
    };
    let start = r.referenced;
    let r = r.value;
    let (name, is_alert) = match (&r.alert, &r.record) {
        (Some(a), None) => (a, true),
        (None, Some(rec)) => (rec, false),
        (Some(_), Some(_)) => return Err(err(&start, "", "only one of 'record' and 'alert' must be set".into())),
        (None, None) => return Err(err(&start, "", "one of 'record' or 'alert' must be set".into())),
    };
    let key = if is_alert { ".alert" } else { ".record" };
    if name.value.is_empty() {
        return Err(err(&name.referenced, key, "expected a non-empty name".into()));
    }
    if !is_alert && !valid_metric_name(&name.value) {
        return Err(err(&name.referenced, key, format!("invalid recording rule name {:?}", name.value)));
    }
    let Some(expr) = &r.expr else { return Err(err(&start, ".expr", "field 'expr' must be set in rule".into())) };
    if expr.value.trim().is_empty() {
        return Err(err(&expr.referenced, ".expr", "field 'expr' must be set in rule".into()));
    }
    let query = Query::parse(&expr.value)
        .map_err(|e| err(&expr.referenced, ".expr", format!("{e}, in expression {:?}", expr.value.trim())))?;
    for (k, v) in &r.labels {
        if !valid_label_name(k) || k == "__name__" {
            return Err(err(&start, ".labels", format!("invalid label name {k:?}")));
        }
        template::check(v).map_err(|e| err(&start, &format!(".labels.{k}"), e))?;
    }
    for (k, v) in &r.annotations {
        if !valid_label_name(k) {
            return Err(err(&start, ".annotations", format!("invalid annotation name {k:?}")));
        }
        template::check(v).map_err(|e| err(&start, &format!(".annotations.{k}"), e))?;
    }
    let duration = |d: &Option<Spanned<String>>, key: &str| -> Result<i64, LoadError> {
        match d {
            Some(s) => parse_ms(&s.value).map_err(|e| err(&s.referenced, key, e)),
            None => Ok(0),
        }
    };
    let kind = if is_alert {
        RuleKind::Alert {
            for_ms: duration(&r.for_, ".for")?,
            keep_firing_for_ms: duration(&r.keep_firing_for, ".keep_firing_for")?,
            annotations: r.annotations.clone(),
        }
    } else {
        for (value, key) in [(r.for_.is_some(), "for"), (r.keep_firing_for.is_some(), "keep_firing_for")] {
            if value {
                return Err(err(&start, &format!(".{key}"), format!("invalid field '{key}' in recording rule")));
            }
        }
        if !r.annotations.is_empty() {
            return Err(err(&start, ".annotations", "invalid field 'annotations' in recording rule".into()));
        }
        RuleKind::Record
    };
    Ok(RuleSpec { name: name.value.clone(), kind, query, labels: r.labels, line: expr.referenced.line() as usize })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "groups:
  - name: instances
    interval: 30s
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 1m
        keep_firing_for: 2m
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.instance }} is down'
      - record: job:up:sum
        expr: sum by (job) (up)
";

    #[test]
    fn loads_a_prometheus_rule_file() {
        let f = parse(GOOD, "r.yml").expect("valid");
        assert_eq!(f.groups.len(), 1);
        let g = &f.groups[0];
        assert_eq!((g.name.as_str(), g.interval_ms, g.rules.len()), ("instances", Some(30_000), 2));
        assert!(matches!(g.rules[0].kind, RuleKind::Alert { for_ms: 60_000, keep_firing_for_ms: 120_000, .. }));
        assert_eq!(g.rules[0].line, 6);
        assert_eq!(g.rules[1].name, "job:up:sum");
    }

    fn error(text: &str) -> String {
        parse(text, "r.yml").expect_err("invalid").to_string()
    }

    #[test]
    fn errors_name_file_line_key_and_expectation() {
        let e = error(&GOOD.replace("up == 0", "topk(1, up)"));
        assert!(e.starts_with("r.yml:6:15: groups[0].rules[0].expr: aggregation topk"), "{e}");
        assert!(e.contains("in expression \"topk(1, up)\""), "{e}");
        let e = error(&GOOD.replace("for: 1m", "for: 1 minute"));
        assert!(e.starts_with("r.yml:7:14: groups[0].rules[0].for: expected a duration"), "{e}");
        let e = error(&GOOD.replace("labels:", "lables:"));
        assert!(e.starts_with("r.yml:9:"), "{e}");
        assert!(e.contains("groups[0].rules[0].lables: unknown field `lables`"), "unknown key named: {e}");
        let e = error(&GOOD.replace("      - record: job:up:sum\n", "      - record: job:up:sum\n        for: 1m\n"));
        assert!(e.contains("groups[0].rules[1].for: invalid field 'for' in recording rule"), "{e}");
        let e = error(&GOOD.replace("{{ $labels.instance }}", "{{ $value | humanize }}"));
        assert!(e.contains("groups[0].rules[0].annotations.summary: template action"), "{e}");
        let e = error("groups:\n  - name: a\n    rules: []\n  - name: a\n");
        assert!(e.starts_with("r.yml:4:11: groups[1].name: group name \"a\" is repeated"), "{e}");
        let e = error("groups:\n  - name: a\n    rules:\n      - expr: up\n");
        assert!(e.contains("one of 'record' or 'alert' must be set"), "{e}");
        let e = error("groups: [");
        assert!(e.starts_with("r.yml:"), "{e}");
    }
}
