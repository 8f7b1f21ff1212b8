//! The alert state machine of a Prometheus alerting rule.
//!
//! Model (Prometheus 2.x `AlertingRule.Eval`, ANCHORS.md "Monitoring"): each evaluation runs the
//! rule's expression; every returned series, relabelled (metric name dropped, rule labels and
//! `alertname` added), identifies one alert.
//!
//! - A new alert is *pending*, active since this evaluation's time.
//! - A pending alert becomes *firing* at the first evaluation with `t - active_since >= for`
//!   (so `for: 0` fires at once).
//! - When the expression stops returning it, a pending alert is dropped at once; a firing one
//!   resolves at once (state *inactive*, `resolved_at = t`), unless `keep_firing_for` is set:
//!   then it stays firing while `t - keep_firing_since < keep_firing_for`, where
//!   `keep_firing_since` is the first evaluation that no longer returned it (reset when it is
//!   returned again).
//! - Resolved alerts are kept 15 minutes so that Alertmanager hears they resolved.
//!
//! Each evaluation also yields the `ALERTS{alertstate="pending"|"firing"}` = 1 and
//! `ALERTS_FOR_STATE` = active-since-in-seconds samples Prometheus writes for active alerts.
//! Two series that give the same alert labels are an evaluation error, as in Prometheus.

use std::collections::BTreeMap;

use super::eval::Vector;
use super::labels::{Labels, METRIC_NAME};
use super::template;

/// How long a resolved alert is kept (Prometheus's `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub keep_firing_since_ms: Option<i64>,
}

/// An alerting rule's definition and its alerts.
#[derive(Clone, Debug)]
pub struct AlertingRule {
    pub name: String,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    active: BTreeMap<Labels, Alert>,
}

/// What one evaluation changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transitions {
    pub pending: Vec<Labels>,
    pub firing: Vec<Labels>,
    pub resolved: Vec<Labels>,
}

impl AlertingRule {
    pub fn new(
        name: &str,
        for_ms: i64,
        keep_firing_for_ms: i64,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> AlertingRule {
        AlertingRule {
            name: name.to_string(),
            for_ms,
            keep_firing_for_ms,
            labels,
            annotations,
            active: BTreeMap::new(),
        }
    }

    /// Alerts by label set: pending, firing, and resolved ones still retained.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    /// Forgets every alert (the rule was quarantined or removed).
    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// Advances the state machine with the expression's result at `t`. Returns the ALERTS /
    /// ALERTS_FOR_STATE samples to write and the transitions, or an error (state unchanged,
    /// except that exceeding `limit` drops every alert, as Prometheus).
    pub fn eval(&mut self, result: Vector, t: i64, limit: usize) -> Result<(Vec<(Labels, f64)>, Transitions), String> {
        let mut current: BTreeMap<Labels, Alert> = BTreeMap::new();
        for e in result {
            let mut labels = e.labels.without_name();
            for (k, v) in &self.labels {
                labels.set(k.clone(), template::expand(v, &e.labels, e.value)?);
            }
            labels.set("alertname".into(), self.name.clone());
            let mut annotations = BTreeMap::new();
            for (k, v) in &self.annotations {
                annotations.insert(k.clone(), template::expand(v, &e.labels, e.value)?);
            }
            if current.contains_key(&labels) {
                return Err("vector contains metrics with the same labelset after applying alert labels".into());
            }
            let alert = Alert {
                labels: labels.clone(),
                annotations,
                state: AlertState::Pending,
                value: e.value,
                active_at_ms: t,
                fired_at_ms: None,
                resolved_at_ms: None,
                keep_firing_since_ms: None,
            };
            current.insert(labels, alert);
        }
        let mut tr = Transitions::default();
        for (labels, a) in &current {
            match self.active.get_mut(labels) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations.clone();
                }
                _ => {
                    self.active.insert(labels.clone(), a.clone());
                    tr.pending.push(labels.clone());
                }
            }
        }
        let mut samples = Vec::new();
        let mut active_count = 0;
        let mut remove = Vec::new();
        for (labels, a) in self.active.iter_mut() {
            if current.contains_key(labels) {
                a.keep_firing_since_ms = None;
            } else {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && self.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since_ms.get_or_insert(t);
                    keep_firing = t - since < self.keep_firing_for_ms;
                }
                let expired = a.resolved_at_ms.is_some_and(|r| t - r > RESOLVED_RETENTION_MS);
                if a.state == AlertState::Pending || expired {
                    remove.push(labels.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    if a.state == AlertState::Firing {
                        tr.resolved.push(labels.clone());
                    }
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(t);
                }
                if !keep_firing {
                    continue;
                }
            }
            active_count += 1;
            if a.state == AlertState::Pending && t - a.active_at_ms >= self.for_ms {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(t);
                tr.firing.push(labels.clone());
            }
            samples.push((series(labels, "ALERTS", Some(a.state)), 1.0));
            samples.push((series(labels, "ALERTS_FOR_STATE", None), (a.active_at_ms / 1000) as f64));
        }
        for l in remove {
            self.active.remove(&l);
        }
        if limit > 0 && active_count > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {active_count} alerts"));
        }
        Ok((samples, tr))
    }
}

fn series(labels: &Labels, metric: &str, state: Option<AlertState>) -> Labels {
    let mut l = labels.clone();
    l.set(METRIC_NAME.into(), metric.into());
    if let Some(s) = state {
        l.set("alertstate".into(), s.as_str().into());
    }
    l
}

#[cfg(test)]
mod tests {
    use super::super::eval::Element;
    use super::*;

    fn hit() -> Vector {
        vec![Element { labels: Labels::metric("up", &[("instance", "a")]), value: 0.0 }]
    }

    fn state(r: &AlertingRule) -> Option<AlertState> {
        r.alerts().next().map(|a| a.state)
    }

    fn rule(for_ms: i64, keep_ms: i64) -> AlertingRule {
        let labels = BTreeMap::from([("severity".to_string(), "page".to_string())]);
        let ann = BTreeMap::from([("summary".to_string(), "{{ $labels.instance }} down".to_string())]);
        AlertingRule::new("InstanceDown", for_ms, keep_ms, labels, ann)
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let mut r = rule(60_000, 0);
        let (samples, tr) = r.eval(hit(), 0, 0).expect("eval");
        assert_eq!(state(&r), Some(AlertState::Pending));
        assert_eq!(tr.pending.len(), 1);
        assert_eq!(
            samples[0].0.to_string(),
            r#"ALERTS{alertname="InstanceDown", alertstate="pending", instance="a", severity="page"}"#
        );
        r.eval(hit(), 30_000, 0).expect("eval");
        assert_eq!(state(&r), Some(AlertState::Pending), "30 s < for");
        let (_, tr) = r.eval(hit(), 60_000, 0).expect("eval");
        assert_eq!((state(&r), tr.firing.len()), (Some(AlertState::Firing), 1), "60 s - 0 >= for");
        let a = r.alerts().next().cloned().expect("alert");
        assert_eq!(a.annotations["summary"], "a down");
        assert_eq!((a.active_at_ms, a.fired_at_ms), (0, Some(60_000)));
        let (samples, tr) = r.eval(vec![], 90_000, 0).expect("eval");
        assert_eq!((state(&r), tr.resolved.len(), samples.len()), (Some(AlertState::Inactive), 1, 0));
        // Kept 15 minutes for Alertmanager, then dropped.
        r.eval(vec![], 90_000 + RESOLVED_RETENTION_MS, 0).expect("eval");
        assert_eq!(r.alerts().count(), 1);
        r.eval(vec![], 91_000 + RESOLVED_RETENTION_MS, 0).expect("eval");
        assert_eq!(r.alerts().count(), 0);
    }

    #[test]
    fn a_pending_alert_that_stops_is_dropped_and_restarts_its_for() {
        let mut r = rule(60_000, 0);
        r.eval(hit(), 0, 0).expect("eval");
        r.eval(vec![], 30_000, 0).expect("eval");
        assert_eq!(r.alerts().count(), 0);
        r.eval(hit(), 45_000, 0).expect("eval");
        r.eval(hit(), 90_000, 0).expect("eval");
        assert_eq!(state(&r), Some(AlertState::Pending), "active since 45 s");
        r.eval(hit(), 105_000, 0).expect("eval");
        assert_eq!(state(&r), Some(AlertState::Firing));
    }

    #[test]
    fn for_zero_fires_at_once_and_keep_firing_for_holds_it() {
        let mut r = rule(0, 120_000);
        r.eval(hit(), 0, 0).expect("eval");
        assert_eq!(state(&r), Some(AlertState::Firing));
        for t in [60_000, 120_000, 179_999] {
            r.eval(vec![], t, 0).expect("eval");
            assert_eq!(state(&r), Some(AlertState::Firing), "t={t}: kept since 60 s");
        }
        let (_, tr) = r.eval(vec![], 180_000, 0).expect("eval");
        assert_eq!((state(&r), tr.resolved.len()), (Some(AlertState::Inactive), 1));
        // Returned again: a new alert, pending (for 0: firing) again.
        r.eval(hit(), 240_000, 0).expect("eval");
        assert_eq!(r.alerts().next().map(|a| a.active_at_ms), Some(240_000));
    }

    #[test]
    fn keep_firing_since_resets_when_the_alert_returns() {
        let mut r = rule(0, 60_000);
        r.eval(hit(), 0, 0).expect("eval");
        r.eval(vec![], 30_000, 0).expect("eval");
        r.eval(hit(), 60_000, 0).expect("eval");
        r.eval(vec![], 80_000, 0).expect("eval");
        r.eval(vec![], 130_000, 0).expect("eval");
        assert_eq!(state(&r), Some(AlertState::Firing), "kept since 80 s, not 30 s");
        r.eval(vec![], 140_000, 0).expect("eval");
        assert_eq!(state(&r), Some(AlertState::Inactive));
    }

    #[test]
    fn duplicate_alert_labels_and_limits_are_errors() {
        let mut r = rule(0, 0);
        let two = vec![
            Element { labels: Labels::metric("a", &[("instance", "x")]), value: 1.0 },
            Element { labels: Labels::metric("b", &[("instance", "x")]), value: 1.0 },
        ];
        let err = r.eval(two, 0, 0).expect_err("same labels after dropping the name");
        assert!(err.contains("same labelset after applying alert labels"), "{err}");
        assert_eq!(r.alerts().count(), 0, "state unchanged");
        let many: Vector = ["x", "y"]
            .iter()
            .map(|i| Element { labels: Labels::metric("a", &[("instance", i)]), value: 1.0 })
            .collect();
        assert!(r.eval(many, 0, 1).expect_err("limit").contains("exceeded limit of 1 with 2 alerts"));
    }
}
