//! `--real`: the same actors on tokio with real UDP sockets on 127.0.0.1, on scaled wall time.
//!
//! This module holds what both builds share (limits, what real mode rejects, the tolerance it
//! reports with); the driver itself ([`driver`]) exists only in the plain build (without
//! `--cfg madsim`, where tokio is the real tokio).
//!
//! **Time.** Every virtual duration is multiplied by the time scale `F` (`--time-scale`, in
//! `[MIN_TIME_SCALE, 1]`): a timer of `d` virtual seconds sleeps `d·F` real seconds, and
//! observations are stamped `(Instant::now() − start) / F` in virtual nanoseconds, so reports
//! read in the scenario's own seconds. One virtual hour at `F = 0.05` takes three minutes.
//!
//! **Network.** One UDP socket per node on 127.0.0.1 (ephemeral ports); each message is one
//! datagram ([`crate::codec`]). Latency, loss, duplication, per-role links and partitions are
//! the core's own `regsim_kernel::net::Network`, applied at the sender exactly as the core engine does
//! (a dropped message is never sent; a partition cuts at send time). Latency is emulated by
//! holding the datagram for the drawn latency × `F` — when that is at least tokio's timer
//! resolution ([`TIMER_RESOLUTION`], 1 ms). Shorter holds are not emulated: the datagram goes
//! out at once and takes loopback's own latency (tens of µs) plus scheduling. Holding it would
//! make it *less* faithful: a sleep rounds up to the next 1 ms tick, i.e. ≥ 1 ms / F = 20 ms of
//! virtual time at F = 1/20, against the [1, 10] ms the heartbeat scenario asks for, while
//! loopback gives about 1 ms of virtual time. A refused connection (no process at the
//! destination: crashed or not started) is emulated by the driver, as the core and the madsim
//! tier do: kernels report nothing to an unconnected UDP sender.
//!
//! **Faults.** Crash aborts the node's task (its timers, its socket and the actor's memory
//! state go: `Actor::crash`); restart runs a new task, which binds a socket (the old port if
//! it is free) and calls `on_start`. Pause stops the node's loop (datagrams wait in the socket
//! buffer, timers come due) until resume. Partitions, loss and duplication: see Network.
//! Clock skew and role targets (`leader`, `follower[random]`) are the kernel's own (`Hosts`),
//! as in the core. Rejected (exit 2, file:line:col and key path): more than [`MAX_NODES`]
//! nodes, a scaled duration over [`MAX_WALL`].
//!
//! **Tolerance.** A timer or datagram is late by up to one timer tick plus scheduling delay on
//! a loaded machine; [`SCHEDULING_SLACK`] (50 ms real) bounds that, i.e. `50 ms / F` of
//! virtual time (1 s at F = 1/20). The report's invariants take it as extra one-way latency
//! ([`collector_view`]); the integration test widens the protocol's detection window by it.
//!
//! **Not deterministic.** Real scheduling decides the order of events, so two runs with the same
//! seed differ; the report's `digest` says so instead of hashing anything.

use std::time::Duration;

use regsim::scenario::Scenario;
use regsim_kernel::SimDuration;
use regsim_kernel::net::LatencySpec;

#[cfg(not(madsim))]
pub mod driver;

use crate::support::Rejection;

/// At most this many nodes (one UDP socket and one task each).
pub const MAX_NODES: u64 = 500;
/// Smallest time scale: 1 ms of real time is 1 s of virtual time.
pub const MIN_TIME_SCALE: f64 = 0.001;
/// Largest scaled duration (wall time of one run).
pub const MAX_WALL: Duration = Duration::from_secs(30 * 60);
/// tokio's timer resolution: shorter holds are not emulated (see the module doc).
pub const TIMER_RESOLUTION: Duration = Duration::from_millis(1);
/// How late (real time) a timer or a datagram may be on a loaded machine: one timer tick plus
/// scheduling delay. The tolerance of real mode, scaled by `1 / F`.
pub const SCHEDULING_SLACK: Duration = Duration::from_millis(50);

/// The `digest` of a real-mode report: there is no event hash to give.
pub const DIGEST: &str = "none: --real runs on real sockets and real time, not deterministic";

/// The hard wall-clock limit of a run: the scaled duration plus a quarter, at least 10 s more.
pub fn wall_limit(s: &Scenario, time_scale: f64) -> Duration {
    let scaled = scaled(s.duration, time_scale);
    scaled + (scaled / 4).max(Duration::from_secs(10))
}

/// `d` of virtual time as real time at scale `f`.
pub fn scaled(d: SimDuration, f: f64) -> Duration {
    Duration::from_secs_f64(d.as_secs_f64() * f)
}

/// [`SCHEDULING_SLACK`] as virtual time at scale `f`.
pub fn slack_virtual(f: f64) -> SimDuration {
    SimDuration::from_secs_f64(SCHEDULING_SLACK.as_secs_f64() / f)
}

/// Checks the `--time-scale` value (an argument error, not located in the file).
pub fn check_time_scale(f: f64) -> Result<(), String> {
    if f.is_finite() && (MIN_TIME_SCALE..=1.0).contains(&f) {
        Ok(())
    } else {
        Err(format!(
            "--time-scale: expected a number in [{MIN_TIME_SCALE}, 1] (e.g. 0.05 runs 20 times faster than real time), got {f}"
        ))
    }
}

/// Rejects what `--real` cannot express (see the module doc), with the key path.
pub fn check(s: &Scenario, time_scale: f64) -> Result<(), Rejection> {
    let reject = |path: &str, msg: String| Err((path.to_string(), format!("not supported by --real: {msg}")));
    let nodes = u64::from(regsim::scenario::roles::topology(s).node_count());
    if nodes > MAX_NODES {
        let key = [
            ("instances.count", s.instances.count),
            ("consumers.count", s.consumers.count),
            ("registry.servers", s.registry.servers),
        ]
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or("instances.count", |(k, _)| k);
        return reject(
            key,
            format!(
                "{nodes} nodes ({} servers, {} instances, {} consumers), more than the {MAX_NODES} it runs (one UDP \
                 socket and one task per node)",
                s.registry.servers, s.instances.count, s.consumers.count
            ),
        );
    }
    let wall = scaled(s.duration, time_scale);
    if wall > MAX_WALL {
        return reject(
            "duration",
            format!(
                "{} at --time-scale {time_scale} takes {:.0} s of wall time, more than the {} s limit",
                s.duration,
                wall.as_secs_f64(),
                MAX_WALL.as_secs()
            ),
        );
    }
    Ok(())
}

/// Approximations the run will make (printed on stderr before it starts).
pub fn notes(s: &Scenario, time_scale: f64) -> Vec<String> {
    let mut out = Vec::new();
    let floor = SimDuration::from_secs_f64(TIMER_RESOLUTION.as_secs_f64() / time_scale);
    let max = regsim::run::latency_bound(s);
    if max.is_none_or(|m| m > SimDuration::ZERO) {
        out.push(format!(
            "network latency: draws below {floor} (tokio's 1 ms timer tick / time scale) are not emulated: such \
             datagrams go out at once over loopback; longer ones are held for latency x time scale"
        ));
    }
    out.push(format!(
        "tolerance: timers and datagrams may be late by up to {} real = {} of virtual time; the report's \
         invariants count it as extra latency. Not deterministic: same seed, different runs",
        humantime(SCHEDULING_SLACK),
        slack_virtual(time_scale)
    ));
    out
}

fn humantime(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The scenario as the report's analyzer and invariants should see it in real mode: every
/// bounded latency distribution's maximum raised by [`SCHEDULING_SLACK`] / F (only
/// `latency_bound` reads it there; unbounded ones stay unbounded).
pub fn collector_view(s: &Scenario, time_scale: f64) -> Scenario {
    let by = slack_virtual(time_scale);
    let widen = |l: &mut LatencySpec| {
        if let Some(max) = l.max_bound() {
            *l = LatencySpec::uniform(SimDuration::ZERO, max + by);
        }
    };
    let mut v = s.clone();
    widen(&mut v.network.latency);
    for link in &mut v.network.links {
        if let Some(l) = &mut link.latency {
            widen(l);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(sets: &[&str]) -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/heartbeat.toml");
        let o: Vec<_> = sets.iter().map(|s| regsim::scenario::Override::parse(s).expect("override")).collect();
        regsim::scenario::load_with(&path, &o, |_| Ok(())).expect("heartbeat loads")
    }

    #[test]
    fn limits() {
        assert!(check_time_scale(0.05).is_ok() && check_time_scale(1.0).is_ok());
        for bad in [0.0, -1.0, 1.5, f64::NAN, 0.0001] {
            assert!(check_time_scale(bad).is_err(), "{bad}");
        }
        let big = check(&heartbeat(&[]), 0.05).expect_err("10,001 nodes");
        assert_eq!(big.0, "instances.count");
        assert!(big.1.contains("10001 nodes") && big.1.contains("500"), "{}", big.1);
        let long = check(&heartbeat(&["instances.count=10", "duration=100000s"]), 0.05).expect_err("too long");
        assert_eq!(long.0, "duration");
        assert!(check(&heartbeat(&["instances.count=300"]), 0.05).is_ok());
        let limit = wall_limit(&heartbeat(&["duration=80s", "faults[0].at=30s"]), 0.05);
        assert_eq!(limit, Duration::from_secs(14));
    }

    #[test]
    fn collector_view_widens_latency_by_the_slack() {
        let s = heartbeat(&[]);
        let v = collector_view(&s, 0.05);
        assert_eq!(regsim::run::latency_bound(&s), Some(SimDuration::from_millis(10)));
        assert_eq!(regsim::run::latency_bound(&v), Some(SimDuration::from_millis(1010)));
    }
}
