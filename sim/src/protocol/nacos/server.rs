//! A Nacos 1.x naming server (AP mode, ephemeral instances).
//!
//! It holds a copy (`Table`) per service, kept in memory only (a crash empties it). Client
//! writes (register, beat) for a service this server is not responsible for are proxied to
//! the responsible server (`DistroFilter`), which applies them and syncs the change
//! (`distro`). Queries are answered from the local copy and subscribe the caller to pushes
//! (`push`). The health check is Nacos' `ClientBeatCheckTask`: every `check_interval` with
//! fixed delay from a random phase in `[0, check_interval)`, for the services this server is
//! responsible for, it marks an instance unhealthy when `now - last_beat > unhealthy_after` and
//! deletes it when `now - last_beat > delete_after` (5 s, 15 s, 30 s). A beat for an unknown
//! instance is answered "not found"; a beat makes an unhealthy instance healthy again.
//! The proxy follows `DistroFilter.doFilter` (1.4.6): the write is sent on to the responsible
//! server with a 2 s read timeout (`PROXY_READ_TIMEOUT`; its connections are pooled, so the
//! 2 s connect timeout does not come into play); a refused or timed-out proxy answers the
//! client with an error (500), and the responsible server rejects (400) a proxied write it is
//! not responsible for in its own view ("should not be redirected again"), which the proxy
//! relays. The client tries its next server on either. Membership changes only through the
//! membership reports (a refused sync or proxy does not mark a peer down).
//! Health flips are not synced by Distro: `ClientBeatCheckTask` and `ClientBeatProcessor` set
//! the flag and push (`pushService.serviceChanged`) without a `consistencyService.put`, and a
//! sync never overwrites a flag the receiver has (`Table::replace`); the other servers learn it
//! from the status reports (`status`, every 5 s). Registrations and deletions are synced.

use crate::protocol::{nacos, registry};
use std::sync::Arc;

use rand::RngExt;

use crate::protocol::config::{Invalid, periods};
use crate::protocol::nacos::distro::{Distro, DistroConfig, responsible};
use crate::protocol::nacos::membership::{Membership, MembershipConfig};
use crate::protocol::nacos::push::{Push, PushConfig};
use crate::protocol::nacos::status;
use crate::protocol::nacos::table::Table;
use crate::protocol::{InstRec, Msg, NodeCtx, Obs, ServerList, ServiceId, Timer, Write};
use regsim_kernel::{NodeId, SimDuration};

/// `[registry.health]`: Nacos' `ClientBeatCheckTask` timing (check every 5 s; unhealthy 15 s
/// and deleted 30 s after the last beat; `ClientBeatCheckTask.run`, `UtilsAndCommons`) and the
/// service's protect threshold.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    pub check_interval: SimDuration,
    pub unhealthy_after: SimDuration,
    pub delete_after: SimDuration,
    /// `Service.protectThreshold` (0 by default): when healthy / registered is at most this,
    /// a query or push lists every registered instance as healthy
    /// (`InstanceController.doSrvIpxt`), so clients keep calling rather than see nothing.
    pub protect_threshold: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            check_interval: SimDuration::from_secs(5),
            unhealthy_after: SimDuration::from_secs(15),
            delete_after: SimDuration::from_secs(30),
            protect_threshold: 0.0,
        }
    }
}

impl HealthConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        periods(&[
            ("check_interval", self.check_interval),
            ("unhealthy_after", self.unhealthy_after),
            ("delete_after", self.delete_after),
        ])?;
        if !(0.0..=1.0).contains(&self.protect_threshold) {
            return Err((
                "protect_threshold".into(),
                format!("expected a fraction in [0, 1], got {}", self.protect_threshold),
            ));
        }
        Ok(())
    }
}

/// A server's whole configuration: the scenario's `[registry.*]` sections plus the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub health: HealthConfig,
    /// Every server of the cluster, sorted.
    pub servers: ServerList,
    /// Java `hashCode` of each service's name, indexed by `ServiceId`.
    pub service_hashes: Arc<[i32]>,
    pub membership: MembershipConfig,
    pub distro: DistroConfig,
    pub push: PushConfig,
}

impl ServerConfig {
    /// Nacos defaults for a single-service cluster of `servers`.
    pub fn nacos(servers: ServerList) -> Self {
        ServerConfig {
            health: HealthConfig::default(),
            servers,
            service_hashes: Arc::from([crate::protocol::java_hash("DEFAULT_GROUP@@demo-service")]),
            membership: MembershipConfig::default(),
            distro: DistroConfig::default(),
            push: PushConfig::default(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RegistryServer {
    config: ServerConfig,
    me: NodeId,
    tables: Vec<Table>,
    membership: Membership,
    /// Cached `membership.healthy_servers()` (recomputed when membership changes).
    healthy: Vec<NodeId>,
    peers: Vec<NodeId>,
    distro: Distro,
    push: Push,
    /// Proxied writes waiting for the responsible server: (origin, request).
    proxied: std::collections::BTreeSet<(NodeId, u64)>,
}

/// `DistroFilter.PROXY_READ_TIMEOUT`.
pub const PROXY_TIMEOUT: SimDuration = SimDuration::from_secs(2);

impl RegistryServer {
    pub fn new(config: ServerConfig, me: NodeId) -> Self {
        let membership = Membership::new(config.membership.clone(), me, &config.servers);
        let healthy = membership.healthy_servers();
        let peers = membership.peers().collect();
        RegistryServer {
            tables: vec![Table::default(); config.service_hashes.len()],
            distro: Distro::new(config.distro.clone()),
            push: Push::new(config.push.clone()),
            config,
            me,
            membership,
            healthy,
            peers,
            proxied: Default::default(),
        }
    }

    /// This server's copy of `service`.
    pub fn table(&self, service: ServiceId) -> Option<&Table> {
        self.tables.get(service.0 as usize)
    }

    fn is_responsible(&self, service: ServiceId) -> bool {
        self.responsible_for(service) == Some(self.me)
    }

    fn responsible_for(&self, service: ServiceId) -> Option<NodeId> {
        let hash = *self.config.service_hashes.get(service.0 as usize)?;
        responsible(hash, &self.healthy)
    }

    fn membership_changed(&mut self) {
        self.healthy = self.membership.healthy_servers();
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        let period = self.config.health.check_interval.as_nanos().max(1);
        let phase = SimDuration(ctx.rng().random_range(0..period));
        ctx.set_timer(phase, nacos::Timer::HealthCheck);
        self.membership.on_start(ctx);
        self.distro.on_start(ctx, &self.peers);
        status::on_start(ctx);
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Registry(registry::Msg::Write { kind, service, req }) => match self.responsible_for(service) {
                Some(r) if r != self.me => {
                    if self.proxied.insert((from, req)) {
                        ctx.set_timer(PROXY_TIMEOUT, nacos::Timer::ForwardTimeout { origin: from, req });
                    }
                    ctx.send(r, nacos::Msg::Forward { origin: from, kind, service, req })
                }
                _ => {
                    let found = self.apply_write(ctx, from, kind, service);
                    ctx.send(from, registry::Msg::WriteOk { req, found });
                }
            },
            Msg::Nacos(nacos::Msg::Forward { origin, kind, service, req }) => {
                if self.responsible_for(service).is_some_and(|r| r != self.me) {
                    return ctx.send(from, nacos::Msg::ForwardRejected { origin, req });
                }
                let found = self.apply_write(ctx, origin, kind, service);
                ctx.send(from, nacos::Msg::ForwardOk { origin, req, found });
            }
            Msg::Nacos(nacos::Msg::ForwardOk { origin, req, found }) if self.proxied.remove(&(origin, req)) => {
                ctx.send(origin, registry::Msg::WriteOk { req, found })
            }
            Msg::Nacos(nacos::Msg::ForwardRejected { origin, req }) => self.proxy_failed(ctx, origin, req),
            Msg::Nacos(nacos::Msg::Sync { service, data, seq }) => {
                if let Some(t) = self.tables.get_mut(service.0 as usize) {
                    let before = t.version;
                    t.replace(ctx, &data);
                    if t.version != before {
                        self.push.changed(ctx, service);
                    }
                }
                ctx.send(from, nacos::Msg::SyncOk { service, seq });
            }
            Msg::Nacos(nacos::Msg::SyncOk { service, seq }) => self.distro.on_sync_ok(from, service, seq),
            Msg::Nacos(nacos::Msg::Verify { checksums }) => self.on_verify(ctx, from, &checksums),
            Msg::Nacos(nacos::Msg::Pull { service }) => {
                if let Some(t) = self.table(service) {
                    ctx.send(from, nacos::Msg::Sync { service, data: t.snapshot(), seq: u32::MAX });
                }
            }
            Msg::Nacos(m @ (nacos::Msg::Report { .. } | nacos::Msg::ReportOk { .. }))
                if self.membership.on_message(ctx, from, &m) == Some(true) =>
            {
                self.membership_changed()
            }
            Msg::Registry(registry::Msg::Query { service, req }) => {
                self.push.subscribe(ctx, service, from);
                let protect = self.config.health.protect_threshold;
                let instances = self.table(service).map(|t| t.served(protect)).unwrap_or_default();
                let registered = self.table(service).map(Table::registered).unwrap_or_default();
                ctx.send(
                    from,
                    registry::Msg::QueryOk {
                        req,
                        answer: Arc::new(crate::protocol::QueryAnswer { instances, registered }),
                    },
                );
            }
            Msg::Registry(registry::Msg::PushAck { push_id }) => self.push.on_ack(push_id),
            Msg::Nacos(nacos::Msg::SnapshotQuery { req }) => {
                let data = (0..self.tables.len() as u32)
                    .map(ServiceId)
                    .filter(|s| self.tables[s.0 as usize].known)
                    .map(|s| (s, self.tables[s.0 as usize].snapshot()))
                    .collect();
                ctx.send(from, nacos::Msg::Snapshot { req, data: Arc::new(data) });
            }
            Msg::Nacos(nacos::Msg::Snapshot { req, data }) if self.distro.snapshot_arrived(req) => {
                // `processSnapshot` -> `processData`: each service as a sync (flags of known
                // instances kept).
                for (service, datum) in data.iter() {
                    if let Some(t) = self.tables.get_mut(service.0 as usize) {
                        let before = t.version;
                        t.replace(ctx, datum);
                        if t.version != before {
                            self.push.changed(ctx, *service);
                        }
                    }
                }
            }
            Msg::Nacos(
                m @ (nacos::Msg::Status { .. } | nacos::Msg::StatusQuery { .. } | nacos::Msg::Statuses { .. }),
            ) => {
                if let Some(Some(service)) = status::on_message(ctx, from, &mut self.tables, &m) {
                    self.push.changed(ctx, service);
                }
            }
            _ => {}
        }
    }

    /// Applies a client write on this server's copy; returns "found" for beats.
    fn apply_write(&mut self, ctx: &mut NodeCtx<'_>, origin: NodeId, kind: Write, service: ServiceId) -> bool {
        let now = ctx.now();
        let Some(t) = self.tables.get_mut(service.0 as usize) else { return false };
        // (synced, pushed): a registration is synced, a beat's health flip only pushed.
        let (synced, pushed) = match kind {
            Write::Register => {
                let new = t.get(origin).is_none();
                let was_healthy = t.get(origin).is_some_and(|r| r.healthy);
                t.put(ctx, InstRec { instance: origin, healthy: true, last_beat: now });
                if new {
                    ctx.observe(Obs::Registered { instance: origin });
                }
                (new || !was_healthy, new || !was_healthy)
            }
            Write::Beat => match t.get_mut(origin) {
                None => return false,
                Some(r) if r.healthy => {
                    r.last_beat = now;
                    (false, false)
                }
                Some(r) => {
                    r.last_beat = now;
                    t.set_healthy(ctx, origin, true);
                    ctx.observe(Obs::MarkedHealthy { instance: origin });
                    (false, true)
                }
            },
        };
        if synced {
            self.distro.changed(ctx, service);
        }
        if pushed {
            self.push.changed(ctx, service);
        }
        true
    }

    fn on_verify(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, checksums: &[(ServiceId, u64)]) {
        // `onReceiveChecksums`: a key this server is responsible for "should not be sent from
        // remote server": the whole message is ignored.
        if checksums.iter().any(|(s, _)| self.is_responsible(*s)) {
            return;
        }
        for (service, sum) in checksums {
            if self.table(*service).is_some_and(|t| t.checksum() != *sum) {
                ctx.send(from, nacos::Msg::Pull { service: *service });
            }
        }
        // Services we think `from` is responsible for but it no longer lists: drop them.
        for s in 0..self.tables.len() as u32 {
            let service = ServiceId(s);
            let listed = checksums.iter().any(|(x, _)| *x == service);
            if !listed && self.responsible_for(service) == Some(from) && !self.tables[s as usize].is_empty() {
                self.tables[s as usize].replace(ctx, &[]);
                self.push.changed(ctx, service);
            }
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match timer {
            Timer::Nacos(nacos::Timer::HealthCheck) => {
                for s in 0..self.tables.len() as u32 {
                    if self.is_responsible(ServiceId(s)) {
                        self.check_health(ctx, ServiceId(s));
                    }
                }
                ctx.set_timer(self.config.health.check_interval, nacos::Timer::HealthCheck);
            }
            Timer::Nacos(t @ (nacos::Timer::Report | nacos::Timer::ReportTimeout { .. }))
                if self.membership.on_timer(ctx, &t) == Some(true) =>
            {
                self.membership_changed()
            }
            Timer::Nacos(nacos::Timer::ForwardTimeout { origin, req }) => self.proxy_failed(ctx, origin, req),
            Timer::Nacos(nacos::Timer::SyncDelay { service }) => {
                let data = self.tables[service.0 as usize].snapshot();
                self.distro.on_sync_delay(ctx, service, &self.peers, &data);
            }
            Timer::Nacos(nacos::Timer::SyncTimeout { peer, service, seq }) => {
                self.distro.on_sync_failed(ctx, peer, service, Some(seq))
            }
            Timer::Nacos(nacos::Timer::SyncRetry { peer, service }) => {
                let data = self.tables[service.0 as usize].snapshot();
                self.distro.on_sync_retry(ctx, peer, service, &data);
            }
            Timer::Nacos(nacos::Timer::Verify) => {
                let mine: Vec<(ServiceId, u64)> = (0..self.tables.len() as u32)
                    .map(ServiceId)
                    .filter(|s| self.is_responsible(*s) && self.tables[s.0 as usize].known)
                    .map(|s| (s, self.tables[s.0 as usize].checksum()))
                    .collect();
                self.distro.on_verify_timer(ctx, &self.peers, mine);
            }
            Timer::Nacos(nacos::Timer::PushDebounce { service }) => {
                let list = self.tables[service.0 as usize].served(self.config.health.protect_threshold);
                self.push.on_debounce(ctx, service, &list);
            }
            Timer::Nacos(nacos::Timer::PushTimeout { push_id }) => self.push.on_timeout(ctx, push_id),
            Timer::Nacos(nacos::Timer::SnapshotTimeout { req }) => self.distro.snapshot_failed(ctx, &self.peers, req),
            Timer::Nacos(nacos::Timer::SnapshotRetry) => self.distro.snapshot_retry(ctx, &self.peers),
            Timer::Nacos(nacos::Timer::StatusReport) => {
                status::report(ctx, &self.tables, &self.peers, |s| self.is_responsible(s));
            }
            _ => {}
        }
    }

    /// `ClientBeatCheckTask` for one service.
    fn check_health(&mut self, ctx: &mut NodeCtx<'_>, service: ServiceId) {
        let now = ctx.now();
        let t = &mut self.tables[service.0 as usize];
        let (unhealthy_after, delete_after) = (self.config.health.unhealthy_after, self.config.health.delete_after);
        let mut sick = Vec::new();
        let mut dead = Vec::new();
        for r in t.entries() {
            let silent = now.saturating_since(r.last_beat);
            if silent > unhealthy_after && r.healthy {
                sick.push(r.instance);
            }
            if silent > delete_after {
                dead.push(r.instance);
            }
        }
        for n in &sick {
            t.set_healthy(ctx, *n, false);
            ctx.observe(Obs::MarkedUnhealthy { instance: *n });
        }
        for n in &dead {
            ctx.observe(Obs::Deleted { instance: *n });
            t.remove(ctx, *n);
        }
        // A mark is only pushed; a deletion goes through Distro (`deleteIp` -> `consistencyService.put`).
        if !dead.is_empty() {
            self.distro.changed(ctx, service);
        }
        if !sick.is_empty() || !dead.is_empty() {
            self.push.changed(ctx, service);
        }
    }

    pub fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId, msg: Msg) {
        match &msg {
            Msg::Nacos(nacos::Msg::Report { .. }) if self.membership.on_refused(ctx, to) => self.membership_changed(),
            Msg::Nacos(nacos::Msg::Forward { origin, req, .. }) => self.proxy_failed(ctx, *origin, *req),
            Msg::Nacos(nacos::Msg::SnapshotQuery { req }) => self.distro.snapshot_failed(ctx, &self.peers, *req),
            _ => {}
        }
        self.distro.refused(ctx, to, &msg);
    }

    /// The proxy of `origin`'s write `req` failed (refused, timed out, rejected): the client
    /// gets an error answer, once.
    fn proxy_failed(&mut self, ctx: &mut NodeCtx<'_>, origin: NodeId, req: u64) {
        if self.proxied.remove(&(origin, req)) {
            ctx.send(origin, registry::Msg::WriteError { req });
        }
    }

    /// Ephemeral data, membership view, pending syncs and push clients live in memory only.
    pub fn crash(&mut self) {
        self.tables.iter_mut().for_each(Table::clear);
        self.membership.reset();
        self.membership_changed();
        self.distro.reset();
        self.push.reset();
        self.proxied.clear();
    }
}
