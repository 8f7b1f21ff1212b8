//! Monitoring measurements (issue 9): when does an alert notice a crashed instance, and does
//! it at all; and how healthy are the rules.
//!
//! For each alerting rule and each crash episode (ground-truth crash to restart or end of
//! run), from the crash: `alert_pending` (the first evaluation that returned an alert for the
//! instance), `alert_firing` (the first that made it fire), `alert_notified` (the first
//! Alertmanager notification listing it firing). An alert *covers* the instance when its
//! `instance` label names it, or when it has no `instance` label at all (a job-level alert,
//! e.g. "fewer targets up than before"), counting only transitions after the crash.
//!
//! Each distribution sits beside the window the configuration implies (ANCHORS.md,
//! "Monitoring"): a failed scrape within `scrape_interval` (+ `scrape_timeout` when the scrape
//! is not refused at once), an evaluation within the group's interval, then `for`, then
//! Alertmanager's `group_wait` for a new group. An episode whose alert never fired is listed
//! with the reason read off the log: the target dropped by service discovery (before `for`
//! elapsed, or before the rule returned anything), the instance restarting first, the rule
//! quarantined, or the rule never returning it.

use std::sync::Arc;

use serde::Serialize;

use super::detection::Episode;
use super::family::{Family, Truth};
use super::stats::{Summary, round_ns};
use crate::monitor::rulefile::RuleKind;
use crate::protocol::Obs;
use crate::protocol::monitoring::alertmanager::Notification;
use crate::protocol::monitoring::prometheus::{AlertObs, AlertTransition, GroupStatus};
use crate::protocol::monitoring::settings::MonitoringSpec;
use regsim_kernel::{NodeId, SimDuration, SimTime};

/// What the monitoring actors reported, kept whole (a few records per scrape failure,
/// target change and evaluation).
#[derive(Clone, Debug, Default)]
pub struct MonitorLog {
    pub targets: Vec<(SimTime, NodeId, bool)>,
    pub scrape_failures: Vec<(SimTime, NodeId)>,
    /// Alert transitions and the Prometheus server that evaluated them.
    pub alerts: Vec<(SimTime, NodeId, Arc<AlertObs>)>,
    pub notifications: Vec<(SimTime, Arc<Notification>)>,
    /// The latest status of each rule group per server, in first-evaluation order.
    pub groups: Vec<(NodeId, Arc<GroupStatus>)>,
}

impl MonitorLog {
    pub fn group_status(&mut self, server: NodeId, s: &Arc<GroupStatus>) {
        match self.groups.iter_mut().find(|(n, g)| *n == server && g.file == s.file && g.group == s.group) {
            Some((_, g)) => *g = Arc::clone(s),
            None => self.groups.push((server, Arc::clone(s))),
        }
    }
}

impl Family for MonitorLog {
    fn name(&self) -> &'static str {
        "alerts"
    }

    fn observe(&mut self, t: SimTime, node: NodeId, o: &Obs, _: &Truth<'_>) {
        match *o {
            Obs::Target { instance, present } => self.targets.push((t, instance, present)),
            Obs::ScrapeFailed { instance } => self.scrape_failures.push((t, instance)),
            Obs::Alert(ref a) => self.alerts.push((t, node, Arc::clone(a))),
            Obs::Notified(ref n) => self.notifications.push((t, Arc::clone(n))),
            Obs::Rules(ref g) => self.group_status(node, g),
            _ => {}
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AlertsReport {
    pub scrape_interval_s: f64,
    pub scrape_timeout_s: f64,
    pub evaluation_interval_s: f64,
    pub refresh_interval_s: f64,
    /// Targets are the registry's healthy instances (else every registered one).
    pub healthy_only: bool,
    /// Crash episodes of instances in the run.
    pub crashes: u64,
    pub rules: Vec<AlertRuleReport>,
    /// The global server's rules, evaluated on federated series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalAlerts>,
}

/// The alerts of the global server of a federation. Its windows add the federation scrape
/// (interval + timeout) between the regional server's failed scrape and the global
/// evaluation.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GlobalAlerts {
    pub federation_interval_s: f64,
    pub federation_timeout_s: f64,
    pub evaluation_interval_s: f64,
    pub rules: Vec<AlertRuleReport>,
}

/// Which server's alerts a report follows, and how an episode maps to it.
pub struct Tier<'a> {
    pub groups: &'a [crate::monitor::rulefile::GroupSpec],
    /// The server whose alerts count for a crashed instance.
    pub server_of: &'a dyn Fn(NodeId) -> Option<NodeId>,
    /// The region name of an instance (a global alert with a `region` label covers only it).
    pub region_of: &'a dyn Fn(NodeId) -> Option<String>,
    /// Added to the pending window (the federation scrape).
    pub extra: SimDuration,
    pub evaluation_interval: SimDuration,
    /// Notifications of this tier's alerts carry `monitor="global"` (else they do not).
    pub global: bool,
    /// Global tier: the regional server an instance's series are federated from.
    pub federated_from: Option<&'a dyn Fn(NodeId) -> Option<NodeId>>,
    /// This tier's servers (a rule's alerts and status count from these only).
    pub servers: &'a [NodeId],
    /// The instance nodes: a rule whose alerts all name another node (a Prometheus server,
    /// say) watches something else and is left out of the per-crash report.
    pub instances: std::ops::Range<u32>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AlertRuleReport {
    pub alert: String,
    pub group: String,
    pub for_s: f64,
    pub window: Window,
    pub alert_pending: Summary,
    pub alert_firing: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_notified: Option<Summary>,
    /// Latencies above their window (should be 0; network latency aside).
    pub beyond_window: u64,
    pub never_fired: Vec<NeverFired>,
    /// The firing and notified latencies themselves, for the plot (not in report.json).
    #[serde(skip)]
    pub firing_samples_s: Vec<f64>,
    #[serde(skip)]
    pub notified_samples_s: Vec<f64>,
    /// Crashes whose alert fired but no notification listed it (with Alertmanager).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub never_notified: Vec<NeverFired>,
}

/// The latest each stage can come after a crash, as the configuration implies.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Window {
    /// scrape_interval + scrape_timeout + evaluation interval of the rule's group.
    pub pending_s: f64,
    /// pending_s + `for`.
    pub firing_s: f64,
    /// firing_s + group_wait (a new Alertmanager group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notified_s: Option<f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NeverFired {
    pub instance: String,
    pub crashed_at_s: f64,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RuleReport {
    /// The server that evaluates it: its region (or index), or `global`.
    pub prometheus: String,
    pub file: String,
    pub group: String,
    pub rule: String,
    pub kind: String,
    pub health: String,
    pub evaluations: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    pub quarantined: bool,
    pub times_fired: u64,
}

fn secs(d: SimDuration) -> f64 {
    d.as_secs_f64()
}

fn since(t: SimTime, crash: SimTime) -> f64 {
    round_ns(t.saturating_since(crash).as_secs_f64())
}

/// The `rules` family: every rule's last status, in evaluation order.
pub fn rules_report(log: &MonitorLog, name_of: &dyn Fn(NodeId) -> String) -> Vec<RuleReport> {
    let mut out = Vec::new();
    for (server, g) in &log.groups {
        for r in &g.rules {
            out.push(RuleReport {
                prometheus: name_of(*server),
                file: g.file.clone(),
                group: g.group.clone(),
                rule: r.rule.clone(),
                kind: r.kind.to_string(),
                health: r.health.to_string(),
                evaluations: r.evaluations,
                errors: r.errors,
                last_error: r.last_error.clone(),
                quarantined: r.quarantined,
                times_fired: r.times_fired,
            });
        }
    }
    out
}

/// The `alerts` family: the regional servers' rules, and the global server's if any.
pub fn alerts_report(
    log: &MonitorLog,
    episodes: &[Episode],
    m: &MonitoringSpec,
    end: SimTime,
    regional: &Tier<'_>,
    global: Option<&Tier<'_>>,
) -> AlertsReport {
    let p = &m.prometheus;
    AlertsReport {
        scrape_interval_s: secs(p.scrape_interval),
        scrape_timeout_s: secs(p.scrape_timeout),
        evaluation_interval_s: secs(p.evaluation_interval),
        refresh_interval_s: secs(p.refresh_interval),
        healthy_only: p.healthy_only,
        crashes: episodes.len() as u64,
        rules: tier_rules(log, episodes, m, end, regional),
        global: global.zip(m.global.as_ref()).map(|(t, g)| GlobalAlerts {
            federation_interval_s: secs(g.scrape_interval),
            federation_timeout_s: secs(g.scrape_timeout),
            evaluation_interval_s: secs(g.evaluation_interval),
            rules: tier_rules(log, episodes, m, end, t),
        }),
    }
}

fn tier_rules(
    log: &MonitorLog,
    episodes: &[Episode],
    m: &MonitoringSpec,
    end: SimTime,
    tier: &Tier<'_>,
) -> Vec<AlertRuleReport> {
    let p = &m.prometheus;
    let mut rules = Vec::new();
    for g in tier.groups {
        let interval = g
            .interval_ms
            .filter(|ms| *ms > 0)
            .map_or(tier.evaluation_interval, |ms| SimDuration::from_millis(ms as u64));
        for r in &g.rules {
            let RuleKind::Alert { for_ms, .. } = &r.kind else { continue };
            let for_d = SimDuration::from_millis((*for_ms).max(0) as u64);
            let pending_w = p.scrape_interval + p.scrape_timeout + tier.extra + interval;
            let firing_w = pending_w + for_d;
            let notified_w = m.alertmanager_enabled.then(|| firing_w + m.alertmanager.group_wait);
            let quarantined = log
                .groups
                .iter()
                .filter(|(n, _)| tier.servers.contains(n))
                .map(|(_, s)| s)
                .filter(|s| s.file == g.file && s.group == g.name)
                .flat_map(|s| s.rules.iter())
                .any(|s| s.rule == r.name && s.quarantined);
            let mut pending = Vec::new();
            let mut firing = Vec::new();
            let mut notified = Vec::new();
            let mut never_fired = Vec::new();
            let mut never_notified = Vec::new();
            let ours = |n: &NodeId, a: &AlertObs| a.rule == r.name && tier.servers.contains(n);
            let returned_any = log.alerts.iter().any(|(_, n, a)| ours(n, a));
            let about_instances = log.alerts.iter().filter(|(_, n, a)| ours(n, a)).any(|(_, _, a)| {
                a.labels.get("instance").is_none() || a.instance.is_some_and(|n| tier.instances.contains(&n.0))
            });
            if returned_any && !about_instances {
                continue;
            }
            for e in episodes {
                let Some(server) = (tier.server_of)(e.instance) else { continue };
                let region = (tier.region_of)(e.instance);
                let f = follow(log, &r.name, e, server, region.as_deref(), tier.global);
                pending.extend(f.pending.map(|t| since(t, e.crashed)));
                firing.extend(f.firing.map(|t| since(t, e.crashed)));
                if m.alertmanager_enabled {
                    notified.extend(f.notified.map(|t| since(t, e.crashed)));
                }
                let at = |t: SimTime| format!("+{:.1} s", since(t, e.crashed));
                if let (true, Some(fired), None) = (m.alertmanager_enabled, f.firing, f.notified) {
                    let reason = match f.resolved {
                        Some(r) => format!(
                            "fired at {} and resolved at {}, before the Alertmanager group's next flush",
                            at(fired),
                            at(r)
                        ),
                        None => format!("fired at {} but no notification listed it before the end", at(fired)),
                    };
                    never_notified.push(NeverFired {
                        instance: e.instance.to_string(),
                        crashed_at_s: round_ns(e.crashed.as_secs_f64()),
                        reason,
                    });
                }
                // Global tier: federation from the instance's region failed during the episode.
                let unfederated = tier.federated_from.and_then(|from| from(e.instance)).and_then(|src| {
                    log.scrape_failures.iter().find(|(t, n)| *n == src && *t >= e.crashed && *t <= e.ended).map(|x| x.0)
                });
                if f.firing.is_none() {
                    let reason = if let Some(t) = unfederated {
                        format!(
                            "the global server could not federate {} (scrape failed from +{:.1} s), so it never saw \
                             the crash",
                            crate::protocol::monitoring::prometheus::instance_label(
                                tier.federated_from.and_then(|from| from(e.instance)).unwrap_or(e.instance)
                            ),
                            since(t, e.crashed)
                        )
                    } else if returned_any {
                        reason(log, &f, e, for_d, quarantined, end)
                    } else if quarantined {
                        "rule quarantined after consecutive evaluation errors".to_string()
                    } else {
                        "the rule returned no alert at all in the run (its expression never matched)".to_string()
                    };
                    never_fired.push(NeverFired {
                        instance: e.instance.to_string(),
                        crashed_at_s: round_ns(e.crashed.as_secs_f64()),
                        reason,
                    });
                }
            }
            let over = |xs: &[f64], w: SimDuration| xs.iter().filter(|x| **x > secs(w)).count() as u64;
            let beyond =
                over(&pending, pending_w) + over(&firing, firing_w) + notified_w.map_or(0, |w| over(&notified, w));
            rules.push(AlertRuleReport {
                alert: r.name.clone(),
                group: g.name.clone(),
                for_s: secs(for_d),
                window: Window {
                    pending_s: secs(pending_w),
                    firing_s: secs(firing_w),
                    notified_s: notified_w.map(secs),
                },
                alert_pending: Summary::of(&pending),
                alert_firing: Summary::of(&firing),
                alert_notified: m.alertmanager_enabled.then(|| Summary::of(&notified)),
                beyond_window: beyond,
                firing_samples_s: firing.clone(),
                notified_samples_s: notified.clone(),
                never_fired,
                never_notified,
            });
        }
    }
    rules
}

/// What happened to one rule's alert for one crash episode.
struct Followed {
    pending: Option<SimTime>,
    firing: Option<SimTime>,
    resolved: Option<SimTime>,
    notified: Option<SimTime>,
}

/// Does an alert cover `instance`: its `instance` label names it, or it has none (a job-level
/// alert), and its `region` label, if any, is the instance's region.
fn covers(labels: &crate::monitor::Labels, instance: NodeId, region: Option<&str>) -> bool {
    let label = crate::protocol::monitoring::prometheus::instance_label(instance);
    labels.get("instance").is_none_or(|i| i == label)
        && labels.get("region").is_none_or(|r| region.is_none_or(|x| x == r))
}

fn follow(log: &MonitorLog, rule: &str, e: &Episode, server: NodeId, region: Option<&str>, global: bool) -> Followed {
    let within = |t: SimTime| t >= e.crashed && t <= e.ended;
    let ours = |n: &NodeId, a: &AlertObs| *n == server && a.rule == rule && covers(&a.labels, e.instance, region);
    let first = |state: AlertTransition| {
        log.alerts.iter().find(|(t, n, a)| within(*t) && a.state == state && ours(n, a)).map(|(t, _, _)| *t)
    };
    let pending = first(AlertTransition::Pending);
    let firing = first(AlertTransition::Firing);
    let resolved = firing.and_then(|f| {
        log.alerts
            .iter()
            .find(|(t, n, a)| *t >= f && a.state == AlertTransition::Resolved && ours(n, a))
            .map(|(t, _, _)| *t)
    });
    let crash_ms = (e.crashed.as_nanos() / 1_000_000) as i64;
    let end_ms = (e.ended.as_nanos() / 1_000_000) as i64;
    let notified = firing.and_then(|f| {
        log.notifications
            .iter()
            .find(|(t, n)| {
                *t >= f
                    && n.firing.iter().any(|(l, starts)| {
                        l.get("alertname") == Some(rule)
                            && *starts >= crash_ms
                            && *starts <= end_ms
                            && (l.get("monitor") == Some("global")) == global
                            && covers(l, e.instance, region)
                    })
            })
            .map(|(t, _)| *t)
    });
    Followed { pending, firing, resolved, notified }
}

fn reason(log: &MonitorLog, f: &Followed, e: &Episode, for_d: SimDuration, quarantined: bool, end: SimTime) -> String {
    let within = |t: SimTime| t >= e.crashed && t <= e.ended;
    let dropped = log.targets.iter().find(|(t, n, present)| within(*t) && *n == e.instance && !present).map(|x| x.0);
    let failed = log.scrape_failures.iter().find(|(t, n)| within(*t) && *n == e.instance).map(|x| x.0);
    let restarted = (e.ended < end).then_some(e.ended);
    let at = |t: SimTime| format!("+{:.1} s", since(t, e.crashed));
    if let Some(p) = f.pending {
        // The drop's staleness markers land about 2.1 scrape intervals after it
        // (`endOfRunStaleness`), so an alert can still go pending after the drop.
        return match dropped {
            Some(d) => format!(
                "target dropped by discovery at {} (its series go stale 2.1 scrape intervals later) before `for` ({} s) elapsed (pending at {})",
                at(d),
                secs(for_d),
                at(p)
            ),
            None => format!("pending at {} but the run or the episode ended (at {}) before `for` elapsed", at(p), {
                restarted.map_or("the end".to_string(), at)
            }),
        };
    }
    if quarantined {
        return "rule quarantined after consecutive evaluation errors".to_string();
    }
    match (dropped, failed) {
        (Some(d), Some(x)) if x <= d => {
            // Worded as facts: for an instance-level rule the drop is why it never fired; a
            // job-level rule (e.g. a count under a threshold) may simply not have matched.
            format!(
                "target dropped by discovery at {}; no evaluation had returned the alert (up = 0 from {})",
                at(d),
                at(x)
            )
        }
        (Some(d), _) => format!("target dropped by discovery at {} before any failed scrape", at(d)),
        (None, _) => {
            format!("the rule never returned an alert for it before {}", restarted.map_or("the end".to_string(), at))
        }
    }
}
