//! The roles of a world, in node-id order, each with one builder that adds its nodes.
//!
//! [`Role::ALL`] is the layout: servers, instances, consumers, then (when configured)
//! gateways, the regional Prometheus servers, the global one and the Alertmanager. The
//! topology reserves each role's block of ids from [`Role::count`], and [`layout_nodes`] runs
//! the builders in the same order; [`Nodes::add`] checks that every node lands on the id its
//! role reserved, so topology order cannot drift from node order. With `regions`, each
//! per-region role is laid out region by region (eu's servers, then us's): a role stays one
//! contiguous block and a region's part of it a contiguous sub-block. Random streams are named
//! by role and index (`servers/0`, `instances/17`), so adding an instance perturbs no other
//! node. Adding a role: a variant here, its name, its count and its builder.

pub(crate) mod clients;
mod monitoring;
mod registry;

use std::sync::Arc;

use super::schema::Scenario;
use crate::balance::keys::KeySampler;
use crate::fault::Topology;
use crate::protocol::clients::view::ViewConfig;
use crate::protocol::{Node, ServerList};
use regsim_kernel::{NodeId, SimRng, SimTime, stream};

/// A build error: (key path, message). Only fault targets can fail here.
pub type BuildError = (String, String);

/// One node of the layout: its random stream's name, its actor and its start time.
pub struct NodeSpec {
    pub stream: String,
    pub actor: Node,
    pub start_at: SimTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Servers,
    Instances,
    Consumers,
    Gateways,
    Prometheus,
    GlobalPrometheus,
    Alertmanager,
}

impl Role {
    /// Every role, in node-id order.
    pub const ALL: [Role; 7] = [
        Role::Servers,
        Role::Instances,
        Role::Consumers,
        Role::Gateways,
        Role::Prometheus,
        Role::GlobalPrometheus,
        Role::Alertmanager,
    ];

    /// The name targets, links and random streams use (`servers[0]`, `instances/17`).
    pub const fn name(self) -> &'static str {
        match self {
            Role::Servers => "servers",
            Role::Instances => "instances",
            Role::Consumers => "consumers",
            Role::Gateways => "gateways",
            Role::Prometheus => "prometheus",
            Role::GlobalPrometheus => "global_prometheus",
            Role::Alertmanager => "alertmanager",
        }
    }

    /// `(nodes per region, whether the role is per region)`, or `None` when the scenario has
    /// no such role (gateway and monitoring roles only when configured, so other scenarios
    /// keep their layout and digests).
    pub fn count(self, s: &Scenario) -> Option<(u32, bool)> {
        match self {
            Role::Servers => Some((s.registry.servers, true)),
            Role::Instances => Some((s.instances.count, true)),
            Role::Consumers => Some((s.consumers.count, true)),
            Role::Gateways => s.gateway.as_ref().map(|g| (g.count, true)),
            Role::Prometheus => s.monitoring.as_ref().map(|_| (1, true)),
            Role::GlobalPrometheus => s.monitoring.as_ref().and_then(|m| m.global.as_ref()).map(|_| (1, false)),
            Role::Alertmanager => s.monitoring.as_ref().map(|m| (u32::from(m.alertmanager_enabled), false)),
        }
    }

    fn build(self, b: &mut Nodes<'_>) -> Result<(), BuildError> {
        match self {
            Role::Servers => registry::servers(b),
            Role::Instances => clients::instances(b),
            Role::Consumers => clients::consumers(b),
            Role::Gateways => clients::gateways(b),
            Role::Prometheus => monitoring::prometheus(b),
            Role::GlobalPrometheus => monitoring::global_prometheus(b),
            Role::Alertmanager => monitoring::alertmanager(b),
        }
    }
}

/// Every role name (region names may not reuse them).
pub const ROLE_NAMES: [&str; 7] = {
    let mut names = [""; 7];
    let mut i = 0;
    while i < 7 {
        names[i] = Role::ALL[i].name();
        i += 1;
    }
    names
};

/// Roles in node-id order; each per-region role is laid out region by region.
pub fn topology(s: &Scenario) -> Topology {
    let mut topology = Topology { regions: s.regions.clone(), ..Topology::default() };
    let n = s.region_count();
    for role in Role::ALL {
        match role.count(s) {
            Some((count, true)) => topology.add_regional_role(role.name(), count, n),
            Some((count, false)) => topology.add_role(role.name(), count),
            None => continue,
        };
    }
    topology
}

/// What the builders share while they add their nodes, in role order.
pub(super) struct Nodes<'a> {
    pub s: &'a Scenario,
    pub seed: u64,
    pub topology: &'a Topology,
    pub nodes: Vec<NodeSpec>,
    /// Per region: its servers (every registry client of the region is configured with them).
    pub region_servers: Vec<ServerList>,
    /// Start offsets of instances and consumers, drawn in node order.
    pub workload: SimRng,
    /// The consumers' key sampler and per-region view settings (the gateways reuse them).
    pub keys: Option<Arc<KeySampler>>,
    pub view_cfgs: Vec<Arc<ViewConfig>>,
    role: Option<Role>,
    index: u32,
}

impl Nodes<'_> {
    /// Adds the next node of the role being built, named `role/index`.
    ///
    /// # Panics
    /// If the node's id is not the one the topology reserved for it (a builder adding more or
    /// fewer nodes than its role's count): a bug in the builder, not in the scenario.
    pub fn add(&mut self, actor: Node, start_at: SimTime) {
        let role = self.role.expect("roles: a node added outside a role's builder");
        let reserved = self.topology.role(role.name()).map(|r| r.first + self.index);
        assert_eq!(reserved, Some(self.nodes.len() as u32), "roles: {} builder out of step", role.name());
        self.nodes.push(NodeSpec { stream: format!("{}/{}", role.name(), self.index), actor, start_at });
        self.index += 1;
    }

    /// The ids of `role`'s nodes in region `r` (all of them for a role not per region).
    pub fn ids(&self, role: Role, r: u32) -> Vec<NodeId> {
        self.topology
            .role(role.name())
            .map(|x| if x.regions > 0 { x.block(r) } else { x.clone() })
            .map(|b| (b.first..b.first + b.count).map(NodeId).collect())
            .unwrap_or_default()
    }

    pub fn regions(&self) -> u32 {
        self.s.region_count()
    }
}

/// Runs every role's builder in node-id order.
pub fn layout_nodes(s: &Scenario, seed: u64, topology: &Topology) -> Result<Vec<NodeSpec>, BuildError> {
    let mut b = Nodes {
        s,
        seed,
        topology,
        nodes: Vec::new(),
        region_servers: Vec::new(),
        workload: stream(seed, "workload"),
        keys: None,
        view_cfgs: Vec::new(),
        role: None,
        index: 0,
    };
    for role in Role::ALL {
        if role.count(s).is_none() {
            continue;
        }
        b.role = Some(role);
        b.index = 0;
        role.build(&mut b)?;
        let reserved = topology.role(role.name()).map_or(0, |r| r.count);
        assert_eq!(b.index, reserved, "roles: the {} builder added {} of {reserved} nodes", role.name(), b.index);
    }
    Ok(b.nodes)
}
