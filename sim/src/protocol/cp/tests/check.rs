//! The TCP health check of persistent instances (`cp/check.rs`, after Nacos 1.4.6
//! `HealthCheckTask`, `TcpSuperSenseProcessor`, `HealthCheckCommon.checkOK` / `checkFail` /
//! `checkFailNow` / `reEvaluateCheckRT`) and how its flags spread (`nacos/status.rs`,
//! `ServiceManager.ServiceReporter`), on three CP servers and one persistent instance.
//! `DEFAULT_GROUP@@demo-service` hashes to server 0 (1092918732 % 3 = 0), so server 0 checks.

use super::*;
use crate::protocol::cp::check::CheckConfig;
use crate::protocol::nacos::status;
use std::cell::Cell;
use std::rc::Rc;

/// What one connect of server 0 to the instance comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Connected,
    /// The probe is dropped: the connect times out after 500 ms.
    TimedOut,
    /// The instance's process is dead (crashed as the connect leaves, restarted after the
    /// last refused one): refused one round trip later.
    Refused,
}

struct Case {
    name: &'static str,
    /// Connects (numbered from 1) that time out.
    dropped: &'static [usize],
    /// Connects that are refused (consecutive).
    refused: &'static [usize],
    /// Server 0 cut off from servers 1 and 2 from connect 60 on (no quorum, no reports).
    cut_off: bool,
    /// (connect, healthy): the flag server 0 sets on that connect's outcome.
    flips: &'static [(usize, bool)],
}

const CASES: &[Case] = &[
    Case {
        name: "three timeouts in a row mark it, three connects heal it",
        dropped: &[70, 71, 72],
        refused: &[],
        cut_off: false,
        flips: &[(72, false), (75, true)],
    },
    Case { name: "two timeouts are not enough", dropped: &[70, 71], refused: &[], cut_off: false, flips: &[] },
    Case {
        name: "a connect between timeouts resets the count",
        dropped: &[70, 71, 73, 74, 76, 77],
        refused: &[],
        cut_off: false,
        flips: &[],
    },
    Case {
        name: "a refused connect marks it at once",
        dropped: &[],
        refused: &[70, 71, 72],
        cut_off: false,
        flips: &[(70, false), (75, true)],
    },
    Case {
        name: "a timeout resets the connects that would heal it",
        dropped: &[72],
        refused: &[70],
        cut_off: false,
        flips: &[(70, false), (75, true)],
    },
    Case {
        name: "cut off from the other servers (no quorum) it still checks",
        dropped: &[70, 71, 72],
        refused: &[],
        cut_off: true,
        flips: &[(72, false), (75, true)],
    },
];

/// `reEvaluateCheckRT` with the defaults: `0.75 norm + 0.25 rt` in [1 s, 5 s].
fn next_period(norm: SimDuration, rt: SimDuration) -> SimDuration {
    let c = CheckConfig::default();
    SimDuration((norm.as_nanos() * 3 + rt.as_nanos()) / 4).clamp(c.rt_min, c.rt_max)
}

/// The first status report of server 0 (started at 0) at or after `t`.
fn report_after(t: SimTime) -> SimTime {
    let (first, period) = (status::FIRST_REPORT.as_nanos(), status::REPORT_PERIOD.as_nanos());
    SimTime(if t.0 <= first { first } else { first + (t.0 - first).div_ceil(period) * period })
}

/// Each run of server 0's check connects once; the gaps between runs follow the results
/// (the run after next is scheduled with the period the result left: `gap[k+1] =
/// next_period(gap[k], rt[k])`, rt = the answer's 2 ms, 5 s when refused, twice the period on a
/// timeout); the flag flips as `checkOK`/`checkFail`/`checkFailNow` say, on server 0 only and
/// not through Raft; servers 1 and 2 take it from server 0's next status report (60 s after it
/// started, then every 5 s) three hops later.
#[test]
fn the_responsible_server_checks_by_tcp_connect() {
    for c in CASES {
        let mut net = Net::new(3, config(ReadMode::ReadIndex, false));
        net.elect();
        let inst = net.add_instance();
        let (dropped, refused) = (c.dropped, c.refused);
        let is_probe = move |from: NodeId, to: NodeId, m: &Msg| {
            from == NodeId(0) && to == inst && matches!(m, Msg::Cp(cp::Msg::Probe { .. }))
        };
        let count = Rc::new(Cell::new(0usize));
        let seen = Rc::clone(&count);
        net.h.set_filter(move |from, to, m| {
            if is_probe(from, to, m) {
                seen.set(seen.get() + 1);
                if dropped.contains(&seen.get()) {
                    return Verdict::Drop;
                }
            }
            Verdict::Deliver
        });
        let (mut cut, mut crashed, mut restarted) = (false, false, false);
        let end = SimTime(150_000_000_000);
        while net.h.now() < end && net.h.step() {
            let k = count.get();
            if c.cut_off && k == 60 && !cut {
                net.h.cut(NodeId(0), NodeId(1));
                net.h.cut(NodeId(0), NodeId(2));
                cut = true;
            }
            // Crashed as connect `first` leaves; restarted once the last refusal came back.
            if refused.first() == Some(&k) && !crashed {
                net.h.crash(inst);
                crashed = true;
            }
            if crashed && !restarted && refused.last() == Some(&k) && net.h.now() > probe_time(&net, inst, k) + ms(2) {
                net.h.restart(inst);
                restarted = true;
            }
        }
        let probes: Vec<SimTime> =
            net.h.sent().iter().filter(|s| is_probe(s.from, s.to, &s.msg)).map(|s| s.at).collect();
        assert!(probes.len() > 80, "{}: {} connects", c.name, probes.len());
        let others = (net.h.sent().iter())
            .filter(|s| [NodeId(1), NodeId(2)].contains(&s.from) && matches!(s.msg, Msg::Cp(_)))
            .count();
        // Cut off, server 0 still checks, and servers 1 and 2, which see it DOWN, make server 1
        // responsible in their own view (1092918732 % 2 = 0): both check.
        assert_eq!(others > 0, c.cut_off, "{}: who connects besides server 0: {others} connects", c.name);
        let outcome = |k: usize| {
            if dropped.contains(&k) {
                Outcome::TimedOut
            } else if refused.contains(&k) {
                Outcome::Refused
            } else {
                Outcome::Connected
            }
        };
        // The period: gap[k] = probes[k+1] - probes[k] (connects numbered from 1).
        for k in 1..probes.len() - 1 {
            let gap = probes[k] - probes[k - 1];
            let rt = match outcome(k) {
                Outcome::Connected => ms(2),
                Outcome::Refused => SimDuration::from_secs(5),
                Outcome::TimedOut => gap.saturating_mul(2),
            };
            assert_eq!(probes[k + 1] - probes[k], next_period(gap, rt), "{}: the period after connect {k}", c.name);
        }
        assert_eq!(probes[60] - probes[59], SimDuration::from_secs(1), "{}: a healthy period shrinks to 1 s", c.name);
        // The flips on server 0: a connect's or a refusal's answer after 2 ms, a timeout after 500 ms.
        let at = |k: usize| probes[k - 1] + if outcome(k) == Outcome::TimedOut { ms(500) } else { ms(2) };
        let mark = |healthy: bool| {
            if healthy { Obs::MarkedHealthy { instance: inst } } else { Obs::MarkedUnhealthy { instance: inst } }
        };
        let want: Vec<(SimTime, NodeId, Obs)> = c.flips.iter().map(|&(k, h)| (at(k), NodeId(0), mark(h))).collect();
        let marks = net.obs(|o| matches!(o, Obs::MarkedHealthy { .. } | Obs::MarkedUnhealthy { .. }));
        assert_eq!(marks, want, "{}", c.name);
        // Servers 1 and 2: the state at each of server 0's reports, three hops later.
        for peer in [NodeId(1), NodeId(2)] {
            let copies: Vec<(SimTime, CopyState)> = net
                .obs(|o| matches!(o, Obs::Copy { instance, .. } if *instance == inst))
                .into_iter()
                .filter(|(_, n, _)| *n == peer)
                .map(|(t, _, o)| (t, if let Obs::Copy { state, .. } = o { state } else { unreachable!() }))
                .collect();
            let mut expect = vec![copies[0]];
            let mut state = CopyState::Healthy;
            for (i, &(k, h)) in c.flips.iter().enumerate() {
                let report = report_after(at(k));
                let next = c.flips.get(i + 1).map(|&(k2, _)| at(k2));
                let flag = if h { CopyState::Healthy } else { CopyState::Unhealthy };
                if !c.cut_off && next.is_none_or(|n| n > report) && flag != state {
                    expect.push((report + ms(3), flag));
                    state = flag;
                }
            }
            assert_eq!(copies, expect, "{}: server {peer}'s copy", c.name);
        }
    }
}

/// When connect `k` (from 1) left server 0.
fn probe_time(net: &Net, inst: NodeId, k: usize) -> SimTime {
    let probes = net.h.sent().iter().filter(|s| s.from == NodeId(0) && s.to == inst);
    probes.filter(|s| matches!(s.msg, Msg::Cp(cp::Msg::Probe { .. }))).nth(k - 1).map_or(SimTime::ZERO, |s| s.at)
}
