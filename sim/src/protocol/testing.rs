//! A tiny driver for protocol unit tests: calls one handler of one actor at a given local time
//! and returns what it asked for (effects) and what it reported (observations).

use super::{Msg, NodeCtx, Obs, Timer};
use regsim_kernel::{Ctx, Effect, NodeId, SimRng, SimTime, What, stream};

pub struct Harness {
    pub me: NodeId,
    rng: SimRng,
    next_timer: u32,
}

/// What one handler call produced.
#[derive(Default)]
pub struct Out {
    pub effects: Vec<Effect<Msg, Timer>>,
    pub obs: Vec<Obs>,
}

impl Out {
    pub fn sent(&self) -> Vec<(NodeId, Msg)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { to, msg } => Some((*to, msg.clone())),
                _ => None,
            })
            .collect()
    }
    pub fn timers(&self) -> Vec<(regsim_kernel::SimDuration, Timer)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::SetTimer { delay, timer, .. } => Some((*delay, timer.clone())),
                _ => None,
            })
            .collect()
    }
}

impl Harness {
    pub fn new(me: NodeId) -> Harness {
        Harness { me, rng: stream(1, "test"), next_timer: 0 }
    }

    /// Runs `f` with a context at local time `now_s` (seconds).
    pub fn at(&mut self, now_s: f64, f: impl FnOnce(&mut NodeCtx<'_>)) -> Out {
        let mut out = Out::default();
        let now = SimTime(regsim_kernel::SimDuration::from_secs_f64(now_s).as_nanos());
        let mut records = Vec::new();
        let mut ctx =
            Ctx::new(self.me, (now, now), &mut self.rng, &mut self.next_timer, &mut out.effects, &mut records);
        f(&mut ctx);
        out.obs = records
            .into_iter()
            .filter_map(|r| match r.what {
                What::Actor(o) => Some(o),
                What::Fault(_) => None,
            })
            .collect();
        out
    }
}

/// A node that answers nothing a registry or Raft server sends it (an Alertmanager that never
/// notifies): a silent client whose every reply a test reads in `Harness::sent`.
pub fn silent_node() -> super::Node {
    use super::monitoring::alertmanager::{Alertmanager, AlertmanagerConfig};
    let zero = regsim_kernel::SimDuration::ZERO;
    let quiet = AlertmanagerConfig {
        group_by: Vec::new(),
        group_wait: zero,
        group_interval: zero,
        repeat_interval: zero,
        send_resolved: false,
    };
    super::Node::Alertmanager(Box::new(Alertmanager::new(std::sync::Arc::new(quiet))))
}
