//! Builds a world from a validated scenario.
//!
//! Node ids are laid out by role: servers, instances, consumers; random streams are named by
//! role and index (`servers/0`, `instances/17`), the network's `net`, the fault schedule's
//! `faults`, start offsets `workload`, so adding an instance perturbs no other node.

use std::sync::Arc;

use rand::RngExt;

use super::schema::{LinkSpec, RegistryMode, Scenario};
use crate::balance::keys::{KeyDist, KeySampler};
use crate::balance::{BalanceError, BalancerSpec, parse_spec};
use crate::engine::{NodeId, SimDuration, SimTime, World, stream};
use crate::fault::{self, FaultAction, Topology};
use crate::monitor::group::EngineConfig;
use crate::net::{LinkProfile, Network};
use crate::protocol::alertmanager::{Alertmanager, AlertmanagerConfig};
use crate::protocol::cp::{CpConfig, CpServer};
use crate::protocol::distro::DistroConfig;
use crate::protocol::membership::MembershipConfig;
use crate::protocol::prometheus::{Prometheus, PrometheusConfig};
use crate::protocol::push::PushConfig;
use crate::protocol::raft::RaftConfig;
use crate::protocol::{
    Consumer, ConsumerConfig, InstanceConfig, Node, RegistryServer, ServerConfig, ServiceId, ServiceInstance, java_hash,
};

pub const SERVERS: &str = "servers";
pub const INSTANCES: &str = "instances";
pub const CONSUMERS: &str = "consumers";
pub const PROMETHEUS: &str = "prometheus";
pub const ALERTMANAGER: &str = "alertmanager";

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

fn topology(s: &Scenario) -> Topology {
    let mut topology = Topology::default();
    topology.add_role(SERVERS, s.registry.servers);
    topology.add_role(INSTANCES, s.instances.count);
    topology.add_role(CONSUMERS, s.consumers.count);
    // Monitoring roles only when configured, so scenarios without them keep their layout.
    if let Some(m) = &s.monitoring {
        topology.add_role(PROMETHEUS, 1);
        topology.add_role(ALERTMANAGER, u32::from(m.alertmanager_enabled));
    }
    topology
}

/// Checks what only the world layout can check (roles of links, fault targets) without
/// building nodes, so `regsim check` and `run` reject the same files.
pub fn check(s: &Scenario) -> Result<(), BuildError> {
    let topology = topology(s);
    let latency = crate::net::LatencySpec::constant(SimDuration::ZERO);
    let mut net = Network::new(profile(&latency, 0.0, 0.0)?, vec![0, 1, 2], stream(s.seed, "net"));
    for (k, l) in s.network.links.iter().enumerate() {
        add_link(&mut net, &topology, k, l, s)?;
    }
    fault::resolve(&s.faults, &topology, &mut stream(s.seed, "faults"), SimTime(s.duration.as_nanos()))?;
    Ok(())
}

pub fn build(s: &Scenario, seed: u64) -> Result<Built, BuildError> {
    let Layout { nodes, network, faults, topology, seed } = layout(s, seed)?;
    let mut world = World::new(seed, network);
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
    let servers: Arc<[NodeId]> = (0..s.registry.servers).map(NodeId).collect();
    let server_cfg = server_config(s, Arc::clone(&servers));
    let r = &s.registry.raft;
    let cp_cfg = Arc::new(CpConfig {
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
    });
    let cp = s.registry.mode == RegistryMode::Cp;
    for i in 0..s.registry.servers {
        let node = match s.registry.mode {
            RegistryMode::Ap => Node::Server(Box::new(RegistryServer::new(server_cfg.clone(), NodeId(i)))),
            RegistryMode::Cp => {
                Node::Raft(Box::new(CpServer::new(Arc::clone(&cp_cfg), NodeId(i), Arc::clone(&servers))))
            }
        };
        add(format!("{SERVERS}/{i}"), node, SimTime::ZERO);
    }
    let cfg = Arc::new(InstanceConfig {
        service: ServiceId(0),
        servers: Arc::clone(&servers),
        beat_interval: s.instances.beat_interval,
        request_timeout: s.instances.request_timeout,
        service_time: s
            .instances
            .service_time
            .as_ref()
            .map(|l| l.build())
            .transpose()
            .map_err(|(f, m)| (format!("instances.service_time.{f}"), m))?,
        concurrency: s.instances.concurrency,
        queue_max: s.instances.queue_max,
        persistent: cp,
    });
    let mut workload = stream(seed, "workload");
    let spread = s.instances.start_spread.as_nanos();
    for i in 0..s.instances.count {
        let start = if spread == 0 { 0 } else { workload.random_range(0..spread) };
        add(format!("{INSTANCES}/{i}"), Node::Instance(ServiceInstance::new(Arc::clone(&cfg))), SimTime(start));
    }
    let c = &s.consumers;
    // The CP registry does not push: consumers poll as with push off.
    let default_poll = if s.registry.push.enabled && !cp { 10 } else { 3 };
    let specs = balancer_specs(s)?;
    let dist: KeyDist = c.keys.parse().map_err(|e: BalanceError| ("consumers.keys".to_string(), e.to_string()))?;
    let keys = Arc::new(KeySampler::new(&dist, seed).map_err(|e| ("consumers.keys".to_string(), e.to_string()))?);
    let consumer_cfg = ConsumerConfig {
        balancer: specs[0].clone(),
        keys,
        service: ServiceId(0),
        servers: Arc::clone(&servers),
        poll_interval: c.poll_interval.unwrap_or(SimDuration::from_secs(default_poll)),
        backoff_max: c.backoff_max,
        query_timeout: c.query_timeout,
        call_rate: c.call_rate,
        call_timeout: c.call_timeout,
        max_attempts: c.max_attempts,
    };
    let spread = c.start_spread.as_nanos();
    for i in 0..c.count {
        let start = if spread == 0 { 0 } else { workload.random_range(0..spread) };
        let cfg = ConsumerConfig { balancer: specs[i as usize % specs.len()].clone(), ..consumer_cfg.clone() };
        let consumer = Consumer::new(cfg).map_err(|e| ("consumers.balancers".to_string(), e.to_string()))?;
        add(format!("{CONSUMERS}/{i}"), Node::Consumer(Box::new(consumer)), SimTime(start));
    }
    if let Some(m) = &s.monitoring {
        let first = s.registry.servers + s.instances.count + c.count;
        let alertmanager = m.alertmanager_enabled.then_some(NodeId(first + 1));
        let p = &m.prometheus;
        let config = PrometheusConfig {
            job: m.job.clone(),
            service: ServiceId(0),
            servers: Arc::clone(&servers),
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
        };
        let prom = Node::Prometheus(Box::new(Prometheus::new(Arc::new(config))));
        add(format!("{PROMETHEUS}/0"), prom, SimTime::ZERO);
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

fn profile(latency: &crate::net::LatencySpec, loss: f64, duplicate: f64) -> Result<LinkProfile, BuildError> {
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
