//! UDP push to subscribers, after Nacos 1.x's `PushService`.
//!
//! A consumer that queries a server becomes that server's push client for the service (Nacos
//! registers the client's UDP port on the list call); a client not seen for `client_expiry`
//! (10 s, Nacos' push cache) is dropped. When the server's copy of a service changes (by its
//! own health check or a client write, or by a Distro sync), it waits `debounce` (1 s) and
//! pushes the healthy instance list to every live client of that service; a push not acked
//! within `ack_timeout` (10 s) is resent `resends` times (once), then given up.

use crate::protocol::{nacos, registry};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::protocol::config::{Invalid, periods};
use crate::protocol::{InstanceList, NodeCtx, ServiceId};
use regsim_kernel::{NodeId, SimDuration, SimTime};

/// `[registry.push]`: UDP push to subscribers (Nacos `PushService`: 1 s debounce, 10 s ack
/// timeout, one resend; a subscriber not heard from for 10 s is dropped).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    pub enabled: bool,
    pub debounce: SimDuration,
    pub ack_timeout: SimDuration,
    pub resends: u32,
    pub client_expiry: SimDuration,
}

impl PushConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        periods(&[("ack_timeout", self.ack_timeout)])
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            enabled: true,
            debounce: SimDuration::from_secs(1),
            ack_timeout: SimDuration::from_secs(10),
            resends: 1,
            client_expiry: SimDuration::from_secs(10),
        }
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    client: NodeId,
    service: ServiceId,
    instances: InstanceList,
    resends_left: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Push {
    pub config: PushConfig,
    /// (service, client) -> last time (local) the client queried us.
    clients: BTreeMap<(ServiceId, NodeId), SimTime>,
    debouncing: BTreeSet<ServiceId>,
    inflight: BTreeMap<u64, InFlight>,
    next_id: u64,
}

impl Push {
    pub fn new(config: PushConfig) -> Self {
        Push { config, ..Push::default() }
    }

    pub fn reset(&mut self) {
        *self = Push::new(self.config.clone());
    }

    /// A query from `client` (re)subscribes it.
    pub fn subscribe(&mut self, ctx: &NodeCtx<'_>, service: ServiceId, client: NodeId) {
        if self.config.enabled {
            self.clients.insert((service, client), ctx.now());
        }
    }

    /// The local copy of `service` changed.
    pub fn changed(&mut self, ctx: &mut NodeCtx<'_>, service: ServiceId) {
        if self.config.enabled && self.debouncing.insert(service) {
            ctx.set_timer(self.config.debounce, nacos::Timer::PushDebounce { service });
        }
    }

    /// The debounce ran out: push `instances` to every live client of `service`.
    pub fn on_debounce(&mut self, ctx: &mut NodeCtx<'_>, service: ServiceId, instances: &InstanceList) {
        self.debouncing.remove(&service);
        let now = ctx.now();
        let expiry = self.config.client_expiry;
        self.clients.retain(|_, seen| now.saturating_since(*seen) <= expiry);
        let targets: Vec<NodeId> = self.clients.keys().filter(|(s, _)| *s == service).map(|(_, c)| *c).collect();
        for client in targets {
            let f = InFlight { client, service, instances: Arc::clone(instances), resends_left: self.config.resends };
            self.send(ctx, f);
        }
    }

    fn send(&mut self, ctx: &mut NodeCtx<'_>, f: InFlight) {
        let push_id = self.next_id;
        self.next_id += 1;
        ctx.send(f.client, registry::Msg::Push { service: f.service, instances: Arc::clone(&f.instances), push_id });
        ctx.set_timer(self.config.ack_timeout, nacos::Timer::PushTimeout { push_id });
        self.inflight.insert(push_id, f);
    }

    pub fn on_ack(&mut self, push_id: u64) {
        self.inflight.remove(&push_id);
    }

    pub fn on_timeout(&mut self, ctx: &mut NodeCtx<'_>, push_id: u64) {
        if let Some(mut f) = self.inflight.remove(&push_id)
            && f.resends_left > 0
        {
            f.resends_left -= 1;
            self.send(ctx, f);
        }
    }
}
