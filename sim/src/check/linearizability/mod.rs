//! Linearizability checker for registry histories.
//!
//! **Model.** A history is a list of [`Op`]s: a client invokes an operation on one service at
//! `invoke` and sees it complete at `complete` (virtual ns), or never (`None`: the client crashed
//! or timed out, so the operation may or may not have taken effect). The sequential
//! specification of one service is a set of instances, initially empty: `Register` adds one,
//! `Deregister` removes one (both always return `Ok`), `List` returns exactly the current set.
//! A history is linearizable (Herlihy & Wing) when every completed operation, and any subset of
//! the never-completed ones, can be given a point inside its interval such that, taken in that
//! order, the operations obey the specification. Real-time order: `a` precedes `b` iff
//! `a.complete < b.invoke`; equal times count as concurrent (the permissive choice). A
//! never-completed operation is concurrent with everything invoked after it and may be
//! linearized anywhere after its invocation or omitted; a never-completed `List` constrains
//! nothing and is ignored.
//!
//! **Algorithm.** Registry services are independent objects, so by P-compositionality (Horn &
//! Kroening, "Faster linearizability checking via P-compositionality", FORTE 2015; locality in
//! Herlihy & Wing) the history is split by service and each part is checked on its own, in
//! ascending service order. Each part is searched with Wing & Gong's backtracking algorithm
//! ("Testing and verifying concurrent objects", JPDC 1993) in the just-in-time formulation of
//! Lowe ("Testing for linearizability", CCPE 2017), also used by the Porcupine checker: the
//! invocations and completions form a time-ordered doubly linked list; the search repeatedly
//! linearizes the first pending invocation whose step the specification accepts, removes it
//! from the list, and backtracks when it reaches a completion whose operation is not yet
//! linearized. Lowe's memoization prunes every (set of linearized operations, model state)
//! configuration already explored; the set is a bitset with an incremental Zobrist hash, the
//! state a sorted `Vec<u32>`, and the cache keeps both in full (the set run-length encoded), so
//! a hash collision can never prune a live branch. Each search has a budget of explored states
//! ([`Limits::max_states_per_service`]); exceeding it yields [`Outcome::Unknown`], never a hang.
//!
//! Histories without deregistrations (a grow-only set, as CP persistent instances are) are
//! first decided by an exact greedy pass (`growonly.rs`), linear after a sort, which also
//! reports two disagreeing lists as a witness; only its other failures go to the search, to
//! find and shrink the witness.
//!
//! **Violations** are shrunk (see `minimize.rs`) to a set of operations that is not
//! linearizable on its own, from the empty registry or, when it is a window cut out of the
//! history, from *every* initial set of instances (`from_empty` says which), and such that
//! removing any one of them makes it linearizable: *1-minimal under removal*, not necessarily
//! the smallest witness in the history. A stale read shrinks to {the register, the list}.
//!
//! Deterministic: no clock, no randomness; the one hash map is used for lookups only, with a
//! fixed hasher, so no iteration order reaches a result.
//!
//! ```
//! use regsim::check::linearizability::{check, Limits, Op, OpId, OpKind, Outcome};
//! let history = vec![
//!     Op { client: 1, service: 7, invoke: 0, complete: Some(10), kind: OpKind::Register { instance: 3 } },
//!     // Begins after the register completed, yet does not see instance 3: a stale read.
//!     Op { client: 2, service: 7, invoke: 20, complete: Some(30), kind: OpKind::List { result: vec![] } },
//! ];
//! let report = check(&history, &Limits::default()).expect("well-formed history");
//! assert_eq!(report.outcome, Outcome::Violation { service: 7, ops: vec![OpId(0), OpId(1)], from_empty: false });
//! assert_eq!(report.services[0].ops, 2);
//! ```

mod growonly;
mod minimize;
mod search;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use search::Verdict;

/// Index of an operation in the history slice given to [`check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct OpId(pub usize);

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum OpKind {
    Register {
        instance: u32,
    },
    Deregister {
        instance: u32,
    },
    /// The instances returned, sorted ascending without duplicates.
    List {
        result: Vec<u32>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Op {
    pub client: u32,
    pub service: u32,
    /// Virtual time of the invocation, ns.
    pub invoke: u64,
    /// Virtual time of the response, ns; `None` if it never completed.
    pub complete: Option<u64>,
    pub kind: OpKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Explored (linearized set, state) configurations allowed per search. Each costs roughly
    /// 50–200 bytes of cache plus the encoded set and about 10 µs; the default (10^6) bounds a
    /// hopeless search to seconds and a few hundred MB (10^7 took about 100 s and 2 GB), while
    /// ordinary histories explore about one state per operation.
    pub max_states_per_service: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_states_per_service: 1_000_000 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    Linearizable,
    /// `ops` is non-linearizable on its own (sorted by id), and 1-minimal under removal.
    /// `from_empty`: whether that holds only from the empty registry (the set includes the
    /// service's beginning) or from every initial set of instances.
    Violation {
        service: u32,
        ops: Vec<OpId>,
        from_empty: bool,
    },
    /// The search of `service` exceeded the budget after `explored` states.
    Unknown {
        service: u32,
        explored: u64,
    },
}

/// One service's part of the check. `states_explored` counts the main search; minimizing a
/// violation runs `minimize_searches` more searches of sub-histories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceReport {
    pub service: u32,
    pub ops: usize,
    pub states_explored: u64,
    pub minimize_searches: u64,
    pub outcome: Outcome,
}

/// `outcome` is the first violation in ascending service order, else the first `Unknown`,
/// else `Linearizable`; `services` lists every service checked, ascending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    pub services: Vec<ServiceReport>,
}

/// A malformed history: the operation and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidHistory {
    pub op: OpId,
    pub reason: &'static str,
}

impl fmt::Display for InvalidHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation {}: {}", self.op.0, self.reason)
    }
}

impl std::error::Error for InvalidHistory {}

/// An operation as the search sees it (borrowing the list result).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item<'a> {
    pub id: OpId,
    pub invoke: u64,
    pub complete: Option<u64>,
    pub kind: Kind<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    Register(u32),
    Deregister(u32),
    List(&'a [u32]),
}

/// The state a search starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Init {
    /// The empty registry (a whole history).
    Empty,
    /// Any set of instances (a window cut out of a history).
    Unknown,
}

/// Never-completed registrations that no linearization needs, so the search can leave them
/// out (each one left in doubles the configurations it may have to explore).
///
/// A register of `i` that never completed can take effect at any point `p` after its
/// invocation, or not at all. Taking effect only matters for lists linearized after `p` that
/// contain `i` and come before `i` is registered anyway by a completed register `R2` of `i`
/// invoked no earlier (whose point is at most `R2.complete`). If no list containing `i`
/// completes after the invocation and begins before `R2.complete` (or at all, without such an
/// `R2`), leaving the register out loses no linearization.
fn unneeded_open_registers(history: &[Op]) -> Vec<bool> {
    let mut skip = vec![false; history.len()];
    // Per (service, instance): completed registers (invoke, complete), and lists' intervals.
    let mut regs: BTreeMap<(u32, u32), Vec<(u64, u64)>> = BTreeMap::new();
    // Per (service, instance): the intervals of completed lists that contain it.
    let mut seen: BTreeMap<(u32, u32), Vec<(u64, u64)>> = BTreeMap::new();
    let open = |op: &Op| op.complete.is_none() && matches!(op.kind, OpKind::Register { .. });
    let wanted: std::collections::BTreeSet<(u32, u32)> = history
        .iter()
        .filter(|op| open(op))
        .filter_map(|op| match op.kind {
            OpKind::Register { instance } => Some((op.service, instance)),
            _ => None,
        })
        .collect();
    for op in history {
        match (&op.kind, op.complete) {
            (OpKind::Register { instance }, Some(c)) => {
                regs.entry((op.service, *instance)).or_default().push((op.invoke, c))
            }
            (OpKind::List { result }, Some(c)) => {
                for i in result.iter().filter(|i| wanted.contains(&(op.service, **i))) {
                    seen.entry((op.service, *i)).or_default().push((op.invoke, c));
                }
            }
            _ => {}
        }
    }
    for (k, op) in history.iter().enumerate() {
        let (OpKind::Register { instance }, None) = (&op.kind, op.complete) else { continue };
        let until = regs
            .get(&(op.service, *instance))
            .and_then(|rs| rs.iter().filter(|r| r.0 >= op.invoke).map(|r| r.1).min())
            .unwrap_or(u64::MAX);
        let needed = seen
            .get(&(op.service, *instance))
            .is_some_and(|ls| ls.iter().any(|(inv, done)| *done > op.invoke && *inv < until));
        skip[k] = !needed;
    }
    skip
}

/// Checks `history` service by service. Errors only on malformed input.
pub fn check(history: &[Op], limits: &Limits) -> Result<Report, InvalidHistory> {
    let mut by_service: BTreeMap<u32, Vec<Item<'_>>> = BTreeMap::new();
    let skip = unneeded_open_registers(history);
    for (i, op) in history.iter().enumerate() {
        let id = OpId(i);
        if op.complete.is_some_and(|c| c < op.invoke) {
            return Err(InvalidHistory { op: id, reason: "completes before it is invoked" });
        }
        let kind = match &op.kind {
            OpKind::Register { instance } => Kind::Register(*instance),
            OpKind::Deregister { instance } => Kind::Deregister(*instance),
            OpKind::List { result } => {
                if !result.windows(2).all(|w| w[0] < w[1]) {
                    return Err(InvalidHistory { op: id, reason: "list result is not sorted without duplicates" });
                }
                Kind::List(result)
            }
        };
        if skip[i] {
            continue;
        }
        by_service.entry(op.service).or_default().push(Item { id, invoke: op.invoke, complete: op.complete, kind });
    }
    let services: Vec<ServiceReport> =
        by_service.into_iter().map(|(service, items)| check_service(service, &items, limits)).collect();
    let first = |f: fn(&Outcome) -> bool| services.iter().map(|s| &s.outcome).find(|o| f(o)).cloned();
    let outcome = first(|o| matches!(o, Outcome::Violation { .. }))
        .or_else(|| first(|o| matches!(o, Outcome::Unknown { .. })))
        .unwrap_or(Outcome::Linearizable);
    Ok(Report { outcome, services })
}

/// A fast first pass: the history projected on each instance alone (its registers and
/// deregisters, and every list reduced to "contains it" or not). A linearization of the whole
/// history projects onto a linearization of each projection, so a projection that has none
/// proves a violation, found in a search whose state is one bit. Histories with anomalies
/// (AP under faults) are caught here; the full search then only has to confirm histories
/// whose projections are all linearizable. Returns the first violating projection, shrunk.
fn check_projections(service: u32, items: &[Item<'_>], budget: u64) -> Option<ServiceReport> {
    let mut instances: Vec<u32> = items
        .iter()
        .filter_map(|i| match i.kind {
            Kind::Register(n) | Kind::Deregister(n) => Some(n),
            Kind::List(_) => None,
        })
        .collect();
    instances.sort_unstable();
    instances.dedup();
    let singles: Vec<[u32; 1]> = instances.iter().map(|n| [*n]).collect();
    let mut explored = 0;
    let mut searches = 0;
    for (k, n) in instances.iter().enumerate() {
        let projected: Vec<Item<'_>> = items
            .iter()
            .filter_map(|i| {
                let kind = match i.kind {
                    Kind::Register(m) | Kind::Deregister(m) if m != *n => return None,
                    Kind::List(result) if result.binary_search(n).is_ok() => Kind::List(&singles[k][..]),
                    Kind::List(_) => Kind::List(&[]),
                    other => other,
                };
                Some(Item { kind, ..*i })
            })
            .collect();
        let searched = search::search(&projected, Init::Empty, budget);
        explored += searched.explored;
        searches += 1;
        if searched.verdict == Verdict::NotLinearizable {
            let m = minimize::minimize(&projected, searched.frontier, budget);
            return Some(ServiceReport {
                service,
                ops: items.len(),
                states_explored: explored,
                minimize_searches: searches + m.searches,
                outcome: Outcome::Violation { service, ops: m.ops, from_empty: m.init == Init::Empty },
            });
        }
    }
    None
}

fn check_service(service: u32, items: &[Item<'_>], limits: &Limits) -> ServiceReport {
    // Registers and deregisters always succeed: without a completed list, any order of them
    // that respects real time is a linearization, so there is nothing to search.
    if !items.iter().any(|i| matches!(i.kind, Kind::List(_)) && i.complete.is_some()) {
        return ServiceReport {
            service,
            ops: items.len(),
            states_explored: 0,
            minimize_searches: 0,
            outcome: Outcome::Linearizable,
        };
    }
    // Without deregistrations the set only grows, and a greedy pass decides exactly (and
    // finds the commonest witness, two lists that disagree, at once).
    let outcome = match growonly::decide(items) {
        growonly::Decision::Linearizable => Some(Outcome::Linearizable),
        growonly::Decision::Incomparable(a, b) => {
            Some(Outcome::Violation { service, ops: vec![a, b], from_empty: false })
        }
        growonly::Decision::Search => None,
    };
    if let Some(outcome) = outcome {
        return ServiceReport { service, ops: items.len(), states_explored: 0, minimize_searches: 0, outcome };
    }
    let budget = limits.max_states_per_service;
    if let Some(r) = check_projections(service, items, budget) {
        return r;
    }
    let searched = search::search(items, Init::Empty, budget);
    let explored = searched.explored;
    let mut report = ServiceReport {
        service,
        ops: items.len(),
        states_explored: explored,
        minimize_searches: 0,
        outcome: Outcome::Linearizable,
    };
    match searched.verdict {
        Verdict::Linearizable => {}
        Verdict::BudgetExceeded => report.outcome = Outcome::Unknown { service, explored },
        Verdict::NotLinearizable => {
            let m = minimize::minimize(items, searched.frontier, budget);
            report.minimize_searches = m.searches;
            report.outcome = Outcome::Violation { service, ops: m.ops, from_empty: m.init == Init::Empty };
        }
    }
    report
}
