//! The sans-IO actor interface.
//!
//! An actor reacts to `on_start`, `on_message` and `on_timer`, and acts only through its
//! [`Ctx`]: send a message, set or cancel a timer, draw from its own random stream, read its
//! local clock, and emit an observation. It never sees the queue, the network or other actors
//! (the raft-rs / quinn-proto shape), so the same actor can be driven by this crate's `World`,
//! by a test harness, or by another runtime. `Ctx` only records effects; the driver carries
//! them out after the handler returns.

use std::fmt::Debug;
use std::hash::Hash;

pub use super::id::{NodeId, TimerId};
pub use super::log::{Record, What};
use super::rng::SimRng;
use super::time::{SimDuration, SimTime};

/// A protocol participant. `crash` models losing the process: the actor drops all in-memory
/// state and keeps only what the real system persists (e.g. a Raft term and log).
pub trait Actor {
    type Msg: Clone + Debug + Hash;
    type Timer: Clone + Debug + Hash;
    type Obs: Clone + Debug;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Timer, Self::Obs>);
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Timer, Self::Obs>, from: NodeId, msg: Self::Msg);
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Timer, Self::Obs>, timer: Self::Timer);
    /// `msg`, sent to `to`, found no running process there (crashed or not started: the host
    /// answered with a refused connection). Default: ignore, as datagrams would.
    fn on_refused(&mut self, _ctx: &mut Ctx<'_, Self::Msg, Self::Timer, Self::Obs>, _to: NodeId, _msg: Self::Msg) {}
    fn crash(&mut self);
}

/// What an actor asked its driver to do.
#[derive(Clone, Debug)]
pub enum Effect<M, T> {
    Send {
        to: NodeId,
        msg: M,
    },
    /// `delay` is in the node's local time; the driver converts it to true time.
    SetTimer {
        id: TimerId,
        delay: SimDuration,
        timer: T,
    },
    CancelTimer(TimerId),
}

/// The actor's only window on the world during one handler call.
pub struct Ctx<'a, M, T, O> {
    node: NodeId,
    /// True time of the handler call (stamps observations; the actor never reads it).
    true_now: SimTime,
    local_now: SimTime,
    rng: &'a mut SimRng,
    next_timer: &'a mut u32,
    effects: &'a mut Vec<Effect<M, T>>,
    /// The driver's log: observations go straight into it, stamped (no per-call buffer).
    records: &'a mut Vec<Record<O>>,
}

impl<'a, M, T, O> Ctx<'a, M, T, O> {
    /// Drivers build one per handler call at true time `true_now` (the node's clock reads
    /// `local_now`). `next_timer` is the node's timer-id counter and must persist across calls
    /// (and crashes) so ids stay unique; observations are appended to `records`.
    #[inline]
    pub fn new(
        node: NodeId,
        (true_now, local_now): (SimTime, SimTime),
        rng: &'a mut SimRng,
        next_timer: &'a mut u32,
        effects: &'a mut Vec<Effect<M, T>>,
        records: &'a mut Vec<Record<O>>,
    ) -> Self {
        Ctx { node, true_now, local_now, rng, next_timer, effects, records }
    }

    /// This node's id.
    #[inline]
    pub fn me(&self) -> NodeId {
        self.node
    }

    /// The node's local clock (skewed and drifting if the scenario says so).
    #[inline]
    pub fn now(&self) -> SimTime {
        self.local_now
    }

    /// The node's own random stream.
    #[inline]
    pub fn rng(&mut self) -> &mut SimRng {
        self.rng
    }

    /// Sends `msg` (a protocol's own message type, nested into the node's by `Into`).
    #[inline]
    pub fn send(&mut self, to: NodeId, msg: impl Into<M>) {
        self.effects.push(Effect::Send { to, msg: msg.into() });
    }

    /// Fires `timer` after `delay` of local time.
    #[inline]
    pub fn set_timer(&mut self, delay: SimDuration, timer: impl Into<T>) -> TimerId {
        let id = TimerId(*self.next_timer);
        *self.next_timer = self.next_timer.wrapping_add(1);
        self.effects.push(Effect::SetTimer { id, delay, timer: timer.into() });
        id
    }

    #[inline]
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.effects.push(Effect::CancelTimer(id));
    }

    /// Records an observation; the driver stamps it with the true time and this node.
    #[inline]
    pub fn observe(&mut self, obs: O) {
        self.records.push(Record { time: self.true_now, node: self.node, what: What::Actor(obs) });
    }
}
