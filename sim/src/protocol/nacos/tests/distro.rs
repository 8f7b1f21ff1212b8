//! Distro: the responsible-server rule, `DistroFilter` forwarding, the delayed sync to peers, and
//! the checksum verify that repairs a copy which missed a sync.

use std::cell::Cell;
use std::rc::Rc;

use regsim_kernel::harness::Verdict;

use super::*;
use crate::protocol::nacos::distro::responsible;
use crate::protocol::{CopyState, Write, nacos, registry};

/// A grouped service name (DistroFilter hashes `group@@service`), its Java `String.hashCode`
/// as the JVM computes it, the sorted list of servers UP or SUSPICIOUS, and the owner.
struct Owner {
    name: &'static str,
    hash: i32,
    healthy: &'static [u32],
    owner: u32,
}

/// nacos naming/.../core/DistroMapper.mapSrv: `servers.get(distroHash(name) % servers.size())`,
/// `distroHash = Math.abs(name.hashCode() % Integer.MAX_VALUE)`, over `healthyList`, which
/// `DistroMapper.onEvent` rebuilds sorted from the members UP or SUSPICIOUS (ANCHORS,
/// "Responsibility"). Hashes of magnitude `Integer.MAX_VALUE` or `MIN_VALUE` are left out: the
/// simulator maps them differently (see the report).
const OWNERS: &[Owner] = &[
    Owner { name: DEMO, hash: 1_092_918_732, healthy: &[0, 1, 2], owner: 0 },
    Owner { name: "DEFAULT_GROUP@@order-service", hash: 490_904_149, healthy: &[0, 1, 2], owner: 1 },
    Owner { name: "DEFAULT_GROUP@@payment", hash: 1_310_542_949, healthy: &[0, 1, 2], owner: 2 },
    // Negative hashes: Math.abs before the modulo.
    Owner { name: "DEFAULT_GROUP@@cart", hash: -1_252_027_103, healthy: &[0, 1, 2], owner: 2 },
    Owner { name: "DEFAULT_GROUP@@inventory", hash: -927_721_477, healthy: &[0, 1, 2], owner: 1 },
    Owner { name: "DEFAULT_GROUP@@shipping", hash: 73_207_599, healthy: &[0, 1, 2], owner: 0 },
    // Server 2 DOWN: its services re-hash over [0, 1] (and others may move too: modulo hashing).
    Owner { name: "DEFAULT_GROUP@@payment", hash: 1_310_542_949, healthy: &[0, 1], owner: 1 },
    Owner { name: "DEFAULT_GROUP@@cart", hash: -1_252_027_103, healthy: &[0, 1], owner: 1 },
    Owner { name: "DEFAULT_GROUP@@order-service", hash: 490_904_149, healthy: &[0, 1], owner: 1 },
    Owner { name: DEMO, hash: 1_092_918_732, healthy: &[0, 1], owner: 0 },
    // Server 1 DOWN: the index is into the remaining list [0, 2].
    Owner { name: "DEFAULT_GROUP@@order-service", hash: 490_904_149, healthy: &[0, 2], owner: 2 },
    Owner { name: "DEFAULT_GROUP@@inventory", hash: -927_721_477, healthy: &[0, 2], owner: 2 },
    // One server left owns everything.
    Owner { name: "DEFAULT_GROUP@@payment", hash: 1_310_542_949, healthy: &[1], owner: 1 },
];

#[test]
fn the_responsible_server_is_the_java_hash_modulo_the_sorted_healthy_list() {
    for c in OWNERS {
        assert_eq!(java_hash(c.name), c.hash, "{}: String.hashCode", c.name);
        let healthy: Vec<NodeId> = c.healthy.iter().map(|i| NodeId(*i)).collect();
        assert_eq!(responsible(c.hash, &healthy), Some(NodeId(c.owner)), "{} over {:?}", c.name, c.healthy);
    }
    assert_eq!(responsible(1_092_918_732, &[]), None, "no member listed: nobody is responsible");
}

/// nacos naming/.../web/DistroFilter.doFilter: a register or beat (`@CanDistro`) for a service
/// the server is not responsible for is proxied to `distroMapper.mapSrv(service)` and the
/// answer relayed; the responsible server applies it as a direct request. Only the responsible
/// server updates `lastBeat` (`Service.processClientBeat`); a beat changes nothing that Distro
/// syncs, so the peers keep the registration's time. Every instance here talks to server 0.
#[test]
fn writes_reach_the_responsible_server_directly_or_through_the_filter() {
    let cases: Vec<&Owner> = OWNERS.iter().filter(|c| c.healthy.len() == 3).collect();
    let names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    let mut h = cluster(7, &names);
    let insts: Vec<NodeId> = (0..cases.len()).map(|i| instance(&mut h, ServiceId(i as u32), &[S[0]])).collect();
    // Registers sent at 0; the beat timer runs from the start, so the first beat goes at 5 s.
    h.run_until(at(6_000));
    for (i, (c, &inst)) in cases.iter().zip(&insts).enumerate() {
        let (service, owner) = (ServiceId(i as u32), NodeId(c.owner));
        let hop = u64::from(owner != S[0]);
        let registered: Vec<(SimTime, NodeId)> = h
            .observed()
            .into_iter()
            .filter(|(_, _, o)| *o == Obs::Registered { instance: inst })
            .map(|(t, n, _)| (t, n))
            .collect();
        assert_eq!(registered, vec![(at(1 + hop), owner)], "{}: registered once, by its owner", c.name);
        let forwards: Vec<(SimTime, NodeId, NodeId, Msg)> = sent_where(&h, |_, _, m| {
            matches!(m, Msg::Nacos(nacos::Msg::Forward { origin, .. } | nacos::Msg::ForwardOk { origin, .. }) if *origin == inst)
        })
        .into_iter()
        .map(|(t, from, to, m, _)| (t, from, to, m))
        .collect();
        let fwd =
            |t, kind, req| (at(t), S[0], owner, Msg::Nacos(nacos::Msg::Forward { kind, origin: inst, service, req }));
        let back = |t, req| (at(t), owner, S[0], Msg::Nacos(nacos::Msg::ForwardOk { found: true, origin: inst, req }));
        let expect = if hop == 1 {
            vec![fwd(1, Write::Register, 0), back(2, 0), fwd(5_001, Write::Beat, 1), back(5_002, 1)]
        } else {
            vec![]
        };
        assert_eq!(forwards, expect, "{}: proxied iff server 0 is not the owner", c.name);
        let answers: Vec<(SimTime, Msg)> = sent_where(&h, |from, to, m| {
            from == S[0] && to == inst && matches!(m, Msg::Registry(registry::Msg::WriteOk { .. }))
        })
        .into_iter()
        .map(|(t, _, _, m, _)| (t, m))
        .collect();
        let ok = |t, req| (at(t), Msg::Registry(registry::Msg::WriteOk { found: true, req }));
        assert_eq!(answers, vec![ok(1 + 2 * hop, 0), ok(5_001 + 2 * hop, 1)], "{}: answers relayed", c.name);
        for n in S {
            let last_beat = if n == owner { at(5_001 + hop) } else { at(1 + hop) };
            let expect = vec![InstRec { instance: inst, healthy: true, last_beat }];
            assert_eq!(copy(&h, n, service), expect, "{}: copy at server {n}", c.name);
        }
    }
}

/// Registrations at the responsible server 0 at these times (ms); the Syncs it sends each peer
/// (ms, instances in the copy).
struct SyncCase {
    name: &'static str,
    registers: &'static [u64],
    syncs: &'static [(u64, usize)],
}

/// nacos naming/.../distro/DistroConsistencyServiceImpl.put -> DistroProtocol.sync(key, CHANGE,
/// taskDispatchPeriod / 2), then DistroHttpDelayTaskProcessor -> DistroHttpCombinedKeyDelayTask
/// with another taskDispatchPeriod / 2: 1 s + 1 s (GlobalConfig taskDispatchPeriod 2000 ms;
/// ANCHORS "a change is synced to every other server after a 2 s delay"). A change while a task
/// for the key waits merges into it and keeps its start (NacosDelayTaskExecuteEngine.addTask,
/// DistroDelayTask.merge); the data is read when the task runs (DistroSyncChangeTask.run).
/// Real times are 2.0-2.2 s (the delay engine runs every 100 ms); the simulator's are exact.
const SYNCS: &[SyncCase] = &[
    SyncCase { name: "one change is synced 2 s later", registers: &[500], syncs: &[(2_501, 1)] },
    SyncCase {
        name: "a change 500 ms later rides on the first's sync",
        registers: &[500, 1_000],
        syncs: &[(2_501, 2)],
    },
    SyncCase {
        name: "a change after the first sync left gets its own",
        registers: &[500, 2_800],
        syncs: &[(2_501, 1), (4_801, 2)],
    },
];

#[test]
fn a_change_is_synced_to_every_peer_after_the_sync_delay() {
    for c in SYNCS {
        let mut h = cluster(3, &[DEMO]);
        let mut insts = Vec::new();
        for &t in c.registers {
            h.run_until(at(t));
            insts.push(instance(&mut h, ServiceId(0), &[S[0]]));
        }
        h.run_until(at(12_000));
        let syncs: Vec<(SimTime, NodeId, usize, bool)> =
            sent_where(&h, |from, _, m| from == S[0] && matches!(m, Msg::Nacos(nacos::Msg::Sync { .. })))
                .into_iter()
                .map(|(t, _, to, m, delivered)| match m {
                    Msg::Nacos(nacos::Msg::Sync { data, seq, .. }) => {
                        assert_ne!(
                            seq,
                            u32::MAX,
                            "{}: no pull expected (verify at 5 s and 10 s finds equal copies)",
                            c.name
                        );
                        (t, to, data.len(), delivered)
                    }
                    _ => unreachable!(),
                })
                .collect();
        let expect: Vec<(SimTime, NodeId, usize, bool)> =
            c.syncs.iter().flat_map(|&(t, n)| [(at(t), S[1], n, true), (at(t), S[2], n, true)]).collect();
        assert_eq!(syncs, expect, "{}: one Sync per peer per window, acked (no retry by 12 s)", c.name);
        assert!(sent_where(&h, |_, _, m| matches!(m, Msg::Nacos(nacos::Msg::Pull { .. }))).is_empty(), "{}", c.name);
        for peer in [S[1], S[2]] {
            for (k, &inst) in insts.iter().enumerate() {
                let first_sync = c.syncs.iter().find(|(_, n)| *n > k).map(|(t, _)| *t).expect("synced");
                let seen = obs_of(&h, peer, |o| matches!(o, Obs::Copy { instance, .. } if *instance == inst));
                let expect = vec![(at(first_sync + 1), Obs::Copy { instance: inst, state: CopyState::Healthy })];
                assert_eq!(seen, expect, "{}: instance {k} reaches server {peer} with the sync", c.name);
            }
            let members = |n| copy(&h, n, ServiceId(0)).iter().map(|r| (r.instance, r.healthy)).collect::<Vec<_>>();
            assert_eq!(members(peer), members(S[0]), "{}: server {peer} holds the responsible's copy", c.name);
        }
    }
}

/// How server 1 misses the responsible server's sync.
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// The link 0 -> 1 is cut over [400 ms, 6 s]: the registration's sync is lost.
    CutLink,
    /// The instance stalls from 1 s on (marked unhealthy at 15-20 s, which is not synced, and
    /// deleted at 30-35 s); the deletion's sync to server 1 is dropped.
    DeletionSync,
}

struct RepairCase {
    name: &'static str,
    loss: Loss,
    /// Server 1's state of the instance when the sync is lost (`None`: not listed).
    stale: Option<CopyState>,
    /// Whether the responsible server still lists the instance (healthy) when it answers the pull.
    listed: bool,
}

/// nacos core/.../distro/task/verify/DistroVerifyTask.run (every verifyIntervalMillis = 5 s,
/// DistroConfig) sends every peer the checksums of the keys this server is responsible for
/// (DistroDataStorageImpl.getVerifyData); DistroProtocol.onVerify ->
/// DistroConsistencyServiceImpl.onReceiveChecksums queries the keys whose checksum differs or that
/// it lacks from the sender (queryFromRemote) and stores the answer (processData). So a copy that
/// missed a sync is repaired one round trip after the next round that reaches it, before the
/// failed sync's retry (GlobalConfig syncRetryDelay 5 s, after the simulator's 3 s ack timeout).
const REPAIRS: &[RepairCase] = &[
    RepairCase {
        name: "a missing copy (registration's sync lost on a cut link)",
        loss: Loss::CutLink,
        stale: None,
        listed: true,
    },
    RepairCase {
        name: "a stale copy (the deletion's sync dropped)",
        loss: Loss::DeletionSync,
        // The mark was never synced: server 1 still thinks it healthy (the status report that
        // would tell it comes only 60 s after the start).
        stale: Some(CopyState::Healthy),
        listed: false,
    },
];

#[test]
fn a_verify_round_repairs_a_copy_that_missed_a_sync() {
    const VERIFY: u64 = 5_000_000_000;
    // Two seeds: two phases of server 0's check (the stale case's mark and deletion move with
    // it). Seeds where the deletion falls less than the 2 s sync delay before a verify round
    // (12 to 15) repair through the pull that the differing flags trigger, before the sync is
    // even sent; the "stale copy" assertion below checks that the sync was the loss.
    for (seed, c) in [11, 16].into_iter().flat_map(|seed| REPAIRS.iter().map(move |c| (seed, c))) {
        let name = format!("{} (seed {seed})", c.name);
        let mut h = cluster(seed, &[DEMO]);
        let armed = Rc::new(Cell::new(false));
        let arm = Rc::clone(&armed);
        h.set_filter(move |from, to, m| {
            // A delayed sync, not the answer to a pull (seq u32::MAX): while the copies' flags
            // differ (the mark at 15-20 s is not synced), server 1 pulls on every verify round.
            let sync = matches!(m, Msg::Nacos(nacos::Msg::Sync { seq, .. }) if *seq != u32::MAX);
            if armed.get() && from == S[0] && to == S[1] && sync {
                armed.set(false);
                return Verdict::Drop;
            }
            Verdict::Deliver
        });
        let mut heal = SimTime::ZERO;
        if matches!(c.loss, Loss::CutLink) {
            h.run_until(at(400));
            h.cut_one_way(S[0], S[1]);
            heal = at(6_000);
        }
        h.run_until(at(500));
        let inst = instance(&mut h, ServiceId(0), &[S[0]]);
        if matches!(c.loss, Loss::DeletionSync) {
            h.run_until(at(1_000));
            h.pause(inst);
            h.run_until(at(26_000));
            arm.set(true);
        }
        h.run_until(heal);
        h.heal();
        h.run_until(at(55_000));

        let is_sync = |m: &Msg| matches!(m, Msg::Nacos(nacos::Msg::Sync { seq, .. }) if *seq != u32::MAX);
        let lost: Vec<SimTime> = sent_where(&h, |f, t, m| f == S[0] && t == S[1] && is_sync(m))
            .into_iter()
            .filter(|s| !s.4)
            .map(|s| s.0)
            .collect();
        assert_eq!(lost.len(), 1, "{name}: exactly one sync to server 1 lost");
        let lost = lost[0];
        let before: Option<Obs> = obs_of(&h, S[1], |o| matches!(o, Obs::Copy { .. }))
            .into_iter()
            .filter(|(t, _)| *t <= lost)
            .map(|(_, o)| o)
            .last();
        assert_eq!(before, c.stale.map(|state| Obs::Copy { instance: inst, state }), "{name}: stale copy");
        // The first verify round after the loss (and after the heal) reaches server 1.
        let round = SimTime((lost.max(heal).0 / VERIFY + 1) * VERIFY);
        let pulls: Vec<_> = sent_where(&h, |_, _, m| matches!(m, Msg::Nacos(nacos::Msg::Pull { .. })))
            .into_iter()
            .filter(|s| s.0 > lost)
            .collect();
        let expect = vec![(round + ms(1), S[1], S[0], Msg::Nacos(nacos::Msg::Pull { service: ServiceId(0) }), true)];
        assert_eq!(pulls, expect, "{name}: only server 1 pulls, on the checksums of round {round}");
        let answers: Vec<(SimTime, Vec<(NodeId, bool)>)> = sent_where(&h, |f, t, m| {
            f == S[0] && t == S[1] && matches!(m, Msg::Nacos(nacos::Msg::Sync { seq: u32::MAX, .. }))
        })
        .into_iter()
        .filter(|s| s.0 > lost)
        .map(|(t, _, _, m, _)| match m {
            Msg::Nacos(nacos::Msg::Sync { data, .. }) => (t, data.iter().map(|r| (r.instance, r.healthy)).collect()),
            _ => unreachable!(),
        })
        .collect();
        let listed = if c.listed { vec![(inst, true)] } else { vec![] };
        assert_eq!(answers, vec![(round + ms(2), listed)], "{name}: the responsible's copy");
        let repaired: Vec<(SimTime, Obs)> = obs_of(&h, S[1], |o| matches!(o, Obs::Copy { .. }))
            .into_iter()
            .filter(|(t, _)| *t > lost && *t <= round + ms(3))
            .collect();
        let state = if c.listed { CopyState::Healthy } else { CopyState::Absent };
        let expect = vec![(round + ms(3), Obs::Copy { instance: inst, state })];
        assert_eq!(repaired, expect, "{name}: stale from the lost sync until the pull's answer");
        let members = |n| copy(&h, n, ServiceId(0)).iter().map(|r| (r.instance, r.healthy)).collect::<Vec<_>>();
        assert_eq!(members(S[1]), members(S[0]), "{name}: repaired for good");
        // The failed sync is retried 3 s (ack timeout) + 5 s (retry delay) after it: later.
        let retry = lost + ms(8_000);
        let retries = sent_where(&h, |f, t, m| {
            f == S[0] && t == S[1] && matches!(m, Msg::Nacos(nacos::Msg::Sync { seq, .. }) if *seq != u32::MAX)
        });
        assert!(retries.iter().any(|s| s.0 == retry && s.4), "{name}: retried at {retry}");
        assert!(retry > round + ms(3), "{name}: the verify repaired first");
    }
}

/// nacos naming/.../web/DistroFilter.doFilter (1.4.6): the proxy is `HttpClient.request` with
/// `PROXY_READ_TIMEOUT` 2 s; any failure (refused, timed out) comes back as a 500 result,
/// which the filter writes to the client (`WebUtils.response(resp, data, result.getCode())`);
/// a proxied request (the server's User-Agent) at a server that is not responsible either is
/// answered 400 ("receive invalid redirect request from peer") and not applied. The client
/// tries its next server on any non-200 answer (`NamingProxy.callServer`). DEMO belongs to
/// server 0; the instance talks to server 1, which proxies.
#[test]
fn a_failed_proxy_answers_the_client_with_an_error_once() {
    type Setup = fn(&mut Harness<Node>);
    // (case, setup, when server 1 sends the instance an error (ms; the register reaches it at
    // 1 ms and is proxied then), whether an OK reaches the instance)
    let cases: &[(&str, Setup, Option<u64>, bool)] = &[
        ("answered: relayed", |_| {}, None, true),
        ("responsible server cut off: 500 at the 2 s read timeout", |h| h.cut(S[1], S[0]), Some(2_001), false),
        ("responsible process down: 500 when the refusal comes back", |h| h.crash(S[0]), Some(3), false),
        (
            "the answer comes after the timeout: 500 at 2 s, the late answer dropped",
            |h| {
                h.set_filter(|_, _, m| match m {
                    Msg::Nacos(nacos::Msg::ForwardOk { .. }) => Verdict::Delay(SimDuration::from_secs(3)),
                    _ => Verdict::Deliver,
                })
            },
            Some(2_001),
            false,
        ),
    ];
    for (case, setup, error_at, ok) in cases {
        let mut h = cluster(3, &[DEMO]);
        setup(&mut h);
        let inst = instance(&mut h, ServiceId(0), &[S[1]]);
        h.run_until(at(4_900));
        let to_inst = |want_ok: bool| {
            sent_where(&h, |from, to, m| {
                from == S[1]
                    && to == inst
                    && match m {
                        Msg::Registry(registry::Msg::WriteOk { .. }) => want_ok,
                        Msg::Registry(registry::Msg::WriteError { .. }) => !want_ok,
                        _ => false,
                    }
            })
        };
        let errors: Vec<SimTime> = to_inst(false).into_iter().map(|(t, ..)| t).collect();
        assert_eq!(errors, error_at.map(at).into_iter().collect::<Vec<_>>(), "{case}: errors");
        assert_eq!(!to_inst(true).is_empty(), *ok, "{case}: OK relayed");
        let failed =
            obs_of(&h, inst, |o| *o == Obs::Request { kind: crate::protocol::RequestKind::Register, ok: false });
        assert_eq!(failed.len(), usize::from(error_at.is_some()), "{case}: the client gave up on its only server");
    }
}

/// DistroFilter: a proxied write reaching a server that is not responsible in its own view is
/// rejected (400) and not applied.
#[test]
fn a_proxied_write_at_a_server_not_responsible_is_rejected() {
    let mut h = cluster(3, &[DEMO]);
    let origin = NodeId(9);
    h.inject(S[1], S[2], nacos::Msg::Forward { kind: Write::Register, origin, service: ServiceId(0), req: 4 });
    h.settle();
    let answers: Vec<(NodeId, NodeId, Msg)> =
        sent_where(&h, |from, _, _| from == S[2]).into_iter().map(|(_, f, t, m, _)| (f, t, m)).collect();
    assert!(answers.contains(&(S[2], S[1], Msg::Nacos(nacos::Msg::ForwardRejected { origin, req: 4 }))), "{answers:?}");
    assert!(copy(&h, S[2], ServiceId(0)).is_empty(), "not applied");
}
