//! A Nacos 1.x naming server for ephemeral instances (one server; the AP cluster with Distro
//! replication is its own model).
//!
//! State is the instance table, kept in memory only (ephemeral instances are not persisted,
//! so a crash empties it). Register and beat update an entry's `last_beat` (local time). The
//! health check is Nacos' `ClientBeatCheckTask`: it runs every `check_interval` with fixed
//! delay from a random phase in `[0, check_interval)` per server; it marks an instance
//! unhealthy when `now - last_beat > unhealthy_after` and deletes it when
//! `now - last_beat > delete_after` (defaults 5 s, 15 s, 30 s, from Nacos' `ClientBeatCheckTask`
//! and `Constants.DEFAULT_HEART_BEAT_TIMEOUT` / `DEFAULT_IP_DELETE_TIMEOUT`). A beat for an
//! unknown instance is answered "not found" (20404), and a beat makes an unhealthy instance
//! healthy again.

use rand::RngExt;

use super::{Msg, NodeCtx, Obs, Timer, elapsed_since};
use crate::engine::{NodeId, SimDuration, SimTime};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub check_interval: SimDuration,
    pub unhealthy_after: SimDuration,
    pub delete_after: SimDuration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            check_interval: SimDuration::from_secs(5),
            unhealthy_after: SimDuration::from_secs(15),
            delete_after: SimDuration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    instance: NodeId,
    last_beat: SimTime,
    healthy: bool,
}

/// The instance table: entries in insertion order plus a direct index by node id, so a beat
/// is O(1) and the health check walks a deterministic order.
#[derive(Clone, Debug, Default)]
struct Table {
    entries: Vec<Entry>,
    /// `slot[node id]` = position in `entries` + 1 (0 = absent). Single-service slice: one
    /// instance is registered under one service.
    slot: Vec<u32>,
}

impl Table {
    fn find(&self, n: NodeId) -> Option<usize> {
        match self.slot.get(n.index()) {
            Some(&s) if s > 0 => Some(s as usize - 1),
            _ => None,
        }
    }

    fn insert(&mut self, e: Entry) {
        let i = e.instance.index();
        if self.slot.len() <= i {
            self.slot.resize(i + 1, 0);
        }
        self.entries.push(e);
        self.slot[i] = self.entries.len() as u32;
    }

    fn remove(&mut self, pos: usize) {
        let gone = self.entries.swap_remove(pos);
        self.slot[gone.instance.index()] = 0;
        if let Some(moved) = self.entries.get(pos) {
            self.slot[moved.instance.index()] = pos as u32 + 1;
        }
    }
}

#[derive(Clone, Debug)]
pub struct RegistryServer {
    config: ServerConfig,
    table: Table,
}

impl RegistryServer {
    pub fn new(config: ServerConfig) -> Self {
        RegistryServer { config, table: Table::default() }
    }

    /// Number of instances in the table and how many of them are healthy.
    pub fn counts(&self) -> (usize, usize) {
        (self.table.entries.len(), self.table.entries.iter().filter(|e| e.healthy).count())
    }

    /// Whether `n` is listed, and healthy.
    pub fn lookup(&self, n: NodeId) -> Option<bool> {
        self.table.find(n).map(|p| self.table.entries[p].healthy)
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        let period = self.config.check_interval.as_nanos().max(1);
        let phase = SimDuration(ctx.rng().random_range(0..period));
        ctx.set_timer(phase, Timer::HealthCheck);
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        let now = ctx.now();
        match msg {
            Msg::Register { service: _, req } => {
                match self.table.find(from) {
                    Some(p) => self.table.entries[p].last_beat = now,
                    None => {
                        self.table.insert(Entry { instance: from, last_beat: now, healthy: true });
                        ctx.observe(Obs::Registered { instance: from });
                    }
                }
                ctx.send(from, Msg::RegisterOk { req });
            }
            Msg::Beat { service: _, req } => {
                let found = match self.table.find(from) {
                    None => false,
                    Some(p) => {
                        let e = &mut self.table.entries[p];
                        e.last_beat = now;
                        if !e.healthy {
                            e.healthy = true;
                            ctx.observe(Obs::MarkedHealthy { instance: from });
                        }
                        true
                    }
                };
                ctx.send(from, Msg::BeatOk { req, found });
            }
            Msg::RegisterOk { .. } | Msg::BeatOk { .. } => {}
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        if timer != Timer::HealthCheck {
            return;
        }
        let now = ctx.now();
        let mut pos = 0;
        while pos < self.table.entries.len() {
            let e = &mut self.table.entries[pos];
            let silent = elapsed_since(now, e.last_beat);
            if silent > self.config.unhealthy_after && e.healthy {
                e.healthy = false;
                ctx.observe(Obs::MarkedUnhealthy { instance: e.instance });
            }
            if silent > self.config.delete_after {
                ctx.observe(Obs::Deleted { instance: e.instance });
                self.table.remove(pos);
                continue;
            }
            pos += 1;
        }
        ctx.set_timer(self.config.check_interval, Timer::HealthCheck);
    }

    /// Ephemeral instances live in memory only.
    pub fn crash(&mut self) {
        self.table = Table::default();
    }
}
