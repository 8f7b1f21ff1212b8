//! Distro, Nacos 1.x's AP replication of ephemeral instances.
//!
//! - **Responsibility**: service `s` belongs to `healthy[abs(hash(s)) % healthy.len()]`, where
//!   `healthy` is the sorted list of servers this server sees UP or SUSPICIOUS (`membership`).
//!   Writes (register, beat) that reach another server are forwarded to the responsible one,
//!   and only it runs the beat health check for `s`. Views of membership can differ between
//!   servers (e.g. across a partition), and then two servers may both act as responsible.
//! - **Sync**: a change on the responsible server is sent to every other server after
//!   `sync_delay` (2 s: `DistroConsistencyServiceImpl.put` -> `distroProtocol.sync(key, CHANGE,
//!   taskDispatchPeriod / 2)`, then `DistroHttpCombinedKeyDelayTask` another half; changes in
//!   the window are merged into the waiting task, which keeps its start:
//!   `NacosDelayTaskExecuteEngine.addTask` -> `newTask.merge(existTask)`); a sync not
//!   acknowledged within `sync_timeout` is retried after `sync_retry` (5 s), with the data
//!   current at that time.
//! - **Verify** (anti-entropy): every `verify_interval` (5 s) each server sends every peer the
//!   checksums of the services it is responsible for and holds data of; with none it sends
//!   nothing (`DistroDataStorageImpl.getVerifyData` returns null: a restarted, empty server
//!   does not tell the others to drop its services). A receiver
//!   (`DistroConsistencyServiceImpl.onReceiveChecksums`) gives up on the whole message if it
//!   lists a service the receiver is responsible for itself ("this key should not be sent
//!   from remote server"); otherwise it pulls each service whose checksum differs from its
//!   copy, and drops services it thinks the sender is responsible for that the sender does
//!   not list. The responsible server's data wins.
//! - **Snapshot load** (`DistroLoadDataTask`): a server that starts asks its peers in turn for
//!   all their data (`NamingProxy.getAllData`, 10 s read timeout) and takes the first answer;
//!   if every peer fails it tries again after 30 s (`loadDataRetryDelayMillis`). It serves
//!   requests meanwhile: the 503 of `ServerStatusManager` applies only with
//!   `nacos.naming.data.warmup`, off by default (`GlobalConfig.dataWarmup`), and is not
//!   modelled.
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

/// `[registry.distro]`: Distro replication timing (Nacos 1.4.6: sync 2 s after a change,
/// retry 5 s, verify 5 s).
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

/// `NamingProxy.getAllData`: `HttpClient.TIME_OUT_MILLIS`.
pub const SNAPSHOT_TIMEOUT: SimDuration = SimDuration::from_secs(10);
/// `GlobalConfig.loadDataRetryDelayMillis`.
pub const SNAPSHOT_RETRY: SimDuration = SimDuration::from_secs(30);

/// The snapshot load in progress: the request and the peer (index into the peers) asked.
#[derive(Clone, Copy, Debug)]
struct Loading {
    req: u64,
    peer: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Distro {
    pub config: DistroConfig,
    /// Services with a delayed sync scheduled.
    delayed: BTreeSet<ServiceId>,
    loading: Option<Loading>,
    next_req: u64,
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

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>, peers: &[NodeId]) {
        if !peers.is_empty() && !self.config.skip_anti_entropy {
            ctx.set_timer(self.config.verify_interval, nacos::Timer::Verify);
        }
        self.load_from(ctx, peers, 0);
    }

    /// Asks peer `k` (and the next ones on failure) for a snapshot.
    fn load_from(&mut self, ctx: &mut NodeCtx<'_>, peers: &[NodeId], k: usize) {
        let Some(&peer) = peers.get(k) else {
            self.loading = None;
            if !peers.is_empty() {
                ctx.set_timer(SNAPSHOT_RETRY, nacos::Timer::SnapshotRetry);
            }
            return;
        };
        self.next_req += 1;
        let req = self.next_req;
        self.loading = Some(Loading { req, peer: k });
        ctx.send(peer, nacos::Msg::SnapshotQuery { req });
        ctx.set_timer(SNAPSHOT_TIMEOUT, nacos::Timer::SnapshotTimeout { req });
    }

    /// The load of `req` failed (timeout or refused): the next peer.
    pub fn snapshot_failed(&mut self, ctx: &mut NodeCtx<'_>, peers: &[NodeId], req: u64) {
        if let Some(l) = self.loading.filter(|l| l.req == req) {
            self.load_from(ctx, peers, l.peer + 1);
        }
    }

    /// Every peer failed 30 s ago: start over.
    pub fn snapshot_retry(&mut self, ctx: &mut NodeCtx<'_>, peers: &[NodeId]) {
        if self.loading.is_none() {
            self.load_from(ctx, peers, 0);
        }
    }

    /// Whether `req` is the snapshot being waited for; it is then taken (the load is done).
    pub fn snapshot_arrived(&mut self, req: u64) -> bool {
        let ours = self.loading.is_some_and(|l| l.req == req);
        if ours {
            self.loading = None;
        }
        ours
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

    /// The verify timer: send checksums of `mine` (services this server is responsible for and
    /// holds data of), if there are any.
    pub fn on_verify_timer(&mut self, ctx: &mut NodeCtx<'_>, peers: &[NodeId], mine: Vec<(ServiceId, u64)>) {
        if !mine.is_empty() {
            let checksums = Arc::new(mine);
            for peer in peers {
                ctx.send(*peer, nacos::Msg::Verify { checksums: Arc::clone(&checksums) });
            }
        }
        ctx.set_timer(self.config.verify_interval, nacos::Timer::Verify);
    }
}
