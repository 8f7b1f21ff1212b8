//! Fault plans: what a swarm variant injects, as plain data that turns into `[[faults]]`
//! tables.
//!
//! A [`Plan`] is a list of [`GenFault`]s plus network loss and duplication rates. Each fault
//! names its *kind* (a fault action on a target shape: crash a server, pause some instances,
//! isolate the Raft leader, cut the servers into halves, ...), a start time, a duration (every
//! fault is undone by its paired verb: restart, resume, heal, clock reset) and raw numbers
//! (`pick`, `count`) that become node indices modulo the cluster's sizes when the plan is
//! written out. So a plan stays valid when shrinking removes faults or nodes, and the same
//! plan type is generated at random by `regsim swarm` ([`Plan::random`]) and by proptest
//! strategies in the tests.

use rand::RngExt;

use regsim_kernel::SimRng;

/// One kind of fault; a swarm variant enables a random subset of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    CrashServer,
    CrashInstances,
    PauseServer,
    PauseInstances,
    /// One server cut off from every other node.
    Isolate,
    /// The servers cut into two halves (instances and consumers reach both).
    Halves,
    MajoritiesRing,
    Bridge,
    /// One server's clock stepped and drifting.
    Skew,
    CrashLeader,
    PauseLeader,
    IsolateLeader,
    CrashFollower,
    PauseFollower,
    IsolateFollower,
}

impl FaultKind {
    /// Kinds for an AP registry.
    pub const AP: [FaultKind; 9] = [
        FaultKind::CrashServer,
        FaultKind::CrashInstances,
        FaultKind::PauseServer,
        FaultKind::PauseInstances,
        FaultKind::Isolate,
        FaultKind::Halves,
        FaultKind::MajoritiesRing,
        FaultKind::Bridge,
        FaultKind::Skew,
    ];
    /// Kinds for a CP registry: the AP ones plus faults on the current leader or a follower.
    pub const CP: [FaultKind; 15] = [
        FaultKind::CrashServer,
        FaultKind::CrashInstances,
        FaultKind::PauseServer,
        FaultKind::PauseInstances,
        FaultKind::Isolate,
        FaultKind::Halves,
        FaultKind::MajoritiesRing,
        FaultKind::Bridge,
        FaultKind::Skew,
        FaultKind::CrashLeader,
        FaultKind::PauseLeader,
        FaultKind::IsolateLeader,
        FaultKind::CrashFollower,
        FaultKind::PauseFollower,
        FaultKind::IsolateFollower,
    ];

    pub fn kinds(cp: bool) -> &'static [FaultKind] {
        if cp { &Self::CP } else { &Self::AP }
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::CrashServer => "crash-server",
            FaultKind::CrashInstances => "crash-instances",
            FaultKind::PauseServer => "pause-server",
            FaultKind::PauseInstances => "pause-instances",
            FaultKind::Isolate => "partition-isolate",
            FaultKind::Halves => "partition-halves",
            FaultKind::MajoritiesRing => "partition-majorities-ring",
            FaultKind::Bridge => "partition-bridge",
            FaultKind::Skew => "clock-skew",
            FaultKind::CrashLeader => "crash-leader",
            FaultKind::PauseLeader => "pause-leader",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::CrashFollower => "crash-follower",
            FaultKind::PauseFollower => "pause-follower",
            FaultKind::IsolateFollower => "isolate-follower",
        }
    }
}

/// One generated fault (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenFault {
    pub kind: FaultKind,
    pub at_ms: u64,
    /// The paired verb (restart, resume, heal, clock reset) runs this long after `at_ms`.
    pub duration_ms: u64,
    /// Which node (modulo the role's size) or, for instances, the first of a range.
    pub pick: u32,
    /// Instances in the range (at least 1, at most the role's size).
    pub count: u32,
    /// Clock skew: offset and drift.
    pub offset_ms: i64,
    pub drift_ppm: i64,
}

impl GenFault {
    pub fn end_ms(&self) -> u64 {
        self.at_ms + self.duration_ms
    }
}

/// What a variant injects on top of the base scenario.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Network-wide message loss and duplication (0: the base file's value stays).
    pub loss: f64,
    pub duplicate: f64,
    pub faults: Vec<GenFault>,
}

/// The cluster a plan is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub cp: bool,
    /// CP with lease reads: a lease assumes clocks that neither step nor drift apart, so no
    /// clock skew is injected (a skewed leader can serve a stale read by design).
    pub lease: bool,
    pub servers: u32,
    pub instances: u32,
    pub consumers: u32,
}

/// Most faults a generated plan holds.
pub const MAX_PLAN_FAULTS: usize = 64;

impl Plan {
    /// A swarm variant's plan: each fault kind (and loss, and duplication) enabled with
    /// probability 1/2 (swarm testing: a random subset of features per run, so no kind keeps
    /// masking another), one to three faults per enabled kind, each at a uniform time in the
    /// first 85 % of the safety phase of `safety_ms` and undone before it ends.
    pub fn random(rng: &mut SimRng, sizes: &Sizes, safety_ms: u64) -> Plan {
        let mut plan = Plan::default();
        if rng.random_bool(0.25) {
            plan.loss = (rng.random_range(1..=200) as f64) / 10_000.0;
        }
        if rng.random_bool(0.25) {
            plan.duplicate = (rng.random_range(1..=500) as f64) / 10_000.0;
        }
        let safety_ms = safety_ms.max(4_000);
        for &kind in FaultKind::kinds(sizes.cp) {
            if !rng.random_bool(0.5) || (kind == FaultKind::Skew && sizes.lease) {
                continue;
            }
            for _ in 0..rng.random_range(1..=3) {
                let at_ms = rng.random_range(safety_ms / 20..safety_ms * 17 / 20);
                let longest = (safety_ms * 3 / 10).min(safety_ms - 1_000 - at_ms).max(500);
                let skew = kind == FaultKind::Skew;
                plan.faults.push(GenFault {
                    kind,
                    at_ms,
                    duration_ms: rng.random_range(500..=longest),
                    pick: rng.random_range(0..u32::MAX),
                    count: rng.random_range(1..=(sizes.instances / 4).max(1)),
                    offset_ms: if skew { rng.random_range(-2_000..=2_000) } else { 0 },
                    drift_ppm: if skew && rng.random_bool(0.5) { rng.random_range(-2_000..=2_000) } else { 0 },
                });
            }
        }
        plan.faults.sort_by_key(|f| (f.at_ms, f.kind));
        plan
    }

    /// The latest time a fault is undone.
    pub fn end_ms(&self) -> u64 {
        self.faults.iter().map(GenFault::end_ms).max().unwrap_or(0)
    }

    /// The plan's faults as `[[faults]]` tables for a cluster of `sizes` (faults that need a
    /// role the cluster lacks, more servers than it has for their partition shape, a Raft
    /// leader in AP mode, or clock skew under lease reads, are left out).
    pub fn fault_tables(&self, sizes: &Sizes) -> Vec<toml::Value> {
        self.faults.iter().filter_map(|f| fault_table(f, sizes)).map(toml::Value::Table).collect()
    }
}

fn ms(v: u64) -> toml::Value {
    toml::Value::String(format!("{v}ms"))
}

/// The `[[faults]]` table of one generated fault; None when it does not apply to `sizes`
/// (a partition shape needing more servers, leader faults in AP, skew under leases).
pub(crate) fn fault_table(f: &GenFault, sizes: &Sizes) -> Option<toml::Table> {
    use FaultKind::*;
    let mut t = toml::Table::new();
    let s = |v: &str| toml::Value::String(v.to_string());
    let server = || (sizes.servers > 0).then(|| format!("servers[{}]", f.pick % sizes.servers.max(1)));
    let instances = || {
        (sizes.instances > 0).then(|| {
            let first = f.pick % sizes.instances;
            let last = (first + f.count.max(1)).min(sizes.instances);
            format!("instances[{first}..{last}]")
        })
    };
    let (action, target, shape) = match f.kind {
        CrashServer => ("crash", server()?, None),
        PauseServer => ("pause", server()?, None),
        CrashInstances => ("crash", instances()?, None),
        PauseInstances => ("pause", instances()?, None),
        Isolate => ("partition", server()?, Some("isolate")),
        Halves if sizes.servers >= 2 => ("partition", "servers".to_string(), Some("halves")),
        MajoritiesRing if sizes.servers >= 3 => ("partition", "servers".to_string(), Some("majorities-ring")),
        Bridge if sizes.servers >= 3 => ("partition", "servers".to_string(), Some("bridge")),
        Halves | MajoritiesRing | Bridge => return None,
        Skew if sizes.lease => return None,
        Skew => ("skew", server()?, None),
        CrashLeader | PauseLeader | IsolateLeader | CrashFollower | PauseFollower | IsolateFollower => {
            if !sizes.cp {
                return None;
            }
            let who =
                if matches!(f.kind, CrashLeader | PauseLeader | IsolateLeader) { "leader" } else { "follower[random]" };
            let (action, shape) = match f.kind {
                CrashLeader | CrashFollower => ("crash", None),
                PauseLeader | PauseFollower => ("pause", None),
                _ => ("partition", Some("isolate")),
            };
            (action, who.to_string(), shape)
        }
    };
    t.insert("at".into(), ms(f.at_ms));
    t.insert("action".into(), s(action));
    t.insert("target".into(), toml::Value::String(target));
    if let Some(shape) = shape {
        t.insert("shape".into(), s(shape));
    }
    t.insert("duration".into(), ms(f.duration_ms.max(1)));
    if f.kind == Skew {
        t.insert("offset".into(), s(&format!("{}{}ms", if f.offset_ms < 0 { "-" } else { "" }, f.offset_ms.abs())));
        t.insert("drift_ppm".into(), toml::Value::Integer(f.drift_ppm));
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regsim_kernel::stream;

    #[test]
    fn random_plans_fit_the_safety_phase_and_write_valid_targets() {
        let sizes = Sizes { cp: true, lease: false, servers: 3, instances: 10, consumers: 2 };
        for seed in 0..50 {
            let plan = Plan::random(&mut stream(seed, "swarm"), &sizes, 120_000);
            assert!(plan.end_ms() < 120_000, "{plan:?}");
            let tables = plan.fault_tables(&sizes);
            assert_eq!(tables.len(), plan.faults.len());
            for t in &tables {
                let target = t.get("target").and_then(toml::Value::as_str).unwrap_or_default();
                assert!(!target.contains("servers[3]") && !target.contains("..11]"), "{t:?}");
            }
        }
    }
}
