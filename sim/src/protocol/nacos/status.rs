//! How health flags spread between servers: Nacos 1.4's service-status reporter, shared by the
//! AP server and the CP server (`alibaba/nacos` 1.4.6, `naming/.../core/ServiceManager.java`).
//!
//! - `ServiceReporter.run`: first 60 s after the server starts
//!   (`scheduleServiceReporter(new ServiceReporter(), 60000, ...)` in `ServiceManager.init`),
//!   then every `serviceStatusSynchronizationPeriodMillis` (5 s, `SwitchDomain`) after the last
//!   run, the server sends the checksum of every non-empty service it is responsible for to
//!   every other member (`memberManager.allMembers()`, whatever their state).
//! - The receiver (`ServiceController.serviceStatus`) compares each checksum with its own copy's
//!   and, where they differ, queues an update (`addUpdatedServiceToQueue`); `ServiceUpdater`
//!   fetches the instance statuses from the sender (`updatedHealthStatus`, a `synchronizer.get`)
//!   and sets each local instance's flag to the sender's. An instance the sender does not list
//!   becomes unhealthy there (`Boolean.parseBoolean(null)` is false).
//!
//! The checksum covers every instance with its health flag (`Service.recalculateChecksum`), as
//! [`Table::checksum`] does. This is the only way a health flip reaches the servers that are not
//! responsible for the service: Distro syncs carry the instance list, but a sync never changes
//! the health flag of an instance the receiver already lists (`Cluster.updateIps`: "do not
//! update the ip validation status of updated ips because the checker has the most precise
//! result"; see [`Table::replace`]).
//! Approximation: a lost or refused status message or fetch is simply lost (Nacos logs it); the
//! next report five seconds later repairs it.

use std::sync::Arc;

use crate::protocol::nacos::{self, table::Table};
use crate::protocol::{NodeCtx, ServiceId};
use regsim_kernel::{NodeId, SimDuration};

/// `ServiceManager.init`: the first report, after the server starts.
pub const FIRST_REPORT: SimDuration = SimDuration::from_secs(60);
/// `SwitchDomain.serviceStatusSynchronizationPeriodMillis`.
pub const REPORT_PERIOD: SimDuration = SimDuration::from_secs(5);

pub fn on_start(ctx: &mut NodeCtx<'_>) {
    ctx.set_timer(FIRST_REPORT, nacos::Timer::StatusReport);
}

/// `ServiceReporter.run`: the checksums of the non-empty services `responsible` names, to every
/// peer; then the next run.
pub fn report(ctx: &mut NodeCtx<'_>, tables: &[Table], peers: &[NodeId], responsible: impl Fn(ServiceId) -> bool) {
    let checksums: Vec<(ServiceId, u64)> = (0..tables.len() as u32)
        .map(ServiceId)
        .filter(|s| !tables[s.0 as usize].is_empty() && responsible(*s))
        .map(|s| (s, tables[s.0 as usize].checksum()))
        .collect();
    if !checksums.is_empty() {
        let checksums = Arc::new(checksums);
        for &p in peers {
            ctx.send(p, nacos::Msg::Status { checksums: Arc::clone(&checksums) });
        }
    }
    ctx.set_timer(REPORT_PERIOD, nacos::Timer::StatusReport);
}

/// `ServiceController.serviceStatus`: asks the sender for the statuses of each service whose
/// checksum differs from this server's copy (an empty copy has no instances to update).
pub fn on_report(ctx: &mut NodeCtx<'_>, from: NodeId, tables: &[Table], checksums: &[(ServiceId, u64)]) {
    for &(service, sum) in checksums {
        if tables.get(service.0 as usize).is_some_and(|t| !t.is_empty() && t.checksum() != sum) {
            ctx.send(from, nacos::Msg::StatusQuery { service });
        }
    }
}

/// The answer to a status fetch: every instance of this server's copy with its flag.
pub fn on_query(ctx: &mut NodeCtx<'_>, from: NodeId, tables: &[Table], service: ServiceId) {
    if let Some(t) = tables.get(service.0 as usize) {
        let flags = t.snapshot().iter().map(|r| (r.instance, r.healthy)).collect();
        ctx.send(from, nacos::Msg::Statuses { service, flags: Arc::new(flags) });
    }
}

/// `ServiceManager.updatedHealthStatus`: sets each listed instance's flag to the sender's (an
/// instance the sender does not list: unhealthy). Returns whether a flag changed (the caller
/// pushes the service then, `pushService.serviceChanged`).
pub fn on_statuses(ctx: &mut NodeCtx<'_>, tables: &mut [Table], service: ServiceId, flags: &[(NodeId, bool)]) -> bool {
    let Some(t) = tables.get_mut(service.0 as usize) else { return false };
    let mut changes = Vec::new();
    for r in t.entries() {
        let valid = flags.binary_search_by_key(&r.instance, |f| f.0).is_ok_and(|k| flags[k].1);
        if valid != r.healthy {
            changes.push((r.instance, valid));
        }
    }
    for &(n, healthy) in &changes {
        t.set_healthy(ctx, n, healthy);
    }
    !changes.is_empty()
}

/// The status messages a server receives (`Status`, `StatusQuery`, `Statuses`). `None`: not
/// one of them; `Some(changed)`: handled, with the service whose flags changed, if any.
pub fn on_message(
    ctx: &mut NodeCtx<'_>,
    from: NodeId,
    tables: &mut [Table],
    msg: &nacos::Msg,
) -> Option<Option<ServiceId>> {
    Some(match msg {
        nacos::Msg::Status { checksums } => {
            on_report(ctx, from, tables, checksums);
            None
        }
        nacos::Msg::StatusQuery { service } => {
            on_query(ctx, from, tables, *service);
            None
        }
        nacos::Msg::Statuses { service, flags } => on_statuses(ctx, tables, *service, flags).then_some(*service),
        _ => return None,
    })
}
