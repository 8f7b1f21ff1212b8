//! Nacos 1.x AP mode (ephemeral instances): the registry server and the mechanisms it is
//! made of, one file each: `membership` (server reports, SUSPICIOUS/DOWN), `distro` (the
//! responsible-server rule, delayed sync, checksum verify), `table` (a server's copy of one
//! service), `push` (UDP push to subscribers), `status` (how health flags spread) and `server` (the beat health check, request
//! forwarding, and the client API of `registry`). Defaults and mechanisms follow
//! ../shared/ANCHORS.md.

pub mod distro;
pub mod membership;
pub mod push;
pub mod server;
pub mod status;
pub mod table;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use regsim_kernel::NodeId;

use crate::protocol::registry::{Datum, ServiceId, Write};

/// Server-to-server messages. Explicit discriminants: the digest hashes them.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Msg {
    /// Server -> responsible server: a client write proxied by `DistroFilter`.
    Forward {
        kind: Write,
        origin: NodeId,
        service: ServiceId,
        req: u64,
    } = 1,
    ForwardOk {
        found: bool,
        origin: NodeId,
        req: u64,
    } = 2,
    /// Distro: the sender's copy of `service` (a delayed sync, or the answer to a pull).
    Sync {
        service: ServiceId,
        seq: u32,
        data: Datum,
    } = 3,
    SyncOk {
        service: ServiceId,
        seq: u32,
    } = 4,
    /// Distro verify: checksums of the services the sender is responsible for.
    Verify {
        checksums: Arc<Vec<(ServiceId, u64)>>,
    } = 5,
    Pull {
        service: ServiceId,
    } = 6,
    /// Membership: `/v1/core/cluster/report`.
    Report {
        req: u64,
    } = 7,
    ReportOk {
        req: u64,
    } = 8,
    /// The forwarded write reached a server not responsible for it in its own view
    /// (`DistroFilter`: 400 "receive invalid redirect request from peer").
    ForwardRejected {
        origin: NodeId,
        req: u64,
    } = 9,
    /// Service status (`status`): checksums of the services the sender is responsible for,
    /// health flags included (`ServiceReporter`).
    Status {
        checksums: Arc<Vec<(ServiceId, u64)>>,
    } = 10,
    /// The receiver's copy differs: it fetches the sender's flags (`updatedHealthStatus`).
    StatusQuery {
        service: ServiceId,
    } = 11,
    /// Every instance of the sender's copy with its health flag, sorted by instance.
    Statuses {
        service: ServiceId,
        flags: Arc<Vec<(NodeId, bool)>>,
    } = 12,
    /// A starting server asks for all the data (`DistroLoadDataTask`, `/distro/datums`).
    SnapshotQuery {
        req: u64,
    } = 13,
    /// Every service the sender holds data of, with its copy.
    Snapshot {
        req: u64,
        data: Arc<Vec<(ServiceId, Datum)>>,
    } = 14,
}

/// Server timers.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Timer {
    HealthCheck = 1,
    Report = 2,
    ReportTimeout {
        req: u64,
    } = 3,
    SyncDelay {
        service: ServiceId,
    } = 4,
    SyncTimeout {
        peer: NodeId,
        service: ServiceId,
        seq: u32,
    } = 5,
    SyncRetry {
        peer: NodeId,
        service: ServiceId,
    } = 6,
    Verify = 7,
    PushDebounce {
        service: ServiceId,
    } = 8,
    PushTimeout {
        push_id: u64,
    } = 9,
    /// A proxied write got no answer within `DistroFilter`'s read timeout.
    ForwardTimeout {
        origin: NodeId,
        req: u64,
    } = 10,
    /// The next service-status report (`status`).
    StatusReport = 11,
    /// The snapshot asked for with `req` did not come.
    SnapshotTimeout {
        req: u64,
    } = 12,
    /// Every peer failed to send a snapshot: ask again.
    SnapshotRetry = 13,
}
