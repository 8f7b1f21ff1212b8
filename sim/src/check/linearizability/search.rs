//! The per-service search: Wing & Gong's backtracking in Lowe's just-in-time formulation, with
//! Lowe's memoization of (linearized set, state). See the parent module for the model.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::{Init, Item, Kind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    BudgetExceeded,
}

/// The model state. `exact`: the set is known (`present`; `absent` unused and empty). Otherwise
/// the search started from an unknown set `I` and the state is `(I ∪ present) \ absent`; the
/// first list makes it exact.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    exact: bool,
    present: Vec<u32>,
    absent: Vec<u32>,
}

fn insert(v: &mut Vec<u32>, x: u32) {
    if let Err(i) = v.binary_search(&x) {
        v.insert(i, x);
    }
}

fn remove(v: &mut Vec<u32>, x: u32) {
    if let Ok(i) = v.binary_search(&x) {
        v.remove(i);
    }
}

impl State {
    fn new(init: Init) -> State {
        State { exact: init == Init::Empty, present: Vec::new(), absent: Vec::new() }
    }

    /// The state after `kind`, or `None` if the specification rejects it here.
    fn step(&self, kind: Kind<'_>) -> Option<State> {
        let mut next = self.clone();
        match kind {
            Kind::Register(x) => {
                insert(&mut next.present, x);
                remove(&mut next.absent, x);
            }
            Kind::Deregister(x) => {
                remove(&mut next.present, x);
                if !self.exact {
                    insert(&mut next.absent, x);
                }
            }
            Kind::List(result) if self.exact => return (self.present == result).then_some(next),
            Kind::List(result) => {
                let covers = self.present.iter().all(|x| result.binary_search(x).is_ok());
                let disjoint = self.absent.iter().all(|x| result.binary_search(x).is_err());
                if !(covers && disjoint) {
                    return None;
                }
                next = State { exact: true, present: result.to_vec(), absent: Vec::new() };
            }
        }
        Some(next)
    }

    fn fingerprint(&self) -> u64 {
        let mut h = mix(u64::from(self.exact));
        for &x in &self.present {
            h = mix(h ^ u64::from(x));
        }
        h = mix(h ^ 0x5bd1_e995);
        for &x in &self.absent {
            h = mix(h ^ u64::from(x));
        }
        h
    }
}

/// SplitMix64's finalizer: a fixed, platform-independent mixing function.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Keys are already hashes: pass them through (deterministic, no per-process random seed).
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// The linearized set: a bitset over the search's operations with an incremental Zobrist hash.
/// `lo`/`hi` bound the words that may be neither all ones (below `lo`) nor zero (from `hi`).
struct Linearized {
    words: Vec<u64>,
    hash: u64,
    lo: usize,
    hi: usize,
}

impl Linearized {
    fn new(n: usize) -> Linearized {
        Linearized { words: vec![0; n.div_ceil(64)], hash: 0, lo: 0, hi: 0 }
    }

    fn flip(&mut self, op: usize) {
        let w = op / 64;
        self.words[w] ^= 1 << (op % 64);
        self.hash ^= mix(op as u64);
        if self.words[w] >> (op % 64) & 1 == 1 {
            self.hi = self.hi.max(w + 1);
        } else {
            self.lo = self.lo.min(w);
        }
    }

    /// Appends the run-length encoding (lengths of alternating runs of zeros and ones, starting
    /// with zeros) and returns how many runs it has. Typical sets are "everything before a
    /// frontier plus a few", so this is a handful of runs.
    fn encode(&mut self, out: &mut Vec<u32>) -> u32 {
        while self.lo < self.hi && self.words[self.lo] == u64::MAX {
            self.lo += 1;
        }
        let start = out.len();
        let (mut bit, mut len) = (false, 0u32);
        if self.lo > 0 {
            out.push(0);
            (bit, len) = (true, 64 * self.lo as u32);
        }
        for &w in &self.words[self.lo..self.hi.max(self.lo)] {
            let mut pos = 0u32;
            while pos < 64 {
                let differ = if bit { !w >> pos } else { w >> pos };
                let same = if differ == 0 { 64 - pos } else { differ.trailing_zeros().min(64 - pos) };
                len += same;
                pos += same;
                if pos < 64 {
                    out.push(len);
                    (bit, len) = (!bit, 0);
                }
            }
        }
        let rest = 64 * (self.words.len() - self.hi.max(self.lo)) as u32;
        if rest > 0 && bit {
            out.push(len);
            len = 0;
        }
        out.push(len + rest);
        (out.len() - start) as u32
    }
}

/// Lowe's cache: configurations already explored, keyed by combined hash, each kept in full as
/// one slice (encoded set, then the state) so a collision is told apart by comparison. The maps
/// are only looked up, never iterated, and the pass-through hasher is unkeyed, so nothing here
/// depends on hash-map order (DESIGN.md's determinism rule).
#[derive(Default)]
struct Cache {
    slots: HashMap<u64, Box<[u32]>, BuildHasherDefault<PassThrough>>,
    /// Further configurations whose key is taken (hash collisions; rare).
    collisions: HashMap<u64, Vec<Box<[u32]>>, BuildHasherDefault<PassThrough>>,
    scratch: Vec<u32>,
}

impl Cache {
    /// Adds the configuration; false if it was already there.
    fn insert(&mut self, lin: &mut Linearized, state: &State) -> bool {
        let key = lin.hash ^ state.fingerprint().rotate_left(17);
        let buf = &mut self.scratch;
        buf.clear();
        lin.encode(buf);
        buf.push(u32::from(state.exact));
        buf.push(state.present.len() as u32);
        buf.extend_from_slice(&state.present);
        buf.extend_from_slice(&state.absent);
        match self.slots.get(&key) {
            None => {
                self.slots.insert(key, buf.as_slice().into());
            }
            Some(b) if **b == **buf => return false,
            Some(_) => {
                let more = self.collisions.entry(key).or_default();
                if more.iter().any(|b| **b == **buf) {
                    return false;
                }
                more.push(buf.as_slice().into());
            }
        }
        true
    }
}

/// The time-ordered list of invocations ("calls") and completions, doubly linked so an
/// operation can be lifted out and put back (dancing links; put back in reverse order).
struct Entries {
    /// Per entry: the operation, and the index of its completion for a call entry.
    op: Vec<usize>,
    ret: Vec<Option<usize>>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Sentinel index (== number of entries): the list is circular through it.
    head: usize,
}

impl Entries {
    fn new(items: &[Item<'_>]) -> Entries {
        // (time, 0 = call / 1 = completion, op): calls first at equal times, so ties are concurrent.
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * items.len());
        for (i, it) in items.iter().enumerate() {
            order.push((it.invoke, 0, i));
            order.push((it.complete.unwrap_or(u64::MAX), 1, i));
        }
        order.sort_unstable();
        let n = order.len();
        let mut call_at = vec![0; items.len()];
        let mut ret = vec![None; n];
        for (e, &(_, kind, op)) in order.iter().enumerate() {
            if kind == 0 {
                call_at[op] = e;
            } else {
                ret[call_at[op]] = Some(e);
            }
        }
        let next = (0..=n).map(|e| (e + 1) % (n + 1)).collect();
        let prev = (0..=n).map(|e| (e + n) % (n + 1)).collect();
        Entries { op: order.iter().map(|o| o.2).collect(), ret, next, prev, head: n }
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        self.prev[n] = e;
    }

    fn lift(&mut self, call: usize, ret: usize) {
        self.unlink(call);
        self.unlink(ret);
    }

    fn unlift(&mut self, call: usize, ret: usize) {
        self.relink(ret);
        self.relink(call);
    }
}

/// What one search found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Searched {
    pub verdict: Verdict,
    /// States explored (cache insertions).
    pub explored: u64,
    /// Latest completion time at which the search had to backtrack (0 if never): a failed
    /// search fails already on the history cut there, which the minimizer tries first.
    pub frontier: u64,
}

/// Searches `items` (one service) from `init`.
pub(crate) fn search(items: &[Item<'_>], init: Init, budget: u64) -> Searched {
    // A never-completed list constrains nothing: leave it out.
    let items: Vec<Item<'_>> =
        items.iter().filter(|it| it.complete.is_some() || !matches!(it.kind, Kind::List(_))).copied().collect();
    let mut entries = Entries::new(&items);
    let mut lin = Linearized::new(items.len());
    let mut cache = Cache::default();
    let mut state = State::new(init);
    let mut calls: Vec<(usize, usize, State)> = Vec::new();
    let mut explored = 0u64;
    let mut frontier = 0u64;
    let done = |verdict, explored, frontier| Searched { verdict, explored, frontier };
    let head = entries.head;
    let mut e = entries.next[head];
    while entries.next[head] != head {
        assert!(e != head, "the list always ends with a completion");
        let op = entries.op[e];
        let Some(ret) = entries.ret[e] else {
            // A completion whose operation is not linearized yet: undo the latest choice.
            frontier = frontier.max(items[op].complete.unwrap_or(u64::MAX));
            let Some((call, ret, previous)) = calls.pop() else {
                return done(Verdict::NotLinearizable, explored, frontier);
            };
            entries.unlift(call, ret);
            lin.flip(entries.op[call]);
            state = previous;
            e = entries.next[call];
            continue;
        };
        let Some(next_state) = state.step(items[op].kind) else {
            e = entries.next[e];
            continue;
        };
        lin.flip(op);
        if cache.insert(&mut lin, &next_state) {
            explored += 1;
            if explored > budget {
                return done(Verdict::BudgetExceeded, explored, frontier);
            }
            calls.push((e, ret, std::mem::replace(&mut state, next_state)));
            entries.lift(e, ret);
            e = entries.next[head];
        } else {
            lin.flip(op);
            e = entries.next[e];
        }
    }
    done(Verdict::Linearizable, explored, frontier)
}
