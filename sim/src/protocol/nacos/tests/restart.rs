//! A server that restarts (Nacos 1.4.6): `DistroLoadDataTask` loads a snapshot from the first
//! peer that answers; a server with no data sends no checksums
//! (`DistroDataStorageImpl.getVerifyData`); a checksum message listing a key the receiver is
//! responsible for is ignored whole (`DistroConsistencyServiceImpl.onReceiveChecksums`).

use super::*;
use crate::protocol::CopyState;
use crate::protocol::nacos;
use crate::protocol::nacos::distro::{SNAPSHOT_RETRY, SNAPSHOT_TIMEOUT};

/// How server 1's snapshot load goes after its restart at 10 s.
struct LoadCase {
    name: &'static str,
    /// Server 0 is down (refuses) while server 1 restarts.
    first_down: bool,
    /// Server 1 is cut off from 10 s to 60 s.
    isolated: bool,
    /// (ms after the restart, peer) of each snapshot request.
    asks: &'static [(u64, u32)],
    /// ms after the restart when server 1's copy lists the instance again.
    filled: u64,
}

/// `DistroLoadDataTask.loadAllDataSnapshotFromRemote`: the peers in order
/// (`allMembersWithoutSelf`: 0 then 2 for server 1), the first answer wins; a refused request
/// fails after its round trip, a silent one after the 10 s read timeout; when every peer failed
/// the task runs again after `loadDataRetryDelayMillis` (30 s).
const LOADS: &[LoadCase] = &[
    LoadCase { name: "the first peer answers", first_down: false, isolated: false, asks: &[(0, 0)], filled: 2 },
    LoadCase {
        name: "a refusing peer is skipped at once",
        first_down: true,
        isolated: false,
        asks: &[(0, 0), (2, 2)],
        filled: 4,
    },
    LoadCase {
        name: "every peer silent: try again 30 s later",
        first_down: false,
        isolated: true,
        asks: &[(0, 0), (10_000, 2), (50_000, 0)],
        filled: 50_002,
    },
];

#[test]
fn a_restarted_server_loads_a_snapshot_from_the_first_peer_that_answers() {
    assert_eq!((SNAPSHOT_TIMEOUT, SNAPSHOT_RETRY), (ms(10_000), ms(30_000)));
    for c in LOADS {
        // Verify rounds are off here, so only the snapshot can refill the copy. (Every server
        // loads at the start too, from an empty peer.)
        let restart = at(10_000);
        let mut h = cluster_with(21, &[DEMO], |cfg| cfg.distro.skip_anti_entropy = true);
        h.run_until(at(500));
        let inst = instance(&mut h, ServiceId(0), &[S[0]]);
        h.run_until(at(9_000));
        h.crash(S[1]);
        if c.first_down {
            h.crash(S[0]);
        }
        h.run_until(at(10_000));
        if c.isolated {
            h.isolate(S[1]);
        }
        h.restart(S[1]);
        h.run_until(at(59_999));
        h.heal();
        h.run_until(at(70_000));
        let asks: Vec<(SimTime, NodeId)> =
            sent_where(&h, |f, _, m| f == S[1] && matches!(m, Msg::Nacos(nacos::Msg::SnapshotQuery { .. })))
                .into_iter()
                .filter(|s| s.0 >= restart)
                .map(|s| (s.0, s.2))
                .collect();
        let want: Vec<(SimTime, NodeId)> = c.asks.iter().map(|&(t, p)| (restart + ms(t), NodeId(p))).collect();
        assert_eq!(asks, want, "{}: the requests", c.name);
        let copies = obs_of(&h, S[1], |o| matches!(o, Obs::Copy { instance, .. } if *instance == inst));
        // Up to the fill (later, with server 0 down, the instance it was beating is deleted).
        let after: Vec<(SimTime, Obs)> =
            copies.into_iter().filter(|(t, _)| *t >= restart && *t <= restart + ms(c.filled)).collect();
        let want = vec![(restart + ms(c.filled), Obs::Copy { instance: inst, state: CopyState::Healthy })];
        assert_eq!(after, want, "{}: server 1's copy after the restart", c.name);
    }
}

/// The responsible server 0 restarts empty and cannot load (cut off from 10 s to 30 s): it
/// sends no checksums while it holds no data, so servers 1 and 2 keep their copies; it gets
/// the data back when the instance's next beat finds nothing there and the instance registers
/// again. (Sending its empty checksum list would make them drop the service.)
#[test]
fn a_server_without_data_sends_no_checksums() {
    let mut h = cluster(22, &[DEMO]);
    h.run_until(at(500));
    let inst = instance(&mut h, ServiceId(0), &[S[0], S[1], S[2]]);
    h.run_until(at(9_000));
    h.crash(S[0]);
    h.run_until(at(10_000));
    h.isolate(S[0]);
    h.restart(S[0]);
    h.run_until(at(30_000));
    h.heal();
    h.run_until(at(60_000));
    let verifies: Vec<SimTime> =
        sent_where(&h, |f, _, m| f == S[0] && matches!(m, Msg::Nacos(nacos::Msg::Verify { .. })))
            .into_iter()
            .map(|s| s.0)
            .filter(|t| *t >= at(10_000))
            .collect();
    let refilled = obs_of(&h, S[0], |o| *o == Obs::Copy { instance: inst, state: CopyState::Healthy });
    let refilled = refilled.iter().map(|(t, _)| *t).find(|t| *t > at(10_000)).expect("server 0 has it again");
    assert!(refilled > at(30_000), "not before the heal: {refilled}");
    assert!(verifies.iter().all(|t| *t > refilled), "no checksums while empty: {verifies:?}, data at {refilled}");
    assert!(!verifies.is_empty(), "checksums again once it has data");
    for peer in [S[1], S[2]] {
        let lost = obs_of(&h, peer, |o| *o == Obs::Copy { instance: inst, state: CopyState::Absent });
        assert!(lost.is_empty(), "server {peer} kept the instance: {lost:?}");
    }
}

/// `onReceiveChecksums` returns at the first key the receiver is responsible for, before it
/// pulls anything: server 2 sends server 0 checksums of its own service `payment` (stale for
/// server 0) and of `demo`, which is server 0's. Server 0 pulls nothing; the same message
/// without `demo` makes it pull `payment`.
#[test]
fn checksums_listing_a_key_of_the_receiver_are_ignored() {
    for (with_demo, pulls) in [(true, 0), (false, 1)] {
        let mut h = cluster(23, &[DEMO, "DEFAULT_GROUP@@payment"]);
        h.run_until(at(1_000));
        let mut checksums = vec![(ServiceId(1), 0xfeed)];
        if with_demo {
            checksums.insert(0, (ServiceId(0), 0xbeef));
        }
        h.inject(S[2], S[0], nacos::Msg::Verify { checksums: Arc::new(checksums) });
        h.run_until(at(1_010));
        let sent = sent_where(&h, |f, _, m| f == S[0] && matches!(m, Msg::Nacos(nacos::Msg::Pull { .. })));
        assert_eq!(sent.len(), pulls, "with demo listed: {with_demo}: {sent:?}");
    }
}
