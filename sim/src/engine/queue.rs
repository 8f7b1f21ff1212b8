//! The event queue: a priority queue ordered by `(time, sequence number)`.
//!
//! Payloads live in a slab (a `Vec` with a free list); the heap holds only 24-byte keys
//! `(time, seq, slot)`, so sifting moves little memory however large a message is. The
//! sequence number is assigned at push time and makes ties deterministic: two events at the
//! same instant pop in the order they were pushed (FIFO). The public surface is `push`, `pop`,
//! `len` and `peek_time`; a timing wheel or calendar queue can replace the heap behind it
//! without touching anything else.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::time::SimTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    time: SimTime,
    seq: u64,
    slot: u32,
}

/// A deterministic min-queue of events of type `E`.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<Key>>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new(), next_seq: 0 }
    }

    pub fn with_capacity(n: usize) -> Self {
        EventQueue { heap: BinaryHeap::with_capacity(n), slab: Vec::with_capacity(n), free: Vec::new(), next_seq: 0 }
    }

    /// Schedules `event` at `time`; returns its sequence number (unique, increasing).
    pub fn push(&mut self, time: SimTime, event: E) -> u64 {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                assert!(self.slab.len() < u32::MAX as usize, "event queue: more than 2^32 pending events");
                self.slab.push(Some(event));
                (self.slab.len() - 1) as u32
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Key { time, seq, slot }));
        seq
    }

    /// Removes and returns the earliest event (ties: lowest sequence number first).
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let Reverse(key) = self.heap.pop()?;
        let event = self.slab[key.slot as usize].take();
        self.free.push(key.slot);
        let event = event.unwrap_or_else(|| panic!("event queue: slot {} popped twice", key.slot));
        Some((key.time, event))
    }

    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse(k)| k.time)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order() {
        let mut q = EventQueue::new();
        for (t, e) in [(30, 'c'), (10, 'a'), (20, 'b'), (5, 'z')] {
            q.push(SimTime(t), e);
        }
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!['z', 'a', 'b', 'c']);
    }

    #[test]
    fn ties_pop_in_push_order() {
        let mut q = EventQueue::new();
        for i in 0..100 {
            q.push(SimTime(7), i);
        }
        q.push(SimTime(6), -1);
        assert_eq!(q.pop(), Some((SimTime(6), -1)));
        for i in 0..100 {
            assert_eq!(q.pop(), Some((SimTime(7), i)));
        }
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn slots_are_reused_and_interleaving_keeps_order() {
        let mut q = EventQueue::new();
        let mut expected = Vec::new();
        let mut got = Vec::new();
        // Push and pop interleaved: pop the minimum so far each third push.
        for i in 0u64..300 {
            let t = (i * 7919) % 101;
            q.push(SimTime(t), (t, i));
            expected.push((t, i));
            if i % 3 == 2 {
                got.push(q.pop().map(|(_, e)| e));
                expected.sort();
                let first = expected.remove(0);
                assert_eq!(got.last().copied().flatten(), Some(first));
            }
        }
        assert!(q.slab.len() <= 300 - 100 + 1, "slab grew to {} despite reuse", q.slab.len());
        assert_eq!(q.len(), 200);
        assert_eq!(q.peek_time(), Some(SimTime(expected[0].0)));
    }
}
