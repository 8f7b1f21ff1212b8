//! Monitoring: one Prometheus server per region, an optional global one that federates them,
//! and the Alertmanager.

use std::sync::Arc;

use super::BuildError;
use super::{Nodes, Role};
use crate::monitor::Labels;
use crate::monitor::group::EngineConfig;
use crate::protocol::monitoring::alertmanager::Alertmanager;
use crate::protocol::monitoring::prometheus::{FederateQuery, Prometheus, PrometheusConfig, StaticTarget};
use crate::protocol::{Node, ServiceId};
use regsim_kernel::{NodeId, SimTime};

/// The settings every Prometheus server of the scenario shares.
fn base(b: &Nodes<'_>) -> Option<PrometheusConfig> {
    let m = b.s.monitoring.as_ref()?;
    let alertmanager = b.topology.role(Role::Alertmanager.name()).filter(|r| r.count > 0).map(|r| NodeId(r.first));
    let p = &m.prometheus;
    Some(PrometheusConfig {
        job: m.job.clone(),
        service: ServiceId(0),
        servers: Arc::from([]),
        healthy_only: p.healthy_only,
        refresh_interval: p.refresh_interval,
        query_timeout: p.query_timeout,
        scrape_interval: p.scrape_interval,
        scrape_timeout: p.scrape_timeout,
        evaluation_interval: p.evaluation_interval,
        resend_delay: p.resend_delay,
        lookback: p.lookback,
        retention: p.retention,
        engine: EngineConfig { quarantine_after: p.quarantine_after },
        groups: m.loaded.clone(),
        alertmanager,
        static_targets: Vec::new(),
        external_labels: Labels::empty(),
        track_timestamps_staleness: false,
    })
}

pub(super) fn prometheus(b: &mut Nodes<'_>) -> Result<(), BuildError> {
    let Some(base) = base(b) else { return Ok(()) };
    for region in 0..b.regions() {
        let mut external_labels = Labels::empty();
        if let Some(name) = b.s.regions.get(region as usize) {
            external_labels.set("region".into(), name.clone());
        }
        let static_targets = b
            .ids(Role::Gateways, region)
            .into_iter()
            .map(|node| StaticTarget { node, job: "gateway".into(), federate: None })
            .collect();
        let config = PrometheusConfig {
            servers: Arc::clone(&b.region_servers[region as usize]),
            static_targets,
            external_labels,
            ..base.clone()
        };
        b.add(Node::Prometheus(Box::new(Prometheus::new(Arc::new(config)))), SimTime::ZERO);
    }
    Ok(())
}

pub(super) fn global_prometheus(b: &mut Nodes<'_>) -> Result<(), BuildError> {
    let (Some(base), Some(gl)) = (base(b), b.s.monitoring.as_ref().and_then(|m| m.global.as_ref())) else {
        return Ok(());
    };
    let matchers = Arc::new(FederateQuery::new(gl.parsed.clone()));
    let static_targets = (0..b.regions())
        .flat_map(|r| b.ids(Role::Prometheus, r))
        .map(|node| StaticTarget { node, job: "federate".into(), federate: Some(Arc::clone(&matchers)) })
        .collect();
    let config = PrometheusConfig {
        job: "federate".into(),
        scrape_interval: gl.scrape_interval,
        scrape_timeout: gl.scrape_timeout,
        evaluation_interval: gl.evaluation_interval,
        groups: gl.loaded.clone(),
        static_targets,
        external_labels: Labels::from_pairs([("monitor", "global")]),
        track_timestamps_staleness: gl.track_timestamps_staleness,
        ..base
    };
    b.add(Node::Prometheus(Box::new(Prometheus::new(Arc::new(config)))), SimTime::ZERO);
    Ok(())
}

pub(super) fn alertmanager(b: &mut Nodes<'_>) -> Result<(), BuildError> {
    let Some(m) = b.s.monitoring.as_ref().filter(|m| m.alertmanager_enabled) else { return Ok(()) };
    b.add(Node::Alertmanager(Box::new(Alertmanager::new(Arc::new(m.alertmanager.clone())))), SimTime::ZERO);
    Ok(())
}
