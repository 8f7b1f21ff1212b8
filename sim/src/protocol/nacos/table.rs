//! A server's copy of one service: its instances with health and last beat.
//!
//! Entries are kept in insertion order with a direct index by node id, so a beat is O(1) and
//! the health check walks a deterministic order. Every change bumps `version` and is reported
//! as an `Obs::Copy`, so metrics can follow each copy; Distro ships `snapshot()` (sorted by
//! instance) and compares `checksum()`s.

use crate::protocol::{CopyState, Datum, InstRec, InstanceList, NodeCtx, Obs};
use regsim_kernel::{NodeId, rng::mix64};

#[derive(Clone, Debug, Default)]
pub struct Table {
    entries: Vec<InstRec>,
    /// `slot[node id]` = position in `entries` + 1 (0 = absent).
    slot: Vec<u32>,
    /// Bumped on every change.
    pub version: u64,
    /// Whether this server holds data of the service (Nacos: the key is in its `DataStore`,
    /// even with no instances left): set by any write or sync, cleared by a crash.
    pub known: bool,
}

fn state(r: Option<&InstRec>) -> CopyState {
    match r {
        None => CopyState::Absent,
        Some(r) if r.healthy => CopyState::Healthy,
        Some(_) => CopyState::Unhealthy,
    }
}

impl Table {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, n: NodeId) -> Option<&InstRec> {
        match self.slot.get(n.index()) {
            Some(&s) if s > 0 => self.entries.get(s as usize - 1),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, n: NodeId) -> Option<&mut InstRec> {
        match self.slot.get(n.index()) {
            Some(&s) if s > 0 => self.entries.get_mut(s as usize - 1),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[InstRec] {
        &self.entries
    }

    /// Inserts or replaces `r`; reports the copy change if the visible state changed.
    pub fn put(&mut self, ctx: &mut NodeCtx<'_>, r: InstRec) {
        self.known = true;
        let before = state(self.get(r.instance));
        match self.get_mut(r.instance) {
            Some(e) => *e = r,
            None => {
                let i = r.instance.index();
                if self.slot.len() <= i {
                    self.slot.resize(i + 1, 0);
                }
                self.entries.push(r);
                self.slot[i] = self.entries.len() as u32;
            }
        }
        self.changed(ctx, r.instance, before);
    }

    /// Sets the health of a listed instance; returns whether it was listed.
    pub fn set_healthy(&mut self, ctx: &mut NodeCtx<'_>, n: NodeId, healthy: bool) -> bool {
        let before = state(self.get(n));
        match self.get_mut(n) {
            Some(e) => e.healthy = healthy,
            None => return false,
        }
        self.changed(ctx, n, before);
        true
    }

    /// Removes instance `n` if listed.
    pub fn remove(&mut self, ctx: &mut NodeCtx<'_>, n: NodeId) {
        let Some(&s) = self.slot.get(n.index()) else { return };
        if s == 0 {
            return;
        }
        let pos = s as usize - 1;
        let before = state(self.entries.get(pos));
        let gone = self.entries.swap_remove(pos);
        self.slot[gone.instance.index()] = 0;
        if let Some(moved) = self.entries.get(pos) {
            self.slot[moved.instance.index()] = pos as u32 + 1;
        }
        self.changed(ctx, n, before);
    }

    /// Replaces the whole copy with `data` (a Distro sync), reporting each change. An instance
    /// already listed keeps its health flag (`Cluster.updateIps`, 1.4.6: "do not update the ip
    /// validation status of updated ips because the checker has the most precise result"); a
    /// new one takes the sender's. Health flags travel by the status reports (`status`).
    pub fn replace(&mut self, ctx: &mut NodeCtx<'_>, data: &[InstRec]) {
        self.known = true;
        let keep: std::collections::BTreeSet<NodeId> = data.iter().map(|r| r.instance).collect();
        let stale: Vec<NodeId> = self.entries.iter().map(|r| r.instance).filter(|n| !keep.contains(n)).collect();
        for n in stale {
            self.remove(ctx, n);
        }
        for r in data {
            let r = match self.get(r.instance) {
                Some(old) => InstRec { healthy: old.healthy, ..*r },
                None => *r,
            };
            if self.get(r.instance) != Some(&r) {
                self.put(ctx, r);
            }
        }
    }

    /// Empties the copy (a crash: ephemeral data lives in memory only). No observations: the
    /// crash itself is ground truth.
    pub fn clear(&mut self) {
        *self = Table { version: self.version + 1, ..Table::default() };
    }

    fn changed(&mut self, ctx: &mut NodeCtx<'_>, n: NodeId, before: CopyState) {
        self.version += 1;
        let after = state(self.get(n));
        if after != before {
            ctx.observe(Obs::Copy { instance: n, state: after });
        }
    }

    /// The copy sorted by instance, as Distro ships it.
    pub fn snapshot(&self) -> Datum {
        let mut v = self.entries.clone();
        v.sort_by_key(|r| r.instance);
        std::sync::Arc::new(v)
    }

    /// The healthy instances, sorted, as consumers get them.
    pub fn healthy(&self) -> InstanceList {
        let mut v: Vec<NodeId> = self.entries.iter().filter(|r| r.healthy).map(|r| r.instance).collect();
        v.sort();
        std::sync::Arc::new(v)
    }

    /// What a query or push lists (`InstanceController.doSrvIpxt`): the healthy instances, or
    /// every instance when healthy / all is at most `protect_threshold` (Nacos then returns the
    /// unhealthy ones marked healthy).
    pub fn served(&self, protect_threshold: f64) -> InstanceList {
        let healthy = self.entries.iter().filter(|r| r.healthy).count();
        let all = self.entries.len();
        if all > 0 && (healthy as f64) / (all as f64) <= protect_threshold { self.registered() } else { self.healthy() }
    }

    /// Every instance in the copy, healthy or not, sorted.
    pub fn registered(&self) -> InstanceList {
        let mut v: Vec<NodeId> = self.entries.iter().map(|r| r.instance).collect();
        v.sort();
        std::sync::Arc::new(v)
    }

    /// Order-independent checksum of (instance, healthy) pairs, like Nacos' MD5 of the
    /// instance list (last-beat times are not part of it there either).
    pub fn checksum(&self) -> u64 {
        self.entries.iter().fold(self.entries.len() as u64, |acc, r| {
            acc.wrapping_add(mix64(u64::from(r.instance.0) << 1 | u64::from(r.healthy)))
        })
    }
}
