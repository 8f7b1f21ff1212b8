//! The instance's beat loop and its re-registration, against one Nacos server (node 0; the
//! instance is node 1 and starts at 0 s).

use super::*;
use crate::protocol::{ClientOp, RequestKind, Write, registry};
use regsim_kernel::harness::Verdict;

/// The instance's writes of `kind`: (time, server).
fn writes(h: &Harness<Node>, me: NodeId, kind: Write) -> Vec<(SimTime, NodeId)> {
    sent_by(h, me)
        .into_iter()
        .filter_map(|(t, to, m)| match m {
            Msg::Registry(registry::Msg::Write { kind: k, .. }) if k == kind => Some((t, to)),
            _ => None,
        })
        .collect()
}

/// When the instance's requests of `kind` ended and whether they succeeded.
fn outcomes(h: &Harness<Node>, me: NodeId, kind: RequestKind) -> Vec<(SimTime, bool)> {
    obs(h, me)
        .into_iter()
        .filter_map(|(t, o)| match o {
            Obs::Request { kind: k, ok } if k == kind => Some((t, ok)),
            _ => None,
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum BeatFault {
    None,
    /// Every answer of the server comes 1 s late.
    SlowAnswers,
    /// The server process dies at 1 s (after the registration): refused at once.
    ServerDown,
    /// The link to the server is cut at 1 s: every beat times out after 3 s.
    Unreachable,
}

struct BeatCase {
    name: &'static str,
    fault: BeatFault,
    /// The first three beats' send times (ms).
    beats_ms: [u64; 3],
    /// When each of them ended (ms) and whether it succeeded.
    done_ms: [(u64, bool); 3],
}

/// Nacos 1.4.1 `BeatReactor.addBeatInfo` schedules the first `BeatTask` one period (5 s) after
/// the registration starts; `BeatTask.run` sends the beat through `reqApi` (failover over every
/// server) and only then, answered or failed, schedules the next one `period` later
/// (`executorService.schedule(new BeatTask(beatInfo), nextTime, ...)` after the try/catch), so
/// the beat period stretches by each beat's own duration. ANCHORS.md: "Client beat every 5 s;
/// the next beat is scheduled after the previous beat's response (or failure)".
#[test]
fn the_next_beat_is_scheduled_after_the_previous_one_ends() {
    let cases = [
        BeatCase {
            name: "answered at once",
            fault: BeatFault::None,
            beats_ms: [5000, 10_002, 15_004],
            done_ms: [(5002, true), (10_004, true), (15_006, true)],
        },
        BeatCase {
            name: "answers 1 s late",
            fault: BeatFault::SlowAnswers,
            beats_ms: [5000, 11_002, 17_004],
            done_ms: [(6002, true), (12_004, true), (18_006, true)],
        },
        BeatCase {
            name: "server process down",
            fault: BeatFault::ServerDown,
            beats_ms: [5000, 10_002, 15_004],
            done_ms: [(5002, false), (10_004, false), (15_006, false)],
        },
        BeatCase {
            name: "server unreachable",
            fault: BeatFault::Unreachable,
            beats_ms: [5000, 13_000, 21_000],
            done_ms: [(8000, false), (16_000, false), (24_000, false)],
        },
    ];
    for case in &cases {
        let (mut h, servers) = cluster(1, 1);
        let me = h.add(instance(&servers));
        if let BeatFault::SlowAnswers = case.fault {
            h.set_filter(|_, _, m| match m {
                Msg::Registry(registry::Msg::WriteOk { .. }) => Verdict::Delay(secs(1)),
                _ => Verdict::Deliver,
            });
        }
        h.run_until(at(secs(1)));
        match case.fault {
            BeatFault::ServerDown => h.crash(servers[0]),
            BeatFault::Unreachable => h.cut(me, servers[0]),
            BeatFault::None | BeatFault::SlowAnswers => {}
        }
        h.run_until(at(secs(25)));
        let beats: Vec<SimTime> = writes(&h, me, Write::Beat).into_iter().map(|(t, _)| t).take(3).collect();
        assert_eq!(beats, case.beats_ms.map(|t| at(ms(t))), "{}: beat times", case.name);
        let done: Vec<(SimTime, bool)> = outcomes(&h, me, RequestKind::Beat).into_iter().take(3).collect();
        assert_eq!(done, case.done_ms.map(|(t, ok)| (at(ms(t)), ok)), "{}: beat outcomes", case.name);
        // Only the one registration at start: a failed beat does not register again.
        assert_eq!(writes(&h, me, Write::Register), vec![(SimTime::ZERO, servers[0])], "{}", case.name);
    }
}

#[derive(Clone, Copy, Debug)]
enum Step {
    CrashServer,
    RestartServer,
    Cut,
    Heal,
}

struct ReregisterCase {
    name: &'static str,
    /// What happens when (ms).
    steps: &'static [(u64, Step)],
    /// The beat that is answered "not found" (ms).
    not_found_beat_ms: u64,
    /// Whether the server's health check deleted the instance first (`delete_after` 30 s).
    deleted: bool,
}

/// Nacos 1.4.1 `BeatReactor.BeatTask.run`: a beat answered with `code ==
/// NamingResponseCode.RESOURCE_NOT_FOUND` (20404, the server does not know the instance) makes
/// the client call `serverProxy.registerService` at once with the beat's instance. ANCHORS.md:
/// "A beat answered 'resource not found' makes the client re-register the instance at once". The
/// cases are the three ways a live instance goes missing from the server: the server restarted
/// with an empty table, the registration never arrived (Nacos' `registerInstance` does not retry
/// it: the beat recovers it), and the health check deleted it after 30 s of lost beats
/// (ANCHORS.md: deleted 30–35 s after the last beat).
#[test]
fn a_beat_answered_not_found_registers_again_at_once() {
    use Step::{CrashServer, Cut, Heal, RestartServer};
    let cases = [
        ReregisterCase {
            name: "server restarted with an empty table",
            steps: &[(6000, CrashServer), (7000, RestartServer)],
            not_found_beat_ms: 10_002,
            deleted: false,
        },
        ReregisterCase {
            name: "registration lost",
            steps: &[(0, Cut), (2000, Heal)],
            not_found_beat_ms: 5000,
            deleted: false,
        },
        ReregisterCase {
            name: "deleted by the health check",
            // Beats at 5, 13, 21 and 29 s time out (3 s each); the one at 37 s gets through.
            steps: &[(1000, Cut), (33_000, Heal)],
            not_found_beat_ms: 37_000,
            deleted: true,
        },
    ];
    for case in &cases {
        let (mut h, servers) = cluster(1, 1);
        let server = servers[0];
        let me = h.add(instance(&servers));
        for &(t, step) in case.steps {
            if at(ms(t)) > h.now() {
                h.run_until(at(ms(t)));
            }
            match step {
                CrashServer => h.crash(server),
                RestartServer => h.restart(server),
                Cut => h.cut(me, server),
                Heal => h.heal(),
            }
        }
        let beat = at(ms(case.not_found_beat_ms));
        let answer = beat + ms(2);
        h.run_until(answer + secs(12));
        let name = case.name;

        assert!(writes(&h, me, Write::Beat).contains(&(beat, server)), "{name}: the beat at {beat}");
        let mine = obs(&h, me);
        let rereg: Vec<SimTime> = mine.iter().filter(|(_, o)| *o == Obs::Reregistered).map(|(t, _)| *t).collect();
        assert_eq!(rereg, vec![answer], "{name}: re-registered once, on the not-found answer");
        // The registration is sent with the answer, as a new client operation.
        assert_eq!(writes(&h, me, Write::Register), vec![(SimTime::ZERO, server), (answer, server)], "{name}");
        let op_start = mine.iter().find(|(t, o)| *t == answer && matches!(o, Obs::OpStart { .. }));
        assert!(
            matches!(op_start, Some((_, Obs::OpStart { op: ClientOp::Register(SERVICE), .. }))),
            "{name}: {op_start:?}"
        );
        let registered: Vec<SimTime> = obs(&h, server)
            .into_iter()
            .filter(|(_, o)| *o == Obs::Registered { instance: me })
            .map(|(t, _)| t)
            .collect();
        assert_eq!(registered.last(), Some(&(answer + ms(1))), "{name}: the server has it again");
        let registers = outcomes(&h, me, RequestKind::Register);
        assert_eq!(registers.last(), Some(&(answer + ms(2), true)), "{name}: registration answered");
        // The two beats after it are answered "found" (no more re-registration, checked above)
        // and succeed.
        let later: Vec<bool> =
            outcomes(&h, me, RequestKind::Beat).into_iter().filter(|(t, _)| *t > answer).map(|(_, ok)| ok).collect();
        assert_eq!(later, vec![true, true], "{name}: later beats");
        let deleted = obs(&h, server).iter().find(|(_, o)| *o == Obs::Deleted { instance: me }).map(|(t, _)| *t);
        match (case.deleted, deleted) {
            // Last beat heard: the registration at 1 ms; checks every 5 s delete after > 30 s.
            (true, Some(t)) => assert!(t > at(ms(30_001)) && t <= at(ms(35_001)), "{name}: deleted at {t}"),
            (false, None) => {}
            (want, got) => panic!("{name}: deleted {want}, observed {got:?}"),
        }
    }
}
