//! Aggregation operators: `sum`, `avg`, `max`, `min`, `count`, `group` with `by` / `without`.
//!
//! Model: Prometheus 2.x's `aggregation`: the input is split into groups by the `by` labels
//! (or all labels but the `without` ones and the metric name; no clause means one group), each
//! group keeps exactly its grouping labels, and values are folded in input order with
//! Prometheus's arithmetic (a plain running sum, the incremental mean for `avg`, a NaN replaced
//! by any later value for `max`/`min`). Groups are kept in a `BTreeMap`, so the output is in
//! label order whatever the input order.

use std::collections::BTreeMap;

use promql_parser::parser::LabelModifier;

use super::labels::Labels;
use super::value::{Element, EvalError, Vector};

struct Group {
    value: f64,
    mean: f64,
    count: f64,
}

/// Aggregates `v` with `op` and the grouping `modifier`.
pub fn aggregate(op: &str, modifier: Option<&LabelModifier>, v: Vector) -> Result<Vector, EvalError> {
    let key = |l: &Labels| match modifier {
        Some(LabelModifier::Include(names)) => l.keep(&names.labels),
        Some(LabelModifier::Exclude(names)) => l.drop_names(&names.labels).without_name(),
        None => Labels::empty(),
    };
    let mut groups: BTreeMap<Labels, Group> = BTreeMap::new();
    for e in v {
        let k = key(&e.labels);
        let Some(g) = groups.get_mut(&k) else {
            groups.insert(k, Group { value: e.value, mean: e.value, count: 1.0 });
            continue;
        };
        g.count += 1.0;
        let s = e.value;
        match op {
            "sum" => g.value += s,
            "avg" => {
                if g.mean.is_infinite() {
                    if s.is_infinite() && (g.mean > 0.0) == (s > 0.0) {
                        continue;
                    }
                    if !s.is_infinite() && !s.is_nan() {
                        continue;
                    }
                }
                g.mean += s / g.count - g.mean / g.count;
            }
            "max" if g.value < s || g.value.is_nan() => g.value = s,
            "min" if g.value > s || g.value.is_nan() => g.value = s,
            "max" | "min" | "count" | "group" => {}
            _ => return Err(EvalError(format!("aggregation {op} is outside regsim's subset"))),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(labels, g)| {
            let value = match op {
                "avg" => g.mean,
                "count" => g.count,
                "group" => 1.0,
                _ => g.value,
            };
            Element { labels, value }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::eval::tests::{query, store};

    #[test]
    fn by_without_and_none() {
        let s = store(&[
            ("up{job=\"api\",instance=\"a\"}", &[(0, 1.0)]),
            ("up{job=\"api\",instance=\"b\"}", &[(0, 0.0)]),
            ("up{job=\"db\",instance=\"c\"}", &[(0, 1.0)]),
        ]);
        assert_eq!(query(&s, "sum(up)", 0).expect("q"), vec![("{}".into(), 2.0)]);
        assert_eq!(
            query(&s, "count by (job) (up)", 0).expect("q"),
            vec![("{job=\"api\"}".into(), 2.0), ("{job=\"db\"}".into(), 1.0)]
        );
        assert_eq!(
            query(&s, "avg without (instance) (up)", 0).expect("q"),
            vec![("{job=\"api\"}".into(), 0.5), ("{job=\"db\"}".into(), 1.0)]
        );
        assert_eq!(query(&s, "min by (job) (up)", 0).expect("q")[0].1, 0.0);
        assert_eq!(query(&s, "max by (job) (up)", 0).expect("q")[0].1, 1.0);
        assert_eq!(query(&s, "group by (nope) (up)", 0).expect("q"), vec![("{}".into(), 1.0)]);
        assert_eq!(query(&s, "sum by (__name__) (up)", 0).expect("q"), vec![("up".into(), 2.0)]);
        assert!(query(&s, "sum(nope)", 0).expect("q").is_empty(), "no input, no group");
    }
}
