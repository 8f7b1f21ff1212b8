//! promtool's input-series notation: `up{job="api"}` with values such as `1+1x10 _ stale 0x3`.
//!
//! Model (Prometheus's `ParseSeriesDesc`): values are whitespace-separated items, one per
//! `interval`, the first at time 0:
//!
//! - `a` one value; `stale` a staleness marker; `_` no sample at that step;
//! - `axN` N+1 copies of `a`; `_xN` N steps without samples;
//! - `a+bxN` / `a-bxN` N+1 values from `a`, adding / subtracting `b` each step.
//!
//! The label part is read with `promql-parser` as a selector made of `=` matchers only.

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;

use super::labels::{Labels, METRIC_NAME};
use super::store::stale_nan;

/// Bound on the values one series line may expand to.
pub const MAX_VALUES: u64 = 10_000_000;

/// Parses `metric{a="b"}` (or `{__name__="m", a="b"}`, or `{}` / empty for no labels).
pub fn parse_labels(text: &str) -> Result<Labels, String> {
    let t = text.trim();
    if t.is_empty() || t == "{}" {
        return Ok(Labels::empty());
    }
    let expr = super::query::parse_expr(t).map_err(|e| format!("bad series {t:?}: {}", e.trim()))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("bad series {t:?}: expected name{{label=\"value\", ...}}"));
    };
    if vs.offset.is_some() || vs.at.is_some() || !vs.matchers.or_matchers.is_empty() {
        return Err(format!("bad series {t:?}: expected name{{label=\"value\", ...}}"));
    }
    let mut labels = Labels::empty();
    if let Some(n) = vs.name {
        labels.set(METRIC_NAME.into(), n);
    }
    for m in vs.matchers.matchers {
        if !matches!(m.op, MatchOp::Equal) {
            return Err(format!("bad series {t:?}: only `=` is allowed in a series, not {}", m.op));
        }
        labels.set(m.name, m.value);
    }
    Ok(labels)
}

/// Expands a values string into one entry per step: `None` for `_`, else the value (a
/// staleness marker for `stale`).
pub fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for item in text.split_whitespace() {
        let (base, times) = match item.rsplit_once('x') {
            Some((b, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                let n: u64 = n.parse().map_err(|_| format!("bad repetition count in {item:?}"))?;
                (b, Some(n))
            }
            _ => (item, None),
        };
        if out.len() as u64 + times.unwrap_or(0) + 1 > MAX_VALUES {
            return Err(format!("series expands to more than {MAX_VALUES} values"));
        }
        if base == "_" {
            let n = times.unwrap_or(1);
            out.extend((0..n).map(|_| None));
            continue;
        }
        let (start, step) = split_step(base).ok_or_else(|| {
            format!("bad value {item:?}: expected a number, stale, _, or the forms axN, a+bxN, a-bxN, _xN")
        })?;
        match (times, step) {
            (None, None) => out.push(Some(start)),
            (None, Some(_)) => return Err(format!("bad value {item:?}: a+b needs a count, as in a+bxN")),
            (Some(n), step) => {
                let mut v = start;
                for _ in 0..=n {
                    out.push(Some(v));
                    v += step.unwrap_or(0.0);
                }
            }
        }
    }
    Ok(out)
}

/// `a`, `a+b` or `a-b` as (a, Some(±b)); the sign of an exponent (`1e-3`) is not a split.
fn split_step(s: &str) -> Option<(f64, Option<f64>)> {
    let bytes = s.as_bytes();
    for i in 1..bytes.len() {
        let c = bytes[i];
        if (c == b'+' || c == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            let a = number(&s[..i])?;
            let b = number(&s[i + 1..])?;
            return Some((a, Some(if c == b'-' { -b } else { b })));
        }
    }
    number(s).map(|a| (a, None))
}

fn number(s: &str) -> Option<f64> {
    if s == "stale" {
        return Some(stale_nan());
    }
    let lower = s.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "nan" => {}
        t if t.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.') => {}
        _ => return None,
    }
    lower.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::super::store::is_stale;
    use super::*;

    #[test]
    fn expanding_notation() {
        assert_eq!(expand_values("1+1x3").expect("ok"), vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)]);
        assert_eq!(expand_values("10-2x2").expect("ok"), vec![Some(10.0), Some(8.0), Some(6.0)]);
        assert_eq!(
            expand_values("0x2 _x2 5").expect("ok"),
            vec![Some(0.0), Some(0.0), Some(0.0), None, None, Some(5.0)]
        );
        assert_eq!(
            expand_values("_ -1 1e3 +Inf").expect("ok"),
            vec![None, Some(-1.0), Some(1000.0), Some(f64::INFINITY)]
        );
        assert_eq!(expand_values("-1+5e-1x1").expect("ok"), vec![Some(-1.0), Some(-0.5)]);
        let v = expand_values("1 stale").expect("ok");
        assert!(v[1].is_some_and(is_stale));
        for bad in ["a", "1+1", "1x", "1+x2", "x3"] {
            assert!(expand_values(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(
            parse_labels(r#"up{job="a", instance="b"}"#).expect("ok").to_string(),
            r#"up{instance="b", job="a"}"#
        );
        assert_eq!(parse_labels("{}").expect("ok"), Labels::empty());
        assert_eq!(parse_labels(r#"{job="a"}"#).expect("ok").to_string(), r#"{job="a"}"#);
        assert!(parse_labels(r#"up{job=~"a"}"#).is_err());
        assert!(parse_labels("sum(up)").is_err());
    }
}
