//! Property tests of the balancers (issue 7): the guarantees each algorithm is chosen for,
//! checked on generated memberships, parameters and key streams rather than on a few fixed
//! cases (the unit tests next to each balancer keep the fixed, documented cases).
//!
//! - bounded loads (Mirrokni et al. 2018): a placement never puts a node over
//!   `⌈c·m/n⌉`, whatever the arrivals and departures, hot keys included;
//! - ring and rendezvous: removing a node moves only that node's keys; adding one moves keys
//!   only to it (minimal disruption, by node name, independent of list order);
//! - jump: growing from n to n + 1 buckets moves keys only into the new bucket;
//! - Maglev (Eisenbud et al. 2016): every backend owns ⌊M/n⌋ or ⌈M/n⌉ table entries.
//!
//! `PROPTEST_CASES` scales the case count (default 64 here: these are pure and fast).

use std::collections::BTreeSet;

use proptest::prelude::*;
use regsim::balance::bounded::capacity;
use regsim::balance::maglev::populate;
use regsim::balance::rendezvous::rendezvous;
use regsim::balance::{Balancer, BoundedLoad, HashKind, Ring, jump};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn hash_kind() -> impl Strategy<Value = HashKind> {
    prop_oneof![Just(HashKind::Xxh64), Just(HashKind::Fnv1a)]
}

/// 1..=max distinct node names, in a generated order.
fn names(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(0u32..100_000, 1..=max)
        .prop_map(|s| s.into_iter().map(|i| format!("node-{i}")).collect::<Vec<_>>())
        .prop_shuffle()
}

fn keys() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(any::<u64>(), 200..400)
}

/// Owner name of every key under the balancer `build` makes for `nodes`.
fn owners<F: Fn(u64) -> Option<u32>>(nodes: &[String], keys: &[u64], build: impl Fn(&[String]) -> F) -> Vec<String> {
    let lookup = build(nodes);
    keys.iter().map(|k| nodes[lookup(*k).expect("non-empty membership") as usize].clone()).collect()
}

/// Checks minimal disruption of the balancer `build` makes, for removing `nodes[gone]` and
/// for adding a node.
fn minimal_disruption<F: Fn(u64) -> Option<u32>>(
    nodes: &[String],
    gone: usize,
    keys: &[u64],
    build: impl Fn(&[String]) -> F,
) -> Result<(), TestCaseError> {
    let lookup = &build;
    let before = owners(nodes, keys, lookup);
    let mut fewer = nodes.to_vec();
    let removed = fewer.remove(gone);
    if !fewer.is_empty() {
        let after = owners(&fewer, keys, lookup);
        for ((k, b), a) in keys.iter().zip(&before).zip(&after) {
            prop_assert!(b == a || *b == removed, "key {k}: moved {b} -> {a} though only {removed} left");
        }
    }
    let mut more = nodes.to_vec();
    let new = "node-joined".to_string();
    more.insert(gone, new.clone());
    let after = owners(&more, keys, lookup);
    for ((k, b), a) in keys.iter().zip(&before).zip(&after) {
        prop_assert!(b == a || *a == new, "key {k}: moved {b} -> {a} though only {new} joined");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bounded_load_never_exceeds_capacity(
        nodes in names(30),
        c in 1.0f64..3.0,
        k in 1u32..64,
        hash in hash_kind(),
        steps in prop::collection::vec((any::<bool>(), prop_oneof![Just(42u64), any::<u64>()], any::<prop::sample::Index>()), 1..400),
    ) {
        let mut b = BoundedLoad::new(&nodes, c, k, hash).expect("valid parameters");
        let mut in_flight: Vec<u32> = Vec::new();
        for (arrive, key, which) in steps {
            if arrive || in_flight.is_empty() {
                let node = b.pick(key, 0).expect("non-empty membership");
                b.on_start(node);
                in_flight.push(node);
                let cap = capacity(c, in_flight.len() as u64, nodes.len());
                prop_assert!(b.loads()[node as usize] <= cap, "c={c}: placed over {cap}: {:?}", b.loads());
            } else {
                let node = in_flight.swap_remove(which.index(in_flight.len()));
                b.on_finish(node, 0, 0);
            }
            prop_assert_eq!(b.in_flight(), in_flight.len() as u64);
        }
    }

    #[test]
    fn ring_moves_only_the_departed_or_joined_nodes_keys(
        nodes in names(24), gone in any::<prop::sample::Index>(), k in 1u32..80, hash in hash_kind(), keys in keys(),
    ) {
        minimal_disruption(&nodes, gone.index(nodes.len()), &keys, |n| {
            let ring = Ring::build(n, k, hash);
            move |key| ring.lookup(key)
        })?;
    }

    #[test]
    fn rendezvous_moves_only_the_departed_or_joined_nodes_keys(
        nodes in names(24), gone in any::<prop::sample::Index>(), hash in hash_kind(), keys in keys(),
    ) {
        minimal_disruption(&nodes, gone.index(nodes.len()), &keys, |n| {
            let n = n.to_vec();
            move |key| rendezvous(hash, key, &n)
        })?;
    }

    #[test]
    fn jump_moves_keys_only_into_the_new_bucket(buckets in 1u32..5_000, keys in keys()) {
        for key in keys {
            let (before, after) = (jump(key, buckets), jump(key, buckets + 1));
            prop_assert!(before < buckets && after <= buckets);
            prop_assert!(before == after || after == buckets, "key {key}: {before} -> {after}");
        }
    }

    #[test]
    fn maglev_entries_per_backend_are_floor_or_ceil(
        nodes in names(40), m in prop::sample::select(vec![251u32, 509, 1021, 4093, 65_537]), hash in hash_kind(),
    ) {
        let table = populate(&nodes, m, hash);
        prop_assert_eq!(table.len(), m as usize);
        let n = nodes.len() as u32;
        let mut count = vec![0u32; nodes.len()];
        for e in &table {
            count[*e as usize] += 1;
        }
        let (lo, hi) = (m / n, m.div_ceil(n));
        prop_assert!(count.iter().all(|c| (lo..=hi).contains(c)), "M={m} n={n}: {count:?}");
        // Names, not list order, decide the table.
        let mut sorted = nodes.clone();
        sorted.sort();
        let by_name: BTreeSet<(String, usize)> =
            table.iter().enumerate().map(|(i, e)| (nodes[*e as usize].clone(), i)).collect();
        let by_name_sorted: BTreeSet<(String, usize)> =
            populate(&sorted, m, hash).iter().enumerate().map(|(i, e)| (sorted[*e as usize].clone(), i)).collect();
        prop_assert_eq!(by_name, by_name_sorted);
    }
}

/// The property bites: modulo hashing (`key mod n`) moves most keys when one node leaves.
#[test]
fn modulo_hashing_fails_the_minimal_disruption_property() {
    let nodes: Vec<String> = (0..10).map(|i| format!("node-{i}")).collect();
    let keys: Vec<u64> = (0..300u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
    let modulo = |n: &[String]| {
        let len = n.len() as u64;
        move |key: u64| Some((key % len) as u32)
    };
    assert!(minimal_disruption(&nodes, 3, &keys, modulo).is_err());
}
