//! Fault schedules: partitions, crashes, pauses and clock skew, with paired verbs.
//!
//! A scenario lists faults as `[[faults]]` tables; each has a time `at`, an `action`
//! (`crash`/`restart`, `pause`/`resume`, `partition`/`heal`, `skew`) and a `target`. A
//! `duration` schedules the paired verb on the *same* resolved nodes (`crash` + `duration`
//! restarts them; `pause` resumes; `partition` heals; `skew` resets the clock). Targets are
//! resolved once, when the schedule is built, from the fault stream (see `target`), except
//! `target = "leader"` (the current Raft leader) and `target = "follower[random]"` (a running
//! Raft member that is not the leader, drawn from the world's `faults/fire` stream), both
//! resolved when the fault fires. `every` repeats a fault (and its paired
//! verb) until the end of the run, each repetition delayed by a random `[0, jitter)`.

pub mod target;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use regsim_kernel::net::{Partition, Shape};
pub use regsim_kernel::{FaultAction, RoleFault, RoleTarget};
use regsim_kernel::{NodeId, SimDuration, SimRng, SimTime, parse_duration};
pub use target::{Role, Topology};

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Crash,
    Restart,
    Pause,
    Resume,
    Partition,
    Heal,
    Skew,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ShapeKind {
    Isolate,
    Halves,
    MajoritiesRing,
    Bridge,
    Groups,
}

/// The role targets a scenario can name, resolved when the fault fires by
/// `protocol::ConsensusRoles` (the kernel only carries the number).
pub mod role {
    use regsim_kernel::RoleTarget;
    /// The running node with the highest leader term.
    pub const LEADER: RoleTarget = RoleTarget(0);
    /// A running consensus member that is not the leader, picked at random.
    pub const RANDOM_FOLLOWER: RoleTarget = RoleTarget(1);

    /// `leader` or `follower[random]` (the whole target), else `None`.
    pub fn parse(t: &super::Targets) -> Option<RoleTarget> {
        match t.0.as_slice() {
            [one] => match one.replace(' ', "").as_str() {
                "leader" => Some(LEADER),
                "follower[random]" => Some(RANDOM_FOLLOWER),
                _ => None,
            },
            _ => None,
        }
    }
}

/// One `[[faults]]` entry as written in a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub at: SimDuration,
    pub action: ActionKind,
    pub target: Option<Targets>,
    pub duration: Option<SimDuration>,
    pub shape: Option<ShapeKind>,
    pub groups: Option<Vec<Targets>>,
    pub one_way: Option<bool>,
    /// Names a partition so a later `heal` can name it too.
    pub name: Option<String>,
    pub offset: Option<SignedDuration>,
    pub drift_ppm: Option<i64>,
    /// Repeat this fault (with its paired verb) every this long until the end of the run.
    pub every: Option<SimDuration>,
    /// With `every`: delay each repetition by a random amount in `[0, jitter)`.
    pub jitter: Option<SimDuration>,
}

/// One selector or a list of selectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets(pub Vec<String>);

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Targets;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a target like \"instances[0..10]\" or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Targets, E> {
                Ok(Targets(vec![v.to_string()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Targets, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Targets(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration that may be negative (clock offsets): `"-2s"`, `"500ms"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedDuration(pub i64);

impl<'de> Deserialize<'de> for SignedDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (neg, body) = match s.trim().strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.trim()),
        };
        let d = parse_duration(body).map_err(de::Error::custom)?;
        let v = i64::try_from(d.0).map_err(|_| de::Error::custom("offset is too large"))?;
        Ok(SignedDuration(if neg { -v } else { v }))
    }
}

/// Upper bound on faults after expanding `every`.
pub const MAX_EXPANDED: usize = 100_000;

/// A resolution error: (key path below `faults[i]`, message).
pub type FaultError = (String, String);

/// Resolves the schedule against `topology`, drawing random targets from `rng`.
pub fn resolve(
    specs: &[FaultSpec],
    topology: &Topology,
    rng: &mut SimRng,
    end: SimTime,
) -> Result<Vec<(SimTime, FaultAction)>, FaultError> {
    let mut expanded: Vec<(usize, FaultSpec)> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let Some(every) = spec.every else {
            expanded.push((i, spec.clone()));
            continue;
        };
        if every.0 == 0 {
            return Err((format!("faults[{i}].every"), "expected a duration above 0".into()));
        }
        let jitter = spec.jitter.map_or(0, |j| j.0);
        let mut at = spec.at;
        while at.0 <= end.0 {
            let extra = if jitter == 0 { 0 } else { rand::RngExt::random_range(rng, 0..jitter) };
            expanded.push((i, FaultSpec { at: at + SimDuration(extra), every: None, jitter: None, ..spec.clone() }));
            if expanded.len() > MAX_EXPANDED {
                return Err((format!("faults[{i}].every"), format!("expands to more than {MAX_EXPANDED} faults")));
            }
            at = at + every;
        }
    }
    let mut out = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, spec) in expanded.iter().map(|(i, s)| (*i, s)) {
        let path = |key: &str| format!("faults[{i}].{key}");
        let err = |key: &str, msg: String| (path(key), msg);
        check_fields(spec).map_err(|(k, m)| err(k, m))?;
        let at = SimTime(spec.at.0);
        let nodes = |rng: &mut SimRng| -> Result<Vec<NodeId>, FaultError> {
            let t = spec
                .target
                .as_ref()
                .ok_or_else(|| err("target", format!("required for action \"{:?}\"", spec.action).to_lowercase()))?;
            topology.select_all(&t.0, rng).map_err(|m| err("target", m))
        };
        let paired = |out: &mut Vec<(SimTime, FaultAction)>, a: FaultAction| {
            if let Some(d) = spec.duration {
                out.push((at + d, a));
            }
        };
        if let Some(who) = spec.target.as_ref().and_then(role::parse) {
            let what = match (spec.action, spec.shape) {
                (ActionKind::Crash, _) => RoleFault::Crash,
                (ActionKind::Pause, _) => RoleFault::Pause,
                (ActionKind::Partition, Some(ShapeKind::Isolate)) => {
                    RoleFault::Isolate(intern(&mut names, spec.name.as_deref().unwrap_or(&format!("#{i}"))))
                }
                _ => {
                    let msg = "\"leader\" and \"follower[random]\" are targets for crash, pause and partition \
                               with shape = \"isolate\"";
                    return Err(err("target", msg.into()));
                }
            };
            out.push((at, FaultAction::OnRole { who, what, undo_after: spec.duration }));
            continue;
        }
        match spec.action {
            ActionKind::Crash => {
                let n = nodes(rng)?;
                out.push((at, FaultAction::Crash(n.clone())));
                paired(&mut out, FaultAction::Restart(n));
            }
            ActionKind::Pause => {
                let n = nodes(rng)?;
                out.push((at, FaultAction::Pause(n.clone())));
                paired(&mut out, FaultAction::Resume(n));
            }
            ActionKind::Restart => out.push((at, FaultAction::Restart(nodes(rng)?))),
            ActionKind::Resume => out.push((at, FaultAction::Resume(nodes(rng)?))),
            ActionKind::Skew => {
                let n = nodes(rng)?;
                let offset_ns = spec.offset.map_or(0, |o| o.0);
                let drift_ppm = spec.drift_ppm.unwrap_or(0);
                if drift_ppm.abs() > 500_000 {
                    return Err(err("drift_ppm", "expected a drift within -500000..500000 ppm".into()));
                }
                out.push((at, FaultAction::Skew { nodes: n.clone(), offset_ns, drift_ppm }));
                paired(&mut out, FaultAction::Skew { nodes: n, offset_ns: 0, drift_ppm: 0 });
            }
            ActionKind::Partition => {
                let id = intern(&mut names, spec.name.as_deref().unwrap_or(&format!("#{i}")));
                let shape = partition_shape(spec, topology, rng).map_err(|(k, m)| err(k, m))?;
                let partition = Partition::build(&shape, topology.node_count() as usize, spec.one_way.unwrap_or(false))
                    .map_err(|m| err("shape", m))?;
                out.push((at, FaultAction::Partition { id, partition }));
                paired(&mut out, FaultAction::Heal(Some(id)));
            }
            ActionKind::Heal => {
                let id = match &spec.name {
                    None => None,
                    Some(n) => Some(
                        names
                            .iter()
                            .position(|x| x == n)
                            .ok_or_else(|| err("name", format!("no earlier partition is named \"{n}\"")))?
                            as u32,
                    ),
                };
                out.push((at, FaultAction::Heal(id)));
            }
        }
    }
    // Stable sort: same-time faults keep file order.
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

fn intern(names: &mut Vec<String>, name: &str) -> u32 {
    match names.iter().position(|n| n == name) {
        Some(i) => i as u32,
        None => {
            names.push(name.to_string());
            (names.len() - 1) as u32
        }
    }
}

/// Rejects fields that the action does not use, so typos in intent surface.
fn check_fields(spec: &FaultSpec) -> Result<(), (&'static str, String)> {
    let a = spec.action;
    let used = |field: &'static str, present: bool, ok: bool| {
        if present && !ok {
            Err((field, format!("not used by action \"{}\"", format!("{a:?}").to_lowercase())))
        } else {
            Ok(())
        }
    };
    use ActionKind::*;
    used("target", spec.target.is_some(), a != Heal)?;
    used("duration", spec.duration.is_some(), matches!(a, Crash | Pause | Partition | Skew))?;
    used("shape", spec.shape.is_some(), a == Partition)?;
    used("groups", spec.groups.is_some(), a == Partition)?;
    used("one_way", spec.one_way.is_some(), a == Partition)?;
    used("name", spec.name.is_some(), matches!(a, Partition | Heal))?;
    used("offset", spec.offset.is_some(), a == Skew)?;
    used("drift_ppm", spec.drift_ppm.is_some(), a == Skew)?;
    used("jitter", spec.jitter.is_some(), spec.every.is_some())?;
    Ok(())
}

fn partition_shape(spec: &FaultSpec, topology: &Topology, rng: &mut SimRng) -> Result<Shape, (&'static str, String)> {
    let shape = spec
        .shape
        .ok_or(("shape", "required for a partition: isolate, halves, majorities-ring, bridge or groups".to_string()))?;
    if shape != ShapeKind::Groups {
        if spec.groups.is_some() {
            return Err(("groups", "only for shape = \"groups\"; the other shapes split their `target`".into()));
        }
        let t = spec
            .target
            .as_ref()
            .ok_or(("target", "required: the nodes the shape splits, e.g. \"servers\"".to_string()))?;
        let members = topology.select_all(&t.0, rng).map_err(|m| ("target", m))?;
        return Ok(match shape {
            ShapeKind::Isolate => Shape::Isolate(members),
            ShapeKind::Halves => Shape::Halves(members),
            ShapeKind::MajoritiesRing => Shape::MajoritiesRing(members),
            _ => Shape::Bridge(members),
        });
    }
    if spec.target.is_some() {
        return Err(("target", "not used by shape = \"groups\" (list the nodes in `groups`)".into()));
    }
    let groups = spec.groups.as_ref().ok_or((
        "groups",
        "required for shape = \"groups\": a list of node groups, e.g. [[\"servers[0]\", \"instances[0..10]\"], [\"rest\"]]".to_string(),
    ))?;
    let mut resolved: Vec<Vec<NodeId>> = Vec::new();
    let mut rest_at = None;
    for (g, t) in groups.iter().enumerate() {
        if t.0.iter().any(|s| s.trim() == "rest") {
            if t.0.len() != 1 || rest_at.is_some() {
                return Err(("groups", "\"rest\" must be alone in its group and appear once".into()));
            }
            rest_at = Some(g);
            resolved.push(Vec::new());
        } else {
            resolved.push(topology.select_all(&t.0, rng).map_err(|m| ("groups", m))?);
        }
    }
    if let Some(g) = rest_at {
        let listed: std::collections::BTreeSet<NodeId> = resolved.iter().flatten().copied().collect();
        resolved[g] = (0..topology.node_count()).map(NodeId).filter(|n| !listed.contains(n)).collect();
    }
    Ok(Shape::Groups(resolved))
}
