//! A Raft node's stable storage: how long a write of term, vote and entries takes, and the
//! messages held until it is durable (see the folder's doc for what waits; the node decides).

use std::collections::VecDeque;

use super::Msg;
use regsim_kernel::net::{Latency, LatencySpec};
use regsim_kernel::{NodeId, SimDuration, SimRng, SimTime};

/// One write: the state as of `log_len`, and the messages held until it is durable.
#[derive(Debug)]
struct Write {
    seq: u32,
    /// Local time the fsync starts (after the previous one).
    start: SimTime,
    log_len: u32,
    out: Vec<(NodeId, Msg)>,
}

#[derive(Debug)]
pub struct Disk {
    /// None: every write is instant and nothing waits.
    latency: Option<Latency>,
    /// Writes in flight, oldest first; each is one fsync, done one after the other.
    writes: VecDeque<Write>,
    /// Local time the last write in flight ends.
    free: SimTime,
    seq: u32,
    /// How much of the log is durable.
    durable: u32,
}

impl Disk {
    /// `spec` was checked by `RaftConfig::validate`; a constant 0 means instant storage.
    pub fn new(spec: &LatencySpec) -> Self {
        let latency = spec.build().ok().filter(|l| !l.is_zero());
        Disk { latency, writes: VecDeque::new(), free: SimTime::ZERO, seq: 0, durable: 0 }
    }

    /// How much of a log of `log_len` entries is on stable storage.
    pub fn durable_len(&self, log_len: u32) -> u32 {
        if self.latency.is_some() { self.durable.min(log_len) } else { log_len }
    }

    /// The state changed (the log now holds `log_len` entries). Changes made before the write
    /// in flight starts join it (a group commit, as etcd's `Ready` batches them); otherwise a
    /// new write starts when the disk is free. Returns the timer to set for a new write: its
    /// delay and `Timer::Disk { seq }`.
    pub fn write(&mut self, now: SimTime, log_len: u32, rng: &mut SimRng) -> Option<(SimDuration, u32)> {
        let latency = self.latency.as_ref()?;
        if let Some(back) = self.writes.back_mut()
            && back.start >= now
        {
            back.log_len = log_len;
            return None;
        }
        let start = now.max(self.free);
        self.free = start + latency.sample(rng);
        self.seq = self.seq.wrapping_add(1);
        self.writes.push_back(Write { seq: self.seq, start, log_len, out: Vec::new() });
        Some((self.free.saturating_since(now), self.seq))
    }

    /// Holds `msg` behind the last write in flight; gives it back when nothing is in flight.
    pub fn hold(&mut self, to: NodeId, msg: Msg) -> Option<(NodeId, Msg)> {
        match self.writes.back_mut() {
            Some(w) => {
                w.out.push((to, msg));
                None
            }
            None => Some((to, msg)),
        }
    }

    /// Write `seq` and every earlier one are durable (a log of `log_len` entries now): hands
    /// their held messages to `send`; false if nothing completed (a timer from before a crash).
    pub fn complete(&mut self, seq: u32, log_len: u32, mut send: impl FnMut(NodeId, Msg)) -> bool {
        let mut any = false;
        while let Some(w) = self.writes.pop_front_if(|w| w.seq.wrapping_sub(seq) as i32 <= 0) {
            self.durable = self.durable.max(w.log_len).min(log_len);
            w.out.into_iter().for_each(|(to, msg)| send(to, msg));
            any = true;
        }
        any
    }

    /// The log was cut back to `len` entries: what followed is no longer durable.
    pub fn truncated(&mut self, len: u32) {
        self.durable = self.durable.min(len);
    }

    /// A crash: writes in flight are taken as done (their state survives) but their messages
    /// are lost, a safe simplification (a real crash may lose the state too, which Raft
    /// tolerates just as well).
    pub fn crash(&mut self, log_len: u32) {
        self.writes.clear();
        self.free = SimTime::ZERO;
        self.durable = log_len;
    }
}
