//! The PromQL functions of regsim's subset, with Prometheus 2.x's arithmetic.
//!
//! `rate`, `increase` and `delta` follow Prometheus's `extrapolatedRate`: the change between
//! the first and last sample in the window (counter resets added back for `rate`/`increase`),
//! extrapolated towards the window edges when the first/last sample lies within 1.1 average
//! sample intervals of them (else by half an interval), never extrapolating a counter below
//! zero, and divided by the window length for `rate`. That is why a counter rising by 60 every
//! 15 s gives `rate(x[1m]) = 4` whatever the phase of the evaluation (ANCHORS.md,
//! "Monitoring"). With fewer than two samples there is no result. The `*_over_time` functions
//! aggregate the window's samples without extrapolation (sum and average with Kahan-Neumaier
//! compensation, as Prometheus). Every function drops the metric name except `last_over_time`.

use promql_parser::parser::{Call, Expr, MatrixSelector};

use super::labels::Labels;
use super::store::Sample;
use super::value::{Element, Eval, EvalError, Value, Vector, absent_labels, check_unique};

/// Evaluates a function call (the names are those of [`super::query::FUNCTIONS`]).
pub fn call(ev: &mut dyn Eval, c: &Call) -> Result<Value, EvalError> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    match (name, args.as_slice()) {
        ("time", []) => Ok(Value::Scalar(ev.time_ms() as f64 / 1000.0)),
        ("vector", [arg]) => match ev.eval(arg)? {
            Value::Scalar(v) => Ok(Value::Vector(vec![Element { labels: Labels::empty(), value: v }])),
            Value::Vector(_) => Err(EvalError("vector() takes a scalar".into())),
        },
        ("scalar", [arg]) => match ev.eval(arg)? {
            Value::Vector(v) if v.len() == 1 => Ok(Value::Scalar(v[0].value)),
            Value::Vector(_) => Ok(Value::Scalar(f64::NAN)),
            Value::Scalar(_) => Err(EvalError("scalar() takes an instant vector".into())),
        },
        ("absent", [arg]) => match ev.eval(arg)? {
            Value::Vector(v) if v.is_empty() => Ok(Value::Vector(vec![one(absent_labels(arg))])),
            Value::Vector(_) => Ok(Value::Vector(Vec::new())),
            Value::Scalar(_) => Err(EvalError("absent() takes an instant vector".into())),
        },
        (_, [Expr::MatrixSelector(ms)]) => range_function(ev, name, ms),
        _ => Err(EvalError(format!("function {name}() with these arguments is outside regsim's subset"))),
    }
}

fn one(labels: Labels) -> Element {
    Element { labels, value: 1.0 }
}

fn range_function(ev: &mut dyn Eval, name: &str, ms: &MatrixSelector) -> Result<Value, EvalError> {
    let series = ev.select_range(ms)?;
    if name == "absent_over_time" {
        let out = if series.is_empty() { vec![one(absent_labels(&Expr::MatrixSelector(ms.clone())))] } else { vec![] };
        return Ok(Value::Vector(out));
    }
    let range_s = ms.range.as_secs_f64();
    let end = ev.time_ms() - super::value::offset_ms(&ms.vs.offset);
    let start = end - i64::try_from(ms.range.as_millis()).unwrap_or(i64::MAX);
    let mut out = Vector::new();
    for (labels, points) in series {
        let value = match name {
            "rate" => extrapolated_rate(&points, start, end, range_s, true, true),
            "increase" => extrapolated_rate(&points, start, end, range_s, true, false),
            "delta" => extrapolated_rate(&points, start, end, range_s, false, false),
            "avg_over_time" => Some(avg(&points)),
            "sum_over_time" => Some(kahan_sum(points.iter().map(|p| p.v))),
            "min_over_time" => Some(extreme(&points, |cur, v| v < cur)),
            "max_over_time" => Some(extreme(&points, |cur, v| v > cur)),
            "count_over_time" => Some(points.len() as f64),
            "last_over_time" => points.last().map(|p| p.v),
            _ => return Err(EvalError(format!("function {name}() is outside regsim's subset"))),
        };
        if let Some(value) = value {
            let labels = if name == "last_over_time" { labels } else { labels.without_name() };
            out.push(Element { labels, value });
        }
    }
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// Prometheus's `extrapolatedRate` (see the module doc); `start`/`end` are the window edges
/// in milliseconds, `points` the samples inside it.
pub fn extrapolated_rate(
    points: &[Sample],
    start: i64,
    end: i64,
    range_s: f64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let (first, last) = match points {
        [first, .., last] => (first, last),
        _ => return None,
    };
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for p in &points[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut to_start = (first.t - start) as f64 / 1000.0;
    let to_end = (end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_between = sampled / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { avg_between / 2.0 };
    interval += if to_end < threshold { to_end } else { avg_between / 2.0 };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= range_s;
    }
    Some(result * factor)
}

/// Kahan-Neumaier increment, as Prometheus's `kahanSumInc`.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() { c + ((sum - t) + inc) } else { c + ((inc - t) + sum) };
    (t, c)
}

fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for v in values {
        (sum, c) = kahan_inc(v, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// Prometheus's `avg_over_time`: an incremental mean with compensation, careful with infinities.
fn avg(points: &[Sample]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0_f64, 0.0_f64, 0.0_f64);
    for p in points {
        count += 1.0;
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if !p.v.is_infinite() && !p.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(p.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() { mean } else { mean + c }
}

/// min/max over the window; a NaN is replaced by any later value (Prometheus's rule).
fn extreme(points: &[Sample], better: impl Fn(f64, f64) -> bool) -> f64 {
    let mut cur = points.first().map_or(f64::NAN, |p| p.v);
    for p in points {
        if better(cur, p.v) || cur.is_nan() {
            cur = p.v;
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::super::eval::tests::{query, store};

    /// ANCHORS.md: a counter rising by 60 every 15 s has rate(x[1m]) = 4, at any phase.
    #[test]
    fn rate_extrapolation_anchor() {
        let samples: Vec<(i64, f64)> = (0..=40).map(|i| (i * 15_000, 60.0 * i as f64)).collect();
        let s = store(&[("x", &samples)]);
        for t in [60_000, 67_000, 300_000, 301_000, 314_999] {
            let got = query(&s, "rate(x[1m])", t).expect("rate");
            assert_eq!(got.len(), 1);
            assert!((got[0].1 - 4.0).abs() < 1e-9, "t={t}: {}", got[0].1);
            let inc = query(&s, "increase(x[1m])", t).expect("increase");
            assert!((inc[0].1 - 240.0).abs() < 1e-9, "t={t}: {}", inc[0].1);
        }
    }

    #[test]
    fn rate_handles_resets_zero_point_and_sparse_windows() {
        // A reset: 10, 20, 5 -> increase 10 + 5 = 15 over 30 s sampled.
        let s = store(&[("x", &[(0, 10.0), (15_000, 20.0), (30_000, 5.0)])]);
        // Window [0, 30 s] exactly: no extrapolation needed.
        assert_eq!(query(&s, "increase(x[30s])", 30_000).expect("q"), vec![("{}".into(), 15.0)]);
        // One sample only: no result.
        assert!(query(&s, "rate(x[10s])", 30_000).expect("q").is_empty());
        // Counter from 0: not extrapolated below zero. Samples 0 s..60 s, value 0..60 at 1/s,
        // window [-60 s.., 60 s]: the zero point caps the start extrapolation at the first sample.
        let ramp: Vec<(i64, f64)> = (0..=4).map(|i| (i * 15_000, 15.0 * i as f64)).collect();
        let s = store(&[("y", &ramp)]);
        let got = query(&s, "increase(y[2m])", 60_000).expect("q");
        assert!((got[0].1 - 60.0).abs() < 1e-9, "{}", got[0].1);
    }

    #[test]
    fn over_time_functions() {
        let s = store(&[("g{a=\"1\"}", &[(0, 1.0), (60_000, 5.0), (120_000, 3.0)])]);
        let at = |q: &str| query(&s, q, 120_000).expect("q")[0].1;
        assert_eq!(at("avg_over_time(g[2m])"), 3.0);
        assert_eq!(at("sum_over_time(g[2m])"), 9.0);
        assert_eq!(at("min_over_time(g[2m])"), 1.0);
        assert_eq!(at("max_over_time(g[2m])"), 5.0);
        assert_eq!(at("count_over_time(g[2m])"), 3.0);
        assert_eq!(at("count_over_time(g[1m])"), 2.0, "window [60 s, 120 s] is closed");
        assert_eq!(query(&s, "last_over_time(g[2m])", 120_000).expect("q")[0].0, "g{a=\"1\"}", "keeps the name");
        assert_eq!(query(&s, "max_over_time(g[2m])", 120_000).expect("q")[0].0, "{a=\"1\"}");
    }

    #[test]
    fn absent_and_friends() {
        let s = store(&[("up{job=\"api\"}", &[(0, 1.0)])]);
        assert!(query(&s, "absent(up{job=\"api\"})", 0).expect("q").is_empty());
        assert_eq!(query(&s, "absent(up{job=\"db\"})", 0).expect("q"), vec![("{job=\"db\"}".into(), 1.0)]);
        assert_eq!(query(&s, "absent(nope)", 0).expect("q"), vec![("{}".into(), 1.0)]);
        assert_eq!(query(&s, "absent(up{job=\"api\"})", 301_000).expect("q").len(), 1, "gone after lookback");
        assert!(query(&s, "absent_over_time(up[10m])", 301_000).expect("q").is_empty());
        assert_eq!(query(&s, "scalar(up) + time()", 2_000).expect("q"), vec![("{}".into(), 3.0)]);
        assert_eq!(query(&s, "vector(2)", 0).expect("q"), vec![("{}".into(), 2.0)]);
    }

    #[test]
    fn dropping_the_name_can_collide() {
        let s = store(&[("a{x=\"1\"}", &[(0, 1.0), (10_000, 2.0)]), ("b{x=\"1\"}", &[(0, 1.0), (10_000, 2.0)])]);
        let err = query(&s, "rate({x=\"1\"}[1m])", 10_000).expect_err("collision");
        assert_eq!(err.0, "vector cannot contain metrics with the same labelset");
    }
}
