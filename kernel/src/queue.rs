//! The event queue: a priority queue ordered by `(time, sequence number)`.
//!
//! Payloads are stored inline with their `(time, seq)` key: buckets are drained in sequence,
//! so this reads memory in order (an earlier slab of payloads indexed from the keys cost a cache
//! miss per event on the 10,000-instance workload). Keep event types small. The
//! sequence number is assigned at push time and makes ties deterministic: two events at the
//! same instant pop in the order they were pushed (FIFO).
//!
//! The events are kept in a hierarchical timing wheel (Varghese & Lauck 1987; a calendar
//! queue, Brown 1988): buckets of `2^BUCKET_SHIFT` ns (~1.05 ms); level 1 holds the 256
//! buckets of the current block (~268 ms), level 2 the 256 blocks of the current superblock
//! (~68.7 s), each with a bitmap of occupied slots, and later events wait in an overflow heap
//! (`far`). When the cursor enters a block, its level-2 vector is spread over level 1; when
//! level 2 runs dry, the earliest superblock of `far` is spread over both. The current bucket
//! is moved into `near` and ordered by `(time, seq)` (an event pushed into the current bucket
//! is inserted at its place by binary search; that is rare, since latencies and timers land in
//! later buckets). Pop order is identical to a binary heap over `(time, seq)` (a test checks
//! this against `BinaryHeap` on random loads, across bucket, block and superblock edges).
//!
//! Measured on the heartbeat workload, a binary heap alone took over half of the run time; a
//! flat wheel of 8,192 buckets (8.6 s) spent most of its push time on cache misses, since a
//! 5 s timer lands in a bucket last touched a wheel turn ago. Level 2 turns those into
//! appends to a few hot vectors, and a block's buckets (~100 KB) stay in cache.

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
/// Buckets per block (level 1) and blocks per superblock (level 2): 2^8 each.
const LEVEL_BITS: u32 = 8;
const SLOTS: usize = 1 << LEVEL_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
const WORDS: usize = SLOTS / 64;

/// A 256-bit occupancy map.
#[derive(Debug, Default)]
struct Bitmap([u64; WORDS]);

impl Bitmap {
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    /// The first set bit at or after `from`.
    fn next(&self, from: usize) -> Option<usize> {
        let mut w = from / 64;
        if w >= WORDS {
            return None;
        }
        let mut bits = self.0[w] & (!0u64 << (from % 64));
        loop {
            if bits != 0 {
                return Some(w * 64 + bits.trailing_zeros() as usize);
            }
            w += 1;
            if w == WORDS {
                return None;
            }
            bits = self.0[w];
        }
    }
}

/// The ordering structure over keys (see the module doc).
#[derive(Debug)]
struct Calendar<E> {
    /// Absolute number of the current bucket (`time >> BUCKET_SHIFT`).
    cursor: u64,
    /// Level 1: the buckets of the current block after the cursor. Slots are `Some` until
    /// popped; `Option` costs no space when `E` has a niche (an enum).
    l1: Vec<Vec<Option<Slot<E>>>>,
    l1_occupied: Bitmap,
    in_l1: usize,
    /// Level 2: the later blocks of the current superblock, each in push order.
    l2: Vec<Vec<Slot<E>>>,
    l2_occupied: Bitmap,
    in_l2: usize,
    /// The current bucket's events, in push order (popped ones are `None`).
    near: Vec<Option<Slot<E>>>,
    /// The events of `near` not yet popped as `time << 32 | index into near`, descending: the
    /// next event is last. Events enter `near` in push order, i.e. by `seq`, so the index
    /// orders ties as `seq` does, and one integer comparison orders `(time, seq)` (cheaper to
    /// sort than the events themselves).
    order: Vec<u128>,
    /// Later superblocks.
    far: BinaryHeap<Reverse<Key<E>>>,
}

impl<E> Calendar<E> {
    fn new() -> Self {
        Calendar {
            cursor: 0,
            l1: (0..SLOTS).map(|_| Vec::new()).collect(),
            l1_occupied: Bitmap::default(),
            in_l1: 0,
            l2: (0..SLOTS).map(|_| Vec::new()).collect(),
            l2_occupied: Bitmap::default(),
            in_l2: 0,
            near: Vec::new(),
            order: Vec::new(),
            far: BinaryHeap::new(),
        }
    }

    fn len(&self) -> usize {
        self.order.len() + self.in_l1 + self.in_l2 + self.far.len()
    }

    /// The `order` entry of event number `idx` of `near`, at `time`.
    fn order_key(time: SimTime, idx: usize) -> u128 {
        let idx = u32::try_from(idx).expect("calendar queue: over 2^32 events in one bucket");
        (u128::from(time.0) << 32) | u128::from(idx)
    }

    // `push` and `place` are inlined into their callers on purpose: out of line, the caller
    // wrote the event field by field into a stack temporary and `place` copied it out in
    // 16-byte loads, which cannot be store-forwarded from narrower stores; the stalls were a
    // sixth of the heartbeat run. Inlined, the event goes straight into its bucket.
    #[inline(always)]
    fn push(&mut self, time: SimTime, seq: u64, event: E) {
        let b = time.0 >> BUCKET_SHIFT;
        if b >> (2 * LEVEL_BITS) != self.cursor >> (2 * LEVEL_BITS) && b > self.cursor {
            self.far.push(Reverse(Key { time, seq, event }));
        } else {
            self.place(Slot { time, event });
        }
    }

    /// Puts an event of the current superblock (or earlier) where it belongs.
    #[inline(always)]
    fn place(&mut self, slot: Slot<E>) {
        let b = slot.time.0 >> BUCKET_SHIFT;
        if b <= self.cursor {
            self.place_near(slot);
        } else if b >> LEVEL_BITS == self.cursor >> LEVEL_BITS {
            let i = (b & SLOT_MASK) as usize;
            self.l1[i].push(Some(slot));
            self.l1_occupied.set(i);
            self.in_l1 += 1;
        } else {
            let i = ((b >> LEVEL_BITS) & SLOT_MASK) as usize;
            self.l2[i].push(slot);
            self.l2_occupied.set(i);
            self.in_l2 += 1;
        }
    }

    /// An event for the current bucket (rare: latencies and timers land in later buckets).
    /// Descending order: insert after every key greater than this one (all of them were placed
    /// earlier, so a later index breaks time ties the way `seq` does).
    #[inline(never)]
    fn place_near(&mut self, slot: Slot<E>) {
        let k = Self::order_key(slot.time, self.near.len());
        let at = self.order.partition_point(|&o| o > k);
        self.near.push(Some(slot));
        self.order.insert(at, k);
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

    /// The event that `pop` returns next if it is in the current bucket (no cursor move).
    #[inline]
    fn peek_loaded(&self) -> Option<&E> {
        let o = *self.order.last()?;
        self.near[o as u32 as usize].as_ref().map(|s| &s.event)
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

    /// Moves the cursor to the next occupied bucket and loads it into `near` (which has been
    /// popped empty): from level 1 if the current block has more; else the next occupied block
    /// of level 2 is spread over level 1 (in push order, so each bucket stays in `seq` order:
    /// a block is spread when the cursor enters it, before any event can be pushed into its
    /// buckets directly); else the earliest superblock of `far` is spread over both levels
    /// (in `(time, seq)` order, likewise before any direct push). Returns false when empty.
    fn advance(&mut self) -> bool {
        self.near.clear();
        loop {
            if self.in_l1 > 0 {
                let from = ((self.cursor & SLOT_MASK) + 1) as usize;
                let i = self.l1_occupied.next(from).expect("calendar queue: in_l1 > 0 but no later bucket");
                self.l1_occupied.clear(i);
                self.cursor = (self.cursor & !SLOT_MASK) | i as u64;
                self.in_l1 -= self.l1[i].len();
                std::mem::swap(&mut self.near, &mut self.l1[i]);
                self.order.clear();
                // Keys are listed last event first: push order is nearly time order (a run of
                // equal-delay timers is pushed in time order), so the list is nearly descending
                // already and the sort, an insertion sort at these sizes, does little work and
                // mispredicts few branches. (Listed first event first, the sort saw nearly
                // reversed input: 8 % of the heartbeat run went to its mispredictions.)
                for (idx, slot) in self.near.iter().enumerate().rev() {
                    let time = slot.as_ref().expect("calendar queue: bucket slots are filled").time;
                    self.order.push(Self::order_key(time, idx));
                }
                self.order.sort_unstable_by(|a, b| b.cmp(a));
                return true;
            }
            if self.in_l2 > 0 {
                let block = self.cursor >> LEVEL_BITS;
                let from = ((block & SLOT_MASK) + 1) as usize;
                let j = self.l2_occupied.next(from).expect("calendar queue: in_l2 > 0 but no later block");
                self.l2_occupied.clear(j);
                self.cursor = ((block & !SLOT_MASK) | j as u64) << LEVEL_BITS;
                let mut spread = std::mem::take(&mut self.l2[j]);
                self.in_l2 -= spread.len();
                for slot in spread.drain(..) {
                    self.place(slot);
                }
                self.l2[j] = spread;
            } else if let Some(Reverse(k)) = self.far.peek() {
                let superblock = k.time.0 >> (BUCKET_SHIFT + 2 * LEVEL_BITS);
                self.cursor = k.time.0 >> BUCKET_SHIFT;
                while let Some(Reverse(k)) = self.far.peek() {
                    if k.time.0 >> (BUCKET_SHIFT + 2 * LEVEL_BITS) != superblock {
                        break;
                    }
                    if let Some(Reverse(k)) = self.far.pop() {
                        self.place(Slot { time: k.time, event: k.event });
                    }
                }
            } else {
                return false;
            }
            if !self.order.is_empty() {
                return true;
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
    #[inline(always)]
    pub fn push(&mut self, time: SimTime, event: E) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.keys.push(time, seq, event);
        seq
    }

    /// Removes and returns the earliest event (ties: lowest sequence number first).
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.keys.pop().map(|s| (s.time, s.event))
    }

    /// The next event if it is already loaded in the current bucket (it usually is), without
    /// moving the cursor: for prefetching what that event will touch.
    #[inline]
    pub fn peek_loaded(&self) -> Option<&E> {
        self.keys.peek_loaded()
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
            state = crate::rng::mix64(state);
            state
        };
        let mut q = EventQueue::new();
        let mut reference = BinaryHeap::new();
        let mut now = 0u64;
        for round in 0..200_000u64 {
            let r = next();
            let delay = match r % 8 {
                0 => 0,
                1 => r % 1_000,           // same bucket
                2 => r % 10_000_000,      // a few buckets ahead
                3 => r % 5_000_000_000,   // seconds: later blocks
                4 => r % 500_000_000_000, // later superblocks
                5 => (r % 3) * (1 << 28), // block edges
                6 => (r % 3) * (1 << 36), // superblock edges
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
