//! Server membership: reports, SUSPICIOUS, DOWN and back UP, and what DOWN does to
//! responsibility.

use std::cell::Cell;
use std::rc::Rc;

use regsim_kernel::harness::Verdict;

use super::*;
use crate::protocol::nacos;
use crate::protocol::nacos::membership::MemberState;

/// What happens to server 2.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Cut off from every node (its host unreachable) from 1 s until `until`.
    Isolate,
    /// Stalled (a GC pause: its host accepts, it answers nothing) from 1 s until `until`.
    Pause,
    /// Its process dies at 1 s (the host refuses connections); restarted at `until`.
    Crash,
    /// Every report between servers 0 and 2 is lost, both ways, except server 0's 4th (at 14 s).
    Flaky,
}

struct MemberCase {
    name: &'static str,
    fault: Fault,
    until: u64,
    end: u64,
    /// Server 0's view of server 2: (ms, new state).
    expect: &'static [(u64, MemberState)],
}

/// nacos core/.../cluster/ServerMemberManager.MemberInfoReportTask: every 2 s (`after`) a report
/// to the next member, `cursor = (cursor + 1) % members.size()` over the members but self, so
/// server 0 (members [1, 2]) reports to server 2 at 2, 6, 10, 14, 18, ... s. MemberUtil.onFail:
/// SUSPICIOUS and `failAccessCnt + 1`; DOWN when `failAccessCnt > 3` (nacos.core.member.
/// fail-access-cnt) or the error says "Connection refused". MemberUtil.onSuccess: UP,
/// `failAccessCnt = 0` (ANCHORS "Server membership"). A report fails after `report_timeout`,
/// 2.5 s (the read timeout of `DefaultHttpClientFactory`); the first report goes 2 s after start (Nacos: 5 s after the web server
/// starts), a phase that only shifts the times.
const MEMBERS: &[MemberCase] = &[
    MemberCase {
        name: "unreachable: SUSPICIOUS at the first failed report, DOWN at the 4th, UP on an answer",
        fault: Fault::Isolate,
        until: 17_500,
        end: 20_000,
        expect: &[(4_500, MemberState::Suspicious), (16_500, MemberState::Down), (18_002, MemberState::Up)],
    },
    MemberCase {
        // Its late answers to the reports that timed out do not count (the stalled requests
        // failed already); the next report's answer does.
        name: "stalled: the same, and stale answers at the resume are ignored",
        fault: Fault::Pause,
        until: 17_500,
        end: 20_000,
        expect: &[(4_500, MemberState::Suspicious), (16_500, MemberState::Down), (18_002, MemberState::Up)],
    },
    MemberCase {
        name: "process dead: the refused report makes it DOWN at once; UP once restarted",
        fault: Fault::Crash,
        until: 9_000,
        end: 12_000,
        expect: &[(2_002, MemberState::Down), (10_002, MemberState::Up)],
    },
    MemberCase {
        name: "an answered report resets the count: 4 more failures to DOWN",
        fault: Fault::Flaky,
        until: 0,
        end: 34_000,
        expect: &[
            (4_500, MemberState::Suspicious),
            (14_002, MemberState::Up),
            (20_500, MemberState::Suspicious),
            (32_500, MemberState::Down),
        ],
    },
];

fn view(h: &Harness<Node>, of: NodeId, peer: NodeId) -> Vec<(SimTime, MemberState)> {
    obs_of(h, of, |o| matches!(o, Obs::Member { peer: p, .. } if *p == peer))
        .into_iter()
        .map(|(t, o)| match o {
            Obs::Member { state, .. } => (t, state),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn a_peer_that_stops_answering_goes_suspicious_then_down_and_up_again() {
    for c in MEMBERS {
        let mut h = cluster(17, &[]);
        if matches!(c.fault, Fault::Flaky) {
            let reports = Rc::new(Cell::new(0u32));
            h.set_filter(move |from, to, m| match m {
                Msg::Nacos(nacos::Msg::Report { .. }) if from == S[0] && to == S[2] => {
                    reports.set(reports.get() + 1);
                    if reports.get() == 4 { Verdict::Deliver } else { Verdict::Drop }
                }
                Msg::Nacos(nacos::Msg::Report { .. }) if from == S[2] && to == S[0] => Verdict::Drop,
                _ => Verdict::Deliver,
            });
        }
        h.run_until(at(1_000));
        match c.fault {
            Fault::Isolate => h.isolate(S[2]),
            Fault::Pause => h.pause(S[2]),
            Fault::Crash => h.crash(S[2]),
            Fault::Flaky => {}
        }
        h.run_until(at(c.until));
        match c.fault {
            Fault::Isolate => h.heal(),
            Fault::Pause => h.resume(S[2]),
            Fault::Crash => h.restart(S[2]),
            Fault::Flaky => {}
        }
        h.run_until(at(c.end));
        let expect: Vec<(SimTime, MemberState)> = c.expect.iter().map(|&(t, s)| (at(t), s)).collect();
        assert_eq!(view(&h, S[0], S[2]), expect, "{}", c.name);
        assert!(view(&h, S[0], S[1]).is_empty(), "{}: server 1 stays UP throughout", c.name);
        // Server 0 sent a report every 2 s, alternating between its two peers.
        let reports: Vec<(SimTime, NodeId)> =
            sent_where(&h, |from, _, m| from == S[0] && matches!(m, Msg::Nacos(nacos::Msg::Report { .. })))
                .into_iter()
                .map(|s| (s.0, s.2))
                .collect();
        let expect: Vec<(SimTime, NodeId)> =
            (1..=c.end / 2_000).map(|k| (at(2_000 * k), if k % 2 == 1 { S[2] } else { S[1] })).collect();
        assert_eq!(reports, expect, "{}: the report schedule", c.name);
    }
}

/// DistroMapper.onEvent builds `healthyList` from the members UP or SUSPICIOUS: a SUSPICIOUS
/// member keeps its services; once DOWN they re-hash over the others (ANCHORS: "the 4th
/// consecutive failure makes it DOWN (responsibility is then re-hashed without it)").
/// "DEFAULT_GROUP@@payment" (hashCode 1310542949) is server 2's among [0, 1, 2] and server 1's
/// among [0, 1]. Server 2 is isolated at 1 s: SUSPICIOUS at 4.5 s and DOWN at 16.5 s for servers
/// 0 and 1 alike (both report to it at 2, 6, 10 and 14 s, each failing 2.5 s later).
#[test]
fn a_down_member_loses_its_services_and_a_suspicious_one_keeps_them() {
    let mut h = cluster(13, &["DEFAULT_GROUP@@payment"]);
    h.run_until(at(1_000));
    h.isolate(S[2]);
    h.run_until(at(8_000));
    let early = instance(&mut h, ServiceId(0), &[S[0]]);
    h.run_until(at(17_500));
    let late = instance(&mut h, ServiceId(0), &[S[0]]);
    h.run_until(at(18_000));
    for n in [S[0], S[1]] {
        let expect = vec![(at(4_500), MemberState::Suspicious), (at(16_500), MemberState::Down)];
        assert_eq!(view(&h, n, S[2]), expect, "server {n}'s view of server 2");
    }
    let registers = |inst: NodeId| {
        sent_where(&h, |_, _, m| {
            matches!(m, Msg::Nacos(nacos::Msg::Forward { origin, kind: crate::protocol::Write::Register, .. }) if *origin == inst)
        })
        .into_iter()
        .map(|s| (s.0, s.1, s.2, s.4))
        .collect::<Vec<_>>()
    };
    assert_eq!(registers(early), vec![(at(8_001), S[0], S[2], false)], "SUSPICIOUS server 2 still owns it");
    assert_eq!(registers(late), vec![(at(17_501), S[0], S[1], true)], "DOWN server 2's service moved to server 1");
    let registered = obs_of(&h, S[1], |o| *o == Obs::Registered { instance: late });
    assert_eq!(registered, vec![(at(17_502), Obs::Registered { instance: late })]);
}

/// Members change state only through `MemberInfoReportTask` (`MemberUtil.onFail` and
/// `onSuccess` are called from its callback alone): a refused Distro sync or proxied write to
/// a dead peer leaves the peer UP until a report to it fails (Distro retries the sync,
/// `DistroFailedTaskHandler`). Server 2 crashes at 100 ms; server 0 sends it a Pull at once.
#[test]
fn a_refused_message_other_than_a_report_does_not_mark_a_peer_down() {
    let mut h = cluster(5, &[DEMO]);
    h.run_until(at(100));
    h.crash(S[2]);
    h.inject(S[0], S[2], crate::protocol::nacos::Msg::Pull { service: ServiceId(0) });
    h.run_until(at(1_000));
    assert_eq!(view(&h, S[0], S[2]), vec![], "no change from the refused pull");
    // The first report to server 2 (round robin from server 1, every 2 s) is refused: DOWN.
    h.run_until(at(6_000));
    let v = view(&h, S[0], S[2]);
    assert!(matches!(v.first(), Some((_, MemberState::Down))), "{v:?}");
}
