//! `regsim explain FILE --instance NAME`: the story of one instance's crashes, read off the
//! run's ground-truth and observation records — its last successful beat, the crash, each
//! server's copy changing (the responsible server's mark and deletion, the peers following by
//! Distro sync or status report), each consumer view dropping it (push or poll), each
//! consumer's and gateway's last request to it, the monitoring's scrapes and target changes,
//! the restart — one timeline per crash episode with the time each step added, as text
//! (`explain.md`) and as a lane-per-node SVG.
//!
//! Approximation: what carried a change (a sync, a status report, a push, a poll) is not in
//! the records, only its effect on each copy and view; the text names the mechanism by role
//! (a server other than the one that marked it follows a replication message).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::fault::Topology;
use crate::protocol::{Obs, RequestKind};
use crate::scenario::{Scenario, build};
use regsim_kernel::{FaultRecord, NodeId, SimTime, What};

pub mod election;
mod lanes;

/// What a step is, for its colour in the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Beat,
    Crash,
    Mark,
    Copy,
    View,
    Traffic,
    Monitoring,
    Restart,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Beat => "last beat",
            Kind::Crash => "crash / restart",
            Kind::Mark => "mark, deletion (responsible server)",
            Kind::Copy => "server copy changed",
            Kind::View => "consumer view dropped it",
            Kind::Traffic => "last request to it",
            Kind::Monitoring => "monitoring",
            Kind::Restart => "crash / restart",
        }
    }

    /// Index into the shared palette.
    fn color(self) -> usize {
        match self {
            Kind::Beat => 7,
            Kind::Crash | Kind::Restart => 3,
            Kind::Mark => 1,
            Kind::Copy => 0,
            Kind::View => 2,
            Kind::Traffic => 4,
            Kind::Monitoring => 5,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Step {
    pub t: SimTime,
    pub node: NodeId,
    pub kind: Kind,
    pub what: String,
}

/// One crash of the instance, until its restart or the end of the run.
#[derive(Clone, Debug)]
pub struct Episode {
    pub crashed: SimTime,
    pub restarted: Option<SimTime>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug)]
pub struct Story {
    pub scenario: String,
    pub seed: u64,
    pub instance: NodeId,
    pub name: String,
    pub episodes: Vec<Episode>,
    pub topology: Topology,
}

/// Resolves `name` (`instances[2]`) to one node of the scenario's instances.
fn instance_of(t: &Topology, name: &str) -> Result<NodeId, String> {
    let mut rng = regsim_kernel::stream(0, "explain");
    let nodes = t.select(name, &mut rng)?;
    match nodes.as_slice() {
        [n] if t.role_of(*n).is_some_and(|(r, _)| r.name == crate::scenario::build::INSTANCES) => Ok(*n),
        [_] => Err(format!("{name:?} is not an instance (expected e.g. instances[2])")),
        _ => Err(format!("{name:?} names {} nodes; name one instance, e.g. instances[2]", nodes.len())),
    }
}

/// Runs the scenario and collects the story of `name`'s crashes.
pub fn explain(scenario: &Scenario, seed: u64, name: &str) -> Result<Story, String> {
    let mut built = build::build(scenario, seed).map_err(|(p, m)| format!("{p}: {m}"))?;
    let me = instance_of(&built.topology, name)?;
    let end = SimTime(scenario.duration.as_nanos());
    let mut episodes: Vec<Episode> = Vec::new();
    let mut open: Option<Episode> = None;
    let mut last_beat: Option<SimTime> = None;
    // Per consumer or gateway: the last request to the instance in the open episode.
    let mut last_call: BTreeMap<NodeId, SimTime> = BTreeMap::new();
    crate::run::drive(&mut built.world, end, scenario.limits.max_events, &mut |records, _| {
        for r in records {
            let t = r.time;
            match &r.what {
                What::Fault(FaultRecord::Crashed) if r.node == me => {
                    let mut e = Episode { crashed: t, restarted: None, steps: Vec::new() };
                    if let Some(b) = last_beat {
                        e.steps.push(Step { t: b, node: me, kind: Kind::Beat, what: "last successful beat".into() });
                    }
                    e.steps.push(Step { t, node: me, kind: Kind::Crash, what: "crashed".into() });
                    open = Some(e);
                    last_call.clear();
                }
                What::Fault(FaultRecord::Restarted) if r.node == me => {
                    if let Some(mut e) = open.take() {
                        close_calls(&mut e, &mut last_call);
                        e.restarted = Some(t);
                        e.steps.push(Step { t, node: me, kind: Kind::Restart, what: "restarted".into() });
                        episodes.push(e);
                    }
                }
                What::Actor(Obs::Request { kind: RequestKind::Beat, ok: true }) if r.node == me => last_beat = Some(t),
                What::Actor(o) => {
                    let Some(e) = open.as_mut() else { continue };
                    let step = |kind, what: &str| Step { t, node: r.node, kind, what: what.to_string() };
                    match *o {
                        Obs::MarkedUnhealthy { instance } if instance == me => {
                            e.steps.push(step(Kind::Mark, "marked it unhealthy (its health check)"))
                        }
                        Obs::Deleted { instance } if instance == me => {
                            e.steps.push(step(Kind::Mark, "deleted it (no beat for delete_after)"))
                        }
                        Obs::Copy { instance, state } if instance == me => {
                            let what = format!("its copy now {}", format!("{state:?}").to_lowercase());
                            e.steps.push(step(Kind::Copy, &what));
                        }
                        Obs::View { instance, present: false } if instance == me => {
                            e.steps.push(step(Kind::View, "view dropped it (push or poll)"))
                        }
                        Obs::CallSent { instance } | Obs::Upstream { instance, .. } if instance == me => {
                            last_call.insert(r.node, t);
                        }
                        Obs::Breaker { instance, state } if instance == me => {
                            let what = format!("circuit breaker {}", format!("{state:?}").to_lowercase());
                            e.steps.push(step(Kind::Traffic, &what));
                        }
                        Obs::ScrapeFailed { instance } if instance == me => {
                            e.steps.push(step(Kind::Monitoring, "scrape failed (up = 0)"))
                        }
                        Obs::Target { instance, present } if instance == me => {
                            let what = if present { "scrape target added" } else { "scrape target dropped" };
                            e.steps.push(step(Kind::Monitoring, what));
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    });
    if let Some(mut e) = open.take() {
        close_calls(&mut e, &mut last_call);
        episodes.push(e);
    }
    for e in &mut episodes {
        e.steps.sort_by_key(|s| (s.t, s.node));
    }
    Ok(Story {
        scenario: scenario.name.clone(),
        seed,
        instance: me,
        name: built.topology.name(me),
        episodes,
        topology: built.topology,
    })
}

fn close_calls(e: &mut Episode, last: &mut BTreeMap<NodeId, SimTime>) {
    for (node, t) in std::mem::take(last) {
        e.steps.push(Step { t, node, kind: Kind::Traffic, what: "its last request to it".into() });
    }
}

/// `explain.md`: per episode, a table of steps with the time since the crash and what each
/// step added since the one before, and the timeline plot.
pub fn markdown(s: &Story, plots: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# regsim explain: {} in {} (seed {})\n", s.name, s.scenario, s.seed);
    if s.episodes.is_empty() {
        let _ = writeln!(out, "{} did not crash in this run: there is no detection story to tell.", s.name);
        return out;
    }
    let _ = writeln!(
        out,
        "{} crashed {} time(s). Each step is timed from the crash; *added* is the time since the step \
         before. The records show each copy and view changing, not the message that changed it: a server \
         copy that changes after the responsible server's mark followed a Distro sync or a status report; a \
         consumer view that drops the instance got a push or a poll answer.\n",
        s.name,
        s.episodes.len()
    );
    for (k, e) in s.episodes.iter().enumerate() {
        let end = e
            .restarted
            .map_or("the end of the run".to_string(), |r| format!("its restart at {:.3} s", r.as_secs_f64()));
        let _ = writeln!(out, "## Crash {} at {:.3} s (until {end})\n", k + 1, e.crashed.as_secs_f64());
        let _ = writeln!(out, "{}\n", milestones(s, e));
        let _ = writeln!(out, "| at (s) | from the crash (s) | added (s) | node | what |\n|---|---|---|---|---|");
        let mut prev = None;
        for st in &e.steps {
            let since = st.t.as_secs_f64() - e.crashed.as_secs_f64();
            let added = prev.map_or("–".to_string(), |p: SimTime| format!("{:.3}", (st.t - p).as_secs_f64()));
            let _ = writeln!(
                out,
                "| {:.3} | {since:+.3} | {added} | {} | {} |",
                st.t.as_secs_f64(),
                s.topology.name(st.node),
                st.what
            );
            prev = Some(st.t);
        }
        let _ = writeln!(out);
        let file = plot_name(k);
        if plots.contains(&file) {
            let _ = writeln!(out, "![timeline of crash {}]({file})\n", k + 1);
        }
    }
    out
}

/// The episode in one sentence: when each stage was reached, from the crash.
pub fn milestones(s: &Story, e: &Episode) -> String {
    let after = |t: SimTime| format!("{:.3} s", (t - e.crashed).as_secs_f64());
    let first = |k: Kind| e.steps.iter().find(|x| x.kind == k);
    let last = |k: Kind| e.steps.iter().rev().find(|x| x.kind == k);
    let mut parts = Vec::new();
    match first(Kind::Mark) {
        Some(m) => parts.push(format!("{} marked it after {}", s.topology.name(m.node), after(m.t))),
        None => parts.push("no server marked it".to_string()),
    }
    if let Some(c) = last(Kind::Copy) {
        parts.push(format!("the last server copy changed after {}", after(c.t)));
    }
    if let Some(v) = last(Kind::View) {
        let n = e.steps.iter().filter(|x| x.kind == Kind::View).count();
        parts.push(format!("{n} consumer views dropped it, the last after {}", after(v.t)));
    }
    if let Some(c) = e.steps.iter().rev().find(|x| x.kind == Kind::Traffic && x.what.contains("request")) {
        parts.push(format!("the last request reached it after {} (from {})", after(c.t), s.topology.name(c.node)));
    }
    format!("In short: {}.", parts.join("; "))
}

fn plot_name(k: usize) -> String {
    format!("timeline-{}.svg", k + 1)
}

/// One lane per node that took part (the instance first), x = seconds from the crash.
pub fn timeline_svg(s: &Story, k: usize) -> Result<String, String> {
    let e = &s.episodes[k];
    let mut lanes: Vec<NodeId> = vec![s.instance];
    for st in &e.steps {
        if !lanes.contains(&st.node) {
            lanes.push(st.node);
        }
    }
    lanes[1..].sort();
    let names: Vec<String> = lanes.iter().map(|n| s.topology.name(*n)).collect();
    let dots: Vec<lanes::Dot> = e
        .steps
        .iter()
        .map(|st| lanes::Dot {
            x: st.t.as_secs_f64() - e.crashed.as_secs_f64(),
            lane: lanes.iter().position(|x| *x == st.node).unwrap_or(0),
            color: st.kind.color(),
            label: st.kind.label(),
            text: None,
        })
        .collect();
    let title = format!("{}: crash {} of {} at {:.1} s", s.scenario, k + 1, s.name, e.crashed.as_secs_f64());
    lanes::lanes_svg(&title, "seconds from the crash", &names, &dots)
}

/// The files of an explanation: `explain.md` and one timeline per episode (at most 20).
pub fn render(s: &Story) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut plots = Vec::new();
    for k in 0..s.episodes.len().min(20) {
        plots.push((plot_name(k), timeline_svg(s, k)?));
    }
    let names: Vec<String> = plots.iter().map(|p| p.0.clone()).collect();
    let mut files = vec![("explain.md".to_string(), markdown(s, &names).into_bytes())];
    files.extend(plots.into_iter().map(|(n, svg)| (n, svg.into_bytes())));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nacos-crash, instances[11] (crashed at 303.9 s, never restarted): the story runs last
    /// beat < crash < the responsible server's mark < the peers' copies < deletion, every
    /// consumer's view drops it after the mark, and the text and timeline name nodes by role.
    #[test]
    fn the_story_of_a_crash_follows_the_pipeline() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nacos-crash.toml");
        let scenario = crate::scenario::load(&path, &[]).expect("scenario");
        let story = explain(&scenario, scenario.seed, "instances[11]").expect("story");
        assert_eq!(story.name, "instances[11]");
        let [e] = story.episodes.as_slice() else { panic!("one crash: {:?}", story.episodes.len()) };
        let at = |k: Kind| e.steps.iter().filter(|x| x.kind == k).map(|x| x.t).collect::<Vec<_>>();
        let (beat, mark, copies, views) = (at(Kind::Beat), at(Kind::Mark), at(Kind::Copy), at(Kind::View));
        assert!(beat.len() == 1 && beat[0] < e.crashed, "{beat:?}");
        assert_eq!(mark.len(), 2, "marked, then deleted: {mark:?}");
        let unhealthy_after = (mark[0] - e.crashed).as_secs_f64();
        assert!((10.0..=20.05).contains(&unhealthy_after), "{unhealthy_after}");
        assert!(
            copies.iter().all(|c| *c >= mark[0]) && copies.len() == 6,
            "3 servers: unhealthy, then absent: {copies:?}"
        );
        assert!(!views.is_empty() && views.iter().all(|v| *v > mark[0]), "{views:?}");
        let md = markdown(&story, &["timeline-1.svg".to_string()]);
        assert!(md.contains("| servers[0] | marked it unhealthy"), "{md}");
        assert!(md.contains("In short: servers[0] marked it after"), "{md}");
        assert!(md.contains("![timeline of crash 1](timeline-1.svg)"));
        let svg = timeline_svg(&story, 0).expect("svg");
        assert!(svg.contains("consumers[0]") && svg.contains("instances[11]"));
        assert!(explain(&scenario, 1, "servers[0]").is_err(), "a server is not an instance");
        assert!(explain(&scenario, 1, "instances[0..3]").is_err(), "one instance");
    }
}
