//! The event queue: a priority queue ordered by `(time, sequence number)`.
//!
//! Payloads are stored inline with their `(time, seq)` key: buckets are drained in sequence,
//! so this reads memory in order (an earlier slab of payloads indexed from the keys cost a cache
//! miss per event on the 10,000-instance workload). Keep event types small. The
//! sequence number is assigned at push time and makes ties deterministic: two events at the
//! same instant pop in the order they were pushed (FIFO).
//!
//! The keys are kept in a calendar queue (a timing wheel, after Brown 1988 and Varghese &
//! Lauck 1987): `WHEEL` buckets of `2^BUCKET_SHIFT` ns (~1.05 ms; a horizon of ~8.6 s, enough for beat and check timers) with a
//! bitmap of occupied buckets; the current bucket is moved into `near`, a vector sorted in
//! reverse `(time, seq)` order that is popped from the back (an event pushed into the current
//! bucket is inserted at its place by binary search; that is rare, since latencies and timers
//! land in later buckets), and events beyond the horizon wait in
//! an overflow heap (`far`) until the wheel comes within reach. Pop order is identical to a
//! binary heap over `(time, seq)` (a test checks this against `BinaryHeap` on random loads).
//! Measured on the heartbeat workload the binary heap alone took over half of the run time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::time::SimTime;

/// The stored form of an event of type `E` in the wheel (for size checks).
pub type QueuedSize<E> = Option<Slot<E>>;

/// An event in a wheel bucket. No sequence number: a bucket holds its events in push order,
/// which is `seq` order (events migrated from `far` arrive in `(time, seq)` order before any
/// direct push into their bucket, which cannot happen until the wheel reaches it), so the
/// index in the bucket breaks time ties as `seq` does.
#[derive(Debug)]
pub struct Slot<E> {
    time: SimTime,
    event: E,
}

/// An event with its ordering key; ordered by `(time, seq)` only.
#[derive(Debug)]
pub struct Key<E> {
    time: SimTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Key<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.seq) == (o.time, o.seq)
    }
}
impl<E> Eq for Key<E> {}
impl<E> PartialOrd for Key<E> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Key<E> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(o.time, o.seq))
    }
}

const BUCKET_SHIFT: u32 = 20;
const WHEEL_BITS: u32 = 13;
const WHEEL: u64 = 1 << WHEEL_BITS;
const MASK: u64 = WHEEL - 1;

/// The ordering structure over keys (see the module doc).
#[derive(Debug)]
struct Calendar<E> {
    /// Slots are `Some` until popped; `Option` costs no space when `E` has a niche (an enum).
    buckets: Vec<Vec<Option<Slot<E>>>>,
    occupied: Vec<u64>,
    /// Absolute number of the current bucket (`time >> BUCKET_SHIFT`).
    cursor: u64,
    in_wheel: usize,
    /// The current bucket's events, in push order (popped ones are `None`).
    near: Vec<Option<Slot<E>>>,
    /// The events of `near` not yet popped as `time << 32 | index into near`, descending: the
    /// next event is last. Events enter `near` in push order, i.e. by `seq`, so the index
    /// orders ties as `seq` does, and one integer comparison orders `(time, seq)`. Sorting
    /// these instead of the events themselves (72 bytes each on the heartbeat workload, with
    /// a two-field comparison) took the sort (with building the keys) from ~14 % of the engine's time to ~12 %:
    /// ~8 events per 1 ms bucket on the heartbeat workload leave little to gain here.
    order: Vec<u128>,
    far: BinaryHeap<Reverse<Key<E>>>,
}

impl<E> Calendar<E> {
    fn new() -> Self {
        Calendar {
            buckets: (0..WHEEL).map(|_| Vec::new()).collect(),
            occupied: vec![0; (WHEEL / 64) as usize],
            cursor: 0,
            in_wheel: 0,
            near: Vec::new(),
            order: Vec::new(),
            far: BinaryHeap::new(),
        }
    }

    fn len(&self) -> usize {
        self.order.len() + self.in_wheel + self.far.len()
    }

    /// The `order` entry of event number `idx` of `near`, at `time`.
    fn order_key(time: SimTime, idx: usize) -> u128 {
        let idx = u32::try_from(idx).expect("calendar queue: over 2^32 events in one bucket");
        (u128::from(time.0) << 32) | u128::from(idx)
    }

    #[inline]
    fn push(&mut self, key: Key<E>) {
        let b = key.time.0 >> BUCKET_SHIFT;
        if b <= self.cursor {
            // Descending order: insert after every key greater than this one (all of them
            // were pushed earlier, so a later index breaks time ties the way `seq` does).
            let k = Self::order_key(key.time, self.near.len());
            let at = self.order.partition_point(|&o| o > k);
            self.near.push(Some(Slot { time: key.time, event: key.event }));
            self.order.insert(at, k);
        } else if b < self.cursor + WHEEL {
            let i = (b & MASK) as usize;
            self.buckets[i].push(Some(Slot { time: key.time, event: key.event }));
            self.occupied[i / 64] |= 1 << (i % 64);
            self.in_wheel += 1;
        } else {
            self.far.push(Reverse(key));
        }
    }

    #[inline]
    fn pop(&mut self) -> Option<Slot<E>> {
        loop {
            if let Some(o) = self.order.pop() {
                return self.near[o as u32 as usize].take();
            }
            if !self.advance() {
                return None;
            }
        }
    }

    fn peek_time(&mut self) -> Option<SimTime> {
        loop {
            if let Some(&o) = self.order.last() {
                return Some(SimTime((o >> 32) as u64));
            }
            if !self.advance() {
                return None;
            }
        }
    }

    /// Moves the cursor to the next occupied bucket and loads it into `near`.
    fn advance(&mut self) -> bool {
        if self.in_wheel == 0 {
            let Some(Reverse(k)) = self.far.peek() else {
                return false;
            };
            self.cursor = k.time.0 >> BUCKET_SHIFT;
            // Every event of `near` was popped; the migrated ones of this bucket land in it.
            self.near.clear();
            self.migrate();
            return true;
        }
        let next = self.next_occupied();
        self.cursor = next;
        let i = (next & MASK) as usize;
        self.occupied[i / 64] &= !(1 << (i % 64));
        self.in_wheel -= self.buckets[i].len();
        // Every event of `near` was popped: swap the bucket in (keeping both allocations) and
        // order it.
        self.near.clear();
        std::mem::swap(&mut self.near, &mut self.buckets[i]);
        self.order.clear();
        for (idx, slot) in self.near.iter().enumerate() {
            let time = slot.as_ref().expect("calendar queue: bucket slots are filled").time;
            self.order.push(Self::order_key(time, idx));
        }
        self.order.sort_unstable_by(|a, b| b.cmp(a));
        self.migrate();
        true
    }

    /// Absolute number of the first occupied bucket after the cursor (one exists).
    fn next_occupied(&self) -> u64 {
        let start = (self.cursor + 1) & MASK;
        let words = self.occupied.len();
        let first_word = (start / 64) as usize;
        let masked = self.occupied[first_word] & (!0u64 << (start % 64));
        let mut found = None;
        if masked != 0 {
            found = Some(first_word as u64 * 64 + u64::from(masked.trailing_zeros()));
        } else {
            for k in 1..=words {
                let w = (first_word + k) % words;
                if self.occupied[w] != 0 {
                    found = Some(w as u64 * 64 + u64::from(self.occupied[w].trailing_zeros()));
                    break;
                }
            }
        }
        let slot = found.expect("calendar queue: in_wheel > 0 but no occupied bucket");
        let offset = (slot + WHEEL - start) & MASK;
        self.cursor + 1 + offset
    }

    /// Moves overflow events that the wheel now reaches into it.
    fn migrate(&mut self) {
        while let Some(Reverse(k)) = self.far.peek() {
            if k.time.0 >> BUCKET_SHIFT >= self.cursor + WHEEL {
                break;
            }
            if let Some(Reverse(k)) = self.far.pop() {
                self.push(k);
            }
        }
    }
}

/// A deterministic min-queue of events of type `E`.
#[derive(Debug)]
pub struct EventQueue<E> {
    keys: Calendar<E>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue { keys: Calendar::new(), next_seq: 0 }
    }

    /// Schedules `event` at `time`; returns its sequence number (unique, increasing).
    #[inline]
    pub fn push(&mut self, time: SimTime, event: E) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.keys.push(Key { time, seq, event });
        seq
    }

    /// Removes and returns the earliest event (ties: lowest sequence number first).
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.keys.pop().map(|s| (s.time, s.event))
    }

    /// Time of the earliest event (may advance the calendar's cursor, hence `&mut`).
    pub fn peek_time(&mut self) -> Option<SimTime> {
        self.keys.peek_time()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.len() == 0
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

    /// The calendar must pop exactly like a binary heap over (time, seq), including events
    /// far beyond the wheel's horizon, ties, and pushes into the current bucket.
    #[test]
    fn same_order_as_a_binary_heap() {
        let mut state = 0x1234_5678_u64;
        let mut next = || {
            state = crate::engine::rng::mix64(state);
            state
        };
        let mut q = EventQueue::new();
        let mut reference = BinaryHeap::new();
        let mut now = 0u64;
        for round in 0..200_000u64 {
            let r = next();
            let delay = match r % 6 {
                0 => 0,
                1 => r % 1_000,           // same bucket
                2 => r % 10_000_000,      // a few buckets ahead
                3 => r % 5_000_000_000,   // seconds
                4 => r % 500_000_000_000, // beyond the horizon
                _ => (r % 3) * (1 << 20), // bucket edges
            };
            let seq = q.push(SimTime(now + delay), round);
            reference.push(Reverse((now + delay, seq, round)));
            if next() % 3 != 0 {
                let got = q.pop();
                let want = reference.pop().map(|Reverse((t, _, e))| (SimTime(t), e));
                assert_eq!(got, want, "round {round}");
                if let Some((t, _)) = got {
                    now = t.0;
                }
            }
        }
        while let Some(Reverse((t, _, e))) = reference.pop() {
            assert_eq!(q.pop(), Some((SimTime(t), e)));
        }
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn interleaving_keeps_order() {
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
        assert_eq!(q.len(), 200);
        assert_eq!(q.peek_time(), Some(SimTime(expected[0].0)));
    }
}
