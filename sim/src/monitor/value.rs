//! The values PromQL evaluation produces and the helpers every operator shares, with the
//! [`Eval`] interface the operators and functions (`binop`, `functions`, `aggregate`) use to
//! evaluate their operands: they depend on this module, not on the evaluator that calls them.

use std::collections::BTreeSet;
use std::fmt;

use promql_parser::label::Matcher;
use promql_parser::parser::{Expr, MatrixSelector, Offset, VectorSelector};

use super::labels::{Labels, METRIC_NAME};
use super::store::Sample;

/// What operators and functions need from the evaluator (`eval::Evaluator` implements it).
pub trait Eval {
    /// Evaluates a sub-expression at the evaluation time.
    fn eval(&mut self, expr: &Expr) -> Result<Value, EvalError>;
    /// A range vector selector: per matching series, its samples in the range.
    fn select_range(&mut self, ms: &MatrixSelector) -> Result<Vec<(Labels, Vec<Sample>)>, EvalError>;
    /// The evaluation time (milliseconds).
    fn time_ms(&self) -> i64;
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub labels: Labels,
    pub value: f64,
}

/// An instant vector.
pub type Vector = Vec<Element>;

/// The result of evaluating an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f64),
    Vector(Vector),
}

impl Value {
    /// The value as a vector: a scalar becomes one element without labels, as Prometheus's
    /// rule manager does with a scalar rule result.
    pub fn into_vector(self) -> Vector {
        match self {
            Value::Scalar(v) => vec![Element { labels: Labels::empty(), value: v }],
            Value::Vector(v) => v,
        }
    }
}

/// An error raised while evaluating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

/// Does the series `labels` satisfy the selector's name and every matcher? A missing label
/// matches as the empty string, as in Prometheus.
pub fn selector_matches(vs: &VectorSelector, labels: &Labels) -> bool {
    if let Some(name) = &vs.name
        && labels.name() != Some(name.as_str())
    {
        return false;
    }
    vs.matchers.matchers.iter().all(|m: &Matcher| m.is_match(labels.get(&m.name).unwrap_or("")))
}

/// The selector's offset in milliseconds (negative offsets look ahead).
pub fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Some(Offset::Neg(d)) => -i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
    }
}

/// Prometheus's check after every operation that can drop the metric name.
pub fn check_unique(v: &Vector) -> Result<(), EvalError> {
    let mut seen = BTreeSet::new();
    for e in v {
        if !seen.insert(&e.labels) {
            return Err(EvalError("vector cannot contain metrics with the same labelset".into()));
        }
    }
    Ok(())
}

/// Equality matchers of a selector as labels (used by `absent`): every `=` matcher except the
/// metric name; a label constrained twice is left out (Prometheus's historic behaviour).
pub fn absent_labels(expr: &Expr) -> Labels {
    let vs = match expr {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut out = Labels::empty();
    let mut has: BTreeSet<&str> = BTreeSet::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !has.contains(m.name.as_str()) {
            out.set(m.name.clone(), m.value.clone());
            has.insert(m.name.as_str());
        } else {
            out.remove(&m.name);
        }
    }
    out
}
