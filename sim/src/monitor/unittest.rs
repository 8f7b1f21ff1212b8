//! Rule unit tests in promtool's format (`promtool test rules`), run on regsim's evaluator.
//!
//! Model (promtool 2.x `unittest.go`): a test file names `rule_files` (relative to the test
//! file), an `evaluation_interval` (default 1 m), optionally `group_eval_order`, and `tests`.
//! Each test group loads its `input_series` (expanding notation, [`super::series_notation`];
//! value i at `i × interval`, `interval` defaulting to the evaluation interval) into a fresh
//! store and fresh rule groups, then evaluates every group at 0, 1, 2, ... evaluation
//! intervals up to the largest `eval_time`, feeding each step only the samples up to that
//! time. An `alert_rule_test` at `eval_time` is checked against the evaluation at the last
//! step not after it: the *firing* alerts of the rules named `alertname`, labels (with
//! `alertname`) and annotations, compared as sorted lists. A `promql_expr_test` is an instant
//! query at `eval_time` after all evaluations, compared with `exp_samples` exactly. A rule
//! that fails during evaluation fails the test group at once, as in promtool.
//!
//! Differences: groups run in file order when `group_eval_order` is absent (promtool's order is
//! then unspecified); expressions outside regsim's subset and malformed files are bad input
//! (exit 2) rather than test failures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::alerting::AlertState;
use super::duration::{format_ms, parse_ms};
use super::eval::instant_query;
use super::group::{EngineConfig, Group};
use super::labels::Labels;
use super::query::Query;
use super::rulefile::{self, GroupSpec, LoadError, from_yaml, read_text};
use super::series_notation::{expand_values, parse_labels};
use super::store::Store;

/// Bound on evaluation steps per test group (largest eval_time / evaluation_interval).
pub const MAX_STEPS: i64 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule_files: Vec<Spanned<String>>,
    #[serde(default)]
    evaluation_interval: Option<Spanned<String>>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval: Option<Spanned<String>>,
    #[serde(default)]
    input_series: Vec<RawSeries>,
    #[serde(default)]
    alert_rule_test: Vec<RawAlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<RawExprTest>,
    // Accepted as promtool does; only used by templates regsim does not support.
    #[serde(default, rename = "external_labels")]
    _external_labels: BTreeMap<String, String>,
    #[serde(default, rename = "external_url")]
    _external_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeries {
    series: Spanned<String>,
    #[serde(default)]
    values: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertTest {
    #[serde(default)]
    eval_time: Option<Spanned<String>>,
    alertname: Spanned<String>,
    #[serde(default)]
    exp_alerts: Vec<RawExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExprTest {
    expr: Spanned<String>,
    #[serde(default)]
    eval_time: Option<Spanned<String>>,
    #[serde(default)]
    exp_samples: Vec<RawExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpSample {
    #[serde(default)]
    labels: Option<Spanned<String>>,
    value: f64,
}

/// The outcome of one test file: per test group, its failures (none: passed).
#[derive(Clone, Debug, PartialEq)]
pub struct FileOutcome {
    pub file: String,
    pub groups: Vec<GroupOutcome>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupOutcome {
    pub name: Option<String>,
    pub failures: Vec<String>,
}

impl FileOutcome {
    pub fn passed(&self) -> bool {
        self.groups.iter().all(|g| g.failures.is_empty())
    }

    /// promtool-style text: `Unit Testing:  FILE` then `  SUCCESS` or `  FAILED:` and reasons.
    pub fn render(&self) -> String {
        let mut out = format!("Unit Testing:  {}\n", self.file);
        if self.passed() {
            out.push_str("  SUCCESS\n\n");
            return out;
        }
        out.push_str("  FAILED:\n");
        for (i, g) in self.groups.iter().enumerate() {
            for f in &g.failures {
                let name = g.name.as_deref().map_or(format!("test {i}"), |n| format!("name: {n}"));
                out.push_str(&format!("    {name},\n{f}\n"));
            }
        }
        out.push('\n');
        out
    }
}

/// A test file, loaded and checked; run with [`TestFile::run`].
struct TestFile {
    file: String,
    eval_interval_ms: i64,
    groups: Vec<GroupSpec>,
    tests: Vec<TestGroup>,
}

/// (eval_time, alertname, expected (labels, annotations)).
type AlertTest = (i64, String, Vec<(Labels, Labels)>);
/// (eval_time, query, expected (labels, value)).
type ExprTest = (i64, Query, Vec<(Labels, f64)>);

struct TestGroup {
    name: Option<String>,
    series: Vec<(Labels, Vec<(i64, f64)>)>,
    alert_tests: Vec<AlertTest>,
    expr_tests: Vec<ExprTest>,
}

/// Loads, runs and reports one test file. Bad input (the file, its rule files, an expression
/// outside the subset) is a [`LoadError`].
pub fn run_file(path: &Path) -> Result<FileOutcome, LoadError> {
    let t = load(path)?;
    let groups = t.tests.iter().map(|g| GroupOutcome { name: g.name.clone(), failures: run_group(&t, g) }).collect();
    Ok(FileOutcome { file: t.file.clone(), groups })
}

fn load(path: &Path) -> Result<TestFile, LoadError> {
    let file = path.display().to_string();
    let raw: RawFile = from_yaml(&read_text(path)?, &file)?;
    let at = |loc: &serde_saphyr::Location, key: String, message: String| LoadError {
        location: format!("{file}:{}:{}", loc.line(), loc.column()),
        key_path: Some(key),
        message,
    };
    let eval_interval_ms = match &raw.evaluation_interval {
        Some(s) => parse_ms(&s.value).map_err(|e| at(&s.referenced, "evaluation_interval".into(), e))?,
        None => 60_000,
    };
    if eval_interval_ms <= 0 {
        let loc = raw.evaluation_interval.as_ref().map_or(serde_saphyr::Location::UNKNOWN, |s| s.referenced);
        return Err(at(&loc, "evaluation_interval".into(), "expected a positive duration".into()));
    }
    let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut groups = Vec::new();
    for (i, rf) in raw.rule_files.iter().enumerate() {
        if rf.value.contains(['*', '?', '[']) {
            return Err(at(
                &rf.referenced,
                format!("rule_files[{i}]"),
                "globs are not supported; list each file".into(),
            ));
        }
        let path = dir.join(&rf.value);
        // A file that cannot be read, at its entry here; an error inside it, in that file.
        let text = rulefile::read_text(&path).map_err(|e| {
            at(&rf.referenced, format!("rule_files[{i}]"), format!("rule file {}: {}", path.display(), e.message))
        })?;
        groups.extend(rulefile::parse(&text, &path.display().to_string())?.groups);
    }
    if !raw.group_eval_order.is_empty() {
        let mut ordered = Vec::new();
        for name in &raw.group_eval_order {
            let pos = groups.iter().position(|g| &g.name == name).ok_or_else(|| LoadError {
                location: file.clone(),
                key_path: Some("group_eval_order".into()),
                message: format!("group {name:?} is not in the rule files"),
            })?;
            ordered.push(groups.remove(pos));
        }
        if let Some(g) = groups.first() {
            return Err(LoadError {
                location: file.clone(),
                key_path: Some("group_eval_order".into()),
                message: format!("group {:?} is missing from group_eval_order", g.name),
            });
        }
        groups = ordered;
    }
    let mut tests = Vec::new();
    for (gi, g) in raw.tests.into_iter().enumerate() {
        tests.push(test_group(&file, gi, g, eval_interval_ms)?);
    }
    Ok(TestFile { file, eval_interval_ms, groups, tests })
}

fn test_group(file: &str, gi: usize, g: RawGroup, eval_interval_ms: i64) -> Result<TestGroup, LoadError> {
    let at = |loc: &serde_saphyr::Location, key: String, message: String| LoadError {
        location: format!("{file}:{}:{}", loc.line(), loc.column()),
        key_path: Some(format!("tests[{gi}].{key}")),
        message,
    };
    let duration = |d: &Option<Spanned<String>>, key: String, default: i64| match d {
        Some(s) => parse_ms(&s.value).map_err(|e| at(&s.referenced, key, e)),
        None => Ok(default),
    };
    // An eval_time the evaluation loop would need too many steps to reach, at its own line.
    let eval_time = |d: &Option<Spanned<String>>, key: String| -> Result<i64, LoadError> {
        let t = duration(d, key.clone(), 0)?;
        match d {
            Some(s) if t / eval_interval_ms > MAX_STEPS => Err(at(
                &s.referenced,
                key,
                format!(
                    "eval_time {} needs more than {MAX_STEPS} evaluations at evaluation_interval {}",
                    format_ms(t),
                    format_ms(eval_interval_ms)
                ),
            )),
            _ => Ok(t),
        }
    };
    let interval_ms = duration(&g.interval, "interval".into(), eval_interval_ms)?;
    if interval_ms <= 0 {
        let loc = g.interval.as_ref().map_or(serde_saphyr::Location::UNKNOWN, |s| s.referenced);
        return Err(at(&loc, "interval".into(), "expected a positive duration".into()));
    }
    let mut series = Vec::new();
    let mut total_values = 0u64;
    for (i, s) in g.input_series.iter().enumerate() {
        let labels = parse_labels(&s.series.value)
            .map_err(|e| at(&s.series.referenced, format!("input_series[{i}].series"), e))?;
        let values = match &s.values {
            Some(v) => {
                let values =
                    expand_values(&v.value).map_err(|e| at(&v.referenced, format!("input_series[{i}].values"), e))?;
                total_values += values.len() as u64;
                if total_values > super::series_notation::MAX_VALUES {
                    return Err(at(
                        &v.referenced,
                        format!("input_series[{i}].values"),
                        format!(
                            "the input series of this test group expand to more than {} values",
                            super::series_notation::MAX_VALUES
                        ),
                    ));
                }
                values
            }
            None => Vec::new(),
        };
        let samples = values.iter().enumerate().filter_map(|(k, v)| v.map(|v| (k as i64 * interval_ms, v))).collect();
        series.push((labels, samples));
    }
    let mut alert_tests = Vec::new();
    for (i, a) in g.alert_rule_test.iter().enumerate() {
        let t = eval_time(&a.eval_time, format!("alert_rule_test[{i}].eval_time"))?;
        if a.alertname.value.is_empty() {
            return Err(at(
                &a.alertname.referenced,
                format!("alert_rule_test[{i}].alertname"),
                "expected an alert name".into(),
            ));
        }
        let exp = a
            .exp_alerts
            .iter()
            .map(|e| {
                let mut l = Labels::from_pairs(e.exp_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                l.set("alertname".into(), a.alertname.value.clone());
                (l, Labels::from_pairs(e.exp_annotations.iter().map(|(k, v)| (k.clone(), v.clone()))))
            })
            .collect();
        alert_tests.push((t, a.alertname.value.clone(), exp));
    }
    let mut expr_tests = Vec::new();
    for (i, e) in g.promql_expr_test.iter().enumerate() {
        let t = eval_time(&e.eval_time, format!("promql_expr_test[{i}].eval_time"))?;
        let q = Query::parse(&e.expr.value).map_err(|m| {
            at(
                &e.expr.referenced,
                format!("promql_expr_test[{i}].expr"),
                format!("{m}, in expression {:?}", e.expr.value),
            )
        })?;
        let mut exp = Vec::new();
        for (k, s) in e.exp_samples.iter().enumerate() {
            let l = match &s.labels {
                Some(text) => parse_labels(&text.value)
                    .map_err(|m| at(&text.referenced, format!("promql_expr_test[{i}].exp_samples[{k}].labels"), m))?,
                None => Labels::empty(),
            };
            exp.push((l, s.value));
        }
        expr_tests.push((t, q, exp));
    }
    let max_t = alert_tests.iter().map(|a| a.0).chain(expr_tests.iter().map(|e| e.0)).max().unwrap_or(0);
    if max_t / eval_interval_ms > MAX_STEPS {
        return Err(LoadError {
            location: file.to_string(),
            key_path: Some(format!("tests[{gi}]")),
            message: format!("eval_time {} needs more than {MAX_STEPS} evaluations", format_ms(max_t)),
        });
    }
    Ok(TestGroup { name: g.name, series, alert_tests, expr_tests })
}

fn run_group(file: &TestFile, tg: &TestGroup) -> Vec<String> {
    let interval = file.eval_interval_ms;
    let mut store = Store::default();
    let mut groups: Vec<Group> = file.groups.iter().map(Group::new).collect();
    let cfg = EngineConfig { quarantine_after: 0 };
    let mut inputs: Vec<(i64, &Labels, f64)> =
        tg.series.iter().flat_map(|(l, s)| s.iter().map(move |&(t, v)| (t, l, v))).collect();
    inputs.sort_by_key(|x| x.0);
    let mut next_input = 0;
    let mut alert_times: Vec<i64> = tg.alert_tests.iter().map(|a| a.0).collect();
    alert_times.sort_unstable();
    alert_times.dedup();
    let mut curr = 0;
    let max_t = tg.alert_tests.iter().map(|a| a.0).chain(tg.expr_tests.iter().map(|e| e.0)).max().unwrap_or(0);
    let mut failures = Vec::new();
    let mut ts = 0;
    while ts <= max_t {
        while let Some(&(t, l, v)) = inputs.get(next_input).filter(|x| x.0 <= ts) {
            if let Err(e) = store.append(l, t, v) {
                failures.push(format!("    input series: {e}"));
            }
            next_input += 1;
        }
        let mut eval_errors = Vec::new();
        for g in &mut groups {
            g.eval(&mut store, ts, &cfg);
            for r in &g.rules {
                if let Some(e) = &r.last_error {
                    eval_errors.push(format!("    rule: {}, time: {}, err: {e}", r.spec.name, format_ms(ts)));
                }
            }
        }
        if !eval_errors.is_empty() {
            failures.extend(eval_errors);
            return failures;
        }
        while curr < alert_times.len() && ts <= alert_times[curr] && alert_times[curr] < ts + interval {
            let t = alert_times[curr];
            for (_, name, exp) in tg.alert_tests.iter().filter(|a| a.0 == t) {
                check_alerts(&groups, t, name, exp, &mut failures);
            }
            curr += 1;
        }
        ts += interval;
    }
    for (t, q, exp) in &tg.expr_tests {
        check_expr(&store, *t, q, exp, &mut failures);
    }
    failures
}

fn check_alerts(groups: &[Group], t: i64, name: &str, exp: &[(Labels, Labels)], failures: &mut Vec<String>) {
    let mut got: Vec<(Labels, Labels)> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| r.alerting.as_ref())
        .filter(|a| a.name == name)
        .flat_map(|a| a.alerts())
        .filter(|a| a.state == AlertState::Firing)
        .map(|a| (a.labels.clone(), Labels::from_pairs(a.annotations.iter().map(|(k, v)| (k.clone(), v.clone())))))
        .collect();
    got.sort();
    let mut exp = exp.to_vec();
    exp.sort();
    if got != exp {
        failures.push(format!(
            "    alertname: {name}, time: {},\n        exp:{}\n        got:{}",
            format_ms(t),
            alerts_text(&exp),
            alerts_text(&got)
        ));
    }
}

fn alerts_text(a: &[(Labels, Labels)]) -> String {
    let items: Vec<String> = a.iter().map(|(l, ann)| format!("{{labels: {l}, annotations: {ann}}}")).collect();
    format!("[{}]", items.join(", "))
}

fn check_expr(store: &Store, t: i64, q: &Query, exp: &[(Labels, f64)], failures: &mut Vec<String>) {
    let got = match instant_query(store, q, t) {
        Ok(v) => v.into_vector(),
        Err(e) => {
            failures.push(format!("    expr: {:?}, time: {}, err: {e}", q.text, format_ms(t)));
            return;
        }
    };
    let mut got: Vec<(Labels, f64)> = got.into_iter().map(|e| (e.labels, e.value)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut exp = exp.to_vec();
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let same = got.len() == exp.len() && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && g.1 == e.1);
    if !same {
        failures.push(format!(
            "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
            q.text,
            format_ms(t),
            samples_text(&exp),
            samples_text(&got)
        ));
    }
}

fn samples_text(s: &[(Labels, f64)]) -> String {
    let items: Vec<String> = s.iter().map(|(l, v)| format!("{l} {}", super::template::go_float(*v))).collect();
    if items.is_empty() { "(empty)".into() } else { items.join(", ") }
}
