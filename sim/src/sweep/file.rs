//! The sweep file (TOML, unknown keys rejected): the scenario to sweep, the parameters and
//! their values, seeds, metrics and plots. Errors name the file, line, column and key path,
//! through the same machinery as scenario files.
//!
//! ```toml
//! name = "detection"                  # optional: names reports/sweeps/<name>/ (default: file stem)
//! scenario = "../nacos-crash.toml"    # relative to this file
//! seed = 1                            # the sweep seed; run seeds derive from it
//! seeds = 5                           # runs (seeds) per point
//! set = ["duration=300s"]             # fixed overrides for every run, as --set
//! metrics = ["detection.unhealthy.p99_s", "false_positives.count", "detection.*.p50_s"]
//!
//! [[params]]                          # every combination of the values (Cartesian product,
//! key = "instances.beat_interval"     # first parameter slowest), each value as --set key=value
//! values = ["1s", "2s", "5s"]
//!
//! [[params]]                          # several keys swept together: one value is an array
//! name = "unhealthy_after"            # (optional) what plots and tables call it
//! keys = ["registry.health.unhealthy_after", "registry.health.delete_after"]
//! values = [["10s", "20s"], ["15s", "30s"]]
//!
//! [[plots]]
//! name = "unhealthy-p99"              # the SVG's file name (default: derived from y and x)
//! x = "instances.beat_interval"       # a parameter
//! y = "detection.unhealthy.p99_s"     # a metric (or a list of them) from `metrics`
//! series = "network.loss"             # optional: one line per value of this parameter
//! where = { unhealthy_after = "15s" } # optional: fix other parameters; each unfixed one
//! title = "..."                       #   gives one SVG per value (file name suffix)
//! y_label = "..."                     # default: the metric and its unit
//! log_x = false
//! log_y = false
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::metric::MetricPath;
use crate::scenario::ScenarioError;
use crate::scenario::load::{Override, Seg, line_col, parse_key_path, span_of};
use regsim_kernel::time::parse_duration;

/// At most this many runs (points × seeds) in one sweep.
pub const MAX_RUNS: u64 = 100_000;
pub const MAX_PARAMS: usize = 16;
pub const MAX_METRICS: usize = 256;
pub const MAX_PLOTS: usize = 256;
/// At most this many SVGs per plot (one per combination of the parameters it neither draws
/// nor fixes).
pub const MAX_FACETS: u64 = 64;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub scenario: String,
    #[serde(default = "one")]
    pub seed: u64,
    pub seeds: u64,
    #[serde(default)]
    pub set: Vec<String>,
    #[serde(default)]
    pub params: Vec<ParamSpec>,
    pub metrics: Vec<String>,
    #[serde(default)]
    pub plots: Vec<PlotSpec>,
}

fn one() -> u64 {
    1
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    pub values: Vec<toml::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub x: String,
    pub y: toml::Value,
    #[serde(default)]
    pub series: Option<String>,
    #[serde(default, rename = "where")]
    pub fixed: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub y_label: Option<String>,
    #[serde(default)]
    pub log_x: bool,
    #[serde(default)]
    pub log_y: bool,
}

/// One swept parameter, checked.
#[derive(Clone, Debug)]
pub struct Param {
    /// What plots, tables and CSV columns call it.
    pub name: String,
    pub keys: Vec<Vec<Seg>>,
    pub key_texts: Vec<String>,
    pub values: Vec<toml::Value>,
    /// `value_text` of each value (for a multi-key parameter: of its first component).
    pub labels: Vec<String>,
    /// Each value on a numeric axis (numbers as such, durations in seconds), if all have one.
    pub numeric: Option<Vec<f64>>,
}

impl Param {
    /// Value `j` for people: `5s`, or `10s / 20s` for a multi-key parameter.
    pub fn display(&self, j: usize) -> String {
        match &self.values[j] {
            toml::Value::Array(a) if self.keys.len() > 1 => a.iter().map(value_text).collect::<Vec<_>>().join(" / "),
            v => value_text(v),
        }
    }

    /// The `--set` overrides of value `j`.
    pub fn overrides(&self, j: usize) -> Vec<Override> {
        let parts: Vec<&toml::Value> = match &self.values[j] {
            toml::Value::Array(a) if self.keys.len() > 1 => a.iter().collect(),
            v => vec![v],
        };
        self.keys
            .iter()
            .zip(&self.key_texts)
            .zip(parts)
            .map(|((path, key), v)| Override {
                raw: format!("{key}={}", value_text(v)),
                path: path.clone(),
                value: v.clone(),
            })
            .collect()
    }
}

/// One plot, checked.
#[derive(Clone, Debug)]
pub struct Plot {
    pub name: String,
    pub x: usize,
    pub series: Option<usize>,
    /// Metrics drawn: listed in `Sweep::metrics` or matched by one listed there; a wildcard
    /// draws every concrete metric it matches.
    pub y: Vec<MetricPath>,
    /// (parameter, value index) pairs fixed by `where`.
    pub fixed: Vec<(usize, usize)>,
    pub title: Option<String>,
    pub y_label: Option<String>,
    pub log_x: bool,
    pub log_y: bool,
}

/// A checked sweep file.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub name: String,
    /// The file as given (messages, shard files) and its text (hashed into shards).
    pub file: String,
    pub text: String,
    pub spec: SweepSpec,
    pub set: Vec<Override>,
    pub params: Vec<Param>,
    pub metrics: Vec<MetricPath>,
    pub plots: Vec<Plot>,
}

impl Sweep {
    pub fn points(&self) -> u64 {
        self.params.iter().map(|p| p.values.len() as u64).product()
    }

    pub fn runs(&self) -> u64 {
        self.points() * self.spec.seeds
    }

    /// Value index of every parameter at point `p` (the last parameter varies fastest).
    pub fn point_values(&self, p: u64) -> Vec<usize> {
        let mut rest = p;
        let mut out = vec![0; self.params.len()];
        for (i, param) in self.params.iter().enumerate().rev() {
            let n = param.values.len() as u64;
            out[i] = (rest % n) as usize;
            rest /= n;
        }
        out
    }

    /// The fixed overrides and the parameter values of point `p`, in file order.
    pub fn overrides(&self, p: u64) -> Vec<Override> {
        let mut out = self.set.clone();
        for (param, j) in self.params.iter().zip(self.point_values(p)) {
            out.extend(param.overrides(j));
        }
        out
    }

    /// Seed of replicate `k` (the same at every point: common random numbers, so points differ
    /// by their parameters, not by luck): the k-th output of SplitMix64 seeded with the sweep
    /// seed, cut to 53 bits so that JSON readers and spreadsheets hold it exactly.
    pub fn seed(&self, k: u64) -> u64 {
        regsim_kernel::rng::mix64(self.spec.seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15))) >> 11
    }

    /// Locates an error at `path` (a key path of the sweep file) in the file.
    pub fn error(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        locate(&self.file, &self.text, path, message.into())
    }
}

/// A TOML value as a `--set` value: bare when it reads back the same (`5s`, `0.01`),
/// TOML otherwise (`"10"`, `["ring"]`).
pub fn value_text(v: &toml::Value) -> String {
    if let toml::Value::String(s) = v
        && let Ok(o) = Override::parse(&format!("x={s}"))
        && o.value == *v
        && s.trim() == s
    {
        return s.clone();
    }
    v.to_string()
}

fn numeric(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) if f.is_finite() => Some(*f),
        toml::Value::String(s) => parse_duration(s).ok().map(|d| d.as_secs_f64()),
        _ => None,
    }
}

fn locate(file: &str, text: &str, path: &str, message: String) -> ScenarioError {
    let segs = parse_key_path(path).unwrap_or_default();
    let location = match span_of(text, &segs, message.starts_with("unknown field `")) {
        Some(offset) => {
            let (line, col) = line_col(text, offset);
            format!("{file}:{line}:{col}")
        }
        None => file.to_string(),
    };
    ScenarioError { location, key_path: Some(path.to_string()), message }
}

/// Parses and checks a sweep file's text (`file` names it in messages). Does not read the
/// scenario: see `plan::prepare`.
pub fn parse(file: &str, stem: &str, text: &str) -> Result<Sweep, ScenarioError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| crate::scenario::load::syntax_error(file, text, &e))?;
    let spec: SweepSpec = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let mut path = e.path().to_string();
        let message = crate::scenario::load::plain_message(e.inner().message().trim());
        if path == "." {
            path.clear();
        }
        if let Some(field) = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next())
            && !(path == field || path.ends_with(&format!(".{field}")))
        {
            path = if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
        }
        locate(file, text, &path, message)
    })?;
    let mut sweep = Sweep {
        name: spec.name.clone().unwrap_or_else(|| stem.to_string()),
        file: file.to_string(),
        text: text.to_string(),
        spec,
        set: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
        plots: Vec::new(),
    };
    check(&mut sweep)?;
    Ok(sweep)
}

fn check(s: &mut Sweep) -> Result<(), ScenarioError> {
    if s.name.is_empty() || !s.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(s.error("name", "expected a name of letters, digits, '-' and '_' (it names the output folder)"));
    }
    if s.spec.seeds == 0 {
        return Err(s.error("seeds", "expected at least 1 seed per point"));
    }
    for (i, raw) in s.spec.set.iter().enumerate() {
        let o = Override::parse(raw).map_err(|e| s.error(&format!("set[{i}]"), e.message))?;
        s.set.push(o);
    }
    check_params(s)?;
    let runs = s.params.iter().try_fold(s.spec.seeds, |acc, p| acc.checked_mul(p.values.len() as u64));
    if runs.is_none_or(|r| r > MAX_RUNS) {
        let points: String = s.params.iter().map(|p| format!("{} × ", p.values.len())).collect();
        return Err(s.error(
            "seeds",
            format!(
                "{points}{} seeds is more than {MAX_RUNS} runs; use fewer values or seeds, or split the sweep",
                s.spec.seeds
            ),
        ));
    }
    if s.spec.metrics.is_empty() || s.spec.metrics.len() > MAX_METRICS {
        return Err(s.error("metrics", format!("expected 1 to {MAX_METRICS} report.json paths")));
    }
    for (i, m) in s.spec.metrics.iter().enumerate() {
        let path = MetricPath::parse(m).map_err(|e| s.error(&format!("metrics[{i}]"), e))?;
        if s.metrics.iter().any(|p| p.text == path.text) {
            return Err(s.error(&format!("metrics[{i}]"), format!("`{m}` is listed twice")));
        }
        s.metrics.push(path);
    }
    check_plots(s)
}

fn check_params(s: &mut Sweep) -> Result<(), ScenarioError> {
    if s.spec.params.len() > MAX_PARAMS {
        return Err(s.error("params", format!("expected at most {MAX_PARAMS} parameters")));
    }
    let mut params = Vec::new();
    for (i, p) in s.spec.params.iter().enumerate() {
        let at = |k: &str| format!("params[{i}]{k}");
        let key_texts: Vec<String> = match (&p.key, p.keys.is_empty()) {
            (Some(k), true) => vec![k.clone()],
            (None, false) => p.keys.clone(),
            _ => return Err(s.error(&at(""), "expected either key = \"a.b\" or keys = [\"a.b\", \"c.d\"]")),
        };
        let mut keys = Vec::new();
        for (k, text) in key_texts.iter().enumerate() {
            let field = if p.key.is_some() { at(".key") } else { at(&format!(".keys[{k}]")) };
            let path = parse_key_path(text.trim()).ok_or_else(|| {
                s.error(&field, "expected a key path like registry.health.unhealthy_after or faults[0].at")
            })?;
            keys.push(path);
        }
        let name = p.name.clone().unwrap_or_else(|| key_texts[0].clone());
        if params.iter().any(|q: &Param| q.name == name || q.key_texts.iter().any(|k| key_texts.contains(k))) {
            return Err(s.error(&at(""), format!("parameter `{name}` (or one of its keys) is swept twice")));
        }
        if p.values.is_empty() {
            return Err(s.error(&at(".values"), "expected at least one value"));
        }
        if p.values.len() as u64 > MAX_RUNS {
            return Err(s.error(&at(".values"), format!("{} values is more than {MAX_RUNS} runs", p.values.len())));
        }
        let mut firsts = Vec::new();
        for (j, v) in p.values.iter().enumerate() {
            let first = if keys.len() > 1 {
                match v {
                    toml::Value::Array(a) if a.len() == keys.len() => &a[0],
                    _ => {
                        return Err(s.error(
                            &at(&format!(".values[{j}]")),
                            format!("expected an array of {} values, one per key of `keys`", keys.len()),
                        ));
                    }
                }
            } else {
                v
            };
            firsts.push(first);
        }
        let labels: Vec<String> = firsts.iter().map(|v| value_text(v)).collect();
        let full: Vec<String> = p.values.iter().map(value_text).collect();
        let mut seen = std::collections::BTreeSet::new();
        if let Some(j) = (0..full.len()).find(|&j| !seen.insert(&full[j])) {
            return Err(s.error(&at(&format!(".values[{j}]")), format!("value {} is listed twice", full[j])));
        }
        let numeric: Option<Vec<f64>> = firsts.iter().map(|v| numeric(v)).collect();
        params.push(Param { name, keys, key_texts, values: p.values.clone(), labels, numeric });
    }
    s.params = params;
    Ok(())
}

fn check_plots(s: &mut Sweep) -> Result<(), ScenarioError> {
    if s.spec.plots.len() > MAX_PLOTS {
        return Err(s.error("plots", format!("expected at most {MAX_PLOTS} plots")));
    }
    let names: Vec<String> = s.params.iter().map(|p| p.name.clone()).collect();
    let param = |at: &str, name: &str| {
        names.iter().position(|n| n == name).ok_or_else(|| {
            s.error(at, format!("`{name}` is not a swept parameter; expected one of: {}", names.join(", ")))
        })
    };
    let mut plots = Vec::new();
    for (i, p) in s.spec.plots.iter().enumerate() {
        let at = |k: &str| format!("plots[{i}].{k}");
        let x = param(&at("x"), &p.x)?;
        let series = p.series.as_deref().map(|n| param(&at("series"), n)).transpose()?;
        if series == Some(x) {
            return Err(s.error(&at("series"), "expected a parameter other than x"));
        }
        let ys: Vec<&toml::Value> = match &p.y {
            toml::Value::Array(a) if !a.is_empty() => a.iter().collect(),
            v @ toml::Value::String(_) => vec![v],
            _ => return Err(s.error(&at("y"), "expected a metric from `metrics`, or a list of them")),
        };
        let mut y = Vec::new();
        for v in ys {
            let text = v.as_str().unwrap_or_default();
            let path = MetricPath::parse(text).map_err(|e| s.error(&at("y"), e))?;
            if !s.metrics.iter().any(|m| m.text == path.text || m.matches(&path.text)) {
                return Err(s.error(
                    &at("y"),
                    format!("{v} is not one of `metrics`, nor matched by one (list it there to aggregate it)"),
                ));
            }
            y.push(path);
        }
        let mut fixed = Vec::new();
        for (name, v) in &p.fixed {
            let q = param(&at("where"), name)?;
            if q == x || Some(q) == series {
                return Err(s.error(&at("where"), format!("`{name}` is already the plot's x or series")));
            }
            let text = value_text(v);
            let j = s.params[q]
                .values
                .iter()
                .zip(&s.params[q].labels)
                .position(|(full, first)| value_text(full) == text || *first == text);
            let j = j.ok_or_else(|| {
                s.error(
                    &at("where"),
                    format!("{text} is not a value of `{name}`; expected one of: {}", s.params[q].labels.join(", ")),
                )
            })?;
            fixed.push((q, j));
        }
        let facets: u64 = (0..s.params.len())
            .filter(|&q| q != x && Some(q) != series && !fixed.iter().any(|f: &(usize, usize)| f.0 == q))
            .map(|q| s.params[q].values.len() as u64)
            .product();
        if facets > MAX_FACETS {
            return Err(s.error(
                &at("x"),
                format!(
                    "the parameters this plot neither draws nor fixes give {facets} plots (at most {MAX_FACETS}); \
                     fix some with where = {{ name = value }}"
                ),
            ));
        }
        let name = match &p.name {
            Some(n) => n.clone(),
            None => {
                let y0 = &y[0].text;
                format!("{}-vs-{}", sanitize(y0), sanitize(&p.x))
            }
        };
        if name.is_empty() || name != sanitize(&name) {
            return Err(s.error(&at("name"), "expected a file name of letters, digits, '.', '-', '_' and '='"));
        }
        if plots.iter().any(|q: &Plot| q.name == name) {
            return Err(s.error(&at("name"), format!("two plots are named `{name}`")));
        }
        plots.push(Plot {
            name,
            x,
            series,
            y,
            fixed,
            title: p.title.clone(),
            y_label: p.y_label.clone(),
            log_x: p.log_x,
            log_y: p.log_y,
        });
    }
    s.plots = plots;
    Ok(())
}

/// A string as part of a file name: letters, digits, `.`, `-`, `_`, `=`; other runs of
/// characters become one `_`.
pub fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '=') {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
scenario = "s.toml"
seeds = 2
metrics = ["detection.unhealthy.p99_s", "detection.*.p50_s"]
[[params]]
key = "instances.beat_interval"
values = ["1s", "5s"]
[[params]]
name = "health"
keys = ["registry.health.unhealthy_after", "registry.health.delete_after"]
values = [["10s", "20s"], ["15s", "30s"], ["30s", "60s"]]
[[plots]]
x = "instances.beat_interval"
y = "detection.unhealthy.p99_s"
series = "health"
"#;

    fn bad(text: &str) -> String {
        parse("w.toml", "w", text).expect_err("should fail").to_string()
    }

    #[test]
    fn good_file_gives_points_and_overrides() {
        let s = parse("w.toml", "w", GOOD).expect("parses");
        assert_eq!((s.name.as_str(), s.points(), s.runs()), ("w", 6, 12));
        assert_eq!(s.point_values(4), vec![1, 1]);
        let raws: Vec<String> = s.overrides(4).into_iter().map(|o| o.raw).collect();
        assert_eq!(
            raws,
            ["instances.beat_interval=5s", "registry.health.unhealthy_after=15s", "registry.health.delete_after=30s"]
        );
        assert_eq!(s.params[1].numeric, Some(vec![10.0, 15.0, 30.0]));
        assert_eq!(s.plots[0].name, "detection.unhealthy.p99_s-vs-instances.beat_interval");
        assert!(s.seed(0) != s.seed(1) && s.seed(0) < 1 << 53);
    }

    #[test]
    fn errors_name_line_column_and_key() {
        let e = bad(&GOOD.replace("seeds = 2", "seeds = 2\nsedes = 3"));
        assert!(e.starts_with("w.toml:4:1: sedes: unknown field `sedes`"), "{e}");
        let e = bad(&GOOD.replace("series = \"health\"", "series = \"loss\""));
        assert!(e.contains("plots[0].series: `loss` is not a swept parameter; expected one of"), "{e}");
        let e = bad(&GOOD.replace("[\"10s\", \"20s\"], ", "\"10s\", "));
        assert!(e.contains("params[1].values[0]: expected an array of 2 values"), "{e}");
        let e = bad(&GOOD.replace("seeds = 2", "seeds = 20000"));
        assert!(e.contains("2 × 3 × 20000 seeds is more than 100000 runs"), "{e}");
        let e = bad(&GOOD.replace("detection.*.p50_s", "detection..p50_s"));
        assert!(e.starts_with("w.toml:4:"), "{e}");
        assert!(e.contains("metrics[1]: bad metric path"), "{e}");
        let e = bad(&GOOD.replace("seeds = 2", "seeds = \"two\""));
        assert!(e.contains("w.toml:3:9: seeds: invalid type: string \"two\", expected u64"), "{e}");
    }

    #[test]
    fn value_text_is_what_set_reads_back() {
        assert_eq!(value_text(&toml::Value::String("5s".into())), "5s");
        assert_eq!(value_text(&toml::Value::String("10".into())), "\"10\"");
        assert_eq!(value_text(&toml::Value::Float(0.01)), "0.01");
        assert_eq!(value_text(&toml::Value::Integer(3)), "3");
    }
}
