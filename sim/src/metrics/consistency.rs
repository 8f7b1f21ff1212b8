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

use serde::Serialize;

use super::family::{Family, Judge, Truth};
use super::stats::round_ns;
use crate::check::Invariant;
use crate::check::linearizability::{Op, OpKind};
use crate::protocol::{ClientOp, InstanceList, Obs, ServiceId};
use regsim_kernel::{FaultRecord, NodeId, SimTime};

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

/// The consistency family: the history of client-visible registry operations, checked for
/// linearizability at the end (the invariant only where the registry promises it: CP).
#[derive(Clone, Debug)]
pub struct Consistency {
    pub log: HistoryLog,
    /// Whether the registry promises linearizability (CP mode).
    pub judged: bool,
    /// `metrics.consistency`: run the checker at all.
    enabled: bool,
    max_states: u64,
    /// The checker's verdict, once the log is read.
    pub report: Option<ConsistencyReport>,
}

impl Consistency {
    /// `linearizable`: the registry promises it (CP), so a violation fails an invariant;
    /// otherwise instances are ephemeral (a crash deregisters them) and the verdict is a finding.
    pub fn new(limit: usize, linearizable: bool, enabled: bool, max_states: u64) -> Self {
        Consistency {
            log: HistoryLog::new(limit, !linearizable),
            judged: linearizable,
            enabled,
            max_states,
            report: None,
        }
    }
}

impl Family for Consistency {
    fn name(&self) -> &'static str {
        "consistency"
    }

    fn observe(&mut self, t: SimTime, node: NodeId, o: &Obs, truth: &Truth<'_>) {
        match *o {
            Obs::OpStart { req, op } => {
                let op = match op {
                    ClientOp::Register(s) => ClientOp::Register(ServiceId(truth.regional_service(node, s.0))),
                    ClientOp::List(s) => ClientOp::List(ServiceId(truth.regional_service(node, s.0))),
                };
                self.log.start(t, node, req, op)
            }
            Obs::OpDone { req, ref result } => self.log.done(t, node, req, result.as_ref()),
            _ => {}
        }
    }

    fn fault(&mut self, t: SimTime, node: NodeId, f: FaultRecord, truth: &Truth<'_>) {
        match f {
            FaultRecord::Crashed if truth.p.instances.contains(&node.0) => {
                self.log.instance_crashed(t, node, &[truth.regional_service(node, 0)]);
            }
            FaultRecord::Restarted => self.log.instance_restarted(t, node),
            _ => {}
        }
    }

    fn finish(&mut self) {
        self.report = Some(ConsistencyReport::check(&self.log, self.enabled, self.max_states, self.judged));
    }

    fn invariants(&self, _: &Judge<'_>) -> Vec<Invariant> {
        match &self.report {
            Some(c) if self.judged && c.verdict != "not_checked" => vec![linearizable(c)],
            _ => Vec::new(),
        }
    }
}

/// The number of completed lists that missed an instance whose registration completed before
/// the list was invoked, when no deregistration of it could have come in between.
pub fn stale_lists(ops: &[Op]) -> u64 {
    stale_reads(ops).len() as u64
}

/// One stale list: when it ran, and when the newest registration it missed had completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaleRead {
    pub invoke: SimTime,
    pub complete: SimTime,
    /// The completion of the newest registration the list missed.
    pub registered: SimTime,
}

/// The stale lists of [`stale_lists`], in log order.
pub fn stale_reads(ops: &[Op]) -> Vec<StaleRead> {
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
    let mut stale = Vec::new();
    let deregs = &deregs;
    for op in ops {
        let (OpKind::List { result }, Some(done)) = (&op.kind, op.complete) else { continue };
        let newest = regs
            .range((op.service, 0)..=(op.service, u32::MAX))
            .filter(|(key, _)| result.binary_search(&key.1).is_err())
            .flat_map(|(key, rs)| {
                rs.iter().filter(move |&&(r_inv, r_done)| {
                    r_done < op.invoke
                        && !deregs.get(key).is_some_and(|ds| {
                            ds.iter().any(|&(d_inv, d_done)| d_inv < done && d_done.is_none_or(|d| d > r_inv))
                        })
                })
            })
            .map(|&(_, r_done)| r_done)
            .max();
        if let Some(r) = newest {
            stale.push(StaleRead { invoke: SimTime(op.invoke), complete: SimTime(done), registered: SimTime(r) });
        }
    }
    stale
}

/// When the stale lists happened, how stale they were, and whether a fault was around.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StaleReads {
    /// The first and last stale list's start (s).
    pub first_s: f64,
    pub last_s: f64,
    /// How long the newest missed registration had been complete when the list began (s):
    /// the worst and the mean over the stale lists.
    pub worst_age_s: f64,
    pub mean_age_s: f64,
    /// Stale lists with a fault between the missed registration's completion and the list's
    /// (a partition active, a server down, paused, cut off or clock-skewed), and the others:
    /// replication lag (a list answered by a server the registration had not reached yet).
    pub during_faults: u64,
    pub without_faults: u64,
}

impl StaleReads {
    /// `faulted(from, to)`: whether a fault was active in that window.
    pub fn of(reads: &[StaleRead], faulted: impl Fn(SimTime, SimTime) -> bool) -> Option<StaleReads> {
        let first = reads.iter().map(|r| r.invoke).min()?;
        let last = reads.iter().map(|r| r.invoke).max()?;
        let ages: Vec<f64> = reads.iter().map(|r| (r.invoke - r.registered).as_secs_f64()).collect();
        let during = reads.iter().filter(|r| faulted(r.registered, r.complete)).count() as u64;
        Some(StaleReads {
            first_s: first.as_secs_f64(),
            last_s: last.as_secs_f64(),
            worst_age_s: ages.iter().copied().fold(0.0, f64::max),
            mean_age_s: crate::metrics::stats::round_ns(ages.iter().sum::<f64>() / ages.len() as f64),
            during_faults: during,
            without_faults: reads.len() as u64 - during,
        })
    }
}

/// `consistency`: the linearizability of the client-visible history (see
/// `metrics::consistency` for what it records and `check::linearizability` for the checker).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ConsistencyReport {
    /// `linearizable`, `violation`, `unknown` (search budget exceeded) or `not_checked`.
    pub verdict: &'static str,
    pub detail: String,
    pub ops: u64,
    /// Operations that never completed (given up on, or cut short by a crash or the end).
    pub open_ops: u64,
    pub lists: u64,
    /// Lists that missed an instance whose registration had completed before the list began.
    pub stale_lists: u64,
    /// When and how stale those lists were, and whether faults were around (see `StaleReads`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<StaleReads>,
    /// Whether the registry promises linearizability (CP mode): a violation fails the run. AP
    /// (Distro) replicates asynchronously and promises none: its verdict is a finding.
    pub promised: bool,
    pub states_explored: u64,
    /// Whether a fault (see `StaleReads`) was active while the witness's operations ran; absent
    /// without a witness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness_during_faults: Option<bool>,
    /// The minimal offending operations of the first violation, in invocation order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violation: Vec<OpReport>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OpReport {
    /// The client node (`instances[3]` once the report names nodes).
    pub client: String,
    pub op: String,
    pub invoke_s: f64,
    pub complete_s: Option<f64>,
}

impl ConsistencyReport {
    /// Checks `log` (unless disabled or truncated) with the given search budget.
    pub fn check(log: &HistoryLog, enabled: bool, max_states: u64, promised: bool) -> Self {
        use crate::check::linearizability::{self as lin, OpKind};
        let ops = &log.ops;
        let lists = ops.iter().filter(|o| matches!(o.kind, OpKind::List { .. })).count() as u64;
        let mut r = ConsistencyReport {
            verdict: "not_checked",
            detail: String::new(),
            ops: ops.len() as u64,
            open_ops: ops.iter().filter(|o| o.complete.is_none()).count() as u64,
            lists,
            stale_lists: stale_lists(ops),
            stale: None,
            witness_during_faults: None,
            promised,
            states_explored: 0,
            violation: Vec::new(),
        };
        if !enabled {
            r.detail = "disabled (metrics.consistency = false)".into();
            return r;
        }
        if log.dropped > 0 {
            r.detail = format!(
                "history truncated at metrics.max_history_ops = {} ({} operations not recorded)",
                ops.len(),
                log.dropped
            );
            return r;
        }
        let checked = match lin::check(ops, &lin::Limits { max_states_per_service: max_states }) {
            Ok(c) => c,
            Err(e) => {
                r.detail = format!("malformed history: {e}");
                return r;
            }
        };
        r.states_explored = checked.services.iter().map(|s| s.states_explored).sum();
        let services = checked.services.len();
        match checked.outcome {
            lin::Outcome::Linearizable => {
                r.verdict = "linearizable";
                r.detail = if ops.is_empty() {
                    "no client operations were recorded".to_string()
                } else {
                    format!("{} operations on {services} service(s) are linearizable", ops.len())
                };
            }
            lin::Outcome::Unknown { service, explored } => {
                r.verdict = "unknown";
                r.detail = format!(
                    "service {service}: search budget exceeded after {explored} states (metrics.max_checker_states)"
                );
            }
            lin::Outcome::Violation { service, ops: ids, from_empty } => {
                r.verdict = "violation";
                let mut v: Vec<&lin::Op> = ids.iter().map(|i| &ops[i.0]).collect();
                v.sort_by_key(|o| o.invoke);
                // The instances the violation is about: those registered or deregistered in
                // it, else those some of its lists contain and others do not.
                let mut focus: Vec<u32> = v
                    .iter()
                    .filter_map(|o| match o.kind {
                        OpKind::Register { instance } | OpKind::Deregister { instance } => Some(instance),
                        OpKind::List { .. } => None,
                    })
                    .collect();
                let results: Vec<&Vec<u32>> = v
                    .iter()
                    .filter_map(|o| match &o.kind {
                        OpKind::List { result } => Some(result),
                        _ => None,
                    })
                    .collect();
                if focus.is_empty() {
                    let all: std::collections::BTreeSet<u32> = results.iter().flat_map(|r| r.iter().copied()).collect();
                    focus = all.into_iter().filter(|i| results.iter().any(|r| r.binary_search(i).is_err())).collect();
                }
                focus.sort_unstable();
                focus.dedup();
                focus.truncate(3);
                r.violation = v
                    .iter()
                    .map(|o| OpReport {
                        client: NodeId(o.client).to_string(),
                        op: match &o.kind {
                            OpKind::Register { instance } => format!("register {}", NodeId(*instance)),
                            OpKind::Deregister { instance } => format!("deregister {} (crash)", NodeId(*instance)),
                            OpKind::List { result } => {
                                let about: Vec<String> = focus
                                    .iter()
                                    .map(|i| {
                                        format!(
                                            "{} {}",
                                            if result.binary_search(i).is_ok() { "with" } else { "without" },
                                            NodeId(*i)
                                        )
                                    })
                                    .collect();
                                format!("list: {} instances, {}", result.len(), about.join(", "))
                            }
                        },
                        invoke_s: round_ns(o.invoke as f64 / 1e9),
                        complete_s: o.complete.map(|c| round_ns(c as f64 / 1e9)),
                    })
                    .collect();
                r.detail = format!(
                    "service {service}: these {} operations admit no linearization{}",
                    ids.len(),
                    if from_empty { " from the empty registry" } else { "" }
                );
            }
        }
        r
    }
}

/// CP runs: the client-visible history is linearizable (the CP registry promises it).
pub fn linearizable(c: &ConsistencyReport) -> Invariant {
    let first =
        c.violation.iter().filter_map(|o| o.complete_s).fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    Invariant {
        not_applicable: false,
        name: "linearizable",
        holds: c.verdict != "violation",
        detail: c.detail.clone(),
        first_violation_s: if c.verdict == "violation" { first } else { None },
    }
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
