//! Builds a world from a validated scenario: the topology and the nodes come from
//! [`super::roles`] (one builder per role, in node-id order), the network model and the fault
//! schedule from the scenario's `network` and `faults`. Random streams: the network's `net`,
//! the fault schedule's `faults`, start offsets `workload`, each node's own (see `roles`).
//! Scenarios without gateways, regions or a global server keep the layout (and the digests)
//! they had before those existed.

use super::schema::{LinkSpec, RegistryMode, Scenario};
use crate::fault::{self, FaultAction, Topology};
use crate::protocol::Node;
use regsim_kernel::net::{LinkProfile, Network};
use regsim_kernel::{NodeId, SimDuration, SimTime, World, stream};

use super::roles::Role;
pub use super::roles::clients::{balancer_specs, gateway_spec};
pub use super::roles::{BuildError, NodeSpec};

pub const SERVERS: &str = Role::Servers.name();
pub const INSTANCES: &str = Role::Instances.name();
pub const CONSUMERS: &str = Role::Consumers.name();
pub const GATEWAYS: &str = Role::Gateways.name();
pub const PROMETHEUS: &str = Role::Prometheus.name();
pub const GLOBAL_PROMETHEUS: &str = Role::GlobalPrometheus.name();
pub const ALERTMANAGER: &str = Role::Alertmanager.name();
/// Every role name (region names may not reuse them).
pub const ROLES: &[&str] = &super::roles::ROLE_NAMES;

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

use super::roles::topology;

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
    world.set_clocks(s.clocks.clocks(seed));
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
    let t = &s.network.transport;
    for (channel, wire) in t.wires(s.instances.connect_timeout, s.consumers.connect_timeout) {
        net.set_wire(channel, wire);
    }
    net.set_tcp(t.tcp);
    let nodes = super::roles::layout_nodes(s, seed, &topology)?;
    let mut fault_rng = stream(seed, "faults");
    let faults = fault::resolve(&s.faults, &topology, &mut fault_rng, SimTime(s.duration.as_nanos()))?;
    Ok(Layout { nodes, network: net, faults, topology, seed })
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
