//! Two regions behind API gateways, regional Prometheus servers and a global one federating
//! them (issue 9, `scenarios/monitoring-federation.toml`): when the gateways stop sending to a
//! crashed instance, the alert windows regionally and globally, and the federation effects the
//! scenario is built to show.

mod common;

use regsim::metrics::alerts::AlertRuleReport;
use regsim::run::{RunOutput, run};

/// Network slack: each hop takes up to 10 ms (80 ms between the global and a regional server).
const SLACK_S: f64 = 0.2;

fn rule<'a>(rules: &'a [AlertRuleReport], name: &str) -> &'a AlertRuleReport {
    rules.iter().find(|r| r.alert == name).unwrap_or_else(|| panic!("no alert rule {name}"))
}

/// The gateway side, checked from the run: every crash x gateway pair of the instance's
/// region; here the breaker stops the traffic first. Round robin over 6 instances at 40
/// requests/s (4 consumers x 10/s) sends each instance an attempt every 0.15 s, so the 6
/// consecutive failures that open the breaker take 6 x 0.15 = 0.9 s from the crash at most,
/// plus Poisson jitter: 2 s is the bound. Every failed attempt is retried on another instance,
/// so clients see no error from a crash.
///
/// A view can take a dead instance back: the responsible server marks it and pushes, but a
/// poll answered by another server, which learns the mark only from the responsible server's
/// next status report (up to 5 s later, `ServiceReporter`), lists it healthy again. The
/// instance then comes back with a fresh breaker (Go kit's `sd.Endpointer` builds a new
/// endpoint, and its breaker, for an instance that reappears), which opens after 6 more
/// failures; the traffic stops for good when every server agrees.
fn check_gateway(out: &RunOutput) {
    let api = out.report.api.as_ref().expect("api family");
    let crashes = out.analyzer.detection.episodes.len();
    assert!(crashes >= 10, "{crashes}");
    assert_eq!(api.crashes.len(), crashes, "one gateway per region lists each crashed instance");
    assert!(api.invariant.holds, "{}", api.invariant.detail);
    assert!(out.report.invariants.iter().any(|i| i.name == "gateway_stops_by_view_update" && i.holds));
    let mut openings = 0;
    for c in &api.crashes {
        let view = c.view_updated_after_s.expect("the view drops every crashed instance");
        assert!(c.breaker_opened_after_s.is_some_and(|b| b <= 2.0), "{c:?}");
        assert!(c.failed_attempts >= 6 && c.failed_attempts % 6 == 0, "6 failures per breaker: {c:?}");
        openings += c.failed_attempts / 6;
        assert_eq!(c.failed_requests, 0, "retries hide the crash from clients: {c:?}");
        if c.failed_attempts == 6 {
            assert!(c.stopped_after_s > 0.0 && c.stopped_after_s <= 2.0, "{c:?}");
            assert_eq!(c.stopped_by, "breaker", "{c:?}");
        }
        // The view updates when the registry marks the instance unhealthy and pushes: 10-20 s
        // after the crash (15 s unhealthy timeout, 5 s check); a gateway subscribed at another
        // server than the responsible one waits for the status report (up to 5 s) and the
        // push debounce (1 s) on top: at most 26 s plus hops.
        assert!((10.0..=26.0 + SLACK_S).contains(&view), "{c:?}");
        assert!(c.stopped_after_s <= 26.0 + SLACK_S, "{c:?}");
    }
    assert_eq!(api.breaker_openings, openings);
    assert!(api.retries >= api.failed_attempts_to_dead, "every failed attempt was retried");
    // Only the first seconds (views still empty) give errors: 503 no instance.
    assert!(api.error_ratio < 0.001, "{}", api.error_ratio);
    assert_eq!(api.by_code.keys().map(String::as_str).collect::<Vec<_>>(), vec!["200", "503"]);
    assert!(api.windows.iter().skip(1).all(|w| w.error_ratio == 0.0), "errors only in the first window");
}

fn check_alerts(out: &RunOutput) {
    let a = out.report.alerts.as_ref().expect("alerts family");
    let crashes = a.crashes;
    // Regionally as in scenarios/monitoring.toml: TargetsMissing fires for every crash within
    // scrape 15 s + timeout 10 s + evaluation 15 s = 40 s; InstanceDown never fires.
    let t = rule(&a.rules, "TargetsMissing");
    assert_eq!(t.window.firing_s, 40.0);
    assert_eq!(t.alert_firing.count, crashes, "{:?}", t.never_fired);
    assert!(t.alert_firing.max_s <= t.window.firing_s + SLACK_S, "{:?}", t.alert_firing);
    assert_eq!(rule(&a.rules, "InstanceDown").alert_firing.count, 0);
    // Globally the window adds the federation scrape (30 s + 10 s timeout) and the global
    // evaluation interval (30 s): 15 + 10 + 30 + 10 + 30 = 95 s for a rule without `for`.
    let g = a.global.as_ref().expect("global alerts");
    assert_eq!((g.federation_interval_s, g.evaluation_interval_s), (30.0, 30.0));
    let gt = rule(&g.rules, "GlobalTargetsMissing");
    assert_eq!(gt.window.firing_s, 95.0);
    assert!(gt.alert_firing.max_s <= gt.window.firing_s + SLACK_S, "{:?}", gt.alert_firing);
    assert_eq!(gt.beyond_window, 0);
    // Globally it misses only crashes the global server could not see: those during the
    // partition of its region from the global server.
    for n in &gt.never_fired {
        assert!(n.reason.starts_with("the global server could not federate"), "{n:?}");
    }
    assert!(gt.alert_firing.count + gt.never_fired.len() as u64 == crashes);
    // The federation effect: the same `up == 0, for: 1m` rule that never fires regionally fires
    // globally for some crashes, because the federated `up = 0` sample carries a timestamp and
    // gets no staleness marker when the regional target is dropped: it stays visible for the
    // 5 m lookback.
    let gd = rule(&g.rules, "GlobalInstanceDown");
    assert!(gd.alert_firing.count > 0, "{:?}", gd.never_fired);
    assert!(gd.alert_firing.min_s >= 60.0, "`for: 1m` holds: {:?}", gd.alert_firing);
    assert!(gd.alert_firing.max_s <= gd.window.firing_s + SLACK_S);
    let rules = out.report.rules.as_ref().expect("rules family");
    // The partition of us from the global server: RegionUnreachable fired on the global server.
    let unreachable = rules.iter().find(|r| r.rule == "RegionUnreachable").expect("global rule");
    assert_eq!(unreachable.prometheus, "global");
    assert!(unreachable.times_fired >= 1, "{unreachable:?}");
    // The faulty rule is quarantined on each regional server; everything else is healthy.
    let faulty: Vec<_> = rules.iter().filter(|r| r.rule == "job:registry_requests:per_up_wrong").collect();
    assert_eq!(faulty.iter().map(|r| r.prometheus.as_str()).collect::<Vec<_>>(), vec!["us", "eu"]);
    for r in rules {
        let bad = r.rule == "job:registry_requests:per_up_wrong";
        assert_eq!(r.quarantined, bad, "{r:?}");
        assert_eq!(r.health == "ok", !bad, "{r:?}");
    }
}

#[test]
fn federation_gateway_and_alert_windows() {
    let out = common::run_ok("monitoring-federation.toml", &[]);
    check_gateway(&out);
    check_alerts(&out);
}

#[test]
fn federation_holds_for_another_seed() {
    let s = common::scenario("monitoring-federation.toml", &[]);
    let out = run(&s, 2).expect("runs");
    check_gateway(&out);
    check_alerts(&out);
}

/// Region selectors: `eu/instances[1]` is the second instance of region eu, `us` every node of
/// region us; an unknown region is a located load error.
#[test]
fn region_selectors_resolve_and_bad_ones_are_located() {
    let base = "name = \"r\"\nduration = \"60s\"\nregions = [\"eu\", \"us\"]\n[registry]\nservers = 2\n\
                [instances]\ncount = 3\n";
    let s = regsim::scenario::load_str(
        "r.toml",
        &format!("{base}[[faults]]\nat = \"10s\"\naction = \"crash\"\ntarget = \"us/instances[1]\"\n"),
        &[],
    )
    .expect("loads");
    let built = regsim::scenario::build(&s, 1).expect("builds");
    // servers eu 0-1, us 2-3; instances eu 4-6, us 7-9: us/instances[1] is node 8.
    assert_eq!(built.instances().len(), 6);
    let rng = &mut regsim_kernel::stream(1, "t");
    assert_eq!(built.topology.select("us/instances[1]", rng), Ok(vec![regsim_kernel::NodeId(8)]));
    let us: Vec<u32> = built.topology.select("us", rng).expect("region").into_iter().map(|n| n.0).collect();
    assert_eq!(us, vec![2, 3, 7, 8, 9]);
    let bad = format!("{base}[[faults]]\nat = \"10s\"\naction = \"crash\"\ntarget = \"mars/instances[0]\"\n");
    let err = regsim::scenario::load_str("r.toml", &bad, &[]).expect_err("unknown region");
    assert!(err.message.contains("regions: eu, us"), "{err}");
    assert!(err.location.ends_with("r.toml:11:10"), "{err}");
    let dup = base.replace("[\"eu\", \"us\"]", "[\"eu\", \"eu\"]");
    let err = regsim::scenario::load_str("r.toml", &dup, &[]).expect_err("duplicate region");
    assert_eq!(err.key_path.as_deref(), Some("regions[1]"), "{err}");
}

/// A network link may name any role, the monitoring ones included (this used to panic in the
/// checker, which built a network of three roles only).
#[test]
fn links_to_monitoring_roles_load() {
    let text = "name = \"l\"\nduration = \"60s\"\n[instances]\ncount = 2\n[monitoring]\n\
                [[network.links]]\nfrom = \"prometheus\"\nto = \"alertmanager\"\nloss = 0.5\n";
    regsim::scenario::load_str("l.toml", text, &[]).expect("a link between monitoring roles loads");
}

/// With two gateways per region each gateway's counters stay their own series (the scraped
/// per-upstream `instance` is kept as `exported_instance`), so no counter goes backwards
/// before a crash of its gateway (there is none here); a consumer timeout that would give up
/// before the gateway's retries is refused.
#[test]
fn gateway_series_stay_per_gateway() {
    let s = common::scenario("monitoring-federation.toml", &["gateway.count=2", "duration=65m"]);
    let out = run(&s, 1).expect("runs");
    let store = out.prometheus_store.as_ref().expect("stored samples");
    let mut series = 0;
    for (labels, samples) in store.series() {
        if labels.name() != Some("requests_total") || labels.get("job") != Some("gateway") {
            continue;
        }
        series += 1;
        assert!(labels.get("exported_instance").is_some(), "{labels}");
        let values: Vec<f64> = samples.iter().map(|x| x.v).filter(|v| !v.is_nan()).collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{labels}: {values:?}");
    }
    assert!(series >= 2 * 2 * 6, "an ok series per gateway and instance at least: {series}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/monitoring-federation.toml");
    let set = regsim::scenario::Override::parse("consumers.call_timeout=2s").expect("set");
    let err = regsim::scenario::load(&path, &[set]).expect_err("gives up before the retries");
    assert_eq!(err.key_path.as_deref(), Some("consumers.call_timeout"), "{err}");
}

/// Same scenario and seed: byte-identical report (gateways, three Prometheus servers and the
/// api family included); another seed: another run.
#[test]
fn federation_reports_are_deterministic() {
    let s = common::scenario("monitoring-federation.toml", &["duration=65m"]);
    let json = |seed| serde_json::to_string(&run(&s, seed).expect("runs").report).expect("json");
    let (a, b, c) = (json(5), json(5), json(6));
    assert_eq!(a, b);
    let digest = |j: &str| serde_json::from_str::<serde_json::Value>(j).expect("json")["digest"].clone();
    assert_ne!(digest(&a), digest(&c));
}
