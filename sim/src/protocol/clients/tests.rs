//! Network-level table tests of the registry clients (`instance`, `view`, `consumer`) on
//! `regsim_kernel::harness::Harness<Node>`, with real Nacos AP servers (`Node::Server`)
//! configured as `scenario::build` does with the scenario defaults, so every message between
//! roles goes through the real dispatch.
//!
//! References: ../shared/ANCHORS.md ("Nacos 1.x naming service", "Go kit balancing") and the
//! Nacos 1.4.1 client (`github:alibaba/nacos`, tag 1.4.1, `client/src/main/java/com/alibaba/
//! nacos/client/naming/`): `net/NamingProxy.reqApi`, `beat/BeatReactor.BeatTask.run`,
//! `core/HostReactor.UpdateTask.run`, `core/PushReceiver.run`.
//!
//! Layout, as `scenario::build` lays nodes out: servers are nodes `0..n` (added first), then
//! instances, then consumers. The harness latency is 1 ms one way: an answer comes 2 ms after
//! its request, a refusal (no process at the other end) 2 ms after the send.

mod consumer;
mod failover;
mod instance;
mod view;

use std::sync::Arc;

use regsim_kernel::harness::Harness;
use regsim_kernel::{NodeId, SimDuration, SimTime};

use crate::balance::keys::{KeyDist, KeySampler};
use crate::protocol::clients::consumer::{Consumer, ConsumerConfig};
use crate::protocol::clients::instance::{InstanceConfig, ServiceInstance};
use crate::protocol::clients::view::ViewConfig;
use crate::protocol::nacos::server::{RegistryServer, ServerConfig};
use crate::protocol::{InstanceList, Msg, Node, Obs, ServerList, ServiceId};

const SERVICE: ServiceId = ServiceId(0);

fn ms(n: u64) -> SimDuration {
    SimDuration::from_millis(n)
}

fn secs(n: u64) -> SimDuration {
    SimDuration::from_secs(n)
}

fn at(t: SimDuration) -> SimTime {
    SimTime::ZERO + t
}

fn list(ids: &[u32]) -> InstanceList {
    Arc::new(ids.iter().copied().map(NodeId).collect())
}

/// `n` Nacos AP servers as nodes `0..n` with the scenario defaults (`ServerConfig::nacos`: health
/// check every 5 s, unhealthy after 15 s, deleted after 30 s, push debounce 1 s, ack timeout 10 s,
/// service "demo-service"), not started yet.
fn cluster(seed: u64, n: u32) -> (Harness<Node>, ServerList) {
    let servers: ServerList = (0..n).map(NodeId).collect();
    let mut h = Harness::new(seed);
    for &id in servers.iter() {
        let server = RegistryServer::new(ServerConfig::nacos(Arc::clone(&servers)), id);
        assert_eq!(h.add(Node::Server(Box::new(server))), id);
    }
    (h, servers)
}

/// An ephemeral instance with the scenario defaults (`InstancesSpec`: beat every 5 s, request
/// timeout 3 s, calls answered at once).
fn instance(servers: &ServerList) -> Node {
    Node::Instance(ServiceInstance::new(Arc::new(InstanceConfig {
        service: SERVICE,
        service_name: Arc::from("demo-service"),
        servers: Arc::clone(servers),
        beat_interval: secs(5),
        request_timeout: secs(3),
        service_time: None,
        concurrency: 0,
        queue_max: 1000,
        persistent: false,
    })))
}

/// A consumer with the scenario defaults for its view (`ConsumersSpec`: poll every 10 s with push
/// on, backoff cap 60 s, query timeout 3 s) and call timeout (1 s without a gateway); `rate`
/// calls per second balanced by `balancer`, `max_attempts` attempts per call.
fn consumer(servers: &ServerList, balancer: &str, rate: f64, max_attempts: u32) -> Node {
    let keys = KeySampler::new(&"unique".parse::<KeyDist>().expect("keys"), 1).expect("key sampler");
    let view = ViewConfig {
        service: SERVICE,
        servers: Arc::clone(servers),
        poll_interval: secs(10),
        backoff_max: secs(60),
        query_timeout: secs(3),
    };
    let config = ConsumerConfig {
        balancer: crate::balance::parse_spec(balancer).expect("balancer spec").remove(0),
        keys: Arc::new(keys),
        view: Arc::new(view),
        call_rate: rate,
        call_timeout: secs(1),
        max_attempts,
        gateway: None,
    };
    Node::Consumer(Box::new(Consumer::new(config).expect("consumer")))
}

/// What `node` observed: (time, observation), in order.
fn obs(h: &Harness<Node>, node: NodeId) -> Vec<(SimTime, Obs)> {
    h.observed().into_iter().filter(|(_, n, _)| *n == node).map(|(t, _, o)| (t, o)).collect()
}

/// What `from` sent: (time, destination, message), in send order.
fn sent_by(h: &Harness<Node>, from: NodeId) -> Vec<(SimTime, NodeId, Msg)> {
    h.sent().iter().filter(|s| s.from == from).map(|s| (s.at, s.to, s.msg.clone())).collect()
}

/// The instances in consumer `n`'s view.
fn view_of(h: &Harness<Node>, n: NodeId) -> Vec<NodeId> {
    match h.actor(n) {
        Node::Consumer(c) => c.view().to_vec(),
        other => panic!("{n} is not a consumer: {other:?}"),
    }
}
