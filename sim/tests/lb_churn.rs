//! The lb-churn scenario (issue 4): balancers compared in one cluster run with churn.

mod common;

use regsim::report::model::LoadReport;
use std::collections::BTreeMap;

fn loads() -> BTreeMap<String, LoadReport> {
    common::run_ok("lb-churn.toml", &[]).report.load.expect("load family")
}

fn get<'a>(l: &'a BTreeMap<String, LoadReport>, prefix: &str) -> &'a LoadReport {
    l.iter()
        .find(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {prefix} in {:?}", l.keys()))
}

/// Under Zipf keys a hash balancer sends the hottest key's whole share to one instance, while
/// P2C on outstanding requests ignores keys: its max/mean must be far lower (measured 1.17
/// against 3.9-9.4 with seed 1; asserted: below half of every hash balancer's).
#[test]
fn two_choices_spread_load_better_than_hashing_under_zipf() {
    let l = loads();
    let p2c = get(&l, "p2c").overall.as_ref().expect("p2c load").max_over_mean;
    for h in ["ring", "maglev", "rendezvous", "modn"] {
        let m = get(&l, h).overall.as_ref().expect("load").max_over_mean;
        assert!(p2c < m / 2.0, "p2c {p2c} vs {h} {m}");
    }
}

/// On view changes, modulo hashing moves almost every key (n/(n+1) on a join), consistent
/// schemes about the ideal. Tolerance: ring, rendezvous and Maglev within 0.5-1.6x the ideal
/// over the run's view changes (256 probe keys, so a single change is noisy; Maglev also moves
/// a few extra entries by design); modulo above 0.8.
#[test]
fn disruption_on_view_changes() {
    let l = loads();
    for h in ["ring", "rendezvous", "maglev"] {
        let r = get(&l, h);
        let (moved, ideal) = (r.mean_moved.expect("moved"), r.mean_ideal.expect("ideal"));
        assert!(r.view_changes > 0);
        assert!(moved >= 0.5 * ideal && moved <= 1.6 * ideal, "{h}: moved {moved} ideal {ideal}");
    }
    assert!(get(&l, "modn").mean_moved.expect("moved") > 0.8);
    assert!(get(&l, "p2c").mean_moved.is_none(), "moved keys mean nothing for p2c");
}

/// Stale views split keys: consumers whose views differ map some keys to different instances;
/// modulo hashing splits far more keys than consistent hashing. Every balancer sends some
/// requests to dead instances (crashes happen before views update).
#[test]
fn affinity_and_dead_instances() {
    let l = loads();
    let modn = get(&l, "modn").affinity_split.expect("split");
    let ring = get(&l, "ring").affinity_split.expect("split");
    assert!(modn > 3.0 * ring, "modn {modn} ring {ring}");
    for (k, r) in &l {
        assert!(r.sent_to_dead > 0, "{k} sent nothing to dead instances");
        assert!(r.latency.count > 0 && r.latency.p50_s > 0.005, "{k}: {:?}", r.latency);
    }
}
