//! Builds a world from a validated scenario.
//!
//! Node ids are laid out by role: servers, instances, consumers, then (when configured)
//! gateways, the regional Prometheus servers, the global one and the Alertmanager. With
//! `regions`, each per-region role is laid out region by region (eu's servers, then us's), so a
//! role stays one contiguous block and a region's part of it is a contiguous sub-block.
//! Random streams are named by role and index (`servers/0`, `instances/17`), the network's
//! `net`, the fault schedule's `faults`, start offsets `workload`, so adding an instance
//! perturbs no other node. Scenarios without gateways, regions or a global server keep the
//! layout (and the digests) they had before those existed.

use std::sync::Arc;

use rand::RngExt;

use super::schema::{LinkSpec, RegistryMode, Scenario};
use crate::balance::keys::{KeyDist, KeySampler};
use crate::balance::{BalanceError, BalancerSpec, parse_spec};
use crate::fault::{self, FaultAction, Topology};
use crate::monitor::Labels;
use crate::monitor::group::EngineConfig;
use crate::protocol::clients::consumer::{Consumer, ConsumerConfig};
use crate::protocol::clients::gateway::{Gateway, GatewayConfig};
use crate::protocol::clients::instance::{InstanceConfig, ServiceInstance};
use crate::protocol::clients::view::ViewConfig;
use crate::protocol::cp::{CpConfig, CpServer};
use crate::protocol::monitoring::alertmanager::{Alertmanager, AlertmanagerConfig};
use crate::protocol::monitoring::prometheus::{FederateQuery, Prometheus, PrometheusConfig, StaticTarget};
use crate::protocol::nacos::distro::DistroConfig;
use crate::protocol::nacos::membership::MembershipConfig;
use crate::protocol::nacos::push::PushConfig;
use crate::protocol::nacos::server::{RegistryServer, ServerConfig};
use crate::protocol::raft::RaftConfig;
use crate::protocol::{Node, ServiceId, java_hash};
use regsim_kernel::net::{LinkProfile, Network};
use regsim_kernel::{NodeId, SimDuration, SimTime, World, stream};

pub const SERVERS: &str = "servers";
pub const INSTANCES: &str = "instances";
pub const CONSUMERS: &str = "consumers";
pub const GATEWAYS: &str = "gateways";
pub const PROMETHEUS: &str = "prometheus";
pub const GLOBAL_PROMETHEUS: &str = "global_prometheus";
pub const ALERTMANAGER: &str = "alertmanager";
/// Every role name (region names may not reuse them).
pub const ROLES: &[&str] = &[SERVERS, INSTANCES, CONSUMERS, GATEWAYS, PROMETHEUS, GLOBAL_PROMETHEUS, ALERTMANAGER];

/// A world ready to run, with the layout the metrics need.
pub struct Built {
    pub world: World<Node>,
    pub topology: Topology,
    pub seed: u64,
}

impl Built {
    pub fn servers(&self) -> Vec<NodeId> {
        self.role_nodes(SERVERS)
    }
    pub fn instances(&self) -> Vec<NodeId> {
        self.role_nodes(INSTANCES)
    }
    pub fn consumers(&self) -> Vec<NodeId> {
        self.role_nodes(CONSUMERS)
    }
    fn role_nodes(&self, name: &str) -> Vec<NodeId> {
        self.topology.role(name).map(|r| (r.first..r.first + r.count).map(NodeId).collect()).unwrap_or_default()
    }
}

/// One node of the layout: its random stream's name, its actor and its start time.
pub struct NodeSpec {
    pub stream: String,
    pub actor: Node,
    pub start_at: SimTime,
}

/// Everything a driver needs to run a scenario, without the driver: the nodes in id order,
/// the network model and the resolved fault schedule (in time order, same-time faults in file
/// order). The core engine turns it into a `World` ([`build`]); `regsim-madsim` runs the same
/// actors on madsim.
pub struct Layout {
    pub nodes: Vec<NodeSpec>,
    pub network: Network,
    pub faults: Vec<(SimTime, FaultAction)>,
    pub topology: Topology,
    pub seed: u64,
}

/// A build error: (key path, message). Only fault targets can fail here.
pub type BuildError = (String, String);

/// Roles in node-id order; each per-region role is laid out region by region.
fn topology(s: &Scenario) -> Topology {
    let mut topology = Topology { regions: s.regions.clone(), ..Topology::default() };
    let n = s.region_count();
    topology.add_regional_role(SERVERS, s.registry.servers, n);
    topology.add_regional_role(INSTANCES, s.instances.count, n);
    topology.add_regional_role(CONSUMERS, s.consumers.count, n);
    // Gateway and monitoring roles only when configured, so other scenarios keep their layout.
    if let Some(g) = &s.gateway {
        topology.add_regional_role(GATEWAYS, g.count, n);
    }
    if let Some(m) = &s.monitoring {
        topology.add_regional_role(PROMETHEUS, 1, n);
        if m.global.is_some() {
            topology.add_role(GLOBAL_PROMETHEUS, 1);
        }
        topology.add_role(ALERTMANAGER, u32::from(m.alertmanager_enabled));
    }
    topology
}

/// Checks what only the world layout can check (roles of links, fault targets) without
/// building nodes, so `regsim check` and `run` reject the same files.
pub fn check(s: &Scenario) -> Result<(), BuildError> {
    let topology = topology(s);
    let latency = regsim_kernel::net::LatencySpec::constant(SimDuration::ZERO);
    // One node per role class is enough to check the links (a link may name any role).
    let classes = (0..topology.roles.len() as u8).collect();
    let mut net = Network::new(profile(&latency, 0.0, 0.0)?, classes, stream(s.seed, "net"));
    for (k, l) in s.network.links.iter().enumerate() {
        add_link(&mut net, &topology, k, l, s)?;
    }
    if s.registry.mode != RegistryMode::Cp
        && let Some(k) = s.faults.iter().position(|f| f.target.as_ref().and_then(fault::role::parse).is_some())
    {
        // In AP mode no node ever has a leader term: the fault would silently hit nothing.
        return Err((
            format!("faults[{k}].target"),
            "\"leader\" and \"follower[random]\" need registry.mode = \"cp\" (an AP registry has no leader); \
             target servers by index, e.g. \"servers[0]\""
                .into(),
        ));
    }
    fault::resolve(&s.faults, &topology, &mut stream(s.seed, "faults"), SimTime(s.duration.as_nanos()))?;
    Ok(())
}

pub fn build(s: &Scenario, seed: u64) -> Result<Built, BuildError> {
    let Layout { nodes, network, faults, topology, seed } = layout(s, seed)?;
    let mut world = World::new(seed, network);
    world.set_resolver(Box::new(crate::protocol::ConsensusRoles));
    for n in nodes {
        world.add_node(&n.stream, n.actor, n.start_at);
    }
    for (at, action) in faults {
        world.schedule_fault(at, action);
    }
    Ok(Built { world, topology, seed })
}

/// Lays out the nodes, the network and the fault schedule of `s` run with `seed`.
pub fn layout(s: &Scenario, seed: u64) -> Result<Layout, BuildError> {
    let topology = topology(s);
    let class_of: Vec<u8> =
        topology.roles.iter().enumerate().flat_map(|(c, r)| std::iter::repeat_n(c as u8, r.count as usize)).collect();
    let mut net =
        Network::new(profile(&s.network.latency, s.network.loss, s.network.duplicate)?, class_of, stream(seed, "net"));
    for (k, l) in s.network.links.iter().enumerate() {
        add_link(&mut net, &topology, k, l, s)?;
    }
    let mut nodes = Vec::new();
    let mut add = |stream: String, actor: Node, start_at: SimTime| nodes.push(NodeSpec { stream, actor, start_at });
    let regions = s.region_count();
    let first = |name: &str| topology.role(name).map_or(0, |r| r.first);
    let per_region = |name: &str, r: u32| -> Vec<NodeId> {
        topology
            .role(name)
            .map(|x| x.block(r))
            .map(|b| (b.first..b.first + b.count).map(NodeId).collect())
            .unwrap_or_default()
    };
    let region_servers: Vec<Arc<[NodeId]>> = (0..regions).map(|r| Arc::from(per_region(SERVERS, r))).collect();
    let r = &s.registry.raft;
    let cp_cfg = CpConfig {
        raft: RaftConfig {
            election_timeout: r.election_timeout,
            election_jitter: r.election_jitter,
            heartbeat_interval: r.heartbeat_interval,
            pre_vote: r.pre_vote,
            check_quorum: r.check_quorum,
            vote_twice: s.bugs.vote_twice,
        },
        reads: r.reads,
        apply_before_commit: s.bugs.apply_before_commit,
        ..CpConfig::default()
    };
    let cp = s.registry.mode == RegistryMode::Cp;
    for servers in &region_servers {
        let server_cfg = server_config(s, Arc::clone(servers));
        let cp_cfg = Arc::new(cp_cfg.clone());
        for &id in servers.iter() {
            let node = match s.registry.mode {
                RegistryMode::Ap => Node::Server(Box::new(RegistryServer::new(server_cfg.clone(), id))),
                RegistryMode::Cp => Node::Raft(Box::new(CpServer::new(Arc::clone(&cp_cfg), id, Arc::clone(servers)))),
            };
            add(format!("{SERVERS}/{}", id.0 - first(SERVERS)), node, SimTime::ZERO);
        }
    }
    let service_time = s
        .instances
        .service_time
        .as_ref()
        .map(|l| l.build())
        .transpose()
        .map_err(|(f, m)| (format!("instances.service_time.{f}"), m))?;
    let instance_cfgs: Vec<Arc<InstanceConfig>> = region_servers
        .iter()
        .map(|servers| {
            Arc::new(InstanceConfig {
                service: ServiceId(0),
                service_name: Arc::from(s.instances.service.as_str()),
                servers: Arc::clone(servers),
                beat_interval: s.instances.beat_interval,
                request_timeout: s.instances.request_timeout,
                service_time: service_time.clone(),
                concurrency: s.instances.concurrency,
                queue_max: s.instances.queue_max,
                persistent: cp,
            })
        })
        .collect();
    let mut workload = stream(seed, "workload");
    let spread = s.instances.start_spread.as_nanos();
    for i in 0..s.instances.count * regions {
        let start = if spread == 0 { 0 } else { workload.random_range(0..spread) };
        let cfg = Arc::clone(&instance_cfgs[(i / s.instances.count.max(1)) as usize]);
        add(format!("{INSTANCES}/{i}"), Node::Instance(ServiceInstance::new(cfg)), SimTime(start));
    }
    let c = &s.consumers;
    // The CP registry does not push: consumers poll as with push off.
    let default_poll = SimDuration::from_secs(if s.registry.push.enabled && !cp { 10 } else { 3 });
    let specs = balancer_specs(s)?;
    let dist: KeyDist = c.keys.parse().map_err(|e: BalanceError| ("consumers.keys".to_string(), e.to_string()))?;
    let keys = Arc::new(KeySampler::new(&dist, seed).map_err(|e| ("consumers.keys".to_string(), e.to_string()))?);
    let view_cfgs: Vec<Arc<ViewConfig>> = region_servers
        .iter()
        .map(|servers| {
            Arc::new(ViewConfig {
                service: ServiceId(0),
                servers: Arc::clone(servers),
                poll_interval: c.poll_interval.unwrap_or(default_poll),
                backoff_max: c.backoff_max,
                query_timeout: c.query_timeout,
            })
        })
        .collect();
    let spread = c.start_spread.as_nanos();
    for i in 0..c.count * regions {
        let start = if spread == 0 { 0 } else { workload.random_range(0..spread) };
        let (region, k) = (i / c.count.max(1), i % c.count.max(1));
        let gateway = s.gateway.as_ref().map(|g| per_region(GATEWAYS, region)[(k % g.count) as usize]);
        let cfg = ConsumerConfig {
            balancer: specs[i as usize % specs.len()].clone(),
            keys: Arc::clone(&keys),
            view: Arc::clone(&view_cfgs[region as usize]),
            call_rate: c.call_rate,
            call_timeout: s.call_timeout(),
            max_attempts: c.max_attempts,
            gateway,
        };
        let consumer = Consumer::new(cfg).map_err(|e| ("consumers.balancers".to_string(), e.to_string()))?;
        add(format!("{CONSUMERS}/{i}"), Node::Consumer(Box::new(consumer)), SimTime(start));
    }
    if let Some(g) = &s.gateway {
        let balancer = gateway_spec(s)?;
        for region in 0..regions {
            let view = ViewConfig {
                poll_interval: g.poll_interval.unwrap_or(default_poll),
                ..(*view_cfgs[region as usize]).clone()
            };
            let config = Arc::new(GatewayConfig {
                service_name: s.instances.service.clone(),
                view: Arc::new(view),
                balancer: balancer.clone(),
                keys: Arc::clone(&keys),
                attempt_timeout: g.attempt_timeout,
                max_attempts: g.max_attempts,
                retry_timeout: g.retry_timeout,
                breaker: g.breaker.as_ref().map(|b| b.config()),
                rate_limit: g.rate_limit.as_ref().map(|r| (r.rate, r.burst)),
                buckets: Arc::from(crate::monitor::histogram::DEFAULT_BUCKETS),
            });
            for id in per_region(GATEWAYS, region) {
                let gw =
                    Gateway::new(Arc::clone(&config)).map_err(|e| ("gateway.balancer".to_string(), e.to_string()))?;
                add(format!("{GATEWAYS}/{}", id.0 - first(GATEWAYS)), Node::Gateway(Box::new(gw)), SimTime::ZERO);
            }
        }
    }
    if let Some(m) = &s.monitoring {
        let alertmanager = topology.role(ALERTMANAGER).filter(|r| r.count > 0).map(|r| NodeId(r.first));
        let p = &m.prometheus;
        let base = PrometheusConfig {
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
        };
        for region in 0..regions {
            let mut external_labels = Labels::empty();
            if let Some(name) = s.regions.get(region as usize) {
                external_labels.set("region".into(), name.clone());
            }
            let static_targets = per_region(GATEWAYS, region)
                .into_iter()
                .map(|node| StaticTarget { node, job: "gateway".into(), federate: None })
                .collect();
            let config = PrometheusConfig {
                servers: Arc::clone(&region_servers[region as usize]),
                static_targets,
                external_labels,
                ..base.clone()
            };
            add(
                format!("{PROMETHEUS}/{region}"),
                Node::Prometheus(Box::new(Prometheus::new(Arc::new(config)))),
                SimTime::ZERO,
            );
        }
        if let Some(gl) = &m.global {
            let matchers = Arc::new(FederateQuery::new(gl.parsed.clone()));
            let static_targets = (0..regions)
                .flat_map(|r| per_region(PROMETHEUS, r))
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
                ..base.clone()
            };
            add(
                format!("{GLOBAL_PROMETHEUS}/0"),
                Node::Prometheus(Box::new(Prometheus::new(Arc::new(config)))),
                SimTime::ZERO,
            );
        }
        if m.alertmanager_enabled {
            let a = &m.alertmanager;
            let config = AlertmanagerConfig {
                group_by: a.group_by.clone(),
                group_wait: a.group_wait,
                group_interval: a.group_interval,
                repeat_interval: a.repeat_interval,
                send_resolved: a.send_resolved,
            };
            add(
                format!("{ALERTMANAGER}/0"),
                Node::Alertmanager(Box::new(Alertmanager::new(Arc::new(config)))),
                SimTime::ZERO,
            );
        }
    }
    let mut fault_rng = stream(seed, "faults");
    let faults = fault::resolve(&s.faults, &topology, &mut fault_rng, SimTime(s.duration.as_nanos()))?;
    Ok(Layout { nodes, network: net, faults, topology, seed })
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

fn server_config(s: &Scenario, servers: Arc<[NodeId]>) -> ServerConfig {
    let r = &s.registry;
    ServerConfig {
        check_interval: r.health.check_interval,
        unhealthy_after: r.health.unhealthy_after,
        delete_after: r.health.delete_after,
        servers,
        // Nacos keys a service by group and name.
        service_hashes: Arc::from([java_hash(&format!("DEFAULT_GROUP@@{}", s.instances.service))]),
        membership: MembershipConfig {
            report_interval: r.membership.report_interval,
            report_timeout: r.membership.report_timeout,
            down_after_failures: r.membership.down_after_failures,
        },
        distro: DistroConfig {
            sync_delay: r.distro.sync_delay,
            sync_timeout: r.distro.sync_timeout,
            sync_retry: r.distro.sync_retry,
            verify_interval: r.distro.verify_interval,
            skip_anti_entropy: s.bugs.skip_anti_entropy,
        },
        push: PushConfig {
            enabled: r.push.enabled,
            debounce: r.push.debounce,
            ack_timeout: r.push.ack_timeout,
            resends: r.push.resends,
            client_expiry: r.push.client_expiry,
        },
    }
}

fn profile(latency: &regsim_kernel::net::LatencySpec, loss: f64, duplicate: f64) -> Result<LinkProfile, BuildError> {
    let latency = latency.build().map_err(|(f, m)| (format!("network.latency.{f}"), m))?;
    Ok(LinkProfile { latency, loss, duplicate })
}

fn add_link(net: &mut Network, t: &Topology, k: usize, l: &LinkSpec, s: &Scenario) -> Result<(), BuildError> {
    let class = |role: &str, key: &str| {
        t.roles.iter().position(|r| r.name == role).map(|c| c as u8).ok_or_else(|| {
            let names: Vec<&str> = t.roles.iter().map(|r| r.name.as_str()).collect();
            (format!("network.links[{k}].{key}"), format!("unknown role \"{role}\" (roles: {})", names.join(", ")))
        })
    };
    let (from, to) = (class(&l.from, "from")?, class(&l.to, "to")?);
    let latency = l.latency.as_ref().unwrap_or(&s.network.latency);
    let p = profile(latency, l.loss.unwrap_or(s.network.loss), l.duplicate.unwrap_or(s.network.duplicate))
        .map_err(|(p, m)| (p.replace("network.", &format!("network.links[{k}].")), m))?;
    net.set_link(from, to, p.clone());
    if !l.one_way {
        net.set_link(to, from, p);
    }
    Ok(())
}
