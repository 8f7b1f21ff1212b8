//! The client-visible history of registry operations, for the linearizability checker.
//!
//! Collected from `OpStart`/`OpDone` observations: an instance registering itself (invoked at
//! its first send, completed when a server acknowledges it; failovers and redirects are part of
//! the same operation), and a consumer listing its service (the result is every registered
//! instance, healthy or not). An operation never acknowledged stays open: it may or may not
//! have taken effect. With ephemeral instances (AP mode) the registry removes a crashed
//! instance on its own, so a crash counts as a deregistration by the instance invoked at the
//! crash and completed at its restart (never, if it stays down): its removal may take effect
//! at any point in between, and not after the restart's registration.
//!
//! Besides the checker's verdict, [`stale_lists`] counts lists that missed an instance whose
//! registration had completed before the list began, with no deregistration that could have
//! taken effect in between: the plainest kind of stale read.

use std::collections::BTreeMap;

use crate::check::linearizability::{Op, OpKind};
use crate::protocol::{ClientOp, InstanceList};
use regsim_kernel::{NodeId, SimTime};

#[derive(Clone, Debug, Default)]
pub struct HistoryLog {
    pub ops: Vec<Op>,
    open: BTreeMap<(NodeId, u64), usize>,
    /// Open implicit deregistrations of crashed ephemeral instances.
    crashed: BTreeMap<NodeId, usize>,
    /// Operations not recorded because the history reached `limit`.
    pub dropped: u64,
    limit: usize,
    ephemeral: bool,
}

impl HistoryLog {
    pub fn new(limit: usize, ephemeral: bool) -> Self {
        HistoryLog { limit, ephemeral, ..Default::default() }
    }

    fn push(&mut self, op: Op) -> Option<usize> {
        if self.ops.len() >= self.limit {
            self.dropped += 1;
            return None;
        }
        self.ops.push(op);
        Some(self.ops.len() - 1)
    }

    pub fn start(&mut self, t: SimTime, node: NodeId, req: u64, op: ClientOp) {
        let (service, kind) = match op {
            ClientOp::Register(s) => (s, OpKind::Register { instance: node.0 }),
            ClientOp::List(s) => (s, OpKind::List { result: Vec::new() }),
        };
        let op = Op { client: node.0, service: service.0, invoke: t.as_nanos(), complete: None, kind };
        if let Some(k) = self.push(op) {
            self.open.insert((node, req), k);
        }
    }

    pub fn done(&mut self, t: SimTime, node: NodeId, req: u64, result: Option<&InstanceList>) {
        let Some(k) = self.open.remove(&(node, req)) else { return };
        let op = &mut self.ops[k];
        op.complete = Some(t.as_nanos());
        if let (OpKind::List { result: r }, Some(list)) = (&mut op.kind, result) {
            *r = list.iter().map(|n| n.0).collect();
        }
    }

    /// An instance crashed: with ephemeral instances the registry will remove it by itself.
    pub fn instance_crashed(&mut self, t: SimTime, instance: NodeId, services: &[u32]) {
        if !self.ephemeral {
            return;
        }
        for s in services {
            let op = Op {
                client: instance.0,
                service: *s,
                invoke: t.as_nanos(),
                complete: None,
                kind: OpKind::Deregister { instance: instance.0 },
            };
            if let Some(k) = self.push(op) {
                self.crashed.insert(instance, k);
            }
        }
    }

    pub fn instance_restarted(&mut self, t: SimTime, instance: NodeId) {
        if let Some(k) = self.crashed.remove(&instance) {
            self.ops[k].complete = Some(t.as_nanos());
        }
    }
}

/// The number of completed lists that missed an instance whose registration completed before
/// the list was invoked, when no deregistration of it could have come in between.
pub fn stale_lists(ops: &[Op]) -> u64 {
    // Per (service, instance): registrations (invoke, complete) and deregistrations.
    type Key = (u32, u32);
    let mut regs: BTreeMap<Key, Vec<(u64, u64)>> = BTreeMap::new();
    let mut deregs: BTreeMap<Key, Vec<(u64, Option<u64>)>> = BTreeMap::new();
    for op in ops {
        match op.kind {
            OpKind::Register { instance } => {
                if let Some(c) = op.complete {
                    regs.entry((op.service, instance)).or_default().push((op.invoke, c));
                }
            }
            OpKind::Deregister { instance } => {
                deregs.entry((op.service, instance)).or_default().push((op.invoke, op.complete));
            }
            OpKind::List { .. } => {}
        }
    }
    let mut stale = 0;
    for op in ops {
        let (OpKind::List { result }, Some(done)) = (&op.kind, op.complete) else { continue };
        let missed = regs.range((op.service, 0)..=(op.service, u32::MAX)).any(|(key, rs)| {
            result.binary_search(&key.1).is_err()
                && rs.iter().any(|&(r_inv, r_done)| {
                    r_done < op.invoke
                        && !deregs.get(key).is_some_and(|ds| {
                            ds.iter().any(|&(d_inv, d_done)| d_inv < done && d_done.is_none_or(|d| d > r_inv))
                        })
                })
        });
        stale += u64::from(missed);
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: u32, invoke: u64, complete: Option<u64>, kind: OpKind) -> Op {
        Op { client, service: 0, invoke, complete, kind }
    }

    #[test]
    fn stale_lists_counts_only_unexplained_misses() {
        let reg = op(1, 0, Some(10), OpKind::Register { instance: 1 });
        let seen = op(9, 20, Some(30), OpKind::List { result: vec![1] });
        let missed = op(9, 40, Some(50), OpKind::List { result: vec![] });
        let concurrent = op(9, 5, Some(15), OpKind::List { result: vec![] });
        assert_eq!(stale_lists(&[reg.clone(), seen.clone(), missed.clone(), concurrent.clone()]), 1);
        // A crash (an open deregistration) before the list explains the miss.
        let crash = op(1, 35, None, OpKind::Deregister { instance: 1 });
        assert_eq!(stale_lists(&[reg.clone(), seen.clone(), missed.clone(), crash]), 0);
        // A crash that ended (restart) before the registration does not.
        let old_crash = op(1, 0, Some(1), OpKind::Deregister { instance: 1 });
        let late_reg = op(1, 2, Some(10), OpKind::Register { instance: 1 });
        assert_eq!(stale_lists(&[old_crash, late_reg, missed]), 1);
    }
}
