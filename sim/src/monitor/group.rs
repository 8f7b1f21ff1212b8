//! Rule groups: evaluation, recording, rule health, error isolation and quarantine.
//!
//! Model: Prometheus 2.x's `Group.Eval`. The rules of a group run in file order at the same
//! timestamp `t`. A recording rule's result is renamed to the rule's name, relabelled and
//! written back into the store; an alerting rule advances its state machine
//! ([`super::alerting`]) and writes `ALERTS` / `ALERTS_FOR_STATE`. A series a rule wrote at the
//! previous evaluation and not at this one gets a staleness marker.
//!
//! Exception handling (issue 9: one broken rule must not stop the rest): a rule whose
//! evaluation fails — many-to-many matching, a duplicate label set, a sample limit, an append
//! the store refuses, even a panic inside the evaluator (caught, as Prometheus recovers from
//! panics in its engine) — gets health `err` and `last_error`, and the group goes on with its
//! next rule; other groups are not affected. regsim adds a quarantine: after
//! `quarantine_after` consecutive failures (0: never) a rule is no longer evaluated, its
//! series are marked stale and its alerts dropped, and the rule's status says so. A success
//! resets the count.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::alerting::{AlertingRule, Transitions};
use super::eval::{Vector, instant_query};
use super::labels::{Labels, METRIC_NAME};
use super::rulefile::{GroupSpec, RuleKind, RuleSpec};
use super::store::Store;

/// Rule health, as Prometheus's `/api/v1/rules` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// Engine options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Quarantine a rule after this many consecutive failed evaluations (0: never).
    pub quarantine_after: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { quarantine_after: 10 }
    }
}

/// One rule with its runtime status.
#[derive(Clone, Debug)]
pub struct Rule {
    pub spec: RuleSpec,
    pub health: Health,
    pub last_error: Option<String>,
    pub evaluations: u64,
    pub errors: u64,
    pub consecutive_errors: u32,
    pub quarantined: bool,
    /// How often an alert of this rule went from pending to firing.
    pub times_fired: u64,
    pub alerting: Option<AlertingRule>,
    previous: BTreeSet<Labels>,
}

/// What happened to one rule in one group evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleOutcome {
    pub rule: String,
    pub error: Option<String>,
    /// Set when this evaluation quarantined the rule.
    pub quarantined: bool,
    pub transitions: Transitions,
}

/// A rule group with its rules' state.
#[derive(Clone, Debug)]
pub struct Group {
    pub file: String,
    pub name: String,
    pub interval_ms: Option<i64>,
    pub limit: usize,
    pub rules: Vec<Rule>,
}

impl Group {
    pub fn new(spec: &GroupSpec) -> Group {
        let rules = spec
            .rules
            .iter()
            .map(|r| Rule {
                spec: r.clone(),
                health: Health::Unknown,
                last_error: None,
                evaluations: 0,
                errors: 0,
                consecutive_errors: 0,
                quarantined: false,
                times_fired: 0,
                alerting: match &r.kind {
                    RuleKind::Alert { for_ms, keep_firing_for_ms, annotations } => Some(AlertingRule::new(
                        &r.name,
                        *for_ms,
                        *keep_firing_for_ms,
                        r.labels.clone(),
                        annotations.clone(),
                    )),
                    RuleKind::Record => None,
                },
                previous: BTreeSet::new(),
            })
            .collect();
        Group {
            file: spec.file.clone(),
            name: spec.name.clone(),
            interval_ms: spec.interval_ms,
            limit: spec.limit,
            rules,
        }
    }

    /// Evaluates every rule at `t`, in order, writing results into `store`. Never fails: a
    /// failing rule is recorded in its status and in the returned outcomes.
    pub fn eval(&mut self, store: &mut Store, t: i64, cfg: &EngineConfig) -> Vec<RuleOutcome> {
        let limit = self.limit;
        let mut outcomes = Vec::new();
        for rule in &mut self.rules {
            if rule.quarantined {
                continue;
            }
            rule.evaluations += 1;
            let result = rule_samples(rule, store, t, limit);
            let outcome = match result {
                Ok((samples, transitions)) => match write(rule, store, t, samples) {
                    Ok(()) => {
                        rule.health = Health::Ok;
                        rule.last_error = None;
                        rule.consecutive_errors = 0;
                        rule.times_fired += transitions.firing.len() as u64;
                        RuleOutcome { rule: rule.spec.name.clone(), error: None, quarantined: false, transitions }
                    }
                    Err(e) => fail(rule, store, t, e, cfg),
                },
                Err(e) => fail(rule, store, t, e, cfg),
            };
            outcomes.push(outcome);
        }
        outcomes
    }
}

/// Runs the rule's query (panics caught) and turns the result into samples to write.
fn rule_samples(
    rule: &mut Rule,
    store: &Store,
    t: i64,
    limit: usize,
) -> Result<(Vec<(Labels, f64)>, Transitions), String> {
    let query = &rule.spec.query;
    let vector: Vector = match catch_unwind(AssertUnwindSafe(|| instant_query(store, query, t))) {
        Ok(Ok(v)) => v.into_vector(),
        Ok(Err(e)) => return Err(e.0),
        Err(_) => return Err(format!("internal error: evaluation of {:?} panicked", query.text)),
    };
    match &mut rule.alerting {
        Some(a) => a.eval(vector, t, limit),
        None => {
            let mut out = Vec::with_capacity(vector.len());
            let mut seen = BTreeSet::new();
            for e in vector {
                let mut labels = e.labels;
                labels.set(METRIC_NAME.into(), rule.spec.name.clone());
                for (k, v) in &rule.spec.labels {
                    labels.set(k.clone(), v.clone());
                }
                if !seen.insert(labels.clone()) {
                    return Err("vector contains metrics with the same labelset after applying rule labels".into());
                }
                out.push((labels, e.value));
            }
            if limit > 0 && out.len() > limit {
                return Err(format!("exceeded limit of {limit} with {} series", out.len()));
            }
            Ok((out, Transitions::default()))
        }
    }
}

/// Appends the samples and staleness markers for series no longer returned.
fn write(rule: &mut Rule, store: &mut Store, t: i64, samples: Vec<(Labels, f64)>) -> Result<(), String> {
    let mut now = BTreeSet::new();
    let mut first_error = None;
    for (labels, v) in samples {
        match store.append(&labels, t, v) {
            Ok(()) => {
                now.insert(labels);
            }
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    for gone in rule.previous.difference(&now) {
        // A marker the store refuses (an out-of-order series) changes nothing for the reader.
        let _ = store.mark_stale(gone, t);
    }
    rule.previous = now;
    first_error.map_or(Ok(()), Err)
}

fn fail(rule: &mut Rule, store: &mut Store, t: i64, error: String, cfg: &EngineConfig) -> RuleOutcome {
    rule.health = Health::Err;
    rule.last_error = Some(error.clone());
    rule.errors += 1;
    rule.consecutive_errors += 1;
    let quarantine = cfg.quarantine_after > 0 && rule.consecutive_errors >= cfg.quarantine_after;
    if quarantine {
        rule.quarantined = true;
        for gone in std::mem::take(&mut rule.previous) {
            let _ = store.mark_stale(&gone, t);
        }
        if let Some(a) = &mut rule.alerting {
            a.clear();
        }
    }
    RuleOutcome {
        rule: rule.spec.name.clone(),
        error: Some(error),
        quarantined: quarantine,
        transitions: Transitions::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::eval::tests::store;
    use super::super::rulefile::parse;
    use super::*;

    const RULES: &str = "groups:
  - name: a
    rules:
      - record: job:errors:sum
        expr: sum by (job) (errors)
      - record: broken
        expr: errors / on (job) limit
      - alert: Errors
        expr: job:errors:sum > 1
  - name: b
    rules:
      - alert: Always
        expr: vector(1)
";

    fn groups() -> Vec<Group> {
        parse(RULES, "r.yml").expect("rules").groups.iter().map(Group::new).collect()
    }

    fn data() -> Store {
        store(&[
            ("errors{job=\"api\",instance=\"a\"}", &[(0, 2.0), (60_000, 2.0), (120_000, 2.0)]),
            ("errors{job=\"api\",instance=\"b\"}", &[(0, 1.0), (60_000, 1.0), (120_000, 1.0)]),
            ("limit{job=\"api\"}", &[(0, 1.0)]),
        ])
    }

    #[test]
    fn a_failing_rule_does_not_stop_its_group_or_others() {
        let mut gs = groups();
        let mut s = data();
        let cfg = EngineConfig { quarantine_after: 0 };
        for g in &mut gs {
            g.eval(&mut s, 0, &cfg);
        }
        let a = &gs[0];
        assert_eq!(a.rules[0].health, Health::Ok);
        assert_eq!(a.rules[1].health, Health::Err);
        let err = a.rules[1].last_error.clone().unwrap_or_default();
        assert!(err.contains("multiple matches for labels"), "{err}");
        assert_eq!(a.rules[2].health, Health::Ok, "the rule after the broken one ran");
        assert_eq!(a.rules[2].times_fired, 1, "and its alert fired (for 0)");
        assert_eq!(gs[1].rules[0].health, Health::Ok);
        // The recording rule wrote into the store, renamed and without the summed label.
        let recorded: Vec<String> =
            s.select(|l| l.name() == Some("job:errors:sum")).map(|(l, _)| l.to_string()).collect();
        assert_eq!(recorded, vec!["job:errors:sum{job=\"api\"}".to_string()]);
        assert!(s.select(|l| l.name() == Some("ALERTS")).count() >= 2);
    }

    #[test]
    fn quarantine_after_n_consecutive_errors() {
        let mut gs = groups();
        let mut s = data();
        let cfg = EngineConfig { quarantine_after: 2 };
        let first = gs[0].eval(&mut s, 0, &cfg);
        assert!(!first[1].quarantined);
        let second = gs[0].eval(&mut s, 60_000, &cfg);
        assert!(second[1].quarantined);
        let third = gs[0].eval(&mut s, 120_000, &cfg);
        assert_eq!(third.len(), 2, "the quarantined rule is skipped");
        let broken = &gs[0].rules[1];
        assert_eq!((broken.evaluations, broken.errors, broken.quarantined), (2, 2, true));
        assert_eq!(broken.health, Health::Err);
        assert_eq!(gs[0].rules[2].evaluations, 3);
    }

    #[test]
    fn series_no_longer_returned_go_stale() {
        let mut gs = groups();
        let mut s = store(&[
            ("errors{job=\"api\",instance=\"a\"}", &[(0, 2.0), (60_000, 0.0)]),
            ("errors{job=\"api\",instance=\"b\"}", &[(0, 1.0), (60_000, 0.0)]),
        ]);
        let cfg = EngineConfig::default();
        gs[0].eval(&mut s, 0, &cfg);
        let alerts = super::super::query::Query::parse("ALERTS").expect("q");
        assert_eq!(instant_query(&s, &alerts, 30_000).expect("eval").into_vector().len(), 1);
        // At 60 s the sum is 0: the alert resolves and its ALERTS series gets a staleness
        // marker, so it vanishes at once instead of lingering for the 5 m lookback.
        gs[0].eval(&mut s, 60_000, &cfg);
        assert!(instant_query(&s, &alerts, 60_000).expect("eval").into_vector().is_empty());
        assert_eq!(gs[0].rules[2].alerting.as_ref().map(|a| a.alerts().count()), Some(1), "resolved, retained");
    }
}
