//! An exact, polynomial decision for histories without deregistrations (a grow-only set: CP
//! persistent instances are never deleted).
//!
//! In a grow-only set an instance is present from the point `e_x` where its first register
//! takes effect. Completed registers of `x` must take effect by their completion, and the
//! earliest-invoked register can take effect anywhere up to that, so `e_x` ranges over
//! `[min invoke, min completion of a completed register]` (closed: equal times are concurrent).
//! A never-completed register may also never take effect, which an unbounded upper end covers.
//! Completed lists must then form a chain under inclusion: the distinct results `G_1 ⊂ G_2 ⊂
//! … ⊂ G_m`. A linearization is the sequence `R_1, G_1, R_2, G_2, …, G_m, R_{m+1}`, where
//! `R_k` are the effect points of the instances new in `G_k` (and `R_{m+1}` of completed
//! registers no list saw, which must come after every list); inside one stage the order is
//! free. Giving each item the earliest point its interval allows after the previous stage
//! (greedy) is optimal, because every later stage only needs a lower bound as small as
//! possible; the history is linearizable iff no item's interval ends before that bound.
//!
//! Two completed lists whose results are not ordered by inclusion are a witness on their own
//! (with no register or deregister among them, any two lists must return the same set), and
//! 1-minimal. On any other failure the caller falls back to the backtracking search, which
//! finds and shrinks the witness.

use std::collections::BTreeMap;

use super::{Item, Kind, OpId};

/// What the greedy pass found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Linearizable,
    /// Two lists with results not ordered by inclusion: a 1-minimal witness from any set.
    Incomparable(OpId, OpId),
    /// Not linearizable, or deregistrations present: the search must decide and shrink.
    Search,
}

/// Decides `items` (one service) from the empty set, when it has no `Deregister`.
pub(crate) fn decide(items: &[Item<'_>]) -> Decision {
    // Per instance: (earliest invoke of a register, earliest completion of a completed one).
    let mut window: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut lists: Vec<(&[u32], u64, u64, OpId)> = Vec::new();
    for it in items {
        match (it.kind, it.complete) {
            (Kind::Register(x), done) => {
                let w = window.entry(x).or_insert((u64::MAX, u64::MAX));
                w.0 = w.0.min(it.invoke);
                w.1 = w.1.min(done.unwrap_or(u64::MAX));
            }
            (Kind::List(result), Some(done)) => lists.push((result, it.invoke, done, it.id)),
            (Kind::List(_), None) => {}
            (Kind::Deregister(_), _) => return Decision::Search,
        }
    }
    // A chain under inclusion is ordered by size; equal sizes must be equal sets.
    lists.sort_by_key(|(r, _, _, id)| (r.len(), *id));
    let mut t = 0u64;
    let mut seen: &[u32] = &[];
    let mut previous: Option<OpId> = None;
    let mut placed = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < lists.len() {
        let group = lists[i].0;
        let mut j = i;
        while j < lists.len() && lists[j].0.len() == group.len() {
            if lists[j].0 != group {
                return incomparable(lists[i].3, lists[j].3);
            }
            j += 1;
        }
        if let Some(prev) = previous.filter(|_| !is_subset(seen, group)) {
            return incomparable(prev, lists[i].3);
        }
        // R_k: the instances new in this group take effect first.
        let mut end = t;
        for x in group.iter().filter(|x| seen.binary_search(x).is_err()) {
            let Some(&(from, until)) = window.get(x) else { return Decision::Search };
            let p = t.max(from);
            if p > until {
                return Decision::Search;
            }
            end = end.max(p);
            placed.insert(*x);
        }
        t = end;
        // G_k: the lists themselves.
        for &(_, invoke, done, _) in &lists[i..j] {
            let p = t.max(invoke);
            if p > done {
                return Decision::Search;
            }
            end = end.max(p);
        }
        t = end;
        seen = group;
        previous = Some(lists[i].3);
        i = j;
    }
    // R_{m+1}: completed registers no list saw take effect after every list.
    if window.iter().filter(|(x, _)| !placed.contains(*x)).all(|(_, &(_, until))| until >= t) {
        Decision::Linearizable
    } else {
        Decision::Search
    }
}

fn incomparable(a: OpId, b: OpId) -> Decision {
    Decision::Incomparable(a.min(b), a.max(b))
}

/// Whether sorted `a` is a subset of sorted `b`.
fn is_subset(a: &[u32], b: &[u32]) -> bool {
    let mut k = 0;
    for x in a {
        while k < b.len() && b[k] < *x {
            k += 1;
        }
        if k == b.len() || b[k] != *x {
            return false;
        }
    }
    true
}
