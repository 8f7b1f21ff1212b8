//! What one node task has pending for itself, for the drivers that run each node as a task
//! (madsim, `--real`): the node's timers as the kernel's `Wake`s in (deadline, set order).
//! Kept in the task, so a crash (which ends the task) drops them; `regsim_kernel::Hosts`
//! checks each one's incarnation and cancellation when it fires, as the core world does.

use std::collections::BTreeMap;

use regsim::protocol::{Msg, Node};
use regsim_kernel::{Actor, Wake};

type Timer = <Node as Actor>::Timer;

/// A node task's pending wakes by (deadline in ns of virtual time, set order).
#[derive(Default)]
pub struct Wakes {
    due: BTreeMap<(u64, u64), Wake<Msg, Timer>>,
    seq: u64,
}

impl Wakes {
    pub fn insert(&mut self, at: u64, what: Wake<Msg, Timer>) {
        self.due.insert((at, self.seq), what);
        self.seq += 1;
    }
    pub fn next_deadline(&self) -> Option<u64> {
        self.due.first_key_value().map(|((at, _), _)| *at)
    }
    /// The next wake due at `now`, with its deadline.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, Wake<Msg, Timer>)> {
        let (&(at, _), _) = self.due.first_key_value()?;
        if at > now {
            return None;
        }
        self.due.pop_first().map(|((at, _), w)| (at, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regsim::protocol::{nacos, registry};
    use regsim_kernel::TimerId;

    fn timer(id: u32, t: Timer) -> Wake<Msg, Timer> {
        Wake::Timer { incarnation: 0, id: TimerId(id), timer: t }
    }

    #[test]
    fn pops_in_deadline_order_then_set_order() {
        let mut w = Wakes::default();
        w.insert(30, timer(0, Timer::Registry(registry::Timer::Beat)));
        w.insert(20, timer(1, Timer::Nacos(nacos::Timer::HealthCheck)));
        w.insert(20, timer(2, Timer::Nacos(nacos::Timer::Verify)));
        assert_eq!(w.next_deadline(), Some(20));
        assert!(w.pop_due(15).is_none());
        let ids: Vec<(u64, u32)> = std::iter::from_fn(|| w.pop_due(40))
            .map(|(at, x)| match x {
                Wake::Timer { id, .. } => (at, id.0),
                _ => (at, u32::MAX),
            })
            .collect();
        assert_eq!(ids, vec![(20, 1), (20, 2), (30, 0)]);
        assert_eq!(w.next_deadline(), None);
    }
}
