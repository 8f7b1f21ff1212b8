//! Shrinking a failing variant to a small scenario that fails the same way.
//!
//! Greedy, deterministic, one candidate run at a time; a candidate is kept when the same
//! invariant still fails (its *signature*; `event_limit` for a run that hit its limit).
//! Candidates that do not load (e.g. too few servers for a target) count as passing. Steps:
//! 1. try each fault alone, then each pair of faults (up to 24 faults): a failure that needs
//!    one or two of them is often masked by the others' timing;
//!    then remove faults one at a time, repeating until no single removal keeps the failure,
//!    then try every triple of what is left (at most 10 faults);
//! 2. drop loss and duplication;
//! 3. shorten the run: the safety phase to just after the last fault is undone, then halve the
//!    liveness phase while it still fails (down to 5 s);
//! 4. reduce node counts: the fewest servers, then instances, then consumers that still fail
//!    (fault targets are indices modulo the counts, so every candidate stays valid);
//! 5. remove faults once more (a smaller cluster may need fewer).
//!
//! At most [`MAX_ATTEMPTS`] candidate runs.

use super::{Base, Failure, Variant, fails_with};

/// Most candidate runs one shrink may spend.
pub const MAX_ATTEMPTS: u64 = 800;
/// Pairs of faults are tried when a plan has at most this many (at most 276 pairs).
pub const MAX_PAIRS_OF: usize = 24;

/// The result: the smallest failing variant found, and the scenario text to write.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub variant: Variant,
    pub signature: String,
    /// Candidate runs spent.
    pub attempts: u64,
}

struct Shrinker<'a> {
    base: &'a Base,
    signature: &'a str,
    attempts: u64,
}

impl Shrinker<'_> {
    fn fails(&mut self, v: &Variant) -> bool {
        if self.attempts >= MAX_ATTEMPTS {
            return false;
        }
        self.attempts += 1;
        let Ok(scenario) = self.base.scenario(v) else { return false };
        crate::run::run(&scenario, v.seed).is_ok_and(|out| fails_with(&out, self.signature))
    }

    /// Keeps `candidate` in `v` if it still fails.
    fn try_keep(&mut self, v: &mut Variant, candidate: Variant) -> bool {
        if candidate != *v && self.fails(&candidate) {
            *v = candidate;
            true
        } else {
            false
        }
    }

    /// Tries every single fault alone, then every pair (up to [`MAX_PAIRS_OF`] faults): a
    /// failure that needs one or two faults is often masked by the others' timing, so removing
    /// faults one at a time can get stuck above it.
    fn small_subsets(&mut self, v: &mut Variant) {
        let n = v.plan.faults.len();
        if n <= 1 {
            return;
        }
        let only = |keep: &[usize]| {
            let mut c = v.clone();
            c.plan.faults = keep.iter().map(|&i| v.plan.faults[i].clone()).collect();
            c
        };
        for i in 0..n {
            let c = only(&[i]);
            if self.fails(&c) {
                *v = c;
                return;
            }
        }
        if n > MAX_PAIRS_OF {
            return;
        }
        for i in 0..n {
            for j in i + 1..n {
                let c = only(&[i, j]);
                if self.fails(&c) {
                    *v = c;
                    return;
                }
            }
        }
    }

    /// Tries every triple of the (already shrunk) faults when there are at most 10 of them.
    fn triples(&mut self, v: &mut Variant) {
        let n = v.plan.faults.len();
        if !(4..=10).contains(&n) {
            return;
        }
        for i in 0..n {
            for j in i + 1..n {
                for k in j + 1..n {
                    let mut c = v.clone();
                    c.plan.faults = [i, j, k].iter().map(|&x| v.plan.faults[x].clone()).collect();
                    if self.fails(&c) {
                        *v = c;
                        return;
                    }
                }
            }
        }
    }

    fn remove_faults(&mut self, v: &mut Variant) {
        loop {
            let mut changed = false;
            let mut i = 0;
            while i < v.plan.faults.len() {
                let mut c = v.clone();
                c.plan.faults.remove(i);
                if self.try_keep(v, c) {
                    changed = true;
                } else {
                    i += 1;
                }
            }
            if !changed {
                return;
            }
        }
    }

    fn shorten(&mut self, v: &mut Variant) {
        let safety = (v.plan.end_ms() + 1_000).max(1_000);
        if safety < v.safety_ms {
            let c = Variant { safety_ms: safety, ..v.clone() };
            self.try_keep(v, c);
        }
        while v.liveness_ms / 2 >= 5_000 {
            let c = Variant { liveness_ms: v.liveness_ms / 2, ..v.clone() };
            if !self.try_keep(v, c) {
                break;
            }
        }
    }

    fn reduce_nodes(&mut self, v: &mut Variant) {
        for n in 1..v.sizes.servers {
            let mut c = v.clone();
            c.sizes.servers = n;
            if self.try_keep(v, c) {
                break;
            }
        }
        for which in [0, 1] {
            let current = if which == 0 { v.sizes.instances } else { v.sizes.consumers };
            let mut n = 0;
            while n < current {
                let mut c = v.clone();
                if which == 0 {
                    c.sizes.instances = n;
                } else {
                    c.sizes.consumers = n;
                }
                if self.try_keep(v, c) {
                    break;
                }
                n = if n == 0 { 1 } else { n * 2 };
            }
        }
    }
}

/// Shrinks `failure` (a variant of `base`) while the same invariant fails.
pub fn shrink(base: &Base, failure: &Failure) -> Shrunk {
    let mut s = Shrinker { base, signature: &failure.signature, attempts: 0 };
    let mut v = failure.variant.clone();
    s.small_subsets(&mut v);
    s.remove_faults(&mut v);
    s.triples(&mut v);
    s.remove_faults(&mut v);
    if v.plan.loss > 0.0 || v.plan.duplicate > 0.0 {
        let mut c = v.clone();
        c.plan.loss = 0.0;
        c.plan.duplicate = 0.0;
        s.try_keep(&mut v, c);
    }
    s.shorten(&mut v);
    s.reduce_nodes(&mut v);
    s.remove_faults(&mut v);
    Shrunk { variant: v, signature: failure.signature.clone(), attempts: s.attempts }
}
