//! Prometheus's `/federate` endpoint as pure code: what a global Prometheus receives when it
//! scrapes `/federate?match[]=...` of a regional one.
//!
//! Model (Prometheus 2.x `web/federate.go`, ANCHORS.md "Federation"): every `match[]` must be
//! a plain series selector (metric name and/or label matchers `=`, `!=`, `=~`, `!~`; no
//! offset, `@`, range, function or operator) matching at least one non-empty label, else the
//! request is refused (400). The answer holds every series that matches *any* selector, once
//! even if several match, with its latest sample at or before the scrape time and no older
//! than the lookback delta (5 m by default: the same window an instant query uses). A series
//! whose latest sample is a staleness marker is left out: the exposition formats cannot carry
//! one, and the federating server's own staleness handling ends the series instead. Samples
//! keep their original timestamps. Series come out in label order ([`Labels`] order, the
//! store's `BTreeMap`), never hash order.
//!
//! Left to the caller: Prometheus adds its `external_labels` (and an empty `instance`) to each
//! federated series; the federating scrape then applies `honor_labels`.

use promql_parser::parser::{self, Expr};

use super::eval::selector_matches;
use super::labels::Labels;
use super::query::Query;
use super::store::{Sample, Store, instant_value};

/// Checks that `query` is a plain vector selector, naming it in the error.
fn plain_selector(query: &Query) -> Result<&parser::VectorSelector, String> {
    let what = match &query.expr {
        Expr::VectorSelector(vs) if vs.offset.is_some() => "a selector with offset",
        Expr::VectorSelector(vs) if vs.at.is_some() => "a selector with @",
        Expr::VectorSelector(vs) if !vs.matchers.or_matchers.is_empty() => "a selector with `or` matchers",
        Expr::VectorSelector(vs) => return Ok(vs),
        Expr::MatrixSelector(_) => "a range selector",
        Expr::Aggregate(_) => "an aggregation",
        Expr::Call(_) => "a function call",
        Expr::Binary(_) => "a binary expression",
        Expr::Unary(_) => "a unary expression",
        Expr::Paren(_) => "a parenthesized expression",
        Expr::NumberLiteral(_) => "a number",
        Expr::StringLiteral(_) => "a string",
        Expr::Subquery(_) => "a subquery",
        Expr::Extension(_) => "an extension expression",
    };
    Err(format!("match[] must be a series selector such as up{{job=\"api\"}}, got {what}: {}", query.text))
}

/// Parses `match[]` parameters into selectors, refusing anything but a plain selector.
pub fn parse_matchers(texts: &[String]) -> Result<Vec<Query>, String> {
    if texts.is_empty() {
        return Err("federation needs at least one match[] selector".into());
    }
    texts
        .iter()
        .map(|text| {
            let expr = super::query::parse_expr(text).map_err(|e| format!("match[] {text}: {e}"))?;
            let query = Query { text: text.clone(), expr };
            plain_selector(&query)?;
            Ok(query)
        })
        .collect()
}

/// The federation answer at `at_ms`: the latest non-stale sample within the store's lookback
/// of every series matching any of `matchers`, in label order.
pub fn federate(store: &Store, matchers: &[Query], at_ms: i64) -> Result<Vec<(Labels, Sample)>, String> {
    let selectors = matchers.iter().map(plain_selector).collect::<Result<Vec<_>, String>>()?;
    let lookback = store.lookback_ms();
    Ok(store
        .select(|l| selectors.iter().any(|vs| selector_matches(vs, l)))
        .filter_map(|(labels, samples)| instant_value(samples, at_ms, lookback).map(|s| (labels.clone(), s)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::store::stale_nan;

    fn m(name: &str, pairs: &[(&str, &str)]) -> Labels {
        Labels::metric(name, pairs)
    }

    fn texts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// At t = 600 s, lookback 5 m: which series are live, stale, or too old.
    fn store() -> Store {
        let mut s = Store::default();
        let mut put = |l: Labels, t: i64, v: f64| s.append(&l, t, v).expect("append");
        put(m("up", &[("job", "api"), ("instance", "a")]), 590_000, 1.0);
        put(m("up", &[("job", "api"), ("instance", "b")]), 580_000, 1.0);
        put(m("up", &[("job", "api"), ("instance", "b")]), 595_000, stale_nan()); // stale
        put(m("up", &[("job", "db"), ("instance", "c")]), 299_999, 1.0); // beyond lookback
        put(m("up", &[("job", "db"), ("instance", "d")]), 300_000, 0.0); // exactly at the edge
        put(m("up", &[("job", "db"), ("instance", "d")]), 600_001, 1.0); // after the scrape
        put(m("job:rate5m", &[("job", "api")]), 540_000, 2.5);
        put(m("job:rate5m", &[("job", "db")]), 400_000, 7.0);
        put(m("job:rate5m", &[("job", "db")]), 560_000, 8.0);
        put(m("other", &[("job", "api")]), 599_000, 3.0);
        s
    }

    fn run(sel: &[&str], at_ms: i64) -> Vec<(String, i64, f64)> {
        let q = parse_matchers(&texts(sel)).expect("parse");
        federate(&store(), &q, at_ms).expect("federate").into_iter().map(|(l, s)| (l.to_string(), s.t, s.v)).collect()
    }

    #[test]
    fn latest_sample_within_lookback_and_not_stale() {
        let got = run(&["up"], 600_000);
        assert_eq!(
            got,
            vec![
                (r#"up{instance="a", job="api"}"#.to_string(), 590_000, 1.0),
                (r#"up{instance="d", job="db"}"#.to_string(), 300_000, 0.0),
            ]
        );
        // One millisecond later d's sample at 300 s is past the lookback; its newer one counts.
        assert_eq!(
            run(&["up"], 600_001).iter().filter(|s| s.0.contains("\"d\"")).map(|s| s.1).collect::<Vec<_>>(),
            [600_001]
        );
        // Before b's staleness marker, b is federated with its last real sample.
        assert!(run(&["up"], 594_999).iter().any(|s| s.0.contains("\"b\"") && s.1 == 580_000));
    }

    #[test]
    fn overlapping_selectors_give_each_series_once_in_label_order() {
        let got = run(&[r#"{job="api"}"#, "up", r#"up{instance="a"}"#], 600_000);
        let names: Vec<&str> = got.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                r#"job:rate5m{job="api"}"#,
                r#"other{job="api"}"#,
                r#"up{instance="a", job="api"}"#,
                r#"up{instance="d", job="db"}"#,
            ]
        );
    }

    #[test]
    fn regex_and_negative_matchers() {
        let got = run(&[r#"{__name__=~"job:.*", job!="api"}"#], 600_000);
        assert_eq!(got, vec![(r#"job:rate5m{job="db"}"#.to_string(), 560_000, 8.0)]);
        let got = run(&[r#"up{instance!~"a|b", job=~"d."}"#], 600_000);
        assert_eq!(got.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), [r#"up{instance="d", job="db"}"#]);
        // A regex is anchored: "ap" does not match "api".
        assert!(run(&[r#"{job=~"ap"}"#], 600_000).is_empty());
    }

    #[test]
    fn non_selectors_are_refused_with_the_reason() {
        for (text, why) in [
            ("sum(up)", "an aggregation"),
            ("rate(up[5m])", "a function call"),
            ("up[5m]", "a range selector"),
            ("up offset 5m", "offset"),
            ("up @ 100", "with @"),
            ("up == 1", "a binary expression"),
            ("(up)", "parenthesized"),
            ("1", "a number"),
        ] {
            let err = parse_matchers(&texts(&["up", text])).err().unwrap_or_default();
            assert!(err.starts_with("match[] must be a series selector") && err.contains(why), "{text}: {err}");
            assert!(err.ends_with(text), "{text}: {err}");
        }
        let err = parse_matchers(&texts(&["up{"])).err().unwrap_or_default();
        assert!(err.starts_with("match[] up{: cannot parse"), "{err}");
        // Prometheus refuses a selector that matches every series.
        assert!(parse_matchers(&texts(&[r#"{job=~".*"}"#])).is_err());
        assert!(parse_matchers(&[]).is_err());
    }

    #[test]
    fn federate_checks_queries_built_elsewhere() {
        let q = Query::parse("sum(up)").expect("valid PromQL");
        let err = federate(&store(), &[q], 600_000).err().unwrap_or_default();
        assert!(err.contains("an aggregation"), "{err}");
    }
}
