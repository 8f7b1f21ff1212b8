//! Parsing a PromQL expression and checking that it is inside regsim's subset.
//!
//! Model: expressions are parsed by the `promql-parser` crate (GreptimeDB's port of
//! Prometheus's grammar; issue 9 forbids a hand-written parser), then walked once to reject
//! anything the evaluator does not implement, so an unsupported rule is a *load-time* error
//! naming the construct, never a surprise during a run. The subset is what alerting and
//! recording rules on registry and gateway metrics need (README, "Rules"):
//!
//! - number literals, unary minus, parentheses;
//! - instant vector selectors with `=`, `!=`, `=~`, `!~` matchers and `offset`;
//! - range vectors as arguments of `rate`, `increase`, `delta`, `avg_over_time`,
//!   `min_over_time`, `max_over_time`, `sum_over_time`, `count_over_time`, `last_over_time`,
//!   `absent_over_time`;
//! - `absent`, `time`, `vector`, `scalar`;
//! - arithmetic (`+ - * / % ^ atan2`), comparisons (filter and `bool`), `and`/`or`/`unless`,
//!   between scalars, scalar and vector, and vectors with one-to-one matching (`on`,
//!   `ignoring`);
//! - aggregations `sum`, `avg`, `max`, `min`, `count`, `group` with `by` or `without`.
//!
//! Outside it (rejected with the reason): `@`, subqueries, strings, `group_left` /
//! `group_right`, fill modifiers, aggregations with a parameter (`topk`, `quantile`, ...),
//! every other function, and an expression whose result is a range vector.

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr, VectorMatchCardinality};

/// Functions the evaluator implements, with whether their (single) argument is a range vector.
pub const FUNCTIONS: &[(&str, bool)] = &[
    ("rate", true),
    ("increase", true),
    ("delta", true),
    ("avg_over_time", true),
    ("min_over_time", true),
    ("max_over_time", true),
    ("sum_over_time", true),
    ("count_over_time", true),
    ("last_over_time", true),
    ("absent_over_time", true),
    ("absent", false),
    ("time", false),
    ("vector", false),
    ("scalar", false),
];

/// Aggregation operators the evaluator implements.
pub const AGGREGATIONS: &[&str] = &["sum", "avg", "max", "min", "count", "group"];

const ARITHMETIC: &[&str] = &["+", "-", "*", "/", "%", "^", "atan2"];
const COMPARISON: &[&str] = &["==", "!=", ">", "<", ">=", "<="];
const SET: &[&str] = &["and", "or", "unless"];

/// A parsed expression inside the subset, with its source text.
#[derive(Clone, Debug)]
pub struct Query {
    pub text: String,
    pub expr: Expr,
}

impl Query {
    /// Parses `text` and checks it against the subset. The error says what is wrong; callers
    /// add the file, line and expression.
    pub fn parse(text: &str) -> Result<Query, String> {
        let expr = parser::parse(text).map_err(|e| format!("cannot parse: {}", e.trim()))?;
        check(&expr)?;
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => Ok(Query { text: text.to_string(), expr }),
            other => Err(format!("the expression must give an instant vector or a scalar, not a {other}")),
        }
    }
}

/// Walks `expr` and rejects every construct outside the subset.
pub fn check(expr: &Expr) -> Result<(), String> {
    match expr {
        Expr::NumberLiteral(_) => Ok(()),
        Expr::Paren(p) => check(&p.expr),
        Expr::Unary(u) => check(&u.expr),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs),
        Expr::StringLiteral(_) => Err("string literals are outside regsim's PromQL subset".into()),
        Expr::Subquery(_) => Err("subqueries are outside regsim's PromQL subset".into()),
        Expr::Extension(_) => Err("extension expressions are outside regsim's PromQL subset".into()),
        Expr::Call(c) => {
            let name = c.func.name;
            let Some((_, range_arg)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
                return Err(format!("function {name}() is outside regsim's PromQL subset"));
            };
            for arg in &c.args.args {
                if *range_arg && !matches!(arg.as_ref(), Expr::MatrixSelector(_)) {
                    return Err(format!("{name}() takes a range vector selector such as x[5m] in regsim's subset"));
                }
                check(arg)?;
            }
            Ok(())
        }
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if !AGGREGATIONS.contains(&op.as_str()) || a.param.is_some() {
                return Err(format!("aggregation {op} is outside regsim's PromQL subset"));
            }
            check(&a.expr)
        }
        Expr::Binary(b) => {
            let op = b.op.to_string();
            let op = op.as_str();
            if !(ARITHMETIC.contains(&op) || COMPARISON.contains(&op) || SET.contains(&op)) {
                return Err(format!("operator {op} is outside regsim's PromQL subset"));
            }
            if let Some(m) = &b.modifier {
                if matches!(m.card, VectorMatchCardinality::ManyToOne(_) | VectorMatchCardinality::OneToMany(_)) {
                    return Err("group_left / group_right are outside regsim's PromQL subset".into());
                }
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return Err("fill modifiers are outside regsim's PromQL subset".into());
                }
            }
            check(&b.lhs)?;
            check(&b.rhs)
        }
    }
}

fn check_selector(vs: &parser::VectorSelector) -> Result<(), String> {
    if vs.at.is_some() {
        return Err("the @ modifier is outside regsim's PromQL subset".into());
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err("`or` inside label matchers is outside regsim's PromQL subset".into());
    }
    Ok(())
}

/// Is `op` a comparison operator?
pub fn is_comparison(op: &str) -> bool {
    COMPARISON.contains(&op)
}

/// Is `op` a set operator (`and`, `or`, `unless`)?
pub fn is_set(op: &str) -> bool {
    SET.contains(&op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_subset() {
        for q in [
            "up == 0",
            "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.05",
            "absent(up{job=\"api\"})",
            "avg_over_time(x[10m] offset 1m) > bool 3",
            "count without (instance) (up) - 1",
            "a and on (job) b or c unless ignoring (x) d",
            "-x",
            "1 + 2",
            "time() - vector(1)",
        ] {
            assert!(Query::parse(q).is_ok(), "{q}: {:?}", Query::parse(q).err());
        }
    }

    #[test]
    fn rejects_the_rest_with_a_reason() {
        for (q, why) in [
            ("topk(3, x)", "aggregation topk"),
            ("histogram_quantile(0.9, x)", "function histogram_quantile()"),
            ("rate(x[5m])[10m:1m]", "subqueries"),
            ("x @ 100", "@ modifier"),
            ("a * on (job) group_left b", "group_left"),
            ("x[5m]", "not a matrix"),
            ("rate(sum(x))", "parse"),
            ("sum(", "cannot parse"),
        ] {
            let err = Query::parse(q).err().unwrap_or_default();
            assert!(err.contains(why), "{q}: {err}");
        }
    }
}
