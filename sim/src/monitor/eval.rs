//! Instant-query evaluation of the PromQL subset over a [`Store`].
//!
//! Model: Prometheus's engine evaluating one expression at one time `t` (an instant query, as
//! the rule manager issues every evaluation). Values are scalars or instant vectors; range
//! vectors exist only as arguments of the range functions ([`super::functions`]). Selectors
//! follow [`super::store`] (lookback, staleness); binary operators and aggregations live in
//! [`super::binop`] and [`super::aggregate`].
//!
//! Errors Prometheus raises while evaluating (many-to-many matching, "vector cannot contain
//! metrics with the same labelset", too many samples) are returned as [`EvalError`], never
//! panics: the rule engine turns them into a rule's `err` health and goes on.

use promql_parser::parser::{Expr, MatrixSelector, VectorSelector};

use super::labels::Labels;
use super::query::Query;
use super::store::{Sample, Store, instant_value, range_values};
pub use super::value::{
    Element, Eval, EvalError, Value, Vector, absent_labels, check_unique, offset_ms, selector_matches,
};
use super::{aggregate, binop, functions};

/// Bound on the samples one query may load (Prometheus's `--query.max-samples` is 50 M; a
/// simulated server holds far less, so a smaller bound keeps a runaway rule cheap).
pub const DEFAULT_MAX_SAMPLES: usize = 5_000_000;

/// Evaluates `query` at `t` (milliseconds) over `store`.
pub fn instant_query(store: &Store, query: &Query, t: i64) -> Result<Value, EvalError> {
    Evaluator::new(store, t).eval(&query.expr)
}

/// One evaluation: the store, the time and the sample budget.
pub struct Evaluator<'a> {
    pub(super) store: &'a Store,
    pub(super) t: i64,
    samples_left: usize,
}

impl<'a> Evaluator<'a> {
    pub fn new(store: &'a Store, t: i64) -> Evaluator<'a> {
        Evaluator { store, t, samples_left: DEFAULT_MAX_SAMPLES }
    }

    pub fn eval(&mut self, expr: &Expr) -> Result<Value, EvalError> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => {
                    let out: Vector =
                        v.into_iter().map(|e| Element { labels: e.labels.without_name(), value: -e.value }).collect();
                    check_unique(&out)?;
                    Ok(Value::Vector(out))
                }
            },
            Expr::VectorSelector(vs) => self.select(vs).map(Value::Vector),
            Expr::Call(c) => functions::call(self, c),
            Expr::Aggregate(a) => {
                let Value::Vector(v) = self.eval(&a.expr)? else {
                    return Err(EvalError("aggregation over a scalar".into()));
                };
                aggregate::aggregate(&a.op.to_string(), a.modifier.as_ref(), v).map(Value::Vector)
            }
            Expr::Binary(b) => binop::binary(self, b),
            Expr::MatrixSelector(_) | Expr::StringLiteral(_) | Expr::Subquery(_) | Expr::Extension(_) => {
                Err(EvalError(format!("cannot evaluate {expr} as an instant value (outside regsim's subset)")))
            }
        }
    }

    /// An instant vector selector at `t - offset`.
    pub fn select(&mut self, vs: &VectorSelector) -> Result<Vector, EvalError> {
        let at = self.t - offset_ms(&vs.offset);
        let lookback = self.store.lookback_ms();
        let mut out = Vector::new();
        for (labels, samples) in self.store.select(|l| selector_matches(vs, l)) {
            if let Some(s) = instant_value(samples, at, lookback) {
                self.charge(1)?;
                out.push(Element { labels: labels.clone(), value: s.v });
            }
        }
        Ok(out)
    }

    /// A range vector selector: per matching series, the samples in `[t - offset - range, t -
    /// offset]` without staleness markers; series without samples there are left out.
    pub fn select_range(&mut self, ms: &MatrixSelector) -> Result<Vec<(Labels, Vec<Sample>)>, EvalError> {
        let to = self.t - offset_ms(&ms.vs.offset);
        let range = i64::try_from(ms.range.as_millis()).unwrap_or(i64::MAX);
        let from = to.saturating_sub(range);
        let mut out = Vec::new();
        for (labels, samples) in self.store.select(|l| selector_matches(&ms.vs, l)) {
            let points = range_values(samples, from, to);
            if !points.is_empty() {
                self.charge(points.len())?;
                out.push((labels.clone(), points));
            }
        }
        Ok(out)
    }

    fn charge(&mut self, n: usize) -> Result<(), EvalError> {
        self.samples_left = self.samples_left.checked_sub(n).ok_or_else(|| {
            EvalError(format!("query processing would load too many samples into memory (limit {DEFAULT_MAX_SAMPLES})"))
        })?;
        Ok(())
    }
}

impl Eval for Evaluator<'_> {
    fn eval(&mut self, expr: &Expr) -> Result<Value, EvalError> {
        Evaluator::eval(self, expr)
    }
    fn select_range(&mut self, ms: &MatrixSelector) -> Result<Vec<(Labels, Vec<Sample>)>, EvalError> {
        Evaluator::select_range(self, ms)
    }
    fn time_ms(&self) -> i64 {
        self.t
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::monitor::labels::METRIC_NAME;

    pub(crate) fn store(series: &[(&str, &[(i64, f64)])]) -> Store {
        let mut s = Store::default();
        for (sel, samples) in series {
            let labels = parse_labels(sel);
            for &(t, v) in *samples {
                s.append(&labels, t, v).expect("append");
            }
        }
        s
    }

    fn parse_labels(sel: &str) -> Labels {
        let Ok(Expr::VectorSelector(vs)) = promql_parser::parser::parse(sel) else { panic!("bad selector {sel}") };
        let mut l = Labels::from_pairs(vs.matchers.matchers.iter().map(|m| (m.name.clone(), m.value.clone())));
        if let Some(n) = vs.name {
            l.set(METRIC_NAME.into(), n);
        }
        l
    }

    pub(crate) fn query(s: &Store, q: &str, t: i64) -> Result<Vec<(String, f64)>, EvalError> {
        let q = Query::parse(q).map_err(EvalError)?;
        let mut v: Vec<(String, f64)> =
            instant_query(s, &q, t)?.into_vector().into_iter().map(|e| (e.labels.to_string(), e.value)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    }

    #[test]
    fn selectors_match_like_prometheus() {
        let s = store(&[
            (r#"up{job="api",instance="a"}"#, &[(0, 1.0)]),
            (r#"up{job="db",instance="b"}"#, &[(0, 0.0)]),
            (r#"up{instance="c"}"#, &[(0, 1.0)]),
        ]);
        assert_eq!(query(&s, r#"up{job="api"}"#, 0).expect("q").len(), 1);
        assert_eq!(query(&s, r#"up{job!="api"}"#, 0).expect("q").len(), 2, "missing label matches !=");
        assert_eq!(query(&s, r#"up{job=~"a.*|d."}"#, 0).expect("q").len(), 2, "regex is anchored");
        assert_eq!(query(&s, r#"up{job=""}"#, 0).expect("q"), vec![(r#"up{instance="c"}"#.into(), 1.0)]);
        assert_eq!(query(&s, r#"{__name__="up",job!~"api|db"}"#, 0).expect("q").len(), 1);
        assert_eq!(query(&s, "up offset 1m", 60_000).expect("q").len(), 3);
        assert_eq!(query(&s, "up", 300_001).expect("q").len(), 0, "past the 5 m lookback");
    }

    #[test]
    fn unary_minus_drops_the_name_and_rejects_duplicates() {
        let s = store(&[("a{x=\"1\"}", &[(0, 2.0)]), ("b{x=\"1\"}", &[(0, 3.0)])]);
        assert_eq!(query(&s, "-a", 0).expect("q"), vec![("{x=\"1\"}".into(), -2.0)]);
        let err = query(&s, "-{x=\"1\"}", 0).expect_err("duplicate labelset");
        assert!(err.0.contains("same labelset"), "{err}");
    }

    #[test]
    fn absent_labels_from_equality_matchers() {
        let e = promql_parser::parser::parse(r#"up{job="a",env=~"p.*",x="1",x="2"}"#).expect("parse");
        assert_eq!(absent_labels(&e).to_string(), r#"{job="a"}"#);
    }
}
