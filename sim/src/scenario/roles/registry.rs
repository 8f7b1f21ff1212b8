//! The registry servers: Nacos AP servers or CP servers on Raft, per region.

use std::sync::Arc;

use super::BuildError;
use super::{Nodes, Role};
use crate::protocol::Node;
use crate::protocol::cp::{CpConfig, CpServer};
use crate::protocol::java_hash;
use crate::protocol::nacos::distro::DistroConfig;
use crate::protocol::nacos::server::RegistryServer;
use crate::protocol::nacos::server::ServerConfig;
use crate::protocol::raft::RaftConfig;
use crate::scenario::schema::RegistryMode;
use crate::scenario::schema::Scenario;
use regsim_kernel::NodeId;
use regsim_kernel::SimTime;

pub(super) fn servers(b: &mut Nodes<'_>) -> Result<(), BuildError> {
    let s = b.s;
    b.region_servers = (0..b.regions()).map(|r| Arc::from(b.ids(Role::Servers, r))).collect();
    let cp_cfg = CpConfig {
        raft: RaftConfig { vote_twice: s.bugs.vote_twice, ..s.registry.raft.clone() },
        apply_before_commit: s.bugs.apply_before_commit,
        service_hashes: service_hashes(s),
        membership: s.registry.membership.clone(),
        protect_threshold: s.registry.health.protect_threshold,
        ..CpConfig::default()
    };
    for servers in b.region_servers.clone() {
        let server_cfg = server_config(s, Arc::clone(&servers));
        let cp_cfg = Arc::new(cp_cfg.clone());
        for &id in servers.iter() {
            let node = match s.registry.mode {
                RegistryMode::Ap => Node::Server(Box::new(RegistryServer::new(server_cfg.clone(), id))),
                RegistryMode::Cp => Node::Raft(Box::new(CpServer::new(Arc::clone(&cp_cfg), id, Arc::clone(&servers)))),
            };
            b.add(node, SimTime::ZERO);
        }
    }
    Ok(())
}

fn server_config(s: &Scenario, servers: Arc<[NodeId]>) -> ServerConfig {
    let r = &s.registry;
    ServerConfig {
        health: r.health.clone(),
        servers,
        service_hashes: service_hashes(s),
        membership: r.membership.clone(),
        distro: DistroConfig { skip_anti_entropy: s.bugs.skip_anti_entropy, ..r.distro.clone() },
        push: r.push.clone(),
    }
}

/// Nacos keys a service by group and name.
fn service_hashes(s: &Scenario) -> Arc<[i32]> {
    Arc::from([java_hash(&format!("DEFAULT_GROUP@@{}", s.instances.service))])
}
