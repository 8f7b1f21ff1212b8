//! The beat health check (`ClientBeatCheckTask`) and the beat's not-found answer.

use super::*;
use crate::protocol::nacos::status;
use crate::protocol::{CopyState, RequestKind, registry};

/// An instance whose last beat reaches the responsible server `offset` ms after one of its
/// checks; when that server's check marks it unhealthy and deletes it (ms after the last beat).
struct GridCase {
    name: &'static str,
    offset: u64,
    unhealthy: u64,
    deleted: u64,
}

/// nacos naming/.../healthcheck/ClientBeatCheckTask.run, on the responsible server only
/// (`distroMapper.responsible`), scheduled with fixed delay 5 s (HealthCheckReactor.scheduleCheck
/// -> GlobalExecutor.scheduleNamingHealth -> scheduleWithFixedDelay): unhealthy when
/// `now - lastBeat > instanceHeartBeatTimeOut` (15 s), deleted when `> ipDeleteTimeout` (30 s).
/// Both are strict, so a silence of exactly 15 s is still healthy (ANCHORS: unhealthy 15-20 s and
/// deleted 30-35 s after the last beat, by the check's phase). The real delete is an HTTP DELETE
/// the server sends itself (`deleteIp`), a few ms later; the simulator deletes in the check.
const GRID: &[GridCase] = &[
    GridCase { name: "last beat exactly at a check", offset: 0, unhealthy: 20_000, deleted: 35_000 },
    GridCase { name: "1 ms after a check", offset: 1, unhealthy: 19_999, deleted: 34_999 },
    GridCase { name: "half-way between checks", offset: 2_500, unhealthy: 17_500, deleted: 32_500 },
    GridCase { name: "1 ms before a check", offset: 4_999, unhealthy: 15_001, deleted: 30_001 },
];

fn verdicts(h: &Harness<Node>, n: NodeId, inst: NodeId) -> Vec<(SimTime, Obs)> {
    obs_of(h, n, |o| {
        matches!(o, Obs::MarkedUnhealthy { instance } | Obs::MarkedHealthy { instance } | Obs::Deleted { instance }
            if *instance == inst)
    })
}

#[test]
fn a_silent_instance_is_marked_then_deleted_on_the_check_grid() {
    // Three seeds: three phases of server 0's check.
    for seed in [5, 6, 7] {
        check_grid(seed);
    }
}

fn check_grid(seed: u64) {
    const S5: SimDuration = SimDuration::from_secs(5);
    // No verify rounds: the peers then follow the syncs only (a round inside a change's 2 s sync
    // window would pull the change earlier, in Nacos as here).
    let mut h = cluster_with(seed, &[DEMO], |c| c.distro.skip_anti_entropy = true);
    // A beating instance that crashes at 7 s finds the grid of server 0's check; another keeps
    // beating throughout.
    let crashed = instance(&mut h, ServiceId(0), &[S[0]]);
    let steady = instance(&mut h, ServiceId(0), &[S[0]]);
    h.run_until(at(7_000));
    h.crash(crashed);
    h.run_until(at(25_500));
    let beats = sent_where(&h, |from, to, m| from == crashed && to == S[0] && matches!(m, Msg::Registry(_)));
    let last = beats.last().expect("beats").0 + ms(1);
    assert_eq!(last, at(5_001), "register at 0, one beat at 5 s, crash at 7 s");
    let marked = verdicts(&h, S[0], crashed);
    assert_eq!(marked.len(), 1, "marked unhealthy by 25.5 s: {marked:?}");
    let check = marked[0].0;
    assert!(
        check - last > SimDuration::from_secs(15) && check - last <= SimDuration::from_secs(20),
        "marked at {check}"
    );
    // Checks every 5 s from `check`: the cases' last beats land `offset` after one of them.
    let grid = check + SimDuration::from_secs(10);
    let mut insts = Vec::new();
    for c in GRID {
        h.run_until(SimTime((grid + ms(c.offset)).0 - 1_000_000));
        // Registers now (arriving 1 ms later) and never beats again.
        insts.push(instance_beating(&mut h, ServiceId(0), &[S[0]], SimDuration::from_secs(3_600)));
    }
    h.run_until(grid + SimDuration::from_secs(40));
    assert_eq!(
        verdicts(&h, S[0], crashed),
        vec![
            (check, Obs::MarkedUnhealthy { instance: crashed }),
            (check + S5.saturating_mul(3), Obs::Deleted { instance: crashed })
        ],
        "the crashed instance is deleted three checks later"
    );
    for (c, &inst) in GRID.iter().zip(&insts) {
        let name = format!("{} (seed {seed})", c.name);
        let last = grid + ms(c.offset);
        let (unhealthy, deleted) = (last + ms(c.unhealthy), last + ms(c.deleted));
        let expect =
            vec![(unhealthy, Obs::MarkedUnhealthy { instance: inst }), (deleted, Obs::Deleted { instance: inst })];
        assert_eq!(verdicts(&h, S[0], inst), expect, "{name}");
        assert_eq!(unhealthy, grid + S5.saturating_mul(4), "{name}: on the grid");
        for peer in [S[1], S[2]] {
            // Only the responsible server checks. The peers learn the mark from its next status
            // report (60 s after it started, then every 5 s; `ServiceReporter`: the checksum,
            // the peer's fetch, the flags: three 1 ms hops) and the deletion from its sync
            // (2 s, +1 ms latency): a sync does not carry health flags (`Cluster.updateIps`).
            assert!(verdicts(&h, peer, inst).is_empty(), "{name}: server {peer} does not check");
            let report = |t: SimTime| {
                let (first, period) = (status::FIRST_REPORT.as_nanos(), status::REPORT_PERIOD.as_nanos());
                SimTime(if t.0 < first { first } else { first + (t.0 - first).div_ceil(period) * period })
            };
            let flips = obs_of(
                &h,
                peer,
                |o| matches!(o, Obs::Copy { instance, state } if *instance == inst && *state != CopyState::Healthy),
            );
            let expect = vec![
                (report(unhealthy) + ms(3), Obs::Copy { instance: inst, state: CopyState::Unhealthy }),
                (deleted + ms(2_001), Obs::Copy { instance: inst, state: CopyState::Absent }),
            ];
            assert_eq!(flips, expect, "{name}: server {peer}'s copy");
        }
    }
    assert!(verdicts(&h, S[0], steady).is_empty(), "a beating instance is never marked");
    let left: Vec<(NodeId, bool)> = copy(&h, S[0], ServiceId(0)).iter().map(|r| (r.instance, r.healthy)).collect();
    assert_eq!(left, vec![(steady, true)], "only the steady one is left");
}

/// Server-side verdicts on the instance, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Registered,
    Unhealthy,
    Healthy,
    Deleted,
}

fn events(h: &Harness<Node>, inst: NodeId) -> Vec<(SimTime, Ev)> {
    obs_of(h, S[0], |_| true)
        .into_iter()
        .filter_map(|(t, o)| match o {
            Obs::Registered { instance } if instance == inst => Some((t, Ev::Registered)),
            Obs::MarkedUnhealthy { instance } if instance == inst => Some((t, Ev::Unhealthy)),
            Obs::MarkedHealthy { instance } if instance == inst => Some((t, Ev::Healthy)),
            Obs::Deleted { instance } if instance == inst => Some((t, Ev::Deleted)),
            _ => None,
        })
        .collect()
}

/// An instance that talks to server `via` stalls (a GC pause) from 1 s for `stall` ms; at the
/// resume its overdue beat goes out.
struct StallCase {
    name: &'static str,
    via: usize,
    stall: u64,
    /// Server 0's verdicts during the stall.
    during: &'static [Ev],
    /// The beat's answer: found, and ms after the resume it reaches the instance.
    found: bool,
    answer: u64,
    /// Server 0's verdicts caused by the beat, ms after the resume.
    after: &'static [(u64, Ev)],
}

/// Responsible server 0. A beat heals an unhealthy instance (nacos naming/.../healthcheck/
/// ClientBeatProcessor.run: `!marked && !healthy` -> setHealthy(true)). A beat for an instance the
/// server does not have is answered RESOURCE_NOT_FOUND, 20404 (naming/.../controllers/
/// InstanceController.beat, light beat), and the client registers again at once (client/.../naming/
/// beat/BeatReactor.BeatTask.run; ANCHORS "A beat answered resource not found makes the client
/// re-register"). Through server 1 the beat and the re-register are proxied (DistroFilter).
const STALLS: &[StallCase] = &[
    StallCase {
        name: "10 s stall: still healthy",
        via: 0,
        stall: 10_000,
        during: &[],
        found: true,
        answer: 2,
        after: &[],
    },
    StallCase {
        name: "22 s stall: unhealthy, healed by the late beat",
        via: 0,
        stall: 22_000,
        during: &[Ev::Unhealthy],
        found: true,
        answer: 2,
        after: &[(1, Ev::Healthy)],
    },
    StallCase {
        name: "40 s stall: deleted, 20404, registered again",
        via: 0,
        stall: 40_000,
        during: &[Ev::Unhealthy, Ev::Deleted],
        found: false,
        answer: 2,
        after: &[(3, Ev::Registered)],
    },
    StallCase {
        name: "40 s stall through server 1: the 20404 is relayed",
        via: 1,
        stall: 40_000,
        during: &[Ev::Unhealthy, Ev::Deleted],
        found: false,
        answer: 4,
        after: &[(6, Ev::Registered)],
    },
];

#[test]
fn a_late_beat_heals_or_is_answered_not_found_and_the_instance_registers_again() {
    // Two seeds: two phases of server 0's check.
    for (seed, c) in [9, 10].into_iter().flat_map(|seed| STALLS.iter().map(move |c| (seed, c))) {
        let name = format!("{} (seed {seed})", c.name);
        let mut h = cluster(seed, &[DEMO]);
        h.run_until(at(100));
        let inst = instance(&mut h, ServiceId(0), &[S[c.via]]);
        h.run_until(at(1_000));
        h.pause(inst);
        let resume = at(1_000 + c.stall);
        h.run_until(resume);
        h.resume(inst);
        h.run_until(resume + ms(100));
        let all = events(&h, inst);
        let registered = at(101 + c.via as u64);
        assert_eq!(all.first(), Some(&(registered, Ev::Registered)), "{name}");
        let during: Vec<Ev> = all.iter().filter(|(t, _)| *t > registered && *t <= resume).map(|(_, e)| *e).collect();
        assert_eq!(during, c.during, "{name}: while the instance is silent");
        let after: Vec<(u64, Ev)> =
            all.iter().filter(|(t, _)| *t > resume).map(|(t, e)| ((*t - resume).as_nanos() / 1_000_000, *e)).collect();
        assert_eq!(after, c.after, "{name}: after the beat");
        // The beat is request 1 (the registration was 0); a re-registration is request 2.
        let answers =
            sent_where(&h, |_, to, m| to == inst && matches!(m, Msg::Registry(registry::Msg::WriteOk { req: 1, .. })));
        let expect = vec![(
            resume + ms(c.answer - 1),
            S[c.via],
            inst,
            registry::Msg::WriteOk { found: c.found, req: 1 }.into(),
            true,
        )];
        assert_eq!(answers, expect, "{name}: the beat's answer");
        let client =
            obs_of(&h, inst, |o| matches!(o, Obs::Reregistered | Obs::Request { kind: RequestKind::Beat, .. }));
        let mut expect = vec![(resume + ms(c.answer), Obs::Request { kind: RequestKind::Beat, ok: true })];
        if !c.found {
            expect.push((resume + ms(c.answer), Obs::Reregistered));
        }
        assert_eq!(client, expect, "{name}: what the client did with it");
        assert_eq!(
            copy(&h, S[0], ServiceId(0)).iter().map(|r| (r.instance, r.healthy)).collect::<Vec<_>>(),
            vec![(inst, true)]
        );
    }
}
