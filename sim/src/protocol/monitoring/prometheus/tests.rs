//! Tests of `prometheus` (a child module: they reach its private items).

use super::*;
use crate::monitor::group::EngineConfig;
use crate::monitor::{Query, instant_query};
use crate::protocol::ServiceId;
use crate::protocol::testing::Harness;
use crate::protocol::{InstanceList, QueryAnswer};

const RULES: &str = "groups:
  - name: g
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 1m
";

fn prometheus() -> Prometheus {
    let groups = crate::monitor::rulefile::parse(RULES, "r.yml").expect("rules").groups;
    Prometheus::new(Arc::new(PrometheusConfig {
        job: "api".into(),
        service: ServiceId(0),
        servers: Arc::from([NodeId(0)]),
        healthy_only: true,
        refresh_interval: SimDuration::from_secs(30),
        query_timeout: SimDuration::from_secs(3),
        scrape_interval: SimDuration::from_secs(15),
        scrape_timeout: SimDuration::from_secs(10),
        evaluation_interval: SimDuration::from_secs(15),
        resend_delay: SimDuration::from_secs(60),
        lookback: SimDuration::from_secs(300),
        retention: SimDuration::from_secs(86_400),
        engine: EngineConfig::default(),
        groups,
        alertmanager: Some(NodeId(7)),
        static_targets: Vec::new(),
        external_labels: Labels::empty(),
        track_timestamps_staleness: false,
    }))
}

fn answer(req: u64, instances: &[u32]) -> Msg {
    let list: InstanceList = Arc::new(instances.iter().copied().map(NodeId).collect());
    Msg::Registry(registry::Msg::QueryOk {
        req,
        answer: Arc::new(QueryAnswer { instances: Arc::clone(&list), registered: list }),
    })
}

fn up(p: &Prometheus, t_s: i64) -> Vec<f64> {
    let q = Query::parse("up").expect("query");
    instant_query(p.store(), &q, t_s * 1000).expect("eval").into_vector().iter().map(|e| e.value).collect()
}

fn alerts(obs: &[Obs]) -> Vec<AlertTransition> {
    obs.iter()
        .filter_map(|o| match o {
            Obs::Alert(a) => Some(a.state),
            _ => None,
        })
        .collect()
}

/// Discovery, a good scrape, a refused one (`up = 0`, the alert pending), then the target
/// dropped by discovery at 30.01 s: `scrape.go` `endOfRunStaleness` waits for the loop's next
/// tick (31 s, which stamps the markers), one more (46 s) and 10 % of the interval, so the
/// markers are written at 47.5 s. Until then `up` is still 0 and the alert stays pending;
/// after, `up` is stale and the pending alert vanishes before `for`. Kept, the same target
/// fires 60 s after pending and is sent to Alertmanager.
#[test]
fn a_dropped_target_goes_stale_and_its_pending_alert_vanishes() {
    for keep in [false, true] {
        let mut p = prometheus();
        let mut h = Harness::new(NodeId(6));
        let out = h.at(0.0, |c| p.on_start(c));
        assert_eq!(
            out.sent(),
            vec![(NodeId(0), Msg::Registry(registry::Msg::Query { service: ServiceId(0), req: 1 }))]
        );
        let out = h.at(0.01, |c| p.on_message(c, NodeId(0), answer(1, &[5])));
        assert_eq!(out.obs, vec![Obs::Target { instance: NodeId(5), present: true }]);
        let out = h.at(1.0, |c| {
            p.on_timer(c, Timer::Monitoring(monitoring::Timer::Scrape { target: NodeId(5), generation: 1 }))
        });
        assert_eq!(out.sent(), vec![(NodeId(5), Msg::Monitoring(monitoring::Msg::Scrape { seq: 1 }))]);
        h.at(1.01, |c| {
            p.on_message(
                c,
                NodeId(5),
                Msg::Monitoring(monitoring::Msg::ScrapeOk { seq: 1, registry_requests: 3, calls_served: 0 }),
            )
        });
        assert_eq!(up(&p, 2), vec![1.0]);
        h.at(16.0, |c| {
            p.on_timer(c, Timer::Monitoring(monitoring::Timer::Scrape { target: NodeId(5), generation: 1 }))
        });
        let out = h.at(16.0, |c| p.on_refused(c, NodeId(5), Msg::Monitoring(monitoring::Msg::Scrape { seq: 2 })));
        assert_eq!(out.obs, vec![Obs::ScrapeFailed { instance: NodeId(5) }]);
        assert_eq!(up(&p, 17), vec![0.0]);
        let out = h.at(20.0, |c| p.on_timer(c, Timer::Monitoring(monitoring::Timer::Evaluate { group: 0 })));
        assert_eq!(alerts(&out.obs), vec![AlertTransition::Pending]);
        h.at(30.0, |c| p.on_timer(c, Timer::Monitoring(monitoring::Timer::Refresh)));
        let out = h.at(30.01, |c| p.on_message(c, NodeId(0), answer(2, if keep { &[5] } else { &[] })));
        if !keep {
            assert_eq!(out.obs, vec![Obs::Target { instance: NodeId(5), present: false }]);
            let end = (SimDuration::from_millis(17_490), Timer::Monitoring(monitoring::Timer::EndOfRun { key: 1 }));
            assert!(out.timers().contains(&end), "markers at 31 s + 15 s + 1.5 s: {:?}", out.timers());
            assert_eq!(up(&p, 47), vec![0.0], "not stale yet: no markers before 2.1 intervals");
            h.at(47.5, |c| p.on_timer(c, Timer::Monitoring(monitoring::Timer::EndOfRun { key: 1 })));
            assert!(up(&p, 48).is_empty(), "stale once the markers are in, not after the 5 m lookback");
            assert!(up(&p, 31).is_empty() && up(&p, 30) == vec![0.0], "the markers carry the 31 s tick");
        }
        let mut states = Vec::new();
        let mut sent_to_am = 0;
        for t in [35.0, 50.0, 65.0, 80.0, 95.0] {
            if keep {
                // Still refused: up = 0 keeps coming.
                h.at(t - 4.0, |c| {
                    p.on_timer(c, Timer::Monitoring(monitoring::Timer::Scrape { target: NodeId(5), generation: 1 }))
                });
                let seq = p.targets.get(&NodeId(5)).map_or(0, |x| x.seq);
                h.at(t - 4.0, |c| p.on_refused(c, NodeId(5), Msg::Monitoring(monitoring::Msg::Scrape { seq })));
            }
            let out = h.at(t, |c| p.on_timer(c, Timer::Monitoring(monitoring::Timer::Evaluate { group: 0 })));
            states.extend(alerts(&out.obs));
            sent_to_am += out
                .sent()
                .iter()
                .filter(|(to, m)| *to == NodeId(7) && matches!(m, Msg::Monitoring(monitoring::Msg::Alerts { .. })))
                .count();
        }
        if keep {
            assert_eq!(states, vec![AlertTransition::Firing], "fires at 80 s = pending 20 s + for 60 s");
            assert_eq!(sent_to_am, 1, "sent once; resent only after resend_delay");
        } else {
            assert!(states.is_empty(), "never fires: {states:?}");
            assert_eq!(sent_to_am, 0);
        }
    }
}

/// Federation: the regional server answers `/federate` with its latest samples, their
/// timestamps and its external labels; the global server keeps the series' own `job` and
/// `instance` (honor_labels), writes `up` for the federation target, and on a failed
/// federation scrape marks nothing stale that came with a timestamp: the last federated
/// `up = 0` stays visible until the lookback runs out.
#[test]
fn federation_keeps_labels_timestamps_and_writes_no_staleness_for_them() {
    let mut regional = prometheus();
    let mut cfg = (*regional.config).clone();
    cfg.external_labels = Labels::from_pairs([("region", "eu")]);
    regional = Prometheus::new(Arc::new(cfg.clone()));
    let up = Labels::metric("up", &[("instance", "n5"), ("job", "api")]);
    regional.store.append(&up, 20_000, 0.0).expect("append");
    let gone = Labels::metric("up", &[("instance", "n4"), ("job", "api")]);
    regional.store.append(&gone, 20_000, 1.0).expect("append");
    regional.store.mark_stale(&gone, 25_000).expect("stale");
    let query = Arc::new(FederateQuery::new(
        crate::monitor::federate::parse_matchers(&["{job=\"api\"}".to_string()]).expect("m"),
    ));
    let mut h = Harness::new(NodeId(6));
    let out = h.at(30.0, |c| {
        regional.on_message(
            c,
            NodeId(8),
            Msg::Monitoring(monitoring::Msg::Federate { seq: 1, query: Arc::clone(&query) }),
        )
    });
    let [(to, Msg::Monitoring(monitoring::Msg::Exposition { seq: 1, body }))] = &out.sent()[..] else {
        panic!("{:?}", out.sent())
    };
    assert_eq!(*to, NodeId(8));
    let eu = Labels::metric("up", &[("instance", "n5"), ("job", "api"), ("region", "eu")]);
    assert_eq!(body.samples, vec![(eu.clone(), 0.0, Some(20_000))], "the stale series is left out");

    let global_cfg = PrometheusConfig {
        servers: Arc::from([]),
        groups: Vec::new(),
        static_targets: vec![StaticTarget { node: NodeId(6), job: "federate".into(), federate: Some(query) }],
        external_labels: Labels::from_pairs([("monitor", "global")]),
        ..cfg
    };
    let mut global = Prometheus::new(Arc::new(global_cfg));
    let mut g = Harness::new(NodeId(8));
    g.at(0.0, |c| global.on_start(c));
    let out = g.at(30.0, |c| {
        global.on_timer(c, Timer::Monitoring(monitoring::Timer::Scrape { target: NodeId(6), generation: 1 }))
    });
    assert!(
        matches!(out.sent()[..], [(NodeId(6), Msg::Monitoring(monitoring::Msg::Federate { seq: 1, .. }))]),
        "{:?}",
        out.sent()
    );
    g.at(30.05, |c| {
        global.on_message(c, NodeId(6), Msg::Monitoring(monitoring::Msg::Exposition { seq: 1, body: Arc::clone(body) }))
    });
    let value = |p: &Prometheus, q: &str, t_s: i64| {
        let q = Query::parse(q).expect("query");
        instant_query(p.store(), &q, t_s * 1000)
            .expect("eval")
            .into_vector()
            .iter()
            .map(|e| (e.labels.clone(), e.value))
            .collect::<Vec<_>>()
    };
    let fed = Labels::metric("up", &[("instance", "n5"), ("job", "api"), ("region", "eu")]);
    assert_eq!(value(&global, "up{job=\"api\"}", 31), vec![(fed.clone(), 0.0)]);
    assert_eq!(value(&global, "up{job=\"federate\"}", 31).len(), 1);
    // The next federation scrape fails: up{job="federate"} = 0, the federated series stays.
    g.at(60.0, |c| {
        global.on_timer(c, Timer::Monitoring(monitoring::Timer::Scrape { target: NodeId(6), generation: 1 }))
    });
    g.at(60.0, |c| {
        global.on_refused(
            c,
            NodeId(6),
            Msg::Monitoring(monitoring::Msg::Federate { seq: 2, query: FederateQuery::new(Vec::new()).into() }),
        )
    });
    assert_eq!(value(&global, "up{job=\"federate\"}", 61).iter().map(|x| x.1).collect::<Vec<_>>(), vec![0.0]);
    assert_eq!(value(&global, "up{job=\"api\"}", 61), vec![(fed.clone(), 0.0)]);
    assert_eq!(value(&global, "up{job=\"api\"}", 20 + 300), vec![(fed, 0.0)], "visible to the end of the lookback");
    assert!(value(&global, "up{job=\"api\"}", 20 + 301).is_empty(), "then gone");
}

/// What is sent to Alertmanager and when (`rules/alerting.go` `needsSending`, `sendAlerts`;
/// `rules/manager.go` `SendAlerts`): `up == 0` holds from 15 s to 285 s, evaluations every
/// 15 s, `for: 1m`, resend delay 1 m. The alert fires at 75 s and is sent then with
/// `starts_at` = its firing time; it is re-sent at the first evaluation *strictly* more than
/// 1 m after the last send (every 75 s here, not every 60 s), with `ends_at` 4 resend delays
/// ahead; it resolves at 300 s and is sent at once with `ends_at` = the resolution; the rule
/// keeps the resolved alert for 15 m (`resolvedRetention`) and re-sends it on the same
/// cadence until then (last at 1200 s).
#[test]
fn alerts_are_sent_at_firing_resent_strictly_after_the_delay_and_resolved_ones_for_15_minutes() {
    let mut p = prometheus();
    let mut h = Harness::new(NodeId(6));
    let labels = p.up_labels(NodeId(5));
    let mut sends: Vec<(i64, i64, i64)> = Vec::new();
    for k in 1..=90i64 {
        let t = 15 * k;
        let v = if t < 300 { 0.0 } else { 1.0 };
        p.store.append(&labels, t * 1000, v).expect("append");
        let out = h.at(t as f64, |c| p.on_timer(c, Timer::Monitoring(monitoring::Timer::Evaluate { group: 0 })));
        for (to, m) in out.sent() {
            if let (NodeId(7), Msg::Monitoring(monitoring::Msg::Alerts { batch })) = (to, m) {
                sends.extend(batch.iter().map(|a| (t, a.starts_at_ms, a.ends_at_ms)));
            }
        }
    }
    let firing: Vec<(i64, i64, i64)> = [75, 150, 225].iter().map(|&t| (t, 75_000, (t + 240) * 1000)).collect();
    let resolved: Vec<(i64, i64, i64)> = (0..=12).map(|k| (300 + 75 * k, 75_000, 300_000)).collect();
    assert_eq!(sends, [firing, resolved].concat());
}
