//! Metric paths: which numbers of a run's `report.json` a sweep aggregates.
//!
//! A path walks the report as a `serde_json::Value`, so a sweep works with every measurement
//! family, present or future, without knowing its types: `detection.unhealthy.p99_s`,
//! `false_positives.count`, `convergence[0].converged_after_s`. Segments are keys separated by
//! dots; a key with dots or other punctuation is quoted (`load."bounded:c=1.25".overall.cv`);
//! `[n]` indexes an array. `*` (a key) and `[*]` (an index) are wildcards: a path with
//! wildcards stands for every concrete path it matches in a run, so `detection.*.p99_s` gives
//! one metric per detection stage and `load.*.overall.max_over_mean` one per balancer.
//!
//! A number is a metric value, `true`/`false` count as 1/0; anything else (absent, `null`, a
//! string, an object) is a missing value, counted per point. So is a duration statistic
//! (`*_s`) beside `"count": 0`: the report writes 0 for the mean or p99 of no samples (a
//! cluster that never elected a leader has no election time, not one of 0 s).

use std::fmt;

use serde_json::Value;

/// One step of a metric path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    AnyKey,
    AnyIndex,
}

/// A parsed metric path, possibly with wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricPath {
    /// As written in the sweep file.
    pub text: String,
    steps: Vec<Step>,
}

impl fmt::Display for MetricPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A key needs quotes when it holds anything a path gives a meaning to.
fn needs_quotes(k: &str) -> bool {
    k.is_empty() || k == "*" || k.chars().any(|c| matches!(c, '.' | '[' | ']' | '"') || c.is_whitespace())
}

fn push_key(out: &mut String, k: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    if needs_quotes(k) {
        out.push('"');
        out.push_str(k);
        out.push('"');
    } else {
        out.push_str(k);
    }
}

impl MetricPath {
    /// Parses `a.b[0]."c.d".*[*]`.
    pub fn parse(text: &str) -> Result<MetricPath, String> {
        let bad = |why: &str| {
            format!(
                "bad metric path {text:?}: {why} (expected keys separated by dots, e.g. detection.unhealthy.p99_s; \
                 quote keys with dots: load.\"bounded:c=1.25\".overall.cv; [n] indexes an array; * and [*] match any)"
            )
        };
        let mut steps = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad("it is empty"));
        }
        loop {
            if let Some(r) = rest.strip_prefix('"') {
                let close = r.find('"').ok_or_else(|| bad("a quote is not closed"))?;
                steps.push(Step::Key(r[..close].to_string()));
                rest = &r[close + 1..];
            } else {
                let end = rest.find(['.', '[', '"']).unwrap_or(rest.len());
                let key = rest[..end].trim();
                match key {
                    "" => return Err(bad("a key is empty")),
                    "*" => steps.push(Step::AnyKey),
                    k => steps.push(Step::Key(k.to_string())),
                }
                rest = &rest[end..];
            }
            while let Some(r) = rest.strip_prefix('[') {
                let close = r.find(']').ok_or_else(|| bad("a [ is not closed"))?;
                let inner = r[..close].trim();
                steps.push(if inner == "*" {
                    Step::AnyIndex
                } else {
                    Step::Index(inner.parse().map_err(|_| bad("an index is not a number or *"))?)
                });
                rest = &r[close + 1..];
            }
            if rest.is_empty() {
                break;
            }
            rest = rest.strip_prefix('.').ok_or_else(|| bad("expected a dot between keys"))?;
        }
        Ok(MetricPath { text: text.trim().to_string(), steps })
    }

    /// Whether the concrete path `name` (as [`MetricPath::resolve`] names it) is one of this
    /// path's matches.
    pub fn matches(&self, name: &str) -> bool {
        let Ok(concrete) = MetricPath::parse(name) else { return false };
        concrete.steps.len() == self.steps.len()
            && self.steps.iter().zip(&concrete.steps).all(|(p, c)| match (p, c) {
                (Step::AnyKey, Step::Key(_)) | (Step::AnyIndex, Step::Index(_)) => true,
                _ => p == c,
            })
    }

    pub fn has_wildcard(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::AnyKey | Step::AnyIndex))
    }

    /// The concrete metrics this path names in `report`, in order (object keys sorted, as
    /// `serde_json` keeps them), each with its value (None: missing). A path without
    /// wildcards always gives exactly one entry, named by its text; a path with wildcards
    /// gives one entry per match that exists in the report.
    pub fn resolve(&self, report: &Value) -> Vec<(String, Option<f64>)> {
        if !self.has_wildcard() {
            let value = self.lookup(report).and_then(number);
            let parent = MetricPath { text: String::new(), steps: self.steps[..self.steps.len() - 1].to_vec() };
            let empty = match (parent.lookup(report), self.steps.last()) {
                (Some(p), Some(Step::Key(k))) => empty_stats(p, k),
                _ => false,
            };
            return vec![(self.text.clone(), if empty { None } else { value })];
        }
        let mut out = Vec::new();
        walk(&self.steps, report, &mut String::new(), &mut out);
        out
    }

    fn lookup<'a>(&self, report: &'a Value) -> Option<&'a Value> {
        let mut v = report;
        for s in &self.steps {
            v = match s {
                Step::Key(k) => v.as_object()?.get(k)?,
                Step::Index(i) => v.as_array()?.get(*i)?,
                Step::AnyKey | Step::AnyIndex => return None,
            };
        }
        Some(v)
    }

    /// Ok when the path names at least one number (or `null`) in `report`; otherwise what is
    /// there instead, for the error message.
    pub fn check(&self, report: &Value) -> Result<(), String> {
        if self.has_wildcard() {
            if !self.resolve(report).is_empty() {
                return Ok(());
            }
            return Err(format!("`{}` matches nothing in the report{}", self.text, self.deepest(report)));
        }
        match self.lookup(report) {
            None => Err(format!("`{}` is not in the report{}", self.text, self.deepest(report))),
            Some(Value::Number(_) | Value::Bool(_) | Value::Null) => Ok(()),
            Some(Value::Object(m)) => Err(format!(
                "`{}` is an object, not a number; name one of its numbers: {}",
                self.text,
                m.keys().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            )),
            Some(Value::Array(a)) => {
                Err(format!("`{}` is an array of {} entries, not a number; index it: [0] or [*]", self.text, a.len()))
            }
            Some(Value::String(s)) => Err(format!("`{}` is the string {s:?}, not a number", self.text)),
        }
    }

    /// `: <deepest existing prefix> has <its keys>`, the hint for a path that leads nowhere.
    fn deepest(&self, report: &Value) -> String {
        let mut v = report;
        let mut prefix = String::new();
        for s in &self.steps {
            // A wildcard follows its first match, to show what the matches hold.
            let (label, next) = match s {
                Step::Key(k) => (Some(k.clone()), v.as_object().and_then(|m| m.get(k))),
                Step::Index(i) => (None, v.as_array().and_then(|a| a.get(*i))),
                Step::AnyKey => match v.as_object().and_then(|m| m.iter().next()) {
                    Some((k, n)) => (Some(k.clone()), Some(n)),
                    None => (None, None),
                },
                Step::AnyIndex => (None, v.as_array().and_then(|a| a.first())),
            };
            let Some(n) = next else { break };
            match (s, label) {
                (_, Some(k)) => push_key(&mut prefix, &k),
                (Step::Index(i), None) => prefix.push_str(&format!("[{i}]")),
                _ => prefix.push_str("[0]"),
            }
            v = n;
        }
        let place = if prefix.is_empty() { "the report".to_string() } else { format!("`{prefix}`") };
        match v {
            Value::Object(m) if m.is_empty() => format!("; {place} is an empty object in this run"),
            Value::Object(m) => {
                format!("; {place} has: {}", m.keys().map(|k| k.as_str()).collect::<Vec<_>>().join(", "))
            }
            Value::Array(a) => format!("; {place} is an array of {} entries", a.len()),
            other => format!("; {place} is {other}"),
        }
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// A duration statistic (`*_s`) of an object that counted no samples (`"count": 0`): the
/// report writes 0 there, which is no measurement.
/// How many samples the statistic `name` (a concrete metric) of `report` rests on: the
/// `count` beside a duration statistic (`*_s`, e.g. `elections.downtime.p99_s`); None for
/// other metrics (a count, a fraction of all requests) and names that are not in the report.
pub fn samples(report: &Value, name: &str) -> Option<u64> {
    let path = MetricPath::parse(name).ok()?;
    let (Some(Step::Key(k)), Some(parent_steps)) = (path.steps.last(), path.steps.len().checked_sub(1)) else {
        return None;
    };
    if !k.ends_with("_s") || path.has_wildcard() {
        return None;
    }
    let parent = MetricPath { text: String::new(), steps: path.steps[..parent_steps].to_vec() };
    parent.lookup(report)?.get("count")?.as_u64()
}

/// A statistic resting on fewer samples than this per run, or a `pNN` quantile resting on
/// fewer than 1 / (1 - q) (so that not one sample lies beyond it: the quantile is the largest
/// sample), is flagged thin in a sweep's tables and plots.
pub const THIN_SAMPLES: u64 = 10;

/// Samples per run a statistic needs not to be thin ([`THIN_SAMPLES`]; 100 for `p99_s`).
pub fn samples_needed(metric: &str) -> u64 {
    let last = metric.rsplit('.').next().unwrap_or(metric);
    let q = last.strip_prefix('p').and_then(|r| r.strip_suffix("_s")).and_then(|d| d.parse::<u32>().ok());
    match q {
        Some(q) if (1..100).contains(&q) => THIN_SAMPLES.max((100.0 / f64::from(100 - q)).ceil() as u64),
        _ => THIN_SAMPLES,
    }
}

fn empty_stats(parent: &Value, key: &str) -> bool {
    key.ends_with("_s") && parent.get("count").and_then(Value::as_u64) == Some(0)
}

fn walk(steps: &[Step], v: &Value, name: &mut String, out: &mut Vec<(String, Option<f64>)>) {
    let Some((first, rest)) = steps.split_first() else {
        out.push((name.clone(), number(v)));
        return;
    };
    let len = name.len();
    match first {
        Step::Key(k) => {
            if let Some(next) = v.as_object().and_then(|m| m.get(k)) {
                push_key(name, k);
                if rest.is_empty() && empty_stats(v, k) {
                    out.push((name.clone(), None));
                } else {
                    walk(rest, next, name, out);
                }
            }
        }
        Step::Index(i) => {
            if let Some(next) = v.as_array().and_then(|a| a.get(*i)) {
                name.push_str(&format!("[{i}]"));
                walk(rest, next, name, out);
            }
        }
        Step::AnyKey => {
            for (k, next) in v.as_object().into_iter().flatten() {
                push_key(name, k);
                if rest.is_empty() && empty_stats(v, k) {
                    out.push((name.clone(), None));
                } else {
                    walk(rest, next, name, out);
                }
                name.truncate(len);
            }
        }
        Step::AnyIndex => {
            for (i, next) in v.as_array().into_iter().flatten().enumerate() {
                name.push_str(&format!("[{i}]"));
                walk(rest, next, name, out);
                name.truncate(len);
            }
        }
    }
    name.truncate(len);
}

/// The unit of a metric, from its last key: `_s` seconds, `_ms` milliseconds, fractions and
/// ratios; `None` when the name says nothing.
pub fn unit(metric: &str) -> Option<&'static str> {
    let last = metric.rsplit('.').next().unwrap_or(metric).trim_matches('"');
    let last = last.split('[').next().unwrap_or(last);
    if last.ends_with("_s") {
        Some("s")
    } else if last.ends_with("_ms") {
        Some("ms")
    } else if last.ends_with("_ns") {
        Some("ns")
    } else if last.contains("fraction") || ["overall", "during_faults", "outside_faults", "gini"].contains(&last) {
        Some("fraction, 0..1")
    } else if last.contains("_over_") || last == "cv" {
        Some("ratio")
    } else if last == "count" || last.ends_with("_count") || last == "events" {
        Some("count")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statistics_say_how_many_samples_they_rest_on_and_when_that_is_thin() {
        let r = json!({"elections": {"downtime": {"count": 34, "p50_s": 0.2, "p99_s": 0.9}, "terms": 3},
                       "detection": {"unhealthy": {"count": 0, "p99_s": 0.0}}});
        assert_eq!(samples(&r, "elections.downtime.p99_s"), Some(34));
        assert_eq!(samples(&r, "detection.unhealthy.p99_s"), Some(0));
        assert_eq!(samples(&r, "elections.downtime.count"), None, "a count is not a statistic of samples");
        assert_eq!(samples(&r, "elections.terms"), None);
        assert_eq!(samples(&r, "elections.*.p99_s"), None);
        assert_eq!(samples(&r, "nowhere.p99_s"), None);
        assert_eq!(["x.p50_s", "x.p90_s", "x.p99_s", "x.mean_s", "x.max_s"].map(samples_needed), [10, 10, 100, 10, 10]);
    }

    fn report() -> Value {
        json!({
            "detection": {"unhealthy": {"p99_s": 15.5, "count": 3}, "deleted": {"p99_s": 31.0, "count": 3}},
            "false_positives": {"count": 0},
            "load": {"bounded:c=1.25": {"cv": 0.1}, "ring:k=160": {"cv": 0.2}},
            "convergence": [{"converged_after_s": 2.0}, {"converged_after_s": null}],
            "flag": true,
        })
    }

    #[test]
    fn plain_paths_resolve_or_are_missing() {
        let r = report();
        let get = |p: &str| MetricPath::parse(p).expect("parses").resolve(&r);
        assert_eq!(get("detection.unhealthy.p99_s"), vec![("detection.unhealthy.p99_s".into(), Some(15.5))]);
        assert_eq!(get("false_positives.count"), vec![("false_positives.count".into(), Some(0.0))]);
        assert_eq!(get("convergence[1].converged_after_s"), vec![("convergence[1].converged_after_s".into(), None)]);
        assert_eq!(get("load.\"bounded:c=1.25\".cv"), vec![("load.\"bounded:c=1.25\".cv".into(), Some(0.1))]);
        assert_eq!(get("flag"), vec![("flag".into(), Some(1.0))]);
        assert_eq!(get("nope.x"), vec![("nope.x".into(), None)]);
        let empty = json!({"elections": {"downtime": {"count": 0, "p99_s": 0.0}}});
        let p = MetricPath::parse("elections.downtime.p99_s").expect("parses");
        assert_eq!(p.resolve(&empty), vec![("elections.downtime.p99_s".into(), None)]);
        let p = MetricPath::parse("elections.*.p99_s").expect("parses");
        assert_eq!(p.resolve(&empty), vec![("elections.downtime.p99_s".into(), None)]);
        let p = MetricPath::parse("elections.downtime.count").expect("parses");
        assert_eq!(p.resolve(&empty), vec![("elections.downtime.count".into(), Some(0.0))]);
    }

    #[test]
    fn wildcards_expand_to_concrete_paths() {
        let r = report();
        let get = |p: &str| MetricPath::parse(p).expect("parses").resolve(&r);
        assert_eq!(
            get("detection.*.p99_s"),
            vec![("detection.deleted.p99_s".into(), Some(31.0)), ("detection.unhealthy.p99_s".into(), Some(15.5))]
        );
        assert_eq!(
            get("load.*.cv"),
            vec![("load.\"bounded:c=1.25\".cv".into(), Some(0.1)), ("load.ring:k=160.cv".into(), Some(0.2))]
        );
        assert_eq!(get("convergence[*].converged_after_s").len(), 2);
        assert!(get("nothing.*").is_empty());
        let p = MetricPath::parse("load.*.cv").expect("parses");
        assert!(p.matches("load.\"bounded:c=1.25\".cv") && p.matches("load.ring:k=160.cv"));
        assert!(!p.matches("load.ring.overall.cv") && !p.matches("detection.ring.cv"));
    }

    #[test]
    fn check_explains_what_is_there() {
        let r = report();
        let check = |p: &str| MetricPath::parse(p).expect("parses").check(&r);
        assert!(check("detection.unhealthy.p99_s").is_ok());
        let e = check("detection.unhealty.p99_s").expect_err("typo");
        assert!(e.contains("`detection` has: deleted, unhealthy"), "{e}");
        let e = check("detection.unhealthy").expect_err("object");
        assert!(e.contains("count, p99_s"), "{e}");
        let e = check("detection.*.p50_s").expect_err("no match");
        assert!(e.contains("matches nothing in the report; `detection.deleted` has: count, p99_s"), "{e}");
    }

    #[test]
    fn bad_paths_are_rejected() {
        for p in ["", "a..b", "a[", "a[x]", "a\"b\"", "\"a"] {
            assert!(MetricPath::parse(p).is_err(), "{p}");
        }
    }

    #[test]
    fn units_come_from_the_name() {
        assert_eq!(unit("detection.unhealthy.p99_s"), Some("s"));
        assert_eq!(unit("false_positives.count"), Some("count"));
        assert_eq!(unit("availability.overall.call.fraction"), Some("fraction, 0..1"));
        assert_eq!(unit("load.ring:k=160.overall.max_over_mean"), Some("ratio"));
        assert_eq!(unit("elections.split_votes"), None);
    }
}
