//! Convergence after the last disturbance (AP runs), the `converged_after_heal` invariant:
//! once the last disturbance is over (every partition healed, every server running, no clock
//! skewed; a disturbance is any fault record or an instance's first registration), every
//! running server's copy lists exactly the running instances as healthy, and every running
//! consumer's view lists exactly the running instances, within the bound of
//! [`SettleTiming::bound`]. Anti-entropy (Distro's checksum verify) is what guarantees this
//! for a copy that lost data without a failed sync. The samples it is judged on are taken by
//! the analyzer ([`super::analyzer::Settle`]).

use crate::check::Invariant;
use regsim_kernel::{SimDuration, SimTime};

/// What the `converged_after_heal` bound is derived from (AP runs).
#[derive(Clone, Debug)]
pub struct SettleTiming {
    pub servers: u32,
    pub report_interval: SimDuration,
    pub report_timeout: SimDuration,
    pub beat_interval: SimDuration,
    pub request_timeout: SimDuration,
    pub unhealthy_after: SimDuration,
    pub check_interval: SimDuration,
    pub sync_delay: SimDuration,
    pub sync_timeout: SimDuration,
    pub sync_retry: SimDuration,
    pub verify_interval: SimDuration,
    pub sample_interval: SimDuration,
    /// One-way latency bound (1 s when the distribution is unbounded).
    pub hop: SimDuration,
    /// Consumers' polling, when there are consumers (their views must converge too).
    pub views: Option<ViewTiming>,
    /// Whether a fault may restart a server (its first status report comes 60 s later).
    pub servers_restart: bool,
}

/// How consumers refresh their views (for the views phase of [`SettleTiming::bound`]).
#[derive(Clone, Copy, Debug)]
pub struct ViewTiming {
    pub poll_interval: SimDuration,
    pub backoff_max: SimDuration,
    pub query_timeout: SimDuration,
}

impl SettleTiming {
    /// Time from the last disturbance until every copy must be right, as four phases one after
    /// the other (each a worst case given the one before it is over):
    /// 1. **membership**: every server hears every other one again. Each reports to one peer in
    ///    turn every `report_interval` and an answered report marks the sender UP, so
    ///    `(servers - 1) * report_interval + report_timeout + 2 hops`; from then on all agree
    ///    on who is responsible for the service.
    /// 2. **instances**: a live instance's next beat goes out within `beat_interval +
    ///    request_timeout` (a beat in flight may time out first) and reaches the responsible
    ///    server in 2 hops (proxied); if it was deleted meanwhile, the "not found" answer makes
    ///    it register again (another round): `2 * (beat_interval + request_timeout + 4 hops)`.
    ///    In parallel, a dead or paused instance is marked unhealthy by the health check within
    ///    `unhealthy_after + check_interval + 1 hop`; the phase takes the larger of the two.
    /// 3. **replication**: the responsible server's copy reaches every other server: a sync
    ///    after `sync_delay`, a lost or refused one retried after `sync_timeout + sync_retry`;
    ///    a copy that missed no sync but lost its data (a restarted server) is repaired by the
    ///    next checksum verify, within `verify_interval` plus a pull and its answer:
    ///    `sync_delay + sync_timeout + sync_retry + verify_interval + 4 hops`.
    /// 4. **flags**: a health flag reaches the servers not responsible for the service only by
    ///    the responsible server's status report (`nacos::status`): the next one within
    ///    `REPORT_PERIOD` (5 s), then a checksum, a fetch and its answer (3 hops). A restarted
    ///    server reports first `FIRST_REPORT` (60 s) after its start, which is before the last
    ///    disturbance; so when servers may restart, the flags are right by
    ///    `max(phases 1-3, FIRST_REPORT) + REPORT_PERIOD + 3 hops`.
    /// 5. **views** (when there are consumers): once every copy is right, each consumer's next
    ///    poll gets the right list. The next poll is due at most `max(poll_interval,
    ///    backoff_max)` later (a consumer whose polls failed during the fault waits out its
    ///    backoff), a query still in flight may first bring an older list (it left before the
    ///    copies were right; its answer comes within `query_timeout`), and the answer takes
    ///    2 hops: `query_timeout + max(poll_interval, backoff_max) + 2 hops`. (Pushes only
    ///    speed this up.)
    /// 6. **sampling**: copies and views are compared every `sample_interval`.
    ///
    /// With Nacos defaults and 10 ms latency: 7 s + 20 s + 15 s + 5 s + 1 s ≈ 48 s without
    /// consumers (65 s + 1 s when servers restart), plus 3 s + 60 s for the views phase with
    /// them. On a lossy
    /// network no bound holds (beats and syncs can be lost again and again, and with enough
    /// instances some copy is wrong at every sample), so the invariant applies without loss only.
    pub fn bound(&self) -> SimDuration {
        let hops = |k: u64| self.hop.saturating_mul(k);
        let membership = self.report_interval.saturating_mul(u64::from(self.servers.saturating_sub(1)))
            + self.report_timeout
            + hops(2);
        let beats = (self.beat_interval + self.request_timeout + hops(4)).saturating_mul(2);
        let health = self.unhealthy_after + self.check_interval + hops(1);
        let replication = self.sync_delay + self.sync_timeout + self.sync_retry + self.verify_interval + hops(4);
        let views =
            self.views.map_or(SimDuration::ZERO, |v| v.query_timeout + v.poll_interval.max(v.backoff_max) + hops(2));
        let copies = membership + beats.max(health) + replication;
        let first = if self.servers_restart { crate::protocol::nacos::status::FIRST_REPORT } else { SimDuration::ZERO };
        let flags = copies.max(first) + crate::protocol::nacos::status::REPORT_PERIOD + hops(3);
        flags + views + self.sample_interval
    }
}

/// AP runs: after the last disturbance every copy converges within `bound`. `quiet` says why
/// the end of the run is not quiet (a partition still active, a server down), if it is not.
pub fn converged_after_heal(
    settle: &super::analyzer::Settle,
    quiet: Result<(), String>,
    bound: SimDuration,
    end: SimTime,
) -> Invariant {
    let name = "converged_after_heal";
    let na = |why: String| Invariant {
        not_applicable: true,
        name,
        holds: true,
        detail: format!("not applicable: {why}"),
        first_violation_s: None,
    };
    if let Err(why) = quiet {
        return na(why);
    }
    let from = settle.last_disturbance;
    let deadline = from + bound;
    match settle.converged_at {
        Some(c) if c <= deadline => Invariant {
            not_applicable: false,
            name,
            holds: true,
            detail: format!(
                "last disturbance at {:.3} s, every copy and view right {:.3} s later (bound {bound})",
                from.as_secs_f64(),
                (c - from).as_secs_f64()
            ),
            first_violation_s: None,
        },
        _ if deadline > end => na(format!(
            "the run ends {:.3} s after the last disturbance (at {:.3} s), before the bound of {bound}",
            (end - from).as_secs_f64(),
            from.as_secs_f64()
        )),
        c => Invariant {
            not_applicable: false,
            name,
            holds: false,
            detail: format!(
                "last disturbance at {:.3} s, copies and views {} (bound {bound})",
                from.as_secs_f64(),
                c.map_or("never converged".to_string(), |c| format!(
                    "converged only {:.3} s later",
                    (c - from).as_secs_f64()
                ))
            ),
            first_violation_s: Some(deadline.as_secs_f64()),
        },
    }
}
