//! Prometheus' configuration (what the scenario and the role builder give each server) and
//! what it reports: alert transitions and each rule group's status after an evaluation.

use std::sync::Arc;

use crate::monitor::group::EngineConfig;
use crate::monitor::rulefile::GroupSpec;
use crate::monitor::{Labels, Query};
use crate::protocol::{ServerList, ServiceId};
use regsim_kernel::{NodeId, SimDuration};

#[derive(Clone, Debug)]
pub struct PrometheusConfig {
    /// The `job` label of every target.
    pub job: String,
    pub service: ServiceId,
    pub servers: ServerList,
    pub healthy_only: bool,
    pub refresh_interval: SimDuration,
    /// Timeout of one discovery query to one server.
    pub query_timeout: SimDuration,
    pub scrape_interval: SimDuration,
    pub scrape_timeout: SimDuration,
    pub evaluation_interval: SimDuration,
    pub resend_delay: SimDuration,
    pub lookback: SimDuration,
    /// Samples older than this are dropped.
    pub retention: SimDuration,
    pub engine: EngineConfig,
    pub groups: Vec<GroupSpec>,
    pub alertmanager: Option<NodeId>,
    /// Targets scraped whatever discovery says.
    pub static_targets: Vec<StaticTarget>,
    pub external_labels: Labels,
    pub track_timestamps_staleness: bool,
}

/// A target of `static_configs`.
#[derive(Clone, Debug)]
pub struct StaticTarget {
    pub node: NodeId,
    pub job: String,
    /// Scrape its `/federate` endpoint with these selectors (else its `/metrics`).
    pub federate: Option<Arc<FederateQuery>>,
}

/// The `match[]` selectors of a federation scrape.
#[derive(Clone, Debug)]
pub struct FederateQuery {
    pub matchers: Vec<Query>,
}

impl FederateQuery {
    pub fn new(matchers: Vec<Query>) -> FederateQuery {
        FederateQuery { matchers }
    }
}

// Compared and hashed by their text, so messages stay `Eq + Hash`.
impl PartialEq for FederateQuery {
    fn eq(&self, other: &Self) -> bool {
        self.matchers.len() == other.matchers.len()
            && self.matchers.iter().zip(&other.matchers).all(|(a, b)| a.text == b.text)
    }
}

impl Eq for FederateQuery {}

impl std::hash::Hash for FederateQuery {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for m in &self.matchers {
            m.text.hash(state);
        }
    }
}

/// An alert transition, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertObs {
    pub rule: String,
    pub labels: Labels,
    pub state: AlertTransition,
    /// The instance the alert's `instance` label names, if it names a node.
    pub instance: Option<NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertTransition {
    Pending,
    Firing,
    Resolved,
}

/// The status of one rule after an evaluation of its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleStatus {
    pub rule: String,
    /// `alerting` or `recording`.
    pub kind: &'static str,
    pub health: &'static str,
    pub evaluations: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    pub quarantined: bool,
    pub times_fired: u64,
}

/// Every rule of one group after one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    pub file: String,
    pub group: String,
    pub rules: Vec<RuleStatus>,
}
