//! Network-level tests of the Nacos AP servers (`regsim_kernel::harness::Harness<Node>`): three
//! servers with ids 0, 1, 2 (sorted, as Nacos sorts members by address), real instances and
//! consumers, every message through the real dispatch, 1 ms one-way latency. One file per
//! mechanism: `distro` (responsibility, forwarding, delayed sync, verify and repair), `health`
//! (the beat check and the not-found answer), `membership` (SUSPICIOUS, DOWN, UP), `push` and
//! `restart` (snapshot load, checksums of an empty server).
//!
//! Each test names the real-system behaviour it encodes, from ../shared/ANCHORS.md and the Nacos
//! 1.4.2 source (`alibaba/nacos`, tag 1.4.2).

mod distro;
mod health;
mod membership;
mod push;
mod restart;

use std::sync::Arc;

use regsim_kernel::harness::Harness;
use regsim_kernel::{NodeId, SimDuration, SimTime};

use crate::balance::keys::{KeyDist, KeySampler};
use crate::protocol::clients::consumer::{Consumer, ConsumerConfig};
use crate::protocol::clients::instance::{InstanceConfig, ServiceInstance};
use crate::protocol::clients::view::ViewConfig;
use crate::protocol::nacos::server::{RegistryServer, ServerConfig};
use crate::protocol::{InstRec, Msg, Node, Obs, ServiceId, java_hash};

/// The three servers, added first.
const S: [NodeId; 3] = [NodeId(0), NodeId(1), NodeId(2)];

/// Java `hashCode` 1092918732, 1092918732 % 3 = 0: server 0 is responsible.
const DEMO: &str = "DEFAULT_GROUP@@demo-service";

/// Time `ms` milliseconds after the start.
fn at(ms: u64) -> SimTime {
    SimTime(ms * 1_000_000)
}

fn ms(ms: u64) -> SimDuration {
    SimDuration::from_millis(ms)
}

/// Three servers with Nacos defaults, serving `services` (`ServiceId(i)` is `services[i]`).
fn cluster(seed: u64, services: &[&str]) -> Harness<Node> {
    cluster_with(seed, services, |_| {})
}

/// [`cluster`] with `tweak` applied to the servers' configuration.
fn cluster_with(seed: u64, services: &[&str], tweak: impl FnOnce(&mut ServerConfig)) -> Harness<Node> {
    let mut h = Harness::new(seed);
    let mut config = ServerConfig::nacos(Arc::from(S));
    config.service_hashes = services.iter().map(|s| java_hash(s)).collect();
    tweak(&mut config);
    for id in S {
        assert_eq!(h.add(Node::Server(Box::new(RegistryServer::new(config.clone(), id)))), id);
    }
    h
}

/// An instance of `service` talking to `servers`, beating every `beat` (starts now).
fn instance_beating(h: &mut Harness<Node>, service: ServiceId, servers: &[NodeId], beat: SimDuration) -> NodeId {
    let config = InstanceConfig {
        service,
        service_name: Arc::from("svc"),
        servers: Arc::from(servers),
        beat_interval: beat,
        request_timeout: SimDuration::from_secs(3),
        service_time: None,
        concurrency: 0,
        queue_max: 0,
        persistent: false,
    };
    h.add(Node::Instance(ServiceInstance::new(Arc::new(config))))
}

/// An instance of `service` with the Nacos client's 5 s beat.
fn instance(h: &mut Harness<Node>, service: ServiceId, servers: &[NodeId]) -> NodeId {
    instance_beating(h, service, servers, SimDuration::from_secs(5))
}

/// A consumer of service 0 that polls `server` every 10 s (push on) and sends no calls.
fn consumer(h: &mut Harness<Node>, server: NodeId) -> NodeId {
    let keys = KeySampler::new(&"unique".parse::<KeyDist>().expect("keys"), 1).expect("sampler");
    let config = ConsumerConfig {
        balancer: crate::balance::parse_spec("rr").expect("spec").remove(0),
        keys: Arc::new(keys),
        view: Arc::new(ViewConfig {
            service: ServiceId(0),
            servers: Arc::from([server]),
            poll_interval: SimDuration::from_secs(10),
            backoff_max: SimDuration::from_secs(60),
            query_timeout: SimDuration::from_secs(3),
        }),
        call_rate: 0.0,
        call_timeout: SimDuration::from_secs(1),
        max_attempts: 1,
        gateway: None,
    };
    h.add(Node::Consumer(Box::new(Consumer::new(config).expect("consumer"))))
}

fn server(h: &Harness<Node>, n: NodeId) -> &RegistryServer {
    match h.actor(n) {
        Node::Server(s) => s,
        other => panic!("node {n} is not a Nacos server: {other:?}"),
    }
}

/// Server `n`'s copy of `service`, sorted by instance.
fn copy(h: &Harness<Node>, n: NodeId, service: ServiceId) -> Vec<InstRec> {
    server(h, n).table(service).expect("service").snapshot().to_vec()
}

/// Observations of node `n` that `keep` selects, with their times.
fn obs_of(h: &Harness<Node>, n: NodeId, keep: impl Fn(&Obs) -> bool) -> Vec<(SimTime, Obs)> {
    h.observed().into_iter().filter(|(_, node, o)| *node == n && keep(o)).map(|(t, _, o)| (t, o)).collect()
}

/// Messages `keep` selects, as (sent at, from, to, message, delivered).
fn sent_where(
    h: &Harness<Node>,
    keep: impl Fn(NodeId, NodeId, &Msg) -> bool,
) -> Vec<(SimTime, NodeId, NodeId, Msg, bool)> {
    h.sent()
        .iter()
        .filter(|s| keep(s.from, s.to, &s.msg))
        .map(|s| (s.at, s.from, s.to, s.msg.clone(), s.delivered))
        .collect()
}
