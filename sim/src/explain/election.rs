//! `regsim explain FILE --election N|slowest` (slowest: of the elections after a reign, the
//! cluster's first only when there is no other): the story of one Raft election, read off the
//! run's records — what ended the last leader's reign (its crash or pause, or the first
//! server whose election timer fired while it still led: a cut-off leader), each server's
//! timeout (a pre-vote round with PreVote on, a campaign that bumps the term), every vote
//! granted (who voted for whom, in which term), the rounds that split (more than one
//! candidate, or none winning), and the winner with its votes — as a table (`explain.md`)
//! and a lane-per-server timeline (`election.svg`).
//!
//! The records come from `protocol/raft/node.rs`: `Obs::PreCampaign` and `Obs::Campaign`
//! where etcd's raft calls `becomePreCandidate` / `becomeCandidate` (`raft.go`, `hup` ->
//! `campaign`), `Obs::Voted` where a node grants a vote (`Step`, `MsgVote`/`MsgPreVote`
//! answered with `Reject: false`), `Obs::LeaderElected` at `becomeLeader`. A vote that was
//! granted but never arrived (lost, or the candidate had moved on) still counts as granted
//! here: the records show the voter's decision, not the candidate's tally.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::fault::Topology;
use crate::protocol::Obs;
use crate::scenario::{Scenario, build};
use regsim_kernel::{FaultRecord, NodeId, SimTime, What};

use super::lanes::{Dot, lanes_svg};

/// What a step of an election is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The leader crashed or was paused.
    LeaderDown,
    PreCampaign,
    Campaign,
    Vote,
    PreVote,
    Won,
    SteppedDown,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::LeaderDown => "leader crashed / paused",
            Kind::PreCampaign => "timed out: asks for pre-votes",
            Kind::Campaign => "campaigns (new term)",
            Kind::Vote => "granted its vote",
            Kind::PreVote => "granted a pre-vote",
            Kind::Won => "became leader",
            Kind::SteppedDown => "stepped down",
        }
    }

    fn color(self) -> usize {
        match self {
            Kind::LeaderDown => 3,
            Kind::PreCampaign => 7,
            Kind::Campaign => 1,
            Kind::Vote => 0,
            Kind::PreVote => 9,
            Kind::Won => 2,
            Kind::SteppedDown => 4,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Step {
    pub t: SimTime,
    pub node: NodeId,
    pub kind: Kind,
    pub term: u64,
    /// The candidate a vote went to.
    pub to: Option<NodeId>,
}

/// One leaderless period: from what ended the last leader's reign to the next leader.
#[derive(Clone, Debug)]
pub struct Election {
    /// 1-based, in the order the run had them (the first is the cluster's start).
    pub number: usize,
    pub started: SimTime,
    /// The leader before (none at the start).
    pub previous: Option<(NodeId, u64)>,
    /// (winner, term, time); none when the run ended first.
    pub won: Option<(NodeId, u64, SimTime)>,
    pub steps: Vec<Step>,
}

impl Election {
    pub fn duration(&self, end: SimTime) -> f64 {
        (self.won.map_or(end, |w| w.2) - self.started).as_secs_f64()
    }

    /// Per term campaigned: candidates and the votes each was granted (itself included).
    pub fn rounds(&self) -> BTreeMap<u64, BTreeMap<NodeId, u32>> {
        let mut out: BTreeMap<u64, BTreeMap<NodeId, u32>> = BTreeMap::new();
        for s in &self.steps {
            match s.kind {
                Kind::Campaign => *out.entry(s.term).or_default().entry(s.node).or_default() += 1,
                Kind::Vote => {
                    if let Some(c) = s.to {
                        *out.entry(s.term).or_default().entry(c).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        out
    }
}

pub struct Story {
    pub scenario: String,
    pub seed: u64,
    pub servers: usize,
    pub end: SimTime,
    pub elections: Vec<Election>,
    pub topology: Topology,
}

/// Which election: its number or the slowest one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Number(usize),
    Slowest,
}

impl Pick {
    pub fn parse(text: &str) -> Result<Pick, String> {
        match text {
            "slowest" => Ok(Pick::Slowest),
            n => match n.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(Pick::Number(k)),
                _ => Err(format!("expected an election number from 1 or `slowest`, got {n:?}")),
            },
        }
    }
}

/// Runs the scenario (CP mode) and collects every election.
pub fn collect(scenario: &Scenario, seed: u64) -> Result<Story, String> {
    if scenario.registry.mode != crate::scenario::schema::RegistryMode::Cp {
        return Err("the scenario runs in AP mode: there are no elections (registry.mode = \"cp\" has them)".into());
    }
    let mut built = build::build(scenario, seed).map_err(|(p, m)| format!("{p}: {m}"))?;
    let servers = built.servers();
    let end = SimTime(scenario.duration.as_nanos());
    let mut elections: Vec<Election> = Vec::new();
    let mut open = Some(Election { number: 1, started: SimTime(0), previous: None, won: None, steps: Vec::new() });
    let mut leader: Option<(NodeId, u64)> = None;
    // Pre-vote rounds while a leader reigns: they do not disturb it (that is what PreVote is
    // for), so they open no election; the ones for the term a campaign then takes join it.
    let mut pending: Vec<Step> = Vec::new();
    crate::run::drive(&mut built.world, end, scenario.limits.max_events, &mut |records, _| {
        for r in records {
            let (t, node) = (r.time, r.node);
            if !servers.contains(&node) {
                continue;
            }
            let step = |kind, term, to| Step { t, node, kind, term, to };
            // What ends a reign: the leader down, or a server timing out while one leads.
            let ends_reign = match &r.what {
                What::Fault(FaultRecord::Crashed | FaultRecord::Paused) => leader.is_some_and(|(l, _)| l == node),
                What::Actor(Obs::Campaign { .. }) => leader.is_some(),
                _ => false,
            };
            if open.is_none() {
                match &r.what {
                    What::Actor(Obs::PreCampaign { term }) => pending.push(step(Kind::PreCampaign, *term, None)),
                    What::Actor(Obs::Voted { term, candidate, pre: true }) => {
                        pending.push(step(Kind::PreVote, *term, Some(*candidate)))
                    }
                    _ => {}
                }
                if pending.len() > 4096 {
                    pending.drain(..2048);
                }
            }
            if ends_reign && open.is_none() {
                let number = elections.len() + 1;
                let term = match &r.what {
                    What::Actor(Obs::Campaign { term }) => Some(*term),
                    _ => None,
                };
                let steps: Vec<Step> = pending.drain(..).filter(|p| Some(p.term) == term).collect();
                let started = steps.first().map_or(t, |p| p.t);
                open = Some(Election { number, started, previous: leader, won: None, steps });
                leader = None;
            }
            if open.is_none() {
                continue;
            }
            let Some(e) = open.as_mut() else { continue };
            match &r.what {
                What::Fault(FaultRecord::Crashed | FaultRecord::Paused) if ends_reign => {
                    e.steps.push(step(Kind::LeaderDown, e.previous.map_or(0, |p| p.1), None))
                }
                What::Actor(Obs::PreCampaign { term }) => e.steps.push(step(Kind::PreCampaign, *term, None)),
                What::Actor(Obs::Campaign { term }) => e.steps.push(step(Kind::Campaign, *term, None)),
                What::Actor(Obs::Voted { term, candidate, pre }) => {
                    e.steps.push(step(if *pre { Kind::PreVote } else { Kind::Vote }, *term, Some(*candidate)))
                }
                What::Actor(Obs::SteppedDown { term }) => e.steps.push(step(Kind::SteppedDown, *term, None)),
                What::Actor(Obs::LeaderElected { term, .. }) => {
                    e.steps.push(step(Kind::Won, *term, None));
                    e.won = Some((node, *term, t));
                    leader = Some((node, *term));
                    pending.clear();
                    if let Some(done) = open.take() {
                        elections.push(done);
                    }
                }
                _ => {}
            }
        }
    });
    elections.extend(open.filter(|e| !e.steps.is_empty()));
    Ok(Story {
        scenario: scenario.name.clone(),
        seed,
        servers: servers.len(),
        end,
        elections,
        topology: built.topology,
    })
}

/// The election `pick` names, or why there is none.
pub fn pick(s: &Story, pick: Pick) -> Result<&Election, String> {
    let found = match pick {
        Pick::Number(k) => s.elections.get(k - 1),
        // The cluster's start is the slowest only when there is no other election.
        Pick::Slowest => {
            let failovers = s.elections.iter().filter(|e| e.previous.is_some());
            let slowest = |a: &&Election, b: &&Election| a.duration(s.end).total_cmp(&b.duration(s.end));
            failovers.max_by(slowest).or(s.elections.first())
        }
    };
    found.ok_or_else(|| {
        format!(
            "the run had {} election(s); --election takes 1..={} or `slowest`",
            s.elections.len(),
            s.elections.len()
        )
    })
}

/// The election in one paragraph: the cause, the rounds (split ones named), the winner.
pub fn summary(s: &Story, e: &Election) -> String {
    let name = |n: NodeId| s.topology.name(n);
    let after = |t: SimTime| format!("{:.3} s", (t - e.started).as_secs_f64());
    let cause = match (e.previous, e.steps.first()) {
        (None, _) => "The cluster starts without a leader".to_string(),
        (Some((l, term)), Some(first)) if first.kind == Kind::LeaderDown => {
            format!("Leader {} (term {term}) went down at {:.3} s", name(l), e.started.as_secs_f64())
        }
        (Some((l, term)), Some(first)) => format!(
            "Leader {} (term {term}) was still up when {} timed out at {:.3} s (it no longer reached it: cut off, \
             or its heartbeats were lost)",
            name(l),
            name(first.node),
            e.started.as_secs_f64()
        ),
        (Some((l, term)), None) => format!("Leader {} (term {term}) lost its reign", name(l)),
    };
    let first_timeout = e.steps.iter().find(|x| matches!(x.kind, Kind::PreCampaign | Kind::Campaign));
    let mut parts = vec![cause];
    if let Some(f) = first_timeout {
        parts.push(format!("{} timed out first, after {}", name(f.node), after(f.t)));
    }
    let majority = s.servers / 2 + 1;
    let rounds = e.rounds();
    let split: Vec<String> = rounds
        .iter()
        .filter(|(term, c)| c.len() > 1 || e.won.is_none_or(|w| w.1 != **term))
        .map(|(term, c)| {
            let who: Vec<String> = c.iter().map(|(n, v)| format!("{} {v}", name(*n))).collect();
            format!("term {term} ({})", who.join(", "))
        })
        .collect();
    parts.push(format!("{} round(s) of voting (a majority is {majority} of {})", rounds.len(), s.servers));
    if !split.is_empty() {
        parts.push(format!("rounds split or without a winner: {}", split.join("; ")));
    }
    match e.won {
        Some((w, term, t)) => {
            let votes = rounds.get(&term).and_then(|c| c.get(&w)).copied().unwrap_or(1);
            parts.push(format!("{} won term {term} after {} with {votes} vote(s)", name(w), after(t)))
        }
        None => parts.push("no leader before the run ended".to_string()),
    }
    format!("{}.", parts.join("; "))
}

pub fn markdown(s: &Story, e: &Election, plot: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# regsim explain: election {} in {} (seed {})\n", e.number, s.scenario, s.seed);
    let slowest = s.elections.iter().filter(|x| x.previous.is_some()).map(|x| x.duration(s.end)).fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "The run had {} election(s); this one lasted {:.3} s without a leader (the slowest after a leader's reign: {slowest:.3} s). \
         Each step is timed from the start of the leaderless period; *added* is the time since the step before. \
         A vote is the voter's decision: it may not have reached the candidate.\n",
        s.elections.len(),
        e.duration(s.end)
    );
    let _ = writeln!(out, "{}\n", summary(s, e));
    let _ =
        writeln!(out, "| at (s) | from the start (s) | added (s) | server | term | what |\n|---|---|---|---|---|---|");
    let mut prev: Option<SimTime> = None;
    for st in &e.steps {
        let added = prev.map_or("–".to_string(), |p| format!("{:.3}", (st.t - p).as_secs_f64()));
        let what = match st.to {
            Some(c) => format!("{} {}", st.kind.label(), format_args!("to {}", s.topology.name(c))),
            None => st.kind.label().to_string(),
        };
        let _ = writeln!(
            out,
            "| {:.3} | {:+.3} | {added} | {} | {} | {what} |",
            st.t.as_secs_f64(),
            (st.t - e.started).as_secs_f64(),
            s.topology.name(st.node),
            st.term
        );
        prev = Some(st.t);
    }
    let _ = writeln!(out);
    if let Some(f) = plot {
        let _ = writeln!(out, "![timeline of election {}]({f})\n", e.number);
    }
    out
}

pub fn timeline_svg(s: &Story, e: &Election) -> Result<String, String> {
    let mut lanes: Vec<NodeId> = e.steps.iter().map(|x| x.node).collect();
    lanes.sort();
    lanes.dedup();
    let names: Vec<String> = lanes.iter().map(|n| s.topology.name(*n)).collect();
    let dots: Vec<Dot> = e
        .steps
        .iter()
        .map(|st| Dot {
            x: (st.t - e.started).as_secs_f64(),
            lane: lanes.iter().position(|n| *n == st.node).unwrap_or(0),
            color: st.kind.color(),
            label: st.kind.label(),
            text: match (st.kind, st.to) {
                (Kind::Vote | Kind::PreVote, Some(c)) => Some(format!("→{} t{}", s.topology.name(c), st.term)),
                (Kind::Campaign | Kind::Won, _) => Some(format!("t{}", st.term)),
                _ => None,
            },
        })
        .collect();
    let title = format!("{}: election {} at {:.1} s", s.scenario, e.number, e.started.as_secs_f64());
    lanes_svg(&title, "seconds from the start of the election", &names, &dots)
}

/// `explain.md` and `election.svg`.
pub fn render(s: &Story, e: &Election) -> Result<Vec<(String, Vec<u8>)>, String> {
    let svg = timeline_svg(s, e)?;
    Ok(vec![
        ("explain.md".to_string(), markdown(s, e, Some("election.svg")).into_bytes()),
        ("election.svg".to_string(), svg.into_bytes()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// raft-leader-isolation: the first election is the start; the isolation of the leader
    /// makes another, which some other server wins in a higher term, with a majority of votes.
    #[test]
    fn the_story_of_an_election_names_timeouts_votes_and_the_winner() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/raft-leader-isolation.toml");
        let scenario = crate::scenario::load(&path, &[]).expect("scenario");
        let story = collect(&scenario, scenario.seed).expect("story");
        assert!(story.elections.len() >= 2, "{}", story.elections.len());
        let first = &story.elections[0];
        assert!(first.previous.is_none() && first.won.is_some());
        let e = &story.elections[1];
        let (old, old_term) = e.previous.expect("a leader before");
        let (winner, term, _) = e.won.expect("a winner");
        assert!(winner != old && term > old_term, "{old} {old_term} -> {winner} {term}");
        let votes = e.rounds()[&term][&winner] as usize;
        assert!(votes > story.servers / 2, "won with {votes} of {}", story.servers);
        assert!(e.steps.iter().all(|x| x.t >= e.started), "every step after the start");
        let md = markdown(&story, e, Some("election.svg"));
        assert!(md.contains(&format!("won term {term}")) && md.contains("granted its vote to"), "{md}");
        assert!(timeline_svg(&story, e).expect("svg").contains(&story.topology.name(winner)));
        assert_eq!(pick(&story, Pick::Number(1)).map(|x| x.number), Ok(1));
        assert!(pick(&story, Pick::Number(999)).is_err());
        assert_eq!(Pick::parse("slowest"), Ok(Pick::Slowest));
        assert!(Pick::parse("0").is_err() && Pick::parse("x").is_err());
        let ap = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nacos-crash.toml");
        let ap = crate::scenario::load(&ap, &[]).expect("scenario");
        assert!(collect(&ap, 1).is_err(), "AP has no elections");
    }
}
