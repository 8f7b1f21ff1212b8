//! Tests of `gateway` (a child module: they reach its private items).

use super::*;
use crate::balance::keys::KeyDist;
use crate::protocol::registry;
use crate::protocol::testing::Harness;
use crate::protocol::{InstanceList, QueryAnswer, ServiceId};

fn gateway(breaker: Option<BreakerConfig>, rate_limit: Option<(f64, u32)>) -> Gateway {
    let keys = KeySampler::new(&"unique".parse::<KeyDist>().expect("keys"), 1).expect("sampler");
    let config = GatewayConfig {
        service_name: "api".into(),
        view: Arc::new(ViewConfig {
            service: ServiceId(0),
            servers: Arc::from([NodeId(0)]),
            poll_interval: SimDuration::from_secs(10),
            backoff_max: SimDuration::from_secs(60),
            query_timeout: SimDuration::from_secs(3),
        }),
        balancer: crate::balance::parse_spec("rr").expect("spec").remove(0),
        keys: Arc::new(keys),
        attempt_timeout: Some(SimDuration::from_secs(1)),
        max_attempts: 3,
        retry_timeout: SimDuration::from_secs(3),
        breaker,
        rate_limit,
        buckets: Arc::from(crate::monitor::histogram::DEFAULT_BUCKETS),
    };
    Gateway::new(Arc::new(config)).expect("gateway")
}

/// A gateway whose view holds instances 5, 6 and 7.
fn started(g: &mut Gateway, h: &mut Harness) {
    h.at(0.0, |c| g.on_start(c));
    fill_view(g, h);
}

/// Answers the gateway's first poll with instances 5, 6 and 7.
fn fill_view(g: &mut Gateway, h: &mut Harness) {
    let list: InstanceList = Arc::new(vec![NodeId(5), NodeId(6), NodeId(7)]);
    let answer = Arc::new(QueryAnswer { instances: Arc::clone(&list), registered: list });
    h.at(0.01, |c| g.on_message(c, NodeId(0), Msg::Registry(registry::Msg::QueryOk { req: 1, answer })));
    assert_eq!(g.view(), &[NodeId(5), NodeId(6), NodeId(7)]);
}

fn upstream(out: &crate::protocol::testing::Out) -> Vec<(NodeId, u64)> {
    out.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::App(clients::Msg::Call { req }) => Some((to, req)),
            _ => None,
        })
        .collect()
}

fn replies(out: &crate::protocol::testing::Out) -> Vec<Msg> {
    out.sent().into_iter().filter(|(to, _)| *to == NodeId(9)).map(|(_, m)| m).collect()
}

/// A refused attempt is retried at once on another instance; the client gets 200; the
/// late answer of an attempt that timed out is ignored.
#[test]
fn retries_on_another_instance_and_ignores_late_answers() {
    let mut g = gateway(None, None);
    let mut h = Harness::new(NodeId(20));
    started(&mut g, &mut h);
    let out = h.at(1.0, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 77 })));
    let [(first, ureq)] = upstream(&out)[..] else { panic!("one attempt: {:?}", out.sent()) };
    let out = h.at(1.01, |c| g.on_refused(c, first, Msg::App(clients::Msg::Call { req: ureq })));
    let [(second, ureq2)] = upstream(&out)[..] else { panic!("a retry: {:?}", out.sent()) };
    assert_ne!(first, second, "the retry goes to another instance");
    // The second attempt times out; the third is sent.
    let out = h.at(2.01, |c| g.on_timer(c, Timer::App(clients::Timer::CallTimeout { req: ureq2 >> 4, attempt: 2 })));
    let [(third, ureq3)] = upstream(&out)[..] else { panic!("a third attempt: {:?}", out.sent()) };
    assert!(third != first && third != second);
    // The second instance answers late: ignored.
    let out = h.at(2.02, |c| g.on_message(c, second, Msg::App(clients::Msg::CallOk { req: ureq2 })));
    assert!(replies(&out).is_empty());
    let out = h.at(2.03, |c| g.on_message(c, third, Msg::App(clients::Msg::CallOk { req: ureq3 })));
    assert_eq!(replies(&out), vec![Msg::App(clients::Msg::CallOk { req: 77 })]);
    assert!(out.obs.contains(&Obs::ApiDone { code: Code::Ok, attempts: 3, latency: SimDuration::from_millis(1030) }));
    let e = g.exposition();
    let value = |name: &str, pairs: &[(&str, &str)]| {
        let l = Labels::metric(name, pairs);
        e.samples.iter().find(|s| s.0 == l).map(|s| s.1)
    };
    assert_eq!(value("gateway_requests_total", &[("code", "200"), ("service", "api")]), Some(1.0));
    assert_eq!(value("gateway_retries_total", &[("service", "api")]), Some(2.0));
    let refused = [("instance", first.to_string()), ("outcome", "refused".into()), ("service", "api".into())];
    let refused: Vec<(&str, &str)> = refused.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(value("requests_total", &refused), Some(1.0));
    assert_eq!(value("gateway_request_duration_seconds_count", &[("service", "api")]), Some(1.0));
}

/// Every attempt failing ends in 502; a request whose budget runs out ends in 504.
#[test]
fn exhausted_attempts_and_budget() {
    let mut g = gateway(None, None);
    let mut h = Harness::new(NodeId(20));
    started(&mut g, &mut h);
    h.at(1.0, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 1 })));
    let id = *g.pending.keys().next().expect("in flight");
    let mut last = Vec::new();
    for attempt in 1..=3 {
        last = replies(&h.at(1.0 + f64::from(attempt), |c| {
            g.on_timer(c, Timer::App(clients::Timer::CallTimeout { req: id, attempt }))
        }));
    }
    // Attempts at 1, 2 and 3 s each timed out after 1 s: the 3 s budget is spent.
    assert_eq!(last, vec![Msg::App(clients::Msg::CallFailed { req: 1, code: 504 })]);
    h.at(10.0, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 2 })));
    let id = *g.pending.keys().next().expect("in flight");
    // Refusals are immediate, so retries follow at once, each refused in turn.
    let mut codes = Vec::new();
    for _ in 0..3 {
        let Some((to, ureq)) = g.pending.get(&id).map(|p| (p.current, upstream_req(id, p.attempts))) else {
            break;
        };
        codes.extend(replies(&h.at(10.0, |c| g.on_refused(c, to, Msg::App(clients::Msg::Call { req: ureq })))));
    }
    assert_eq!(codes, vec![Msg::App(clients::Msg::CallFailed { req: 2, code: 502 })]);
}

/// The breaker of an instance opens at the configured consecutive failures; an attempt it
/// refuses fails at once without a message and counts as an attempt; after `open_for` one
/// probe goes through.
#[test]
fn the_breaker_opens_and_probes() {
    let cfg = BreakerConfig { consecutive_failures: 2, open_for: SimDuration::from_secs(30), ..Default::default() };
    let mut g = gateway(Some(cfg), None);
    let mut h = Harness::new(NodeId(20));
    started(&mut g, &mut h);
    let mut opened = Vec::new();
    let mut req = 0;
    let mut t = 1.0;
    // Refuse every attempt to n5 and answer the others.
    fn drive(g: &mut Gateway, h: &mut Harness, t: f64, req: u64, opened: &mut Vec<NodeId>) -> u32 {
        let mut sent_to_5 = 0;
        let mut out = h.at(t, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req })));
        loop {
            opened.extend(out.obs.iter().filter_map(|o| match o {
                Obs::Breaker { instance, state: BreakerState::Open } => Some(*instance),
                _ => None,
            }));
            let Some((to, ureq)) = upstream(&out).pop() else { break };
            out = if to == NodeId(5) {
                sent_to_5 += 1;
                h.at(t, |c| g.on_refused(c, to, Msg::App(clients::Msg::Call { req: ureq })))
            } else {
                h.at(t, |c| g.on_message(c, to, Msg::App(clients::Msg::CallOk { req: ureq })))
            };
        }
        sent_to_5
    }
    let mut sent = 0;
    for _ in 0..12 {
        req += 1;
        t += 0.1;
        sent += drive(&mut g, &mut h, t, req, &mut opened);
    }
    assert_eq!(opened, vec![NodeId(5)]);
    assert_eq!(sent, 2, "two refusals open it; no message to n5 after");
    assert!(g.counters.upstream.get(&(NodeId(5), Outcome::CircuitOpen)).is_some_and(|n| *n > 0));
    // 30 s later the breaker lets one probe through (refused: open again).
    let mut probes = 0;
    for k in 0..6 {
        probes += drive(&mut g, &mut h, 40.0 + k as f64 * 0.1, 100 + k, &mut opened);
    }
    assert_eq!(probes, 1);
    assert_eq!(opened, vec![NodeId(5), NodeId(5)]);
}

/// The token bucket answers 429 at once, without an upstream attempt; an empty view 503.
#[test]
fn rate_limit_and_no_instance() {
    let mut g = gateway(None, Some((1.0, 2)));
    let mut h = Harness::new(NodeId(20));
    h.at(0.0, |c| g.on_start(c));
    let out = h.at(0.5, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 1 })));
    assert_eq!(
        replies(&out),
        vec![Msg::App(clients::Msg::CallFailed { req: 1, code: 503 })],
        "nothing in the view yet"
    );
    fill_view(&mut g, &mut h);
    h.at(1.0, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 2 })));
    let out = h.at(1.0, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 3 })));
    assert_eq!(replies(&out), vec![Msg::App(clients::Msg::CallFailed { req: 3, code: 429 })]);
    assert!(upstream(&out).is_empty());
    let out = h.at(2.0, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 4 })));
    assert_eq!(upstream(&out).len(), 1, "a token came back after 1 s");
}

/// An outcome admitted by a breaker that was dropped with its instance (it left the view)
/// does not count in the breaker the instance gets when it comes back.
#[test]
fn a_late_outcome_skips_a_recreated_breaker() {
    let cfg = BreakerConfig { consecutive_failures: 1, ..Default::default() };
    let mut g = gateway(Some(cfg), None);
    let mut h = Harness::new(NodeId(20));
    started(&mut g, &mut h);
    let out = h.at(1.0, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 1 })));
    let [(to, _)] = upstream(&out)[..] else { panic!("{:?}", out.sent()) };
    let id = *g.pending.keys().next().expect("in flight");
    // The instance leaves the view (its breaker goes) and comes back with a new breaker.
    let list = |ids: &[u32]| -> InstanceList { Arc::new(ids.iter().copied().map(NodeId).collect()) };
    let others: Vec<u32> = [5, 6, 7].into_iter().filter(|n| *n != to.0).collect();
    let push = |l: InstanceList| Msg::Registry(registry::Msg::Push { service: ServiceId(0), instances: l, push_id: 1 });
    h.at(1.1, |c| g.on_message(c, NodeId(0), push(list(&others))));
    assert!(!g.breakers.contains_key(&to));
    h.at(1.2, |c| g.on_message(c, NodeId(0), push(list(&[5, 6, 7]))));
    g.breakers.insert(to, (99, Breaker::new()));
    // The old attempt times out: one failure would open the new breaker; it must not count.
    h.at(2.0, |c| g.on_timer(c, Timer::App(clients::Timer::CallTimeout { req: id, attempt: 1 })));
    assert_eq!(g.breakers.get(&to).map(|(_, b)| b.state()), Some(BreakerState::Closed));
}

/// Go kit `lb.Retry` (`sd/lb/retry.go` `RetryWithCallback`): one `context.WithTimeout` for
/// all attempts and `b.Endpoint()` asked again for each. Without `attempt_timeout` (Go kit
/// has none) an attempt that hangs uses up the whole 3 s budget: one attempt, then 504. With
/// it (1 s), the hanging attempt is cut and retried. A random balancer may pick an instance
/// again: over 200 requests whose first attempt is refused, some retries go to the same
/// instance (1 in 3 over three instances).
#[test]
fn retry_has_one_budget_and_asks_the_balancer_again() {
    for (attempt_timeout, attempts, code_at) in [(None, 1, 3.0), (Some(1.0), 3, 3.0)] {
        let mut g = gateway(None, None);
        let mut config = (*g.config).clone();
        config.attempt_timeout = attempt_timeout.map(SimDuration::from_secs_f64);
        g = Gateway::new(Arc::new(config)).expect("gateway");
        let mut h = Harness::new(NodeId(20));
        started(&mut g, &mut h);
        let out = h.at(1.0, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 7 })));
        let mut sent = upstream(&out).len();
        let mut timers: Vec<(SimDuration, Timer)> = out.timers();
        let mut now = 1.0;
        let mut answered = None;
        while let Some((d, t)) = timers.pop().filter(|_| answered.is_none()) {
            let Timer::App(clients::Timer::CallTimeout { .. }) = t else { continue };
            now += d.as_secs_f64();
            let out = h.at(now, |c| g.on_timer(c, t.clone()));
            sent += upstream(&out).len();
            timers = out.timers();
            if !replies(&out).is_empty() {
                answered = Some(now);
            }
        }
        assert_eq!(sent, attempts, "attempt timeout {attempt_timeout:?}");
        assert!(answered.is_some_and(|t| (t - 1.0 - code_at).abs() < 1e-6), "{answered:?}");
    }
    let mut g = gateway(None, None);
    let mut config = (*g.config).clone();
    config.balancer = crate::balance::parse_spec("random").expect("spec").remove(0);
    g = Gateway::new(Arc::new(config)).expect("gateway");
    let mut h = Harness::new(NodeId(20));
    started(&mut g, &mut h);
    let mut repeats = 0;
    for k in 0..200u64 {
        let t = 1.0 + k as f64 * 0.001;
        let out = h.at(t, |c| g.on_message(c, NodeId(9), Msg::App(clients::Msg::Call { req: 100 + k })));
        let [(first, ureq)] = upstream(&out)[..] else { panic!("{:?}", out.sent()) };
        let out = h.at(t, |c| g.on_refused(c, first, Msg::App(clients::Msg::Call { req: ureq })));
        let [(second, ureq2)] = upstream(&out)[..] else { panic!("{:?}", out.sent()) };
        repeats += usize::from(second == first);
        h.at(t, |c| g.on_message(c, second, Msg::App(clients::Msg::CallOk { req: ureq2 })));
    }
    assert!((40..=95).contains(&repeats), "{repeats} of 200 retries picked the refused instance again");
}
