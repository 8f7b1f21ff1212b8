//! UDP push to subscribers (`PushService`): debounce, ack and resend, zombie clients.

use regsim_kernel::harness::Verdict;

use super::*;
use crate::protocol::registry;

/// A consumer subscribes by polling server `via` (at 0 s, then every 10 s after each answer);
/// instances of the service register at the responsible server 0 at `registers` (ms).
struct PushCase {
    name: &'static str,
    via: usize,
    drop_acks: bool,
    crash_consumer: Option<u64>,
    registers: &'static [u64],
    end: u64,
    /// Pushes to the consumer: (sent at, ms; indices into `registers` of the instances listed).
    expect: &'static [(u64, &'static [usize])],
}

/// nacos naming/.../push/PushService: `serviceChanged` schedules one push 1 s later and ignores
/// changes while it waits (`futureMap`), the list being read when it runs
/// (`onApplicationEvent`). `udpPush` stores the entry in `ackMap` and the Retransmitter resends
/// it after ACK_TIMEOUT_NANOS (10 s) while unacked; the send after MAX_RETRY_TIMES (1) resend gives
/// up: two sends in all. A client is dropped as a zombie when it has not refreshed (queried) for
/// `pushCacheMillis` (SwitchDomain defaultPushCacheMillis, 10 s; PushClient.zombie), checked when a
/// push runs: acks do not keep it. Every server pushes to its own subscribers when its copy
/// changes, by a client write or a Distro sync (Service.onChange -> updateIPs). ANCHORS
/// "Subscribers".
const PUSHES: &[PushCase] = &[
    PushCase {
        name: "one change, acked: one push 1 s later",
        via: 0,
        drop_acks: false,
        crash_consumer: None,
        registers: &[1_000],
        end: 25_000,
        expect: &[(2_001, &[0])],
    },
    PushCase {
        name: "a change within the debounce rides on the first's push",
        via: 0,
        drop_acks: false,
        crash_consumer: None,
        registers: &[1_000, 1_500],
        end: 25_000,
        expect: &[(2_001, &[0, 1])],
    },
    PushCase {
        name: "a change after the push went gets its own",
        via: 0,
        drop_acks: false,
        crash_consumer: None,
        registers: &[1_000, 2_500],
        end: 25_000,
        expect: &[(2_001, &[0]), (3_501, &[0, 1])],
    },
    PushCase {
        name: "unacked: resent once 10 s later, then given up (it still polls, so it stays subscribed)",
        via: 0,
        drop_acks: true,
        crash_consumer: None,
        registers: &[1_000],
        end: 35_000,
        expect: &[(2_001, &[0]), (12_001, &[0])],
    },
    PushCase {
        name: "a subscriber of server 1 is pushed once the Distro sync reaches server 1",
        via: 1,
        drop_acks: false,
        crash_consumer: None,
        registers: &[1_000],
        end: 25_000,
        expect: &[(4_002, &[0])],
    },
    PushCase {
        // Last query at 1 ms: live at 9.001 s (9 s), a zombie at 22.001 s (22 s > 10 s).
        name: "a crashed subscriber: resent once, then dropped when it stopped querying",
        via: 0,
        drop_acks: false,
        crash_consumer: Some(5_000),
        registers: &[8_000, 21_000],
        end: 35_000,
        expect: &[(9_001, &[0]), (19_001, &[0])],
    },
];

#[test]
fn changes_are_pushed_after_the_debounce_and_unacked_pushes_resent_once() {
    for c in PUSHES {
        let mut h = cluster(19, &[DEMO]);
        if c.drop_acks {
            h.set_filter(|_, _, m| match m {
                Msg::Registry(registry::Msg::PushAck { .. }) => Verdict::Drop,
                _ => Verdict::Deliver,
            });
        }
        let sub = consumer(&mut h, S[c.via]);
        let mut insts = Vec::new();
        let mut crash = c.crash_consumer;
        for &t in c.registers {
            if let Some(at_ms) = crash.filter(|x| *x <= t) {
                h.run_until(at(at_ms));
                h.crash(sub);
                crash = None;
            }
            h.run_until(at(t));
            insts.push(instance(&mut h, ServiceId(0), &[S[0]]));
        }
        h.run_until(at(c.end));

        let pushes: Vec<(SimTime, NodeId, Vec<NodeId>, u64)> =
            sent_where(&h, |_, to, m| to == sub && matches!(m, Msg::Registry(registry::Msg::Push { .. })))
                .into_iter()
                .map(|(t, from, _, m, _)| match m {
                    Msg::Registry(registry::Msg::Push { instances, push_id, .. }) => {
                        (t, from, instances.to_vec(), push_id)
                    }
                    _ => unreachable!(),
                })
                .collect();
        let listed: Vec<(SimTime, NodeId, Vec<NodeId>)> = pushes.iter().map(|p| (p.0, p.1, p.2.clone())).collect();
        let expect: Vec<(SimTime, NodeId, Vec<NodeId>)> =
            c.expect.iter().map(|&(t, idx)| (at(t), S[c.via], idx.iter().map(|&i| insts[i]).collect())).collect();
        assert_eq!(listed, expect, "{}: pushes to the subscriber", c.name);
        // A subscriber that runs acks each push at once, with its id.
        let acks: Vec<(SimTime, NodeId, u64)> =
            sent_where(&h, |from, _, m| from == sub && matches!(m, Msg::Registry(registry::Msg::PushAck { .. })))
                .into_iter()
                .map(|(t, _, to, m, _)| match m {
                    Msg::Registry(registry::Msg::PushAck { push_id }) => (t, to, push_id),
                    _ => unreachable!(),
                })
                .collect();
        let expect: Vec<(SimTime, NodeId, u64)> =
            if c.crash_consumer.is_some() { vec![] } else { pushes.iter().map(|p| (p.0 + ms(1), p.1, p.3)).collect() };
        assert_eq!(acks, expect, "{}: acks", c.name);
        if c.drop_acks {
            assert_ne!(pushes[0].3, pushes[1].3, "{}: a resend is a new packet of the same list", c.name);
        }
        if c.crash_consumer.is_none() {
            let view = match h.actor(sub) {
                Node::Consumer(x) => x.view().to_vec(),
                _ => unreachable!(),
            };
            assert_eq!(view, insts, "{}: the subscriber's view", c.name);
        }
    }
}
