//! An Alertmanager with one route: grouping, `group_wait`, `group_interval`,
//! `repeat_interval`, and notifications as observations.
//!
//! Model (Alertmanager 0.2x `dispatch` and `notify`, ANCHORS.md "Monitoring"): an alert goes
//! to the aggregation group of its `group_by` labels. A new group waits `group_wait` (30 s)
//! before its first notification, so that alerts starting together go out together; after
//! that the group is flushed every `group_interval` (5 m). A flush notifies when the group has
//! a firing alert the last notification did not have, or an alert that resolved since
//! (`send_resolved`, on by default for webhooks), or when `repeat_interval` (4 h) has passed
//! since the last notification with firing alerts. An alert whose `ends_at` has passed is
//! resolved (Prometheus stopped re-sending it). Resolved alerts are dropped after the flush
//! that reported them, and a group left without alerts is deleted: the next alert with those
//! labels starts a new group and waits `group_wait` again.
//!
//! A crash loses every group (Alertmanager's notification log is not modelled).

use crate::protocol::monitoring;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::monitor::Labels;
use crate::protocol::{Msg, NodeCtx, Obs, Timer};
use regsim_kernel::{NodeId, SimDuration};

/// One alert as Prometheus posts it (times in ms of the sender's clock).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AlertMsg {
    pub labels: Labels,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
}

/// `[monitoring.alertmanager]` (Alertmanager's defaults: group by `alertname`, `group_wait`
/// 30 s, `group_interval` 5 m, `repeat_interval` 4 h, resolved notifications on).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Label names to group by (empty: one group for everything).
    pub group_by: Vec<String>,
    pub group_wait: SimDuration,
    pub group_interval: SimDuration,
    pub repeat_interval: SimDuration,
    pub send_resolved: bool,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            group_by: vec!["alertname".into()],
            group_wait: SimDuration::from_secs(30),
            group_interval: SimDuration::from_secs(300),
            repeat_interval: SimDuration::from_secs(14_400),
            send_resolved: true,
        }
    }
}

/// A notification, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The group's labels (`group_by` values).
    pub group: Labels,
    /// Firing alerts: labels and when they started (ms).
    pub firing: Vec<(Labels, i64)>,
    pub resolved: Vec<Labels>,
}

#[derive(Clone, Debug)]
struct AggGroup {
    labels: Labels,
    alerts: BTreeMap<Labels, AlertMsg>,
    last_firing: BTreeSet<Labels>,
    /// Local time (ms) of the last notification with firing alerts.
    last_notified_ms: Option<i64>,
}

#[derive(Debug)]
pub struct Alertmanager {
    config: Arc<AlertmanagerConfig>,
    groups: BTreeMap<u32, AggGroup>,
    by_labels: BTreeMap<Labels, u32>,
    next_group: u32,
    pub notifications: u64,
}

fn ms(ctx: &NodeCtx<'_>) -> i64 {
    (ctx.now().as_nanos() / 1_000_000) as i64
}

impl Alertmanager {
    pub fn new(config: Arc<AlertmanagerConfig>) -> Alertmanager {
        Alertmanager { config, groups: BTreeMap::new(), by_labels: BTreeMap::new(), next_group: 0, notifications: 0 }
    }

    pub fn on_start(&mut self, _ctx: &mut NodeCtx<'_>) {}

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, _from: NodeId, msg: Msg) {
        let Msg::Monitoring(monitoring::Msg::Alerts { batch }) = msg else { return };
        for a in batch.iter() {
            let key = a.labels.keep(&self.config.group_by);
            let id = match self.by_labels.get(&key) {
                Some(id) => *id,
                None => {
                    // A resolved alert for a group that no longer exists has nothing to report.
                    if a.ends_at_ms <= ms(ctx) {
                        continue;
                    }
                    self.next_group = self.next_group.wrapping_add(1);
                    let id = self.next_group;
                    let g = AggGroup {
                        labels: key.clone(),
                        alerts: BTreeMap::new(),
                        last_firing: BTreeSet::new(),
                        last_notified_ms: None,
                    };
                    self.groups.insert(id, g);
                    self.by_labels.insert(key, id);
                    ctx.set_timer(self.config.group_wait, monitoring::Timer::Flush { group: id });
                    id
                }
            };
            if let Some(g) = self.groups.get_mut(&id) {
                g.alerts.insert(a.labels.clone(), a.clone());
            }
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        let Timer::Monitoring(monitoring::Timer::Flush { group }) = timer else { return };
        let now = ms(ctx);
        let Some(g) = self.groups.get_mut(&group) else { return };
        let firing: BTreeSet<Labels> =
            g.alerts.values().filter(|a| a.ends_at_ms > now).map(|a| a.labels.clone()).collect();
        let resolved: Vec<Labels> =
            g.alerts.values().filter(|a| a.ends_at_ms <= now).map(|a| a.labels.clone()).collect();
        let new_firing = firing.iter().any(|l| !g.last_firing.contains(l));
        let newly_resolved = self.config.send_resolved && resolved.iter().any(|l| g.last_firing.contains(l));
        let repeat = (self.config.repeat_interval.as_nanos() / 1_000_000) as i64;
        let repeat_due = !firing.is_empty() && g.last_notified_ms.is_some_and(|t| now - t >= repeat);
        if new_firing || newly_resolved || repeat_due {
            let n = Notification {
                group: g.labels.clone(),
                firing: firing
                    .iter()
                    .filter_map(|l| g.alerts.get(l))
                    .map(|a| (a.labels.clone(), a.starts_at_ms))
                    .collect(),
                resolved: if self.config.send_resolved { resolved.clone() } else { Vec::new() },
            };
            self.notifications += 1;
            if !firing.is_empty() {
                g.last_notified_ms = Some(now);
            }
            g.last_firing = firing;
            ctx.observe(Obs::Notified(Arc::new(n)));
        }
        for l in &resolved {
            g.alerts.remove(l);
        }
        if g.alerts.is_empty() {
            let labels = g.labels.clone();
            self.groups.remove(&group);
            self.by_labels.remove(&labels);
        } else {
            ctx.set_timer(self.config.group_interval, monitoring::Timer::Flush { group });
        }
    }

    pub fn on_refused(&mut self, _ctx: &mut NodeCtx<'_>, _to: NodeId, _msg: Msg) {}

    pub fn crash(&mut self) {
        self.groups.clear();
        self.by_labels.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Harness;

    fn am() -> Alertmanager {
        Alertmanager::new(Arc::new(AlertmanagerConfig {
            group_by: vec!["alertname".into()],
            group_wait: SimDuration::from_secs(30),
            group_interval: SimDuration::from_secs(300),
            repeat_interval: SimDuration::from_secs(4 * 3600),
            send_resolved: true,
        }))
    }

    fn alert(instance: &str, starts_s: i64, ends_s: i64) -> Msg {
        let labels = Labels::from_pairs([("alertname", "Down"), ("instance", instance)]);
        Msg::Monitoring(monitoring::Msg::Alerts {
            batch: Arc::new(vec![AlertMsg { labels, starts_at_ms: starts_s * 1000, ends_at_ms: ends_s * 1000 }]),
        })
    }

    fn notified(obs: &[Obs]) -> Vec<(Vec<String>, Vec<String>)> {
        obs.iter()
            .filter_map(|o| match o {
                Obs::Notified(n) => Some((
                    n.firing.iter().filter_map(|(l, _)| l.get("instance").map(String::from)).collect(),
                    n.resolved.iter().filter_map(|l| l.get("instance").map(String::from)).collect(),
                )),
                _ => None,
            })
            .collect()
    }

    /// group_wait for a new group, group_interval after, resolved reported once and the group
    /// deleted, so the next alert waits group_wait again; repeat_interval re-notifies.
    #[test]
    fn grouping_timers_and_resolution() {
        let mut a = am();
        let mut h = Harness::new(NodeId(9));
        let from = NodeId(1);
        let out = h.at(0.0, |c| a.on_message(c, from, alert("a", 0, 240)));
        assert_eq!(
            out.timers(),
            vec![(SimDuration::from_secs(30), Timer::Monitoring(monitoring::Timer::Flush { group: 1 }))],
            "group_wait"
        );
        let out = h.at(10.0, |c| a.on_message(c, from, alert("b", 10, 250)));
        assert!(out.timers().is_empty(), "same group: no new timer");
        let out = h.at(30.0, |c| a.on_timer(c, Timer::Monitoring(monitoring::Timer::Flush { group: 1 })));
        assert_eq!(notified(&out.obs), vec![(vec!["a".to_string(), "b".to_string()], vec![])]);
        assert_eq!(
            out.timers(),
            vec![(SimDuration::from_secs(300), Timer::Monitoring(monitoring::Timer::Flush { group: 1 }))],
            "group_interval"
        );
        // Prometheus stopped re-sending: both expired by 330 s, reported resolved, group gone.
        let out = h.at(330.0, |c| a.on_timer(c, Timer::Monitoring(monitoring::Timer::Flush { group: 1 })));
        assert_eq!(notified(&out.obs), vec![(vec![], vec!["a".to_string(), "b".to_string()])]);
        assert!(out.timers().is_empty(), "empty group deleted");
        let out = h.at(400.0, |c| a.on_message(c, from, alert("c", 400, 100_000)));
        assert_eq!(
            out.timers(),
            vec![(SimDuration::from_secs(30), Timer::Monitoring(monitoring::Timer::Flush { group: 2 }))],
            "new group waits again"
        );
        let out = h.at(430.0, |c| a.on_timer(c, Timer::Monitoring(monitoring::Timer::Flush { group: 2 })));
        assert_eq!(notified(&out.obs).len(), 1);
        // Nothing changed: no notification until repeat_interval (4 h) has passed.
        let out = h.at(730.0, |c| a.on_timer(c, Timer::Monitoring(monitoring::Timer::Flush { group: 2 })));
        assert!(notified(&out.obs).is_empty());
        let out =
            h.at(430.0 + 4.0 * 3600.0, |c| a.on_timer(c, Timer::Monitoring(monitoring::Timer::Flush { group: 2 })));
        assert_eq!(notified(&out.obs), vec![(vec!["c".to_string()], vec![])], "repeat_interval");
    }

    /// An alert that resolves before group_wait elapses is never notified.
    #[test]
    fn resolved_before_group_wait_is_never_notified() {
        let mut a = am();
        let mut h = Harness::new(NodeId(9));
        h.at(0.0, |c| a.on_message(c, NodeId(1), alert("a", 0, 240)));
        h.at(15.0, |c| a.on_message(c, NodeId(1), alert("a", 0, 15)));
        let out = h.at(30.0, |c| a.on_timer(c, Timer::Monitoring(monitoring::Timer::Flush { group: 1 })));
        assert!(notified(&out.obs).is_empty());
        assert!(out.timers().is_empty(), "group deleted");
    }
}
