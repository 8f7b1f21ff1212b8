//! The TCP health check of persistent instances, after Nacos 1.4.6
//! (`naming/.../healthcheck/`: `HealthCheckTask`, `TcpSuperSenseProcessor`, `HealthCheckCommon`).
//!
//! - One task per service (per cluster in Nacos), created when the service first appears on a
//!   server (`Cluster.init` -> `HealthCheckReactor.scheduleCheck`). Every server runs it; a run
//!   checks only where the server is Distro-responsible for the service
//!   (`HealthCheckTask.run`: `distroMapper.responsible(serviceName)`), so the check moves with
//!   the membership view, not with the Raft leader, and works without a quorum.
//! - The first run comes `2 s + rand(0, rand(0, 5 s))` after creation (`initCheckRT`, 5 s being
//!   `TcpHealthParams.max`); each later one `norm` after the previous, where `norm` follows every
//!   result (`HealthCheckCommon.reEvaluateCheckRT`): `norm = 0.75 norm + 0.25 rt`, clamped to
//!   [1 s, 5 s] (`TcpHealthParams` min, max, factor). `rt` is the time from the task's last
//!   scheduling to the answer on success (`now - task.getStartTime()`: about one round trip, so
//!   the period shrinks towards 1 s), 5 s on a refused connect and `2 norm` on a timeout; an
//!   instance still being checked when the next run comes counts `2 norm` too
//!   (`markChecking` failing in `TcpSuperSenseProcessor.process`).
//! - A run connects to every instance of the service (`channel.connect`, a new connection each
//!   time: `TCP_KEEP_ALIVE_MILLIS` is 0) with a 500 ms timeout (`CONNECT_TIMEOUT_MS`,
//!   `TimeOutTask`). A connection made is `checkOK`: an unhealthy instance becomes healthy at
//!   the 3rd consecutive success (`switchDomain.checkTimes`), and the fail count resets. A
//!   timeout is `checkFail`: a healthy instance becomes unhealthy at the 3rd consecutive one,
//!   and the ok count resets. A refused connect (`ConnectException`: the host is up, nothing
//!   listens) is `checkFailNow`: unhealthy at once.
//! - The flag is set on this server only (`ip.setHealthy`, then `pushService.serviceChanged`),
//!   not through Raft; the other servers learn it from the status reports (`nacos::status`).
//!
//! Approximations: the connect is a probe message the instance's process answers, on the
//! `health` channel's kept stream, so a dead process refuses it after one round trip (as a
//! fresh connect's RST would) and an unreachable host times out at 500 ms (a fresh connect's
//! first SYN retransmission would come only at 1 s); a paused (GC-stalled) instance fails the
//! check, where a real kernel would complete the handshake for it. `rt` and `norm` are kept in
//! nanoseconds (Nacos: whole milliseconds, float factor).

use std::collections::BTreeMap;

use rand::RngExt;

use crate::protocol::nacos::table::Table;
use crate::protocol::{NodeCtx, Obs, ServiceId, cp};
use regsim_kernel::{NodeId, SimDuration, SimTime};

/// The check's numbers (Nacos defaults; not scenario settings yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// `TcpSuperSenseProcessor.CONNECT_TIMEOUT_MS`.
    pub connect_timeout: SimDuration,
    /// `SwitchDomain.checkTimes`: consecutive results that flip a flag (not a refused connect).
    pub check_times: u32,
    /// The first run: `first + rand(0, rand(0, rt_max))`.
    pub first: SimDuration,
    /// `TcpHealthParams.min` and `max`: the bounds of the period.
    pub rt_min: SimDuration,
    pub rt_max: SimDuration,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            connect_timeout: SimDuration::from_millis(500),
            check_times: 3,
            first: SimDuration::from_secs(2),
            rt_min: SimDuration::from_secs(1),
            rt_max: SimDuration::from_secs(5),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Task {
    /// `checkRtNormalized`: the period.
    norm: SimDuration,
    /// `startTime`: when the task was last scheduled.
    scheduled: SimTime,
}

/// One instance's check state (`Instance` failCount, okCount, beingChecked).
#[derive(Clone, Copy, Debug)]
struct Probe {
    service: ServiceId,
    fails: u32,
    oks: u32,
    /// The connect in flight.
    pending: Option<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct Checks {
    tasks: BTreeMap<ServiceId, Task>,
    probes: BTreeMap<NodeId, Probe>,
    seq: u32,
}

/// What a connect came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    Refused,
    TimedOut,
}

impl Checks {
    pub fn clear(&mut self) {
        *self = Checks { seq: self.seq, ..Checks::default() };
    }

    /// A service appeared on this server: its task's first run.
    pub fn add_service(&mut self, ctx: &mut NodeCtx<'_>, config: &CheckConfig, service: ServiceId) {
        if self.tasks.contains_key(&service) {
            return;
        }
        let max = config.rt_max.as_nanos();
        let inner = if max == 0 { 0 } else { ctx.rng().random_range(0..max) };
        let extra = if inner == 0 { 0 } else { ctx.rng().random_range(0..inner) };
        let norm = config.first + SimDuration(extra);
        self.tasks.insert(service, Task { norm, scheduled: ctx.now() });
        ctx.set_timer(norm, cp::Timer::Check { service });
    }

    /// `HealthCheckTask.run`: connect to every instance if `responsible`, then schedule the next run.
    pub fn run(
        &mut self,
        ctx: &mut NodeCtx<'_>,
        config: &CheckConfig,
        service: ServiceId,
        table: &Table,
        responsible: bool,
    ) {
        let Some(mut task) = self.tasks.get(&service).copied() else { return };
        if responsible {
            for r in table.entries() {
                let p = self.probes.entry(r.instance).or_insert(Probe { service, fails: 0, oks: 0, pending: None });
                if p.pending.is_some() {
                    task.norm = re_evaluate(config, task.norm, task.norm.saturating_mul(2));
                    continue;
                }
                self.seq = self.seq.wrapping_add(1);
                p.pending = Some(self.seq);
                ctx.send(r.instance, cp::Msg::Probe { round: self.seq });
                ctx.set_timer(
                    config.connect_timeout,
                    cp::Timer::ProbeTimeout { instance: r.instance, round: self.seq },
                );
            }
        }
        task.scheduled = ctx.now();
        self.tasks.insert(service, task);
        ctx.set_timer(task.norm, cp::Timer::Check { service });
    }

    /// The service of the connect `round` to `instance`, if it is the one in flight.
    pub fn pending(&self, instance: NodeId, round: u32) -> Option<ServiceId> {
        self.probes.get(&instance).filter(|p| p.pending == Some(round)).map(|p| p.service)
    }

    /// A connect's outcome (`Beat.finishCheck`): the instance's counts and flag in `table`
    /// (flipped only where this server is `responsible`), then the task's period.
    pub fn finish(
        &mut self,
        ctx: &mut NodeCtx<'_>,
        config: &CheckConfig,
        instance: NodeId,
        outcome: Outcome,
        table: &mut Table,
        responsible: bool,
    ) {
        let Some(p) = self.probes.get_mut(&instance) else { return };
        p.pending = None;
        let healthy = table.get(instance).map(|r| r.healthy);
        let flip = match outcome {
            // `checkOK`
            Outcome::Connected => {
                p.fails = 0;
                if healthy == Some(false) {
                    p.oks += 1;
                    (p.oks >= config.check_times).then_some(true)
                } else {
                    None
                }
            }
            // `checkFail`
            Outcome::TimedOut => {
                p.oks = 0;
                if healthy == Some(true) {
                    p.fails += 1;
                    (p.fails >= config.check_times).then_some(false)
                } else {
                    None
                }
            }
            // `checkFailNow`
            Outcome::Refused => {
                p.oks = 0;
                (healthy == Some(true)).then_some(false)
            }
        };
        if let Some(h) = flip.filter(|_| responsible) {
            table.set_healthy(ctx, instance, h);
            ctx.observe(if h { Obs::MarkedHealthy { instance } } else { Obs::MarkedUnhealthy { instance } });
        }
        let Some(task) = self.tasks.get_mut(&p.service) else { return };
        let rt = match outcome {
            Outcome::Connected => ctx.now().saturating_since(task.scheduled),
            Outcome::Refused => config.rt_max,
            Outcome::TimedOut => task.norm.saturating_mul(2),
        };
        task.norm = re_evaluate(config, task.norm, rt);
    }
}

/// `HealthCheckCommon.reEvaluateCheckRT`: `0.75 norm + 0.25 rt`, clamped to [min, max].
fn re_evaluate(config: &CheckConfig, norm: SimDuration, rt: SimDuration) -> SimDuration {
    let mixed = (u128::from(norm.as_nanos()) * 3 + u128::from(rt.as_nanos())) / 4;
    let mixed = SimDuration(u64::try_from(mixed).unwrap_or(u64::MAX));
    mixed.clamp(config.rt_min, config.rt_max.max(config.rt_min))
}
