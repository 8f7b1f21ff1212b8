//! Binary operators: arithmetic, comparisons (filter and `bool`) and set operators.
//!
//! Model: Prometheus 2.x's `VectorBinop` / `VectorscalarBinop` with one-to-one matching. Two
//! vectors match on a signature: the labels listed in `on (...)`, or all labels except the
//! metric name and those in `ignoring (...)`. The right side must have at most one series per
//! signature and each signature may match only once, else the evaluation fails with
//! Prometheus's message (these are the "many-to-many" rule failures issue 9's rule engine must
//! survive). Result labels: the left side's, without the metric name for arithmetic and
//! `bool`, reduced to the `on` labels / without the `ignoring` labels. A comparison without
//! `bool` filters and keeps the left value (the vector's value when the scalar is on the left).

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::parser::{BinaryExpr, LabelModifier};

use super::labels::Labels;
use super::query::{is_comparison, is_set};
use super::value::{Element, Eval, EvalError, Value, Vector, check_unique};

/// Evaluates a binary expression.
pub fn binary(ev: &mut dyn Eval, b: &BinaryExpr) -> Result<Value, EvalError> {
    let op = b.op.to_string();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let (on, names) = matching(b.modifier.as_ref().and_then(|m| m.matching.as_ref()));
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (v, keep) = element_op(&op, l, r)?;
            Ok(Value::Scalar(if is_comparison(&op) { f64::from(u8::from(keep)) } else { v }))
        }
        (Value::Vector(v), Value::Scalar(s)) => vector_scalar(&op, v, s, false, return_bool).map(Value::Vector),
        (Value::Scalar(s), Value::Vector(v)) => vector_scalar(&op, v, s, true, return_bool).map(Value::Vector),
        (Value::Vector(l), Value::Vector(r)) if is_set(&op) => Ok(Value::Vector(set_op(&op, l, r, on, &names))),
        (Value::Vector(l), Value::Vector(r)) => vector_vector(&op, l, r, on, &names, return_bool).map(Value::Vector),
    }
}

/// `(on, names)` of an `on (...)` / `ignoring (...)` clause; none means `ignoring ()`.
fn matching(m: Option<&LabelModifier>) -> (bool, Vec<String>) {
    match m {
        Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        None => (false, Vec::new()),
    }
}

/// Prometheus's `vectorElemBinop`: the value and whether to keep the element.
fn element_op(op: &str, l: f64, r: f64) -> Result<(f64, bool), EvalError> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        _ => return Err(EvalError(format!("operator {op} is outside regsim's subset"))),
    })
}

fn drops_name(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "%" | "^" | "atan2")
}

fn vector_scalar(op: &str, v: Vector, s: f64, swap: bool, return_bool: bool) -> Result<Vector, EvalError> {
    let mut out = Vector::new();
    for e in v {
        let (l, r) = if swap { (s, e.value) } else { (e.value, s) };
        let (mut value, mut keep) = element_op(op, l, r)?;
        if is_comparison(op) && swap {
            value = r;
        }
        if return_bool {
            value = f64::from(u8::from(keep));
            keep = true;
        }
        if keep {
            let labels = if drops_name(op) || return_bool { e.labels.without_name() } else { e.labels };
            out.push(Element { labels, value });
        }
    }
    check_unique(&out)?;
    Ok(out)
}

fn vector_vector(
    op: &str,
    lhs: Vector,
    rhs: Vector,
    on: bool,
    names: &[String],
    return_bool: bool,
) -> Result<Vector, EvalError> {
    let mut right: BTreeMap<Labels, &Element> = BTreeMap::new();
    for r in &rhs {
        let sig = r.labels.signature(on, names);
        if let Some(dup) = right.get(&sig) {
            return Err(EvalError(format!(
                "found duplicate series for the match group {sig} on the right hand-side of the operation: \
                 [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                r.labels, dup.labels
            )));
        }
        right.insert(sig, r);
    }
    let mut matched: BTreeSet<Labels> = BTreeSet::new();
    let mut out = Vector::new();
    for l in lhs {
        let sig = l.labels.signature(on, names);
        let Some(r) = right.get(&sig) else { continue };
        let (mut value, keep) = element_op(op, l.value, r.value)?;
        if return_bool {
            value = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        if !matched.insert(sig) {
            return Err(EvalError(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
            ));
        }
        let mut labels = if drops_name(op) || return_bool { l.labels.without_name() } else { l.labels };
        labels = if on { labels.keep(names) } else { labels.drop_names(names) };
        out.push(Element { labels, value });
    }
    check_unique(&out)?;
    Ok(out)
}

/// `and`, `or`, `unless` (many-to-many by definition).
fn set_op(op: &str, lhs: Vector, rhs: Vector, on: bool, names: &[String]) -> Vector {
    let sigs = |v: &Vector| v.iter().map(|e| e.labels.signature(on, names)).collect::<BTreeSet<Labels>>();
    match op {
        "and" => {
            let right = sigs(&rhs);
            lhs.into_iter().filter(|e| right.contains(&e.labels.signature(on, names))).collect()
        }
        "unless" => {
            let right = sigs(&rhs);
            lhs.into_iter().filter(|e| !right.contains(&e.labels.signature(on, names))).collect()
        }
        _ => {
            let left = sigs(&lhs);
            let mut out = lhs;
            out.extend(rhs.into_iter().filter(|e| !left.contains(&e.labels.signature(on, names))));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::eval::tests::{query, store};

    fn s() -> super::super::store::Store {
        store(&[
            ("errors{job=\"api\",instance=\"a\"}", &[(0, 5.0)]),
            ("errors{job=\"api\",instance=\"b\"}", &[(0, 0.0)]),
            ("requests{job=\"api\",instance=\"a\"}", &[(0, 10.0)]),
            ("requests{job=\"api\",instance=\"b\"}", &[(0, 20.0)]),
            ("limit{job=\"api\"}", &[(0, 1.0)]),
        ])
    }

    #[test]
    fn scalar_and_vector_arithmetic() {
        let s = s();
        assert_eq!(query(&s, "1 + 2 * 3", 0).expect("q"), vec![("{}".into(), 7.0)]);
        assert_eq!(query(&s, "2 > bool 1", 0).expect("q"), vec![("{}".into(), 1.0)]);
        assert_eq!(
            query(&s, "errors * 2", 0).expect("q"),
            vec![("{instance=\"a\", job=\"api\"}".into(), 10.0), ("{instance=\"b\", job=\"api\"}".into(), 0.0)]
        );
    }

    #[test]
    fn comparisons_filter_or_return_bool() {
        let s = s();
        assert_eq!(query(&s, "errors > 1", 0).expect("q"), vec![("errors{instance=\"a\", job=\"api\"}".into(), 5.0)]);
        assert_eq!(query(&s, "1 < errors", 0).expect("q"), vec![("errors{instance=\"a\", job=\"api\"}".into(), 5.0)]);
        assert_eq!(query(&s, "errors > bool 1", 0).expect("q")[1], ("{instance=\"b\", job=\"api\"}".into(), 0.0));
    }

    #[test]
    fn one_to_one_matching() {
        let s = s();
        assert_eq!(
            query(&s, "errors / requests", 0).expect("q"),
            vec![("{instance=\"a\", job=\"api\"}".into(), 0.5), ("{instance=\"b\", job=\"api\"}".into(), 0.0)]
        );
        assert_eq!(
            query(&s, "sum by (job) (errors) / on (job) sum by (job) (requests)", 0).expect("q"),
            vec![("{job=\"api\"}".into(), 5.0 / 30.0)]
        );
        // A filtered-out element does not count as a match (Prometheus checks after the filter).
        assert_eq!(query(&s, "errors > ignoring (instance) limit", 0).expect("q").len(), 1);
        let err = query(&s, "errors + ignoring (instance) limit", 0).expect_err("two left per group");
        assert!(err.0.contains("multiple matches for labels"), "{err}");
    }

    #[test]
    fn many_to_many_is_an_error_not_a_panic() {
        let s = s();
        let err = query(&s, "limit / on (job) errors", 0).expect_err("duplicate on the right");
        assert!(err.0.contains("many-to-many matching not allowed"), "{err}");
        let err = query(&s, "errors / on (job) limit", 0).expect_err("two matches on the left");
        assert!(err.0.contains("multiple matches for labels"), "{err}");
    }

    #[test]
    fn set_operators() {
        let s = s();
        assert_eq!(query(&s, "errors and errors > 1", 0).expect("q").len(), 1);
        assert_eq!(query(&s, "errors unless errors > 1", 0).expect("q").len(), 1);
        assert_eq!(query(&s, "errors or requests", 0).expect("q").len(), 2, "same signatures: rhs left out");
        assert_eq!(query(&s, "limit or on (instance) errors", 0).expect("q").len(), 3);
    }
}
