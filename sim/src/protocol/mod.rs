//! Sans-IO protocol actors. This slice: a Nacos 1.x naming server holding ephemeral instances
//! with its beat-based health check (`server`), and service instances that register and beat
//! (`instance`). Every role is a variant of [`Node`], so the world dispatches statically.

pub mod instance;
pub mod server;

use std::sync::Arc;

use crate::engine::{Actor, Ctx, NodeId, SimTime};
pub use instance::{InstanceConfig, ServiceInstance};
pub use server::{RegistryServer, ServerConfig};

/// A registered service, interned to a small id so messages stay small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServiceId(pub u32);

/// Messages between instances and servers (the Nacos open API calls this slice uses).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Msg {
    /// `POST /nacos/v1/ns/instance`: register the sender as an instance of `service`.
    Register {
        service: ServiceId,
        req: u64,
    },
    RegisterOk {
        req: u64,
    },
    /// `PUT /nacos/v1/ns/instance/beat`.
    Beat {
        service: ServiceId,
        req: u64,
    },
    /// `found = false` is Nacos' RESOURCE_NOT_FOUND (20404): the client re-registers at once.
    BeatOk {
        req: u64,
        found: bool,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Timer {
    HealthCheck,
    Beat,
    RequestTimeout { req: u64 },
}

/// What actors report; the metrics grade these against ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obs {
    /// The server added `instance` to its table.
    Registered { instance: NodeId },
    /// The server's health check marked `instance` unhealthy.
    MarkedUnhealthy { instance: NodeId },
    /// A beat made an unhealthy `instance` healthy again.
    MarkedHealthy { instance: NodeId },
    /// The server removed `instance` (no beat for `delete_after`).
    Deleted { instance: NodeId },
    /// An instance re-registered because a beat was answered "not found".
    Reregistered,
}

pub type NodeCtx<'a> = Ctx<'a, Msg, Timer, Obs>;

/// Every role in the simulation.
#[derive(Clone, Debug)]
pub enum Node {
    Server(RegistryServer),
    Instance(ServiceInstance),
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = Obs;

    fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        match self {
            Node::Server(s) => s.on_start(ctx),
            Node::Instance(i) => i.on_start(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        match self {
            Node::Server(s) => s.on_message(ctx, from, msg),
            Node::Instance(i) => i.on_message(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match self {
            Node::Server(s) => s.on_timer(ctx, timer),
            Node::Instance(i) => i.on_timer(ctx, timer),
        }
    }

    fn crash(&mut self) {
        match self {
            Node::Server(s) => s.crash(),
            Node::Instance(i) => i.crash(),
        }
    }
}

/// The list of registry servers every client is configured with.
pub type ServerList = Arc<[NodeId]>;

/// Local time helper used by several actors.
pub fn elapsed_since(now: SimTime, then: SimTime) -> crate::engine::SimDuration {
    now.saturating_since(then)
}
