//! A consumer's view (the Nacos 1.x client's subscription cache): its first query, its polling,
//! the backoff of failed polls, and UDP pushes with their acks. One Nacos server (node 0);
//! consumers make no calls here (rate 0).

use super::*;
use crate::protocol::{ClientOp, RequestKind, registry};
use regsim_kernel::harness::Verdict;

/// The consumer's list queries: (time, request id).
fn queries(h: &Harness<Node>, me: NodeId) -> Vec<(SimTime, u64)> {
    sent_by(h, me)
        .into_iter()
        .filter_map(|(t, _, m)| match m {
            Msg::Registry(registry::Msg::Query { service: SERVICE, req }) => Some((t, req)),
            _ => None,
        })
        .collect()
}

/// The consumer's view changes: (time, instance, present).
fn changes(h: &Harness<Node>, me: NodeId) -> Vec<(SimTime, NodeId, bool)> {
    obs(h, me)
        .into_iter()
        .filter_map(|(t, o)| match o {
            Obs::View { instance, present } => Some((t, instance, present)),
            _ => None,
        })
        .collect()
}

fn query_outcomes(h: &Harness<Node>, me: NodeId) -> Vec<(SimTime, bool)> {
    obs(h, me)
        .into_iter()
        .filter_map(|(t, o)| match o {
            Obs::Request { kind: RequestKind::Query, ok } => Some((t, ok)),
            _ => None,
        })
        .collect()
}

/// Nacos 1.4.1 `HostReactor.getServiceInfo`: the first `subscribe` finds no cached service and
/// queries at once (`updateServiceNow`, synchronous); `UpdateTask.run` then, after each
/// successful query with hosts, schedules itself `serviceObj.getCacheMillis()` later (10 s with
/// push on: `SwitchDomain.defaultPushCacheMillis`), counted from the end of that run, so a slow
/// answer delays the next poll. The cache keeps the healthy hosts; each membership change is an
/// `Obs::View`. The very first gap is not asserted: Nacos runs the first `UpdateTask` 1 s
/// (`DEFAULT_DELAY`) after the subscription (`addTask`), the view 10 s after it (see the report).
#[test]
fn the_first_query_fills_the_view_and_polls_follow_each_answer_by_poll_interval() {
    let (mut h, servers) = cluster(1, 1);
    let a = h.add(instance(&servers));
    let b = h.add(instance(&servers));
    h.run_until(at(secs(2)));
    // Every list answer takes 500 ms more.
    h.set_filter(|_, _, m| match m {
        Msg::Registry(registry::Msg::QueryOk { .. }) => Verdict::Delay(ms(500)),
        _ => Verdict::Deliver,
    });
    let me = h.add(consumer(&servers, "random", 0.0, 1));
    h.run_until(at(secs(45)));

    let q = queries(&h, me);
    assert_eq!(q[0].0, at(secs(2)), "the subscription queries at once");
    let first_answer = at(ms(2502));
    let mine = obs(&h, me);
    assert!(mine.contains(&(at(secs(2)), Obs::OpStart { req: q[0].1, op: ClientOp::List(SERVICE) })));
    assert!(mine.contains(&(first_answer, Obs::OpDone { req: q[0].1, result: Some(list(&[a.0, b.0])) })));
    assert_eq!(changes(&h, me), vec![(first_answer, a, true), (first_answer, b, true)], "one change per instance");
    assert_eq!(view_of(&h, me), vec![a, b]);
    // From the second poll on: each answer (502 ms after its query) + 10 s.
    let times: Vec<SimTime> = q.iter().map(|(t, _)| *t).collect();
    let gaps: Vec<SimDuration> = times.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, vec![ms(10_502); 3], "polls at {times:?}");
    // Each poll is a new request, and every one succeeded.
    assert!(q.windows(2).all(|w| w[0].1 < w[1].1));
    assert_eq!(query_outcomes(&h, me).iter().filter(|(_, ok)| *ok).count(), q.len());
}

/// Nacos 1.4.1 `HostReactor.UpdateTask.run`: a failed poll calls `incFailCount` (`failCount`
/// capped at 6) and the next run comes `Math.min(delayTime << failCount, DEFAULT_DELAY * 60)`
/// later, so polls against a dead registry settle at one every 60 s (ANCHORS.md: capped at
/// 60 s); the first successful run with hosts calls `resetFailCount` and schedules the next run
/// `cacheMillis` (10 s) later. Only that steady state and the reset are asserted: the first
/// delays differ from Nacos' `1 s << failCount` (see the report). A refused query fails 2 ms
/// after it is sent, so each gap is the delay + 2 ms.
#[test]
fn failed_polls_back_off_to_backoff_max_and_an_answer_resets_the_interval() {
    let (mut h, servers) = cluster(1, 1);
    h.run_until(SimTime::ZERO);
    h.crash(servers[0]);
    let inst = h.add(instance(&servers));
    let me = h.add(consumer(&servers, "random", 0.0, 1));
    h.run_until(at(secs(400)));

    let times: Vec<SimTime> = queries(&h, me).into_iter().map(|(t, _)| t).collect();
    let gaps: Vec<SimDuration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let cap = secs(60) + ms(2);
    assert!(gaps.len() >= 6, "polls at {times:?}");
    assert!(gaps.windows(2).all(|w| w[0] <= w[1]), "the delay never shrinks while polls fail: {gaps:?}");
    assert!(gaps.iter().all(|g| *g <= cap), "capped at backoff_max: {gaps:?}");
    assert_eq!(gaps[gaps.len() - 3..], [cap, cap, cap], "steady state: {gaps:?}");
    let failed = query_outcomes(&h, me);
    assert_eq!(failed.len(), times.len(), "one outcome per poll (one server, one try)");
    assert!(failed.iter().zip(&times).all(|((t, ok), sent)| !ok && *t == *sent + ms(2)), "{failed:?}");

    // The server comes back; the instance's next beat is answered "not found" and it
    // registers again, so the next poll returns a host.
    h.restart(servers[0]);
    h.run_until(at(secs(500)));
    let ok: Vec<SimTime> = query_outcomes(&h, me).into_iter().filter(|(_, ok)| *ok).map(|(t, _)| t).collect();
    let answer = ok[0];
    assert!(changes(&h, me).contains(&(answer, inst, true)), "the answer lists the instance");
    let after: Vec<SimTime> = queries(&h, me).into_iter().map(|(t, _)| t).filter(|t| *t > answer).take(2).collect();
    assert_eq!(after, vec![answer + secs(10), answer + secs(20) + ms(2)], "back to poll_interval");
}

struct PushCase {
    name: &'static str,
    /// The view before the push (set by an earlier push) and the pushed list.
    before: &'static [u32],
    pushed: &'static [u32],
    /// The view changes the push makes, in order.
    changes: &'static [(u32, bool)],
}

/// Nacos 1.4.1 `PushReceiver.run`: a UDP push of type "dom"/"service" goes to
/// `hostReactor.processServiceJson` (the cache takes the pushed list, an empty one included:
/// `pushEmptyProtection` is off by default) and every push is acked ("push-ack" with its
/// `lastRefTime`) to the address it came from, changed or not. ANCHORS.md: "the push waits 10 s
/// for an ack". Pushes are injected from the server here; ids are instance node ids that make
/// no calls.
#[test]
fn a_push_replaces_the_view_and_is_acked_to_its_sender() {
    let cases = [
        PushCase { name: "first list", before: &[], pushed: &[7, 8], changes: &[(7, true), (8, true)] },
        PushCase { name: "one joins", before: &[7], pushed: &[7, 8], changes: &[(8, true)] },
        PushCase { name: "one leaves", before: &[7, 8], pushed: &[8], changes: &[(7, false)] },
        PushCase { name: "one replaced", before: &[7, 8], pushed: &[8, 9], changes: &[(7, false), (9, true)] },
        PushCase { name: "unchanged", before: &[7, 8], pushed: &[7, 8], changes: &[] },
        PushCase { name: "emptied", before: &[7, 8], pushed: &[], changes: &[(7, false), (8, false)] },
    ];
    for case in &cases {
        let (mut h, servers) = cluster(1, 1);
        let server = servers[0];
        let me = h.add(consumer(&servers, "random", 0.0, 1));
        let push =
            |instances: &[u32], push_id| registry::Msg::Push { service: SERVICE, instances: list(instances), push_id };
        h.run_until(at(secs(1)));
        h.inject(server, me, push(case.before, 100));
        h.run_until(at(secs(2)));
        h.clear_observed();
        h.inject(server, me, push(case.pushed, 101));
        h.run_until(at(secs(3)));
        let arrived = at(ms(2001));
        let want: Vec<(SimTime, NodeId, bool)> = case.changes.iter().map(|(n, p)| (arrived, NodeId(*n), *p)).collect();
        assert_eq!(changes(&h, me), want, "{}: view changes", case.name);
        assert_eq!(view_of(&h, me), list(case.pushed).to_vec(), "{}: view", case.name);
        let acks: Vec<(SimTime, NodeId, Msg)> = sent_by(&h, me)
            .into_iter()
            .filter(|(_, _, m)| matches!(m, Msg::Registry(registry::Msg::PushAck { .. })))
            .collect();
        let ack = |t, push_id| (t, server, Msg::Registry(registry::Msg::PushAck { push_id }));
        assert_eq!(acks, vec![ack(at(ms(1001)), 100), ack(arrived, 101)], "{}: acks", case.name);
    }
}

/// End to end with the server's own pushes (ANCHORS.md: on a change the responsible server
/// pushes after a 1 s debounce, waits 10 s for the ack, resends once): a joining instance, the
/// same instance marked unhealthy after 15 s without beats, then deleted after 30 s. Each
/// push reaches the view 1 ms after it is sent and is acked at once (so never resent). The
/// mark's push still lists the instance: it is the service's only one, and with none healthy
/// the protect threshold (0 by default: healthy / all <= 0) makes the server list every
/// instance (`InstanceController.doSrvIpxt`); only the deletion's push empties the view. The
/// consumer's polls of the empty service count as failures (`HostReactor`: an empty list backs
/// off `1 s << failCount`: 2 s, 4 s, ...), so its first poll after the registration at 6 s
/// lists the instance; the deletion falls between polls and only the push reports it.
#[test]
fn server_pushes_reach_the_view_and_are_acked() {
    let (mut h, servers) = cluster(2, 1);
    let server = servers[0];
    let me = h.add(consumer(&servers, "random", 0.0, 1));
    h.run_until(at(secs(6)));
    let inst = h.add(instance(&servers));
    h.run_until(at(secs(8)));
    h.crash(inst);
    h.run_until(at(secs(55)));

    let server_obs = obs(&h, server);
    let when = |o: Obs| server_obs.iter().find(|(_, x)| *x == o).map(|(t, _)| *t).expect("server observation");
    let registered = when(Obs::Registered { instance: inst });
    let unhealthy = when(Obs::MarkedUnhealthy { instance: inst });
    let deleted = when(Obs::Deleted { instance: inst });
    assert_eq!(registered, at(ms(6001)));
    let pushes: Vec<(SimTime, InstanceList, u64)> = sent_by(&h, server)
        .into_iter()
        .filter(|(_, to, _)| *to == me)
        .filter_map(|(t, _, m)| match m {
            Msg::Registry(registry::Msg::Push { instances, push_id, .. }) => Some((t, instances, push_id)),
            _ => None,
        })
        .collect();
    let sent_at: Vec<(SimTime, InstanceList)> = pushes.iter().map(|(t, l, _)| (*t, Arc::clone(l))).collect();
    let debounce = secs(1);
    assert_eq!(
        sent_at,
        vec![
            (registered + debounce, list(&[inst.0])),
            (unhealthy + debounce, list(&[inst.0])),
            (deleted + debounce, list(&[]))
        ],
        "one push per change, none resent"
    );
    let acks: Vec<(SimTime, NodeId, Msg)> = sent_by(&h, me)
        .into_iter()
        .filter(|(_, _, m)| matches!(m, Msg::Registry(registry::Msg::PushAck { .. })))
        .collect();
    let want: Vec<(SimTime, NodeId, Msg)> = pushes
        .iter()
        .map(|(t, _, id)| (*t + ms(1), server, Msg::Registry(registry::Msg::PushAck { push_id: *id })))
        .collect();
    assert_eq!(acks, want, "each push acked on arrival");
    let poll = (sent_by(&h, me).into_iter())
        .find(|(t, _, m)| *t > registered && matches!(m, Msg::Registry(registry::Msg::Query { .. })))
        .map(|(t, _, _)| t)
        .expect("a poll after the registration");
    assert!(poll < registered + debounce, "the backed-off poll comes before the push: {poll}");
    assert_eq!(changes(&h, me), vec![(poll + ms(2), inst, true), (deleted + debounce + ms(1), inst, false)]);
}
