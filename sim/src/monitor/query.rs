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
//!
//! Size limits, checked before the parser sees the text ([`check_size`]): at most
//! [`MAX_EXPR_BYTES`] bytes and [`MAX_NESTING`] levels of brackets; after parsing, at most
//! [`MAX_DEPTH`] levels of sub-expressions (a chain `a + b + c ...` is one level per operator).
//! The parser, the checks, the evaluator and dropping the tree all recurse on the depth: 30,000
//! parentheses or a 10,000-term sum overflowed the stack before these limits, and deep nesting
//! made the parser super-linear (20,000 nested `sum(` took over 20 s). Prometheus itself has no
//! such limits; rule expressions in the wild are far below them.

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

/// Longest expression accepted, in bytes.
pub const MAX_EXPR_BYTES: usize = 16 * 1024;
/// Deepest nesting of `(`, `[` and `{` accepted.
pub const MAX_NESTING: usize = 64;
/// Deepest expression tree accepted (operators, calls, aggregations, parentheses).
pub const MAX_DEPTH: usize = 256;

/// Rejects a text too long or too deeply bracketed to parse safely (see the module doc).
/// String literals (`"..."`, `'...'`, `` `...` ``) and `#` comments are skipped.
pub fn check_size(text: &str) -> Result<(), String> {
    if text.len() > MAX_EXPR_BYTES {
        return Err(format!("expression of {} bytes: at most {MAX_EXPR_BYTES} are accepted", text.len()));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('`'), '`') => quote = None,
            (Some(q), '\\') if q != '`' => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '#') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            (None, '(' | '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(format!("brackets nested {deepest} deep: at most {MAX_NESTING} levels are accepted"));
    }
    Ok(())
}

/// The children of one node of the tree.
fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Paren(p) => vec![&p.expr],
        Expr::Unary(u) => vec![&u.expr],
        Expr::Subquery(q) => vec![&q.expr],
        Expr::Call(c) => c.args.args.iter().map(|a| a.as_ref()).collect(),
        Expr::Aggregate(a) => std::iter::once(a.expr.as_ref()).chain(a.param.as_deref()).collect(),
        Expr::Binary(b) => vec![&b.lhs, &b.rhs],
        _ => Vec::new(),
    }
}

/// The depth of `expr`'s tree, walked without recursion; stops counting past `MAX_DEPTH`.
fn depth(expr: &Expr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(expr, 1usize)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        if d > MAX_DEPTH {
            break;
        }
        stack.extend(children(e).into_iter().map(|c| (c, d + 1)));
    }
    deepest
}

/// Parses `text` (within the size limits) into a tree within [`MAX_DEPTH`].
pub fn parse_expr(text: &str) -> Result<Expr, String> {
    check_size(text)?;
    let expr = parser::parse(text).map_err(|e| format!("cannot parse: {}", e.trim()))?;
    if depth(&expr) > MAX_DEPTH {
        return Err(format!("expression more than {MAX_DEPTH} levels deep (e.g. a chain of that many operators)"));
    }
    Ok(expr)
}

impl Query {
    /// Parses `text` and checks it against the subset. The error says what is wrong; callers
    /// add the file, line and expression.
    pub fn parse(text: &str) -> Result<Query, String> {
        let expr = parse_expr(text)?;
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

    /// Inputs that overflowed the stack or parsed for tens of seconds are refused quickly;
    /// the largest accepted ones parse and check.
    #[test]
    fn size_and_depth_are_limited() {
        let deep_parens = format!("{}up{}", "(".repeat(30_000), ")".repeat(30_000));
        let long_sum = vec!["up"; 10_000].join(" + ");
        let nested_sums = format!("{}up{}", "sum(".repeat(20_000), ")".repeat(20_000));
        for (q, why) in [
            (deep_parens.as_str(), "bytes"),
            (long_sum.as_str(), "bytes"),
            (nested_sums.as_str(), "bytes"),
            (&format!("{}up{}", "(".repeat(65), ")".repeat(65)), "nested 65 deep"),
            (&vec!["up"; 300].join(" + "), "levels deep"),
        ] {
            let err = Query::parse(q).err().unwrap_or_default();
            assert!(err.contains(why), "{}...: {err}", &q[..20]);
        }
        assert!(Query::parse(&format!("{}up{}", "(".repeat(64), ")".repeat(64))).is_ok());
        assert!(Query::parse(&vec!["up"; 250].join(" + ")).is_ok());
        assert!(Query::parse(&format!("{}up{}", "sum(".repeat(64), ")".repeat(64))).is_ok());
        // Brackets inside strings and comments do not count.
        assert!(check_size(&format!("up{{job=\"{}\"}} # {}", "(".repeat(100), "[".repeat(100))).is_ok());
    }
}
