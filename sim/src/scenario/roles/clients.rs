//! The registry's clients: service instances, consumers and API gateways, per region.

use std::sync::Arc;

use rand::RngExt;

use super::BuildError;
use super::{Nodes, Role};
use crate::balance::BalanceError;
use crate::balance::keys::{KeyDist, KeySampler};
use crate::balance::{BalancerSpec, parse_spec};
use crate::protocol::clients::consumer::{Consumer, ConsumerConfig};
use crate::protocol::clients::gateway::{Gateway, GatewayConfig};
use crate::protocol::clients::instance::{InstanceConfig, ServiceInstance};
use crate::protocol::clients::view::ViewConfig;
use crate::protocol::{Node, ServiceId};
use crate::scenario::schema::{RegistryMode, Scenario};
use regsim_kernel::{SimDuration, SimTime};

/// How often a view polls by default: the CP registry does not push, so its consumers poll as
/// with push off.
fn default_poll(s: &Scenario) -> SimDuration {
    let cp = s.registry.mode == RegistryMode::Cp;
    SimDuration::from_secs(if s.registry.push.enabled && !cp { 10 } else { 3 })
}

pub(super) fn instances(b: &mut Nodes<'_>) -> Result<(), BuildError> {
    let s = b.s;
    let service_time = s
        .instances
        .service_time
        .as_ref()
        .map(|l| l.build())
        .transpose()
        .map_err(|(f, m)| (format!("instances.service_time.{f}"), m))?;
    let configs: Vec<Arc<InstanceConfig>> = b
        .region_servers
        .iter()
        .map(|servers| {
            Arc::new(InstanceConfig {
                service: ServiceId(0),
                service_name: Arc::from(s.instances.service.as_str()),
                servers: Arc::clone(servers),
                beat_interval: s.instances.beat_interval,
                request_timeout: s.instances.answer_timeout(s.network.transport.registry),
                service_time: service_time.clone(),
                concurrency: s.instances.concurrency,
                queue_max: s.instances.queue_max,
                persistent: s.registry.mode == RegistryMode::Cp,
            })
        })
        .collect();
    let spread = s.instances.start_spread.as_nanos();
    for i in 0..s.instances.count * b.regions() {
        let start = if spread == 0 { 0 } else { b.workload.random_range(0..spread) };
        let cfg = Arc::clone(&configs[(i / s.instances.count.max(1)) as usize]);
        b.add(Node::Instance(ServiceInstance::new(cfg)), SimTime(start));
    }
    Ok(())
}

pub(super) fn consumers(b: &mut Nodes<'_>) -> Result<(), BuildError> {
    let s = b.s;
    let c = &s.consumers;
    let specs = balancer_specs(s)?;
    let dist: KeyDist = c.keys.parse().map_err(|e: BalanceError| ("consumers.keys".to_string(), e.to_string()))?;
    let keys = Arc::new(KeySampler::new(&dist, b.seed).map_err(|e| ("consumers.keys".to_string(), e.to_string()))?);
    b.keys = Some(Arc::clone(&keys));
    b.view_cfgs = b
        .region_servers
        .iter()
        .map(|servers| {
            Arc::new(ViewConfig {
                service: ServiceId(0),
                servers: Arc::clone(servers),
                poll_interval: c.poll_interval.unwrap_or(default_poll(s)),
                backoff_max: c.backoff_max,
                query_timeout: c.answer_timeout(s.network.transport.registry),
            })
        })
        .collect();
    let spread = c.start_spread.as_nanos();
    for i in 0..c.count * b.regions() {
        let start = if spread == 0 { 0 } else { b.workload.random_range(0..spread) };
        let (region, k) = (i / c.count.max(1), i % c.count.max(1));
        let gateway = s.gateway.as_ref().map(|g| b.ids(Role::Gateways, region)[(k % g.count) as usize]);
        let cfg = ConsumerConfig {
            balancer: specs[i as usize % specs.len()].clone(),
            keys: Arc::clone(&keys),
            view: Arc::clone(&b.view_cfgs[region as usize]),
            call_rate: c.call_rate,
            call_timeout: s.call_timeout(),
            max_attempts: c.max_attempts,
            gateway,
        };
        let consumer = Consumer::new(cfg).map_err(|e| ("consumers.balancers".to_string(), e.to_string()))?;
        b.add(Node::Consumer(Box::new(consumer)), SimTime(start));
    }
    Ok(())
}

pub(super) fn gateways(b: &mut Nodes<'_>) -> Result<(), BuildError> {
    let s = b.s;
    let Some(g) = &s.gateway else { return Ok(()) };
    let balancer = gateway_spec(s)?;
    let keys = b.keys.clone().expect("roles: consumers are built before gateways");
    for region in 0..b.regions() {
        let view = ViewConfig {
            poll_interval: g.poll_interval.unwrap_or(default_poll(s)),
            ..(*b.view_cfgs[region as usize]).clone()
        };
        let config = Arc::new(GatewayConfig {
            service_name: s.instances.service.clone(),
            view: Arc::new(view),
            balancer: balancer.clone(),
            keys: Arc::clone(&keys),
            attempt_timeout: g.attempt_timeout,
            max_attempts: g.max_attempts,
            retry_timeout: g.retry_timeout,
            breaker: g.breaker.clone(),
            rate_limit: g.rate_limit.as_ref().map(|r| (r.rate, r.burst)),
            buckets: Arc::from(crate::monitor::histogram::DEFAULT_BUCKETS),
        });
        for _ in b.ids(Role::Gateways, region) {
            let gw = Gateway::new(Arc::clone(&config)).map_err(|e| ("gateway.balancer".to_string(), e.to_string()))?;
            b.add(Node::Gateway(Box::new(gw)), SimTime::ZERO);
        }
    }
    Ok(())
}

/// The gateways' balancer spec.
pub fn gateway_spec(s: &Scenario) -> Result<BalancerSpec, BuildError> {
    let Some(g) = &s.gateway else { return Err(("gateway".into(), "no gateway".into())) };
    let mut v = parse_spec(&g.balancer).map_err(|e| ("gateway.balancer".to_string(), e.to_string()))?;
    v.pop().ok_or_else(|| ("gateway.balancer".to_string(), "expected a balancer spec".to_string()))
}

/// The consumers' balancer specs, in scenario order.
pub fn balancer_specs(s: &Scenario) -> Result<Vec<BalancerSpec>, BuildError> {
    let mut out = Vec::new();
    for (k, text) in s.consumers.balancers.iter().enumerate() {
        let mut v = parse_spec(text).map_err(|e| (format!("consumers.balancers[{k}]"), e.to_string()))?;
        out.push(v.pop().ok_or_else(|| (format!("consumers.balancers[{k}]"), "expected a balancer spec".to_string()))?);
    }
    Ok(out)
}
