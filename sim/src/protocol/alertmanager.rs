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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Msg, NodeCtx, Obs, Timer};
use crate::engine::{NodeId, SimDuration};
use crate::monitor::Labels;

/// One alert as Prometheus posts it (times in ms of the sender's clock).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AlertMsg {
    pub labels: Labels,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct AlertmanagerConfig {
    /// Label names to group by (empty: one group for everything).
    pub group_by: Vec<String>,
    pub group_wait: SimDuration,
    pub group_interval: SimDuration,
    pub repeat_interval: SimDuration,
    pub send_resolved: bool,
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
        let Msg::Alerts { batch } = msg else { return };
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
                    ctx.set_timer(self.config.group_wait, Timer::Flush { group: id });
                    id
                }
            };
            if let Some(g) = self.groups.get_mut(&id) {
                g.alerts.insert(a.labels.clone(), a.clone());
            }
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        let Timer::Flush { group } = timer else { return };
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
            ctx.set_timer(self.config.group_interval, Timer::Flush { group });
        }
    }

    pub fn on_refused(&mut self, _ctx: &mut NodeCtx<'_>, _to: NodeId, _msg: Msg) {}

    pub fn crash(&mut self) {
        self.groups.clear();
        self.by_labels.clear();
    }
}
