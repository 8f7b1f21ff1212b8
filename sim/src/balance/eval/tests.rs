//! Tests of `eval` (a child module: they reach its private items).

use super::super::parse_spec;
use super::super::stats::probe_keys;
use super::*;

fn config(algos: &str, nodes: usize, churn: &str) -> EvalConfig {
    EvalConfig {
        nodes,
        keys: 50_000,
        requests: 20_000,
        dist: "zipf:s=1.1:k=1000".parse().expect("valid"),
        window: None,
        churn: super::super::churn::parse_churn(churn).expect("valid"),
        seed: 7,
        algos: parse_spec(algos).expect("valid"),
    }
}

#[test]
fn disruption_against_ideal() {
    // n = 50, K = 50_000. A consistent scheme moves about the ideal: one
    // node's share, whose sd across nodes is ~0.09 relative for ring k=160
    // and ~0.14 for jump/rendezvous (binomial, K/n = 1000 keys, plus hash
    // noise); we allow 0.5x..2x. modn moves n/(n+1) = 0.98 on a join and
    // about 1 - 1/n on a leave (only keys with h mod n == h mod (n-1) and
    // an unshifted index stay); we allow +-0.03 around those.
    let cfg = config("ring:k=160,rendezvous,modn,jump", 50, "add:1,remove-last:1");
    let e = evaluate(&cfg).expect("valid");
    for a in &e.report.algorithms {
        assert_eq!(a.churn.len(), 2);
        let (join, leave) = (&a.churn[0], &a.churn[1]);
        assert!((join.ideal_fraction - 1.0 / 51.0).abs() < 1e-15);
        assert!((leave.ideal_fraction - 1.0 / 51.0).abs() < 1e-15);
        if a.algorithm.starts_with("modn") {
            assert!((join.moved_fraction - 50.0 / 51.0).abs() < 0.03, "{join:?}");
            assert!((leave.moved_fraction - 50.0 / 51.0).abs() < 0.03, "{leave:?}");
        } else {
            for c in [join, leave] {
                assert!((0.5..2.0).contains(&c.moved_over_ideal), "{}: {c:?}", a.algorithm);
            }
        }
    }
}

#[test]
fn jump_suffers_from_a_middle_removal_rendezvous_does_not() {
    // Removing the node at list position p renumbers every later bucket
    // for jump: keys of buckets p..n-1 change names, about (n-p)/n of all
    // keys (plus a 1/n^2 sliver), far above the ideal 1/n. Rendezvous moves
    // only the victim's share. K = 50_000: the sd of (n-p) shares is below
    // 0.005, so +-0.03 is a wide band.
    let cfg = config("jump,rendezvous", 40, "remove:1");
    let e = evaluate(&cfg).expect("valid");
    let mut rng = SplitMix64::new(stream_seed(cfg.seed, "lb/churn"));
    let m = memberships(40, &cfg.churn, MAX_EVAL_NODES, &mut rng).expect("valid");
    let p = m[1].ids.iter().zip(0u32..).find(|(id, i)| *id != i).map_or(39, |(_, i)| i as usize);
    let jump = &e.report.algorithms[0].churn[0];
    let hrw = &e.report.algorithms[1].churn[0];
    let expected = (40 - p) as f64 / 40.0;
    assert!(p < 30, "seed 7 should remove an early node, not {p}");
    assert!((jump.moved_fraction - expected).abs() < 0.03, "p={p}: {jump:?}");
    assert!((0.5..2.0).contains(&hrw.moved_over_ideal), "{hrw:?}");
}

#[test]
fn key_loads_match_assign_over_probe_keys() {
    // The streamed pass must equal stats::assign over stats::probe_keys.
    let cfg = config("maglev:m=251,ring:k=10", 9, "");
    let e = evaluate(&cfg).expect("valid");
    let nodes: Vec<String> = (0..9).map(|i| i.to_string()).collect();
    let keys = probe_keys(stream_seed(7, "lb/probe-keys"), 50_000);
    for (spec, loads) in cfg.algos.iter().zip(&e.loads) {
        let mut b = spec.build(&nodes).expect("valid");
        let want = super::super::stats::counts(&super::super::stats::assign(b.as_mut(), &keys), 9);
        assert_eq!(loads.keys, want);
    }
}

#[test]
fn closed_loop_bounds_and_hot_keys() {
    // Zipf(1.1) over 1000 keys: the hottest key carries 18% of requests,
    // so key-affine modn has a node with >= 0.18 * n = 3.6x the mean at
    // n = 20. Bounded loads caps in-flight per node at ceil(c W / n) with
    // W requests in flight (a hard bound: no tolerance); p2c spreads.
    let cfg = EvalConfig { window: Some(40), ..config("modn,bounded:c=1.25,p2c,p2c-ewma", 20, "") };
    let e = evaluate(&cfg).expect("valid");
    let req = |i: usize| e.report.algorithms[i].requests.clone().expect("requests ran");
    assert!(req(0).load.max_over_mean > 3.5, "{:?}", req(0));
    assert!(req(1).in_flight_max <= 3, "{:?}", req(1));
    assert!(req(1).load.max_over_mean < 1.6, "{:?}", req(1));
    for i in [2, 3] {
        assert!(req(i).load.max_over_mean < 1.3 && req(i).in_flight_max <= 6, "{:?}", req(i));
    }
    assert_eq!(req(0).in_flight_mean, 2.0);
    assert!(e.loads.iter().all(|l| l.requests.iter().sum::<u64>() == 20_000));
}

#[test]
fn route_is_pick_of_the_raw_key() {
    use super::super::{HashKind, jump};
    for key in [0u64, 1, 42, u64::MAX] {
        let want = jump(HashKind::Xxh64.hash_key(key), 1000);
        assert_eq!(route(&BalancerSpec::Jump { hash: HashKind::Xxh64 }, 1000, key), Ok(want));
    }
    assert_eq!(parse_key("0x2A"), Ok(42));
    assert_eq!(parse_key("18446744073709551615"), Ok(u64::MAX));
    assert!(parse_key("-1").is_err() && parse_key("0x").is_err() && parse_key("1e3").is_err());
    assert!(route(&BalancerSpec::P2c, 0, 1).is_err());
    assert!(route(&BalancerSpec::Ring { k: 1000, hash: HashKind::Xxh64 }, 100_000, 1).is_err());
}

#[test]
fn deterministic_and_limited() {
    let cfg = config("p2c,ring", 10, "remove:2,add:3");
    assert_eq!(evaluate(&cfg), evaluate(&cfg));
    let other = EvalConfig { seed: 8, ..cfg.clone() };
    assert_ne!(evaluate(&cfg).expect("valid").report, evaluate(&other).expect("valid").report);
    let bad = [
        EvalConfig { keys: 0, ..cfg.clone() },
        EvalConfig { nodes: MAX_EVAL_NODES + 1, ..cfg.clone() },
        EvalConfig { window: Some(0), ..cfg.clone() },
        EvalConfig { algos: parse_spec("ring:k=1000").expect("valid"), nodes: 50_000, ..cfg.clone() },
        EvalConfig { algos: Vec::new(), ..cfg.clone() },
    ];
    for c in bad {
        assert!(evaluate(&c).is_err(), "{c:?}");
    }
}
