//! `compare` for every measurement family: side-by-side rows (one value per variant) for the
//! families the scenario exercises — detection, wrongful evictions, availability, staleness
//! and consistency, leader elections, load, alerts, the API gateway, cost — each row saying
//! which direction is better, so the table can mark the best variant. A row appears only when
//! some variant has a value; a family only when it has a row.

use serde::Serialize;

use super::markdown::{kind_name, stage_title, verdict_words};
use super::model::Report;
use crate::metrics::Summary;

/// Which way a row improves.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Lower,
    Higher,
    /// A count or a verdict: no better value.
    Neither,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Row {
    pub label: String,
    pub better: Better,
    /// One per variant (`None`: no value, e.g. no sample).
    pub values: Vec<Option<f64>>,
    /// The cells as printed.
    pub cells: Vec<String>,
}

impl Row {
    /// The variants holding the best value, when the values differ (none otherwise).
    pub fn best(&self) -> Vec<usize> {
        let vals: Vec<(usize, f64)> = self.values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).collect();
        if vals.len() < 2 || vals.iter().all(|v| v.1 == vals[0].1) {
            return Vec::new();
        }
        let pick = match self.better {
            Better::Lower => vals.iter().map(|v| v.1).fold(f64::INFINITY, f64::min),
            Better::Higher => vals.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max),
            Better::Neither => return Vec::new(),
        };
        vals.iter().filter(|v| v.1 == pick).map(|v| v.0).collect()
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub rows: Vec<Row>,
}

struct Builder<'a> {
    reports: &'a [&'a Report],
    rows: Vec<Row>,
}

impl<'a> Builder<'a> {
    /// A numeric row; left out when no variant has a value.
    fn num(&mut self, label: &str, better: Better, f: impl Fn(&Report) -> Option<f64>, fmt: impl Fn(f64) -> String) {
        let values: Vec<Option<f64>> = self.reports.iter().map(|r| f(r)).collect();
        if values.iter().all(Option::is_none) {
            return;
        }
        let cells = values.iter().map(|v| v.map_or("–".to_string(), &fmt)).collect();
        self.rows.push(Row { label: label.to_string(), better, values, cells });
    }

    /// A row whose cell is not just the value (e.g. "3 of 40" for a share).
    fn row(&mut self, label: &str, better: Better, f: impl Fn(&Report) -> Option<(f64, String)>) {
        let pairs: Vec<Option<(f64, String)>> = self.reports.iter().map(|r| f(r)).collect();
        if pairs.iter().all(Option::is_none) {
            return;
        }
        let values = pairs.iter().map(|p| p.as_ref().map(|x| x.0)).collect();
        let cells = pairs.into_iter().map(|p| p.map_or("–".to_string(), |x| x.1)).collect();
        self.rows.push(Row { label: label.to_string(), better, values, cells });
    }

    /// A text row (no better value); left out when every cell is empty.
    fn text(&mut self, label: &str, f: impl Fn(&Report) -> Option<String>) {
        let cells: Vec<Option<String>> = self.reports.iter().map(|r| f(r)).collect();
        if cells.iter().all(Option::is_none) {
            return;
        }
        let values = vec![None; cells.len()];
        let cells = cells.into_iter().map(|c| c.unwrap_or_else(|| "–".into())).collect();
        self.rows.push(Row { label: label.to_string(), better: Better::Neither, values, cells });
    }

    fn take(&mut self, name: &'static str, out: &mut Vec<Family>) {
        let rows = std::mem::take(&mut self.rows);
        if !rows.is_empty() {
            out.push(Family { name, rows });
        }
    }
}

fn secs(x: f64) -> String {
    format!("{x:.3} s")
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn count(x: f64) -> String {
    format!("{x:.0}")
}

fn q(s: &Summary, f: fn(&Summary) -> f64) -> Option<f64> {
    (s.count > 0).then(|| f(s))
}

/// Every family the variants' reports exercise, in the report's order.
pub fn families(reports: &[&Report]) -> Vec<Family> {
    let mut out = Vec::new();
    let mut b = Builder { reports, rows: Vec::new() };
    let crashes = |r: &Report| r.detection.unhealthy.summary.count + r.detection.unhealthy.missed;
    if reports.iter().any(|r| crashes(r) > 0) {
        b.num("crash episodes", Better::Neither, |r| Some(crashes(r) as f64), count);
        let names: Vec<&'static str> = reports[0].detection.stages().iter().map(|s| s.0).collect();
        for name in names {
            let stage = |r: &Report| r.detection.stages().into_iter().find(|s| s.0 == name).map(|s| s.1.clone());
            let t = stage_title(name);
            b.num(&format!("{t}: p50"), Better::Lower, |r| stage(r).and_then(|s| q(&s.summary, |m| m.p50_s)), secs);
            b.num(&format!("{t}: p99"), Better::Lower, |r| stage(r).and_then(|s| q(&s.summary, |m| m.p99_s)), secs);
            // As a share of the variant's episodes: variants crash different numbers of times.
            // A variant that never reaches the stage at all (CP deletes nothing) is shown but not
            // ranked: the stage is not part of its design, so "fewer misses" would mislead.
            b.row(&format!("{t}: never (restarted or run ended first)"), Better::Lower, |r| {
                let s = stage(r)?;
                let all = s.summary.count + s.missed;
                (all > 0).then(|| (s.missed as f64 / all as f64, format!("{} of {all}", s.missed)))
            });
            if let Some(row) = b.rows.last_mut().filter(|row| row.label.starts_with(&format!("{t}: never"))) {
                for (v, r) in row.values.iter_mut().zip(reports) {
                    if stage(r).is_some_and(|s| s.summary.count == 0) {
                        *v = None;
                    }
                }
            }
        }
    }
    b.take("Detection (from the crash)", &mut out);
    let instances = |r: &Report| r.topology.get("instances").is_some_and(|n| *n > 0);
    let fp = |r: &Report| instances(r).then(|| r.false_positives.clone());
    b.num("outages of live instances", Better::Lower, |r| fp(r).map(|f| f.count as f64), count);
    b.num("per instance-hour", Better::Lower, |r| fp(r).map(|f| f.per_instance_hour), |x| format!("{x:.4}"));
    b.num("came back (flaps)", Better::Neither, |r| fp(r).map(|f| f.flaps as f64), count);
    b.take("Wrongful evictions", &mut out);
    let kinds: std::collections::BTreeSet<crate::protocol::RequestKind> =
        reports.iter().flat_map(|r| r.availability.overall.keys().copied()).collect();
    for (window, pick) in [
        ("overall", (|r: &Report| &r.availability.overall) as fn(&Report) -> &super::model::RatioByKind),
        ("during faults", |r: &Report| &r.availability.during_faults),
    ] {
        for k in &kinds {
            b.num(
                &format!("{}, {window}", kind_name(k)),
                Better::Higher,
                |r| pick(r).get(k).and_then(|x| x.fraction),
                pct,
            );
        }
    }
    let sides: std::collections::BTreeSet<&String> =
        reports.iter().flat_map(|r| r.availability.by_side.keys()).collect();
    for side in sides {
        for k in &kinds {
            b.num(
                &format!("{}, partition side {side}", kind_name(k)),
                Better::Higher,
                |r| r.availability.by_side.get(side).and_then(|m| m.get(k)).and_then(|x| x.fraction),
                pct,
            );
        }
    }
    b.take("Availability (requests that succeeded)", &mut out);
    b.num("views wrong, mean", Better::Lower, |r| r.staleness.as_ref().map(|s| s.mean_fraction_wrong), pct);
    b.num(
        "longest a view stayed wrong",
        Better::Lower,
        |r| r.staleness.as_ref().map(|s| s.worst_wrong_duration_s),
        secs,
    );
    b.num(
        "stale lists",
        Better::Lower,
        |r| (r.consistency.lists > 0).then(|| r.consistency.stale_lists as f64 / r.consistency.lists as f64),
        pct,
    );
    b.num("stale lists: worst age", Better::Lower, |r| r.consistency.stale.as_ref().map(|s| s.worst_age_s), secs);
    b.text("linearizability", |r| {
        (r.consistency.verdict != "not_checked" && r.consistency.ops > 0)
            .then(|| verdict_words(&r.consistency).replace("**", ""))
    });
    b.num(
        "converged after the last heal",
        Better::Lower,
        |r| r.convergence.last().and_then(|c| c.converged_after_s),
        |x| format!("{x:.1} s"),
    );
    b.text("heals not converged by the end", |r| {
        let n = r.convergence.iter().filter(|c| c.converged_after_s.is_none()).count();
        (!r.convergence.is_empty()).then(|| n.to_string())
    });
    b.take("What consumers saw", &mut out);
    let el = |r: &Report| r.elections.as_ref().filter(|e| e.incidents + e.unresolved > 0).cloned();
    b.num("leader failures", Better::Neither, |r| el(r).map(|e| e.incidents as f64), count);
    b.num("time to a new leader: p50", Better::Lower, |r| el(r).and_then(|e| q(&e.downtime, |m| m.p50_s)), secs);
    b.num("time to a new leader: p99", Better::Lower, |r| el(r).and_then(|e| q(&e.downtime, |m| m.p99_s)), secs);
    b.num("time to a new leader: max", Better::Lower, |r| el(r).and_then(|e| q(&e.downtime, |m| m.max_s)), secs);
    b.num("split votes", Better::Lower, |r| el(r).map(|e| e.split_votes as f64), count);
    b.num("unresolved at the end", Better::Lower, |r| el(r).map(|e| e.unresolved as f64), count);
    let iso = |r: &Report| r.elections.as_ref().and_then(|e| e.isolations.first().cloned());
    b.num("cut-off leader stepped down after", Better::Lower, |r| iso(r).and_then(|i| i.stepped_down_after_s), secs);
    b.num("cut-off leader's term growth", Better::Lower, |r| iso(r).map(|i| i.term_growth_while_cut as f64), count);
    b.num("elections after the heal", Better::Lower, |r| iso(r).map(|i| i.elected_after_heal as f64), count);
    b.take("Leader elections", &mut out);
    let balancers: std::collections::BTreeSet<&String> =
        reports.iter().flat_map(|r| r.load.iter().flatten().map(|l| l.0)).collect();
    for name in balancers {
        let l = |r: &Report| r.load.as_ref().and_then(|m| m.get(name)).cloned();
        b.num(
            &format!("{name}: busiest / mean"),
            Better::Lower,
            |r| l(r).and_then(|l| l.overall.map(|b| b.max_over_mean)),
            |x| format!("{x:.3}"),
        );
        b.num(
            &format!("{name}: p99 latency"),
            Better::Lower,
            |r| l(r).map(|l| l.latency.p99_s * 1e3),
            |x| format!("{x:.1} ms"),
        );
        b.num(&format!("{name}: sent to dead"), Better::Lower, |r| l(r).map(|l| l.sent_to_dead_fraction), pct);
    }
    b.take("Load", &mut out);
    let rules: Vec<String> = reports
        .iter()
        .flat_map(|r| r.alerts.iter().flat_map(|a| a.rules.iter().map(|x| x.alert.clone())))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for alert in &rules {
        let rule = |r: &Report| r.alerts.as_ref().and_then(|a| a.rules.iter().find(|x| &x.alert == alert).cloned());
        b.num(
            &format!("{alert}: fired for (of the crashes)"),
            Better::Higher,
            |r| rule(r).map(|x| x.alert_firing.count as f64),
            count,
        );
        b.num(
            &format!("{alert}: firing p50"),
            Better::Lower,
            |r| rule(r).and_then(|x| q(&x.alert_firing, |m| m.p50_s)),
            secs,
        );
        b.num(
            &format!("{alert}: firing max"),
            Better::Lower,
            |r| rule(r).and_then(|x| q(&x.alert_firing, |m| m.max_s)),
            secs,
        );
    }
    b.take("Alerts", &mut out);
    b.num("error ratio", Better::Lower, |r| r.api.as_ref().map(|a| a.error_ratio), |x| format!("{:.4} %", x * 100.0));
    b.num("p99 latency", Better::Lower, |r| r.api.as_ref().map(|a| a.latency_s.p99_s * 1e3), |x| format!("{x:.1} ms"));
    b.num(
        "traffic to a crashed instance stopped after (mean)",
        Better::Lower,
        |r| r.api.as_ref().and_then(|a| q(&a.stopped_after_s, |m| m.mean_s)),
        secs,
    );
    b.num(
        "failed requests before the stop",
        Better::Lower,
        |r| r.api.as_ref().map(|a| a.failed_requests_before_stop as f64),
        count,
    );
    b.take("API gateway", &mut out);
    b.num("messages sent", Better::Lower, |r| Some(r.network.sent as f64), count);
    b.num("simulation events", Better::Neither, |r| Some(r.events as f64), count);
    b.text("invariants failed", |r| {
        let failed: Vec<&str> = r.invariants.iter().filter(|i| !i.holds).map(|i| i.name).collect();
        Some(if failed.is_empty() { "none".to_string() } else { failed.join(", ") })
    });
    b.take("Cost and checks", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(better: Better, values: &[Option<f64>]) -> Row {
        Row { label: "x".into(), better, values: values.to_vec(), cells: Vec::new() }
    }

    #[test]
    fn the_best_value_is_marked_only_when_values_differ() {
        assert_eq!(row(Better::Lower, &[Some(2.0), Some(1.0), Some(1.0)]).best(), vec![1, 2]);
        assert_eq!(row(Better::Higher, &[Some(2.0), None, Some(1.0)]).best(), vec![0]);
        assert!(row(Better::Lower, &[Some(1.0), Some(1.0)]).best().is_empty(), "ties everywhere: nothing marked");
        assert!(row(Better::Neither, &[Some(1.0), Some(3.0)]).best().is_empty());
        assert!(row(Better::Lower, &[Some(1.0), None]).best().is_empty(), "one value: nothing to compare");
    }
}
