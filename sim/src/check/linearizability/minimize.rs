//! Shrinking a non-linearizable service history to a small witness.
//!
//! Two sound transformations keep a non-linearizable history non-linearizable:
//!
//! - **Cut at time `T`** (`H|T`): keep the operations invoked at or before `T`; those that
//!   complete after `T` become never-completed. If `H` has a linearization, the operations
//!   ordered up to the last one completed by `T` are all invoked by `T` and form one of `H|T`
//!   (the rest are omitted). So `H|T` non-linearizable implies `H` is, and it is monotone in `T`.
//! - **Window from `S`** (`W(S)`), from an *unknown* initial set: drop the operations completed
//!   before `S`, and make those invoked before `S` but not completed before it never-completed.
//!   A linearization of the larger history, split at its last operation completed before `S`,
//!   gives one of `W(S)` starting from the set reached there. Monotone in `S` as well.
//!
//! The minimizer binary-searches the smallest cut `T` that is still not linearizable, then the
//! latest window start `S` (the candidates are the empty registry over the whole cut, then every
//! invocation time with an unknown initial set); then it *relaxes* each completed operation in
//! turn (makes it never-completed, which only adds linearizations, so one pass suffices) while
//! the history stays non-linearizable, drops the never-completed lists, and finally drops
//! single lists until none can go.
//!
//! Only lists are dropped: a list changes nothing, so a linearization of a history gives one
//! of the history without the list, and the witness failing still proves the history fails.
//! A registration or deregistration is never dropped, even where the rest would fail without
//! it: removing a mutation can *remove* linearizations (a list that misses an instance is
//! explained by a deregistration that may take effect before it), so a witness without it
//! would claim a violation the history does not have. (Until 2026-12 the minimizer dropped
//! them, and reported e.g. "a list with instances[0], a later list without it" while the
//! crash of instances[0], an implicit deregistration, lay between the two.) Relaxing one to
//! never-completed stays sound, and is tried for each.
//!
//! **Minimal** therefore means: the reported set, with the reported initial state (empty
//! registry, or any initial set of instances), is not linearizable, removing any one of its
//! lists makes it linearizable, and its registrations and deregistrations are those of the
//! window (each completed only where it has to be). It is not necessarily the smallest such set
//! of the history. A search that exceeds the budget counts as "linearizable" here, so the
//! result may be larger then, but it is always a proven violation.

use super::search::{Verdict, search};
use super::{Init, Item, Kind, OpId};

pub(crate) struct Minimized {
    pub ops: Vec<OpId>,
    pub init: Init,
    /// Searches run while minimizing.
    pub searches: u64,
}

struct Shrinker {
    budget: u64,
    searches: u64,
}

impl Shrinker {
    fn fails(&mut self, items: &[Item<'_>], init: Init) -> bool {
        self.searches += 1;
        search(items, init, self.budget).verdict == Verdict::NotLinearizable
    }
}

fn cut<'a>(items: &[Item<'a>], t: u64) -> Vec<Item<'a>> {
    items
        .iter()
        .filter(|it| it.invoke <= t)
        .map(|it| Item { complete: it.complete.filter(|&c| c <= t), ..*it })
        .collect()
}

fn window<'a>(items: &[Item<'a>], s: u64) -> Vec<Item<'a>> {
    items
        .iter()
        .filter(|it| it.complete.is_none_or(|c| c >= s))
        .map(|it| if it.invoke < s { Item { complete: None, ..*it } } else { *it })
        .collect()
}

/// Shrinks `items`, a service history known to be non-linearizable from the empty registry.
/// `frontier`: the failed search's latest backtracking time, a likely smallest cut.
pub(crate) fn minimize(items: &[Item<'_>], frontier: u64, budget: u64) -> Minimized {
    let mut sh = Shrinker { budget, searches: 0 };
    let mut times: Vec<u64> = items.iter().filter_map(|it| it.complete).collect();
    times.sort_unstable();
    times.dedup();
    let Some(&last) = times.last() else {
        return Minimized { ops: items.iter().map(|it| it.id).collect(), init: Init::Empty, searches: 0 };
    };
    if !sh.fails(&cut(items, last), Init::Empty) {
        // Only possible when a sub-search ran out of budget: report the whole history.
        let mut ops: Vec<OpId> = items.iter().map(|it| it.id).collect();
        ops.sort_unstable();
        return Minimized { ops, init: Init::Empty, searches: sh.searches };
    }
    // Smallest failing cut (the last one is known to fail). Try the frontier first: usually
    // it fails and the time before it does not, which saves a binary search over long prefixes.
    let (mut lo, mut hi) = (0, times.len() - 1);
    let guess = times.partition_point(|&t| t < frontier).min(hi);
    if guess < hi && sh.fails(&cut(items, times[guess]), Init::Empty) {
        hi = guess;
    }
    if hi > 0 && hi == guess {
        lo = if sh.fails(&cut(items, times[hi - 1]), Init::Empty) { 0 } else { hi };
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if sh.fails(&cut(items, times[mid]), Init::Empty) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let prefix = cut(items, times[hi]);
    // Latest failing window: candidate 0 is the empty registry, k >= 1 starts at starts[k - 1].
    let mut starts: Vec<u64> = prefix.iter().map(|it| it.invoke).collect();
    starts.sort_unstable();
    let candidate = |k: usize| match k {
        0 => (prefix.clone(), Init::Empty),
        _ => (window(&prefix, starts[k - 1]), Init::Unknown),
    };
    // Gallop back from the end (small windows are cheap), then binary search.
    let (mut good, mut bad) = (0, starts.len() + 1);
    let mut step = 1;
    while step < bad {
        let k = bad - step;
        let (w, init) = candidate(k);
        if sh.fails(&w, init) {
            good = k;
            break;
        }
        bad = k;
        step *= 2;
    }
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        let (w, init) = candidate(mid);
        if sh.fails(&w, init) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    let (mut current, init) = candidate(good);
    // Relax: one pass suffices because relaxing only ever adds linearizations.
    for i in 0..current.len() {
        if current[i].complete.is_some() {
            let mut relaxed = current.clone();
            relaxed[i].complete = None;
            if sh.fails(&relaxed, init) {
                current = relaxed;
            }
        }
    }
    let is_list = |it: &Item<'_>| matches!(it.kind, Kind::List(_));
    let completed: Vec<Item<'_>> = current.iter().filter(|it| it.complete.is_some() || !is_list(it)).copied().collect();
    if sh.fails(&completed, init) {
        current = completed;
    }
    // Drop single lists to a fixpoint (a later drop can make an earlier list droppable).
    loop {
        let mut changed = false;
        for i in (0..current.len()).rev() {
            if !is_list(&current[i]) {
                continue;
            }
            let mut fewer = current.clone();
            fewer.remove(i);
            if sh.fails(&fewer, init) {
                current = fewer;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut ops: Vec<OpId> = current.iter().map(|it| it.id).collect();
    ops.sort_unstable();
    Minimized { ops, init, searches: sh.searches }
}
