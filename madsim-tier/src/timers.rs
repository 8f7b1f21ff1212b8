//! The actor timers of one node incarnation, for the drivers that run each node as a task
//! (madsim, `--real`): a heap by (deadline, id) with lazy cancellation. Kept in the task, so a
//! crash (which drops the task) drops them, as the core drops a crashed incarnation's timers.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use regsim::protocol::Node;
use regsim_kernel::{Actor, TimerId};

type Timer = <Node as Actor>::Timer;

/// Pending timers by deadline (ns of virtual time); cancelled ones are skipped when popped.
#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    live: BTreeMap<u32, Timer>,
}

impl Timers {
    pub fn insert(&mut self, at: u64, id: TimerId, timer: Timer) {
        self.heap.push(Reverse((at, id.0)));
        self.live.insert(id.0, timer);
    }
    pub fn cancel(&mut self, id: TimerId) {
        self.live.remove(&id.0);
    }
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(Reverse((at, id))) = self.heap.peek() {
            if self.live.contains_key(id) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }
    /// The next timer due at `now`, with its deadline.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, Timer)> {
        loop {
            let Reverse((at, id)) = *self.heap.peek()?;
            if at > now {
                return None;
            }
            self.heap.pop();
            if let Some(t) = self.live.remove(&id) {
                return Some((at, t));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regsim::protocol::Timer as T;
    use regsim::protocol::{nacos, registry};

    #[test]
    fn pops_in_deadline_order_and_skips_cancelled() {
        let mut t = Timers::default();
        t.insert(30, TimerId(0), T::Registry(registry::Timer::Beat));
        t.insert(10, TimerId(1), T::Nacos(nacos::Timer::HealthCheck));
        t.insert(20, TimerId(2), T::Nacos(nacos::Timer::Verify));
        t.cancel(TimerId(1));
        assert_eq!(t.next_deadline(), Some(20));
        assert_eq!(t.pop_due(15), None);
        assert_eq!(t.pop_due(40), Some((20, T::Nacos(nacos::Timer::Verify))));
        assert_eq!(t.pop_due(40), Some((30, T::Registry(registry::Timer::Beat))));
        assert_eq!((t.pop_due(u64::MAX), t.next_deadline()), (None, None));
    }
}

/// What one node task has pending for itself on the node hosts' terms: timers (checked for
/// cancellation and incarnation by `regsim_kernel::Hosts` when they fire) in (deadline, set
/// order). Kept in the task, so a crash drops them.
#[derive(Default)]
pub struct Wakes {
    due: BTreeMap<(u64, u64), regsim_kernel::Wake<regsim::protocol::Msg, Timer>>,
    seq: u64,
}

impl Wakes {
    pub fn insert(&mut self, at: u64, what: regsim_kernel::Wake<regsim::protocol::Msg, Timer>) {
        self.due.insert((at, self.seq), what);
        self.seq += 1;
    }
    pub fn next_deadline(&self) -> Option<u64> {
        self.due.first_key_value().map(|((at, _), _)| *at)
    }
    /// The next wake due at `now`, with its deadline.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, regsim_kernel::Wake<regsim::protocol::Msg, Timer>)> {
        let (&(at, _), _) = self.due.first_key_value()?;
        if at > now {
            return None;
        }
        self.due.pop_first().map(|((at, _), w)| (at, w))
    }
}
