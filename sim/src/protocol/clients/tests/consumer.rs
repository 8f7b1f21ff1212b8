//! A consumer's calls: the instance its balancer picks from its view, failover of a refused or
//! timed-out attempt to another instance (Go kit style retry), and the observations the metrics
//! grade (`CallSent`, `CallDone`, `View`). One Nacos server (node 0), three instances (nodes 1,
//! 2, 3, registered at 1 ms), one consumer (node 4, subscribed at 1 s, so its view is [1, 2, 3]),
//! round-robin balancer (`rr`: view[0], view[1], ... in turn), call timeout 1 s.

use super::*;
use crate::protocol::{RequestKind, clients};

/// The consumer's calls: (time, instance, request id).
fn calls(h: &Harness<Node>, me: NodeId) -> Vec<(SimTime, NodeId, u64)> {
    sent_by(h, me)
        .into_iter()
        .filter_map(|(t, to, m)| match m {
            Msg::App(clients::Msg::Call { req }) => Some((t, to, req)),
            _ => None,
        })
        .collect()
}

/// A `CallDone`: (time, ok, latency).
type Done = (SimTime, bool, SimDuration);

/// The consumer's `CallSent` (time, instance) and `CallDone` observations.
fn call_obs(h: &Harness<Node>, me: NodeId) -> (Vec<(SimTime, NodeId)>, Vec<Done>) {
    let mut sent = Vec::new();
    let mut done = Vec::new();
    for (t, o) in obs(h, me) {
        match o {
            Obs::CallSent { instance } => sent.push((t, instance)),
            Obs::CallDone { ok, latency } => done.push((t, ok, latency)),
            _ => {}
        }
    }
    (sent, done)
}

/// Server, three instances, and a consumer added at 1 s making `rate` calls per second.
fn world(seed: u64, rate: f64, max_attempts: u32) -> (Harness<Node>, [NodeId; 3], NodeId) {
    let (mut h, servers) = cluster(seed, 1);
    let instances = [(); 3].map(|_| h.add(instance(&servers)));
    h.run_until(at(secs(1)));
    let me = h.add(consumer(&servers, "rr", rate, max_attempts));
    (h, instances, me)
}

#[derive(Clone, Copy, Debug)]
enum Inst {
    Up,
    /// Crashed 1 ms before the call: the attempt is refused 2 ms after it is sent.
    Refuses,
    /// Cut from the consumer 1 ms before the call: the attempt times out after 1 s.
    Silent,
}
use Inst::{Refuses, Silent, Up};

struct Case {
    name: &'static str,
    max_attempts: u32,
    /// The instances by their place in the view.
    instances: [Inst; 3],
    /// The attempts: (ms after the first, place in the view).
    attempts: &'static [(u64, usize)],
    /// The call's end: success and latency (ms, from the first attempt).
    ok: bool,
    latency_ms: u64,
}

const SEED: u64 = 6;
/// Calls per second: low, so no second call starts while the first one is being checked.
const RATE: f64 = 0.2;

/// Go kit `sd/lb/retry.go` `RetryWithCallback`: an attempt that fails (the endpoint returns an
/// error: refused connection, or its own timeout) is retried on the endpoint the balancer gives
/// next while `n < max` (`maxRetries`); the first answer ends the call. ANCHORS.md: "lb.Retry(max,
/// timeout, balancer) retries on the next endpoint the balancer gives until max attempts". With
/// round robin the next endpoint is the next instance of the view. `CallSent` names each
/// attempt's instance at its send time; `CallDone` comes once per call, with the time from the
/// first attempt to the answer or the last failure.
#[test]
fn a_failed_attempt_is_retried_on_the_next_instance_up_to_max_attempts() {
    let cases = [
        Case {
            name: "answered",
            max_attempts: 3,
            instances: [Up, Up, Up],
            attempts: &[(0, 0)],
            ok: true,
            latency_ms: 2,
        },
        Case {
            name: "refused, retried",
            max_attempts: 3,
            instances: [Refuses, Up, Up],
            attempts: &[(0, 0), (2, 1)],
            ok: true,
            latency_ms: 4,
        },
        Case {
            name: "timed out, retried",
            max_attempts: 3,
            instances: [Silent, Up, Up],
            attempts: &[(0, 0), (1000, 1)],
            ok: true,
            latency_ms: 1002,
        },
        Case {
            name: "timed out, refused, answered",
            max_attempts: 3,
            instances: [Silent, Refuses, Up],
            attempts: &[(0, 0), (1000, 1), (1002, 2)],
            ok: true,
            latency_ms: 1004,
        },
        Case {
            name: "no retry with max_attempts 1",
            max_attempts: 1,
            instances: [Refuses, Up, Up],
            attempts: &[(0, 0)],
            ok: false,
            latency_ms: 2,
        },
        Case {
            name: "attempts used up",
            max_attempts: 2,
            instances: [Refuses, Silent, Up],
            attempts: &[(0, 0), (2, 1)],
            ok: false,
            latency_ms: 1002,
        },
        Case {
            name: "every instance refuses",
            max_attempts: 3,
            instances: [Refuses, Refuses, Refuses],
            attempts: &[(0, 0), (2, 1), (4, 2)],
            ok: false,
            latency_ms: 6,
        },
    ];
    // Without faults: when the first call starts, and that the next one starts well after it.
    let (mut probe, _, me) = world(SEED, RATE, 1);
    probe.run_until(at(secs(15)));
    let starts: Vec<SimTime> = call_obs(&probe, me).0.into_iter().map(|(t, _)| t).collect();
    let first = starts[0];
    assert!(first > at(ms(1002)) && first < at(secs(14)), "the first call at {first} (seed {SEED})");
    assert!(starts.get(1).is_none_or(|t| *t > first + secs(3)), "the second call at {starts:?} (seed {SEED})");

    for case in &cases {
        let name = case.name;
        let (mut h, instances, me) = world(SEED, RATE, case.max_attempts);
        h.run_until(SimTime(first.0 - ms(1).0));
        assert_eq!(view_of(&h, me), instances.to_vec(), "{name}: view");
        for (inst, fault) in instances.iter().zip(case.instances) {
            match fault {
                Up => {}
                Refuses => h.crash(*inst),
                Silent => h.cut(me, *inst),
            }
        }
        h.run_until(first + secs(3));

        let mine = calls(&h, me);
        let req = mine[0].2;
        let attempts: Vec<(SimTime, NodeId)> = mine.iter().filter(|c| c.2 == req).map(|(t, n, _)| (*t, *n)).collect();
        let want: Vec<(SimTime, NodeId)> =
            case.attempts.iter().map(|(t, place)| (first + ms(*t), instances[*place])).collect();
        assert_eq!(attempts, want, "{name}: attempts (time, instance)");
        let (sent, done) = call_obs(&h, me);
        assert_eq!(sent, want, "{name}: CallSent");
        let end = first + ms(case.latency_ms);
        assert_eq!(done, vec![(end, case.ok, ms(case.latency_ms))], "{name}: CallDone");
        assert!(obs(&h, me).contains(&(end, Obs::Request { kind: RequestKind::Call, ok: case.ok })), "{name}");
    }
}

/// Calls go only to instances in the view (Nacos' `selectInstances(healthy)` feeding the
/// balancer). Instance 1 dies at 3 s; until the server marks it unhealthy (15–20 s after its
/// last beat) and pushes the list (1 s later), calls that pick it are refused and retried on the
/// next instance 2 ms later (`max_attempts` 2), so every call succeeds; once the push removed it
/// (`View { present: false }`), the balancer is rebuilt on [2, 3] and first attempts alternate
/// between them.
#[test]
fn calls_follow_the_view_and_a_dead_instance_costs_one_retry_until_pushed_out() {
    let (mut h, [a, b, c], me) = world(4, 2.0, 2);
    h.run_until(at(secs(3)));
    h.crash(a);
    h.run_until(at(secs(30)));

    let removed: Vec<SimTime> = obs(&h, me)
        .into_iter()
        .filter(|(_, o)| *o == Obs::View { instance: a, present: false })
        .map(|(t, _)| t)
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    let removed = removed[0];
    // Last beat heard: the registration at 1 ms; unhealthy after > 15 s at a 5 s check, + 1 s
    // debounce, + 1 ms to the consumer.
    assert!(removed > at(ms(16_002)) && removed <= at(ms(21_002)), "removed at {removed}");
    assert_eq!(view_of(&h, me), vec![b, c]);

    let mut by_req: std::collections::BTreeMap<u64, Vec<(SimTime, NodeId)>> = Default::default();
    for (t, n, req) in calls(&h, me) {
        by_req.entry(req).or_default().push((t, n));
    }
    let (mut retried, mut after) = (0, Vec::new());
    for attempts in by_req.values() {
        let (t0, n0) = attempts[0];
        if t0 > removed {
            assert_eq!(attempts.len(), 1, "after the push no call reaches {a}: {attempts:?}");
            after.push(n0);
        } else if n0 == a && t0 > at(secs(3)) {
            assert_eq!(attempts.len(), 2, "a refused first attempt is retried: {attempts:?}");
            assert_eq!(attempts[1].0, t0 + ms(2), "{attempts:?}");
            assert_ne!(attempts[1].1, a, "{attempts:?}");
            retried += 1;
        } else {
            assert_eq!(attempts.len(), 1, "{attempts:?}");
        }
    }
    assert!(retried > 0 && after.len() > 5, "retried {retried}, calls after the push {}", after.len());
    assert!(after.windows(2).all(|w| w[0] != w[1] && [b, c].contains(&w[0])), "alternating: {after:?}");
    let (sent, done) = call_obs(&h, me);
    assert_eq!(sent.len(), by_req.values().map(Vec::len).sum::<usize>(), "one CallSent per attempt");
    assert_eq!(done.len(), by_req.len(), "one CallDone per call");
    assert!(done.iter().all(|(_, ok, _)| *ok), "every call succeeds");
    let slow = done.iter().filter(|(_, _, l)| *l == ms(4)).count();
    assert_eq!((slow, done.len() - slow), (retried, done.iter().filter(|(_, _, l)| *l == ms(2)).count()));
}
