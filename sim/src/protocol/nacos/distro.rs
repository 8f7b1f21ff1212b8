//! Distro, Nacos 1.x's AP replication of ephemeral instances.
//!
//! - **Responsibility**: service `s` belongs to `healthy[abs(hash(s)) % healthy.len()]`, where
//!   `healthy` is the sorted list of servers this server sees UP or SUSPICIOUS (`membership`).
//!   Writes (register, beat) that reach another server are forwarded to the responsible one,
//!   and only it runs the beat health check for `s`. Views of membership can differ between
//!   servers (e.g. across a partition), and then two servers may both act as responsible.
//! - **Sync**: a change on the responsible server is sent to every other server after
//!   `sync_delay` (2 s; changes in the window are merged); a sync not acknowledged within
//!   `sync_timeout` is retried after `sync_retry` (5 s), with the data current at that time.
//! - **Verify** (anti-entropy): every `verify_interval` (5 s) each server sends every peer the
//!   checksums of the services it is responsible for; a receiver pulls each service whose
//!   checksum differs from its copy, and drops services it thinks the sender is responsible
//!   for that the sender no longer lists. The responsible server's data wins.
//! - **`bugs.skip_anti_entropy`**: no verify timer at all. Syncs are still retried until
//!   acknowledged, so a partition heals through them; but a copy that loses data without a
//!   failed sync (a server that restarts empty after the last change of a service) stays wrong
//!   until the next change of that service, possibly forever.

use crate::protocol::nacos;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::protocol::config::{Invalid, periods};
use crate::protocol::{Datum, Msg, NodeCtx, ServiceId};
use regsim_kernel::{NodeId, SimDuration};

/// `[registry.distro]`: Distro replication timing (Nacos 1.x `DistroConfig`: sync 2 s after a
/// change, retry 5 s, verify 5 s).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistroConfig {
    pub sync_delay: SimDuration,
    pub sync_timeout: SimDuration,
    pub sync_retry: SimDuration,
    pub verify_interval: SimDuration,
    /// `bugs.skip_anti_entropy`: never send checksums (set from `[bugs]`, not this section).
    #[serde(skip)]
    pub skip_anti_entropy: bool,
}

impl DistroConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        periods(&[
            ("sync_timeout", self.sync_timeout),
            ("sync_retry", self.sync_retry),
            ("verify_interval", self.verify_interval),
        ])
    }
}

impl Default for DistroConfig {
    fn default() -> Self {
        DistroConfig {
            sync_delay: SimDuration::from_secs(2),
            sync_timeout: SimDuration::from_secs(3),
            sync_retry: SimDuration::from_secs(5),
            verify_interval: SimDuration::from_secs(5),
            skip_anti_entropy: false,
        }
    }
}

/// The responsible server for a service with Java hash `hash` among `healthy` (sorted).
pub fn responsible(hash: i32, healthy: &[NodeId]) -> Option<NodeId> {
    if healthy.is_empty() {
        return None;
    }
    // Nacos: Math.abs(hash) % size; Math.abs(Integer.MIN_VALUE) stays negative in Java, which
    // would index out of bounds there; we use the unsigned magnitude instead.
    let i = hash.unsigned_abs() as usize % healthy.len();
    Some(healthy[i])
}

#[derive(Clone, Debug, Default)]
pub struct Distro {
    pub config: DistroConfig,
    /// Services with a delayed sync scheduled.
    delayed: BTreeSet<ServiceId>,
    /// Syncs awaiting an ack: (peer, service) -> seq.
    outstanding: BTreeMap<(NodeId, ServiceId), u32>,
    /// (peer, service) pairs with a retry timer scheduled.
    retrying: BTreeSet<(NodeId, ServiceId)>,
    next_seq: u32,
}

impl Distro {
    pub fn new(config: DistroConfig) -> Self {
        Distro { config, ..Distro::default() }
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>, has_peers: bool) {
        if has_peers && !self.config.skip_anti_entropy {
            ctx.set_timer(self.config.verify_interval, nacos::Timer::Verify);
        }
    }

    /// In-memory state is lost on a crash.
    pub fn reset(&mut self) {
        *self = Distro::new(self.config.clone());
    }

    /// A local write changed `service`: schedule a delayed sync unless one is pending.
    pub fn changed(&mut self, ctx: &mut NodeCtx<'_>, service: ServiceId) {
        if self.delayed.insert(service) {
            ctx.set_timer(self.config.sync_delay, nacos::Timer::SyncDelay { service });
        }
    }

    /// The delay ran out: send the current copy to every peer.
    pub fn on_sync_delay(&mut self, ctx: &mut NodeCtx<'_>, service: ServiceId, peers: &[NodeId], data: &Datum) {
        self.delayed.remove(&service);
        for peer in peers {
            self.send(ctx, *peer, service, data);
        }
    }

    fn send(&mut self, ctx: &mut NodeCtx<'_>, peer: NodeId, service: ServiceId, data: &Datum) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.outstanding.insert((peer, service), seq);
        ctx.send(peer, nacos::Msg::Sync { service, data: Arc::clone(data), seq });
        ctx.set_timer(self.config.sync_timeout, nacos::Timer::SyncTimeout { peer, service, seq });
    }

    pub fn on_sync_ok(&mut self, peer: NodeId, service: ServiceId, seq: u32) {
        if self.outstanding.get(&(peer, service)) == Some(&seq) {
            self.outstanding.remove(&(peer, service));
        }
    }

    /// A sync timed out (or was refused): retry later unless a newer one went out meanwhile.
    pub fn on_sync_failed(&mut self, ctx: &mut NodeCtx<'_>, peer: NodeId, service: ServiceId, seq: Option<u32>) {
        let current = self.outstanding.get(&(peer, service)).copied();
        if current.is_none() || (seq.is_some() && seq != current) {
            return;
        }
        self.outstanding.remove(&(peer, service));
        if self.retrying.insert((peer, service)) {
            ctx.set_timer(self.config.sync_retry, nacos::Timer::SyncRetry { peer, service });
        }
    }

    /// Which service a refused `Sync` was for.
    pub fn refused(&mut self, ctx: &mut NodeCtx<'_>, peer: NodeId, msg: &Msg) {
        if let Msg::Nacos(nacos::Msg::Sync { service, seq, .. }) = msg {
            self.on_sync_failed(ctx, peer, *service, Some(*seq));
        }
    }

    pub fn on_sync_retry(&mut self, ctx: &mut NodeCtx<'_>, peer: NodeId, service: ServiceId, data: &Datum) {
        self.retrying.remove(&(peer, service));
        self.send(ctx, peer, service, data);
    }

    /// The verify timer: send checksums of `mine` (services this server is responsible for).
    pub fn on_verify_timer(&mut self, ctx: &mut NodeCtx<'_>, peers: &[NodeId], mine: Vec<(ServiceId, u64)>) {
        let checksums = Arc::new(mine);
        for peer in peers {
            ctx.send(*peer, nacos::Msg::Verify { checksums: Arc::clone(&checksums) });
        }
        ctx.set_timer(self.config.verify_interval, nacos::Timer::Verify);
    }
}
