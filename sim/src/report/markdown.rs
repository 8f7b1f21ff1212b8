//! `report.md` and the stdout summary: the same facts, for people.

use std::fmt::Write;

use super::model::{RatioByKind, Report, StageReport};

/// A stage's plain name and what it measures.
pub fn stage_title(name: &str) -> &'static str {
    match name {
        "unhealthy" => "marked unhealthy",
        "deleted" => "deleted",
        "replicated" => "gone from every server",
        "views_updated" => "gone from every consumer view",
        "traffic_stopped" => "last request to it",
        _ => "other",
    }
}

fn stage_row(name: &str, s: &StageReport) -> String {
    let m = &s.summary;
    let ran_out = s.missed - s.restarted_first;
    let title = stage_title(name);
    if m.count == 0 {
        return format!("| {title} | 0 | – | – | – | – | – | – | {} | {ran_out} |", s.restarted_first);
    }
    format!(
        "| {title} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {ran_out} |",
        m.count, m.min_s, m.p50_s, m.p90_s, m.p99_s, m.max_s, m.mean_s, s.restarted_first
    )
}

/// Crash episodes the detection stages apply to (listed instances that crashed).
fn crash_episodes(r: &Report) -> u64 {
    r.detection.unhealthy.summary.count + r.detection.unhealthy.missed
}

fn cause_name(k: &crate::metrics::detection::Cause) -> String {
    serde_json::to_string(k).unwrap_or_default().trim_matches('"').replace('_', " ")
}

fn causes(r: &Report) -> String {
    let c: Vec<String> = r.false_positives.causes.iter().map(|(k, v)| format!("{}: {v}", cause_name(k))).collect();
    if c.is_empty() { "none".into() } else { c.join(", ") }
}

/// The injected faults in words (node-level counts).
fn fault_words(r: &Report) -> String {
    let word = |k: &str| match k {
        "crashed" => "node crashes",
        "restarted" => "restarts",
        "paused" => "pauses",
        "resumed" => "resumes",
        "partitioned" => "nodes cut off by partitions",
        "healed" => "nodes reconnected",
        "clock_skewed" => "clock skews",
        _ => "other",
    };
    let order = ["crashed", "restarted", "paused", "resumed", "partitioned", "healed", "clock_skewed"];
    let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(order.len());
    let mut faults: Vec<(&String, &u64)> = r.faults.iter().collect();
    faults.sort_by_key(|(k, _)| rank(k));
    let v: Vec<String> = faults.iter().map(|(k, n)| format!("{n} {}", word(k))).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

pub(crate) fn plot(s: &mut String, plots: &[String], file: &str, alt: &str) {
    if plots.iter().any(|p| p == file) {
        let _ = writeln!(s, "![{alt}]({file})\n");
    }
}

/// The verdict in a reader's words: a violation fails only where linearizability is promised.
pub fn verdict_words(c: &crate::report::model::ConsistencyReport) -> String {
    match (c.verdict, c.promised) {
        ("violation", false) => "not linearizable (expected: AP promises no linearizability)".to_string(),
        ("violation", true) => "**violation** (CP promises linearizable operations)".to_string(),
        (v, _) => v.replace('_', " "),
    }
}

fn holds_word(i: &crate::check::Invariant) -> &'static str {
    match (i.holds, i.not_applicable) {
        (false, _) => "**NO**",
        (true, true) => "not applicable",
        (true, false) => "yes",
    }
}

pub fn markdown(r: &Report, plots: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# regsim report: {}\n", r.scenario);
    // What ran.
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| seed | {} |", r.seed);
    if r.topology.get("servers").is_some_and(|n| *n > 0) {
        let mode = if r.consistency.promised { "CP (Raft)" } else { "AP (Distro)" };
        let _ = writeln!(s, "| registry mode | {mode} |");
    }
    let _ = writeln!(s, "| virtual duration | {:.3} s |", r.virtual_duration_s);
    let _ = writeln!(s, "| events | {} |", r.events);
    let _ = writeln!(s, "| outcome | {} |", r.outcome.describe());
    let _ = writeln!(s, "| digest | `{}` |", r.digest);
    let topo: Vec<String> = r.topology.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(s, "| nodes | {} |", topo.join(", "));
    let _ = writeln!(s, "| faults injected | {} |", fault_words(r));
    let _ = writeln!(s, "| regsim | {} |\n", r.regsim_version);
    if !r.warnings.is_empty() {
        let _ = writeln!(s, "**Warnings** (settings that ran but cannot work as meant):\n");
        for w in &r.warnings {
            let _ = writeln!(s, "- {w}");
        }
        let _ = writeln!(s);
    }
    // What failed.
    let _ = writeln!(s, "## Invariants\n\n| invariant | holds | detail |\n|---|---|---|");
    for i in &r.invariants {
        let _ = writeln!(s, "| {} | {} | {} |", i.name, holds_word(i), i.detail.replace('|', "\\|"));
    }
    let _ = writeln!(s);
    // How long detection took.
    detection_md(&mut s, r, plots);
    elections_md(&mut s, r, plots);
    super::alerts_md::markdown(&mut s, r);
    plot(&mut s, plots, "alerts-cdf.svg", "alert latency from the crash, over every crash");
    // What users saw.
    super::users_md::availability_md(&mut s, r);
    if let Some(st) = &r.staleness {
        let who = if r.api.is_some() { "gateway" } else { "consumer" };
        let _ = writeln!(s, "## Staleness of {who} views\n");
        let _ = writeln!(
            s,
            "Sampled every {} s ({} samples): on average {:.2} % of running {who}s had a wrong view \
             (max {:.2} %); the longest a view stayed wrong was {:.1} s.\n",
            st.sample_interval_s,
            st.samples,
            st.mean_fraction_wrong * 100.0,
            st.max_fraction_wrong * 100.0,
            st.worst_wrong_duration_s
        );
        plot(&mut s, plots, "staleness.svg", "share of views differing from the registry's ground truth");
    }
    super::users_md::consistency_md(&mut s, &r.consistency, plots);
    super::api_md::markdown(&mut s, r);
    plot(&mut s, plots, "api.svg", "gateway requests, errors and latency over time");
    super::api_md::zoom_markdown(&mut s, r);
    plot(&mut s, plots, "api-crash.svg", "one crash at a gateway in fine steps");
    load_md(&mut s, r, plots);
    if !r.convergence.is_empty() {
        let _ = writeln!(s, "## Convergence after heals\n\n| healed at (s) | converged after (s) |\n|---|---|");
        for c in &r.convergence {
            let after = c.converged_after_s.map_or("not before the end".to_string(), |x| format!("{x:.1}"));
            let _ = writeln!(s, "| {:.1} | {after} |", c.healed_at_s);
        }
        let _ = writeln!(s);
    }
    // What it cost.
    let fp = &r.false_positives;
    let _ = writeln!(s, "## Wrongful evictions (false positives)\n");
    if fp.count == 0 {
        let _ = writeln!(s, "No live instance was marked unhealthy or deleted.\n");
    } else {
        let _ = writeln!(
            s,
            "{} outages of live instances ({:.4} per instance-hour) on {} of {} instances: {} wrongful marks \
             (unhealthy), {} wrongful deletions; {} came back (flaps). Causes: {}.\n",
            fp.count,
            fp.per_instance_hour,
            fp.instances,
            r.topology.get("instances").copied().unwrap_or(0),
            fp.unhealthy,
            fp.deleted,
            fp.flaps,
            causes(r)
        );
    }
    let n = &r.network;
    let _ = writeln!(s, "## Network\n");
    let _ = writeln!(
        s,
        "{} messages sent, {} lost, {} dropped by partitions, {} duplicated; {} simulation events.\n",
        n.sent, n.dropped_loss, n.dropped_partition, n.duplicated, r.events
    );
    super::alerts_md::rules_markdown(&mut s, r);
    s
}

fn detection_md(s: &mut String, r: &Report, plots: &[String]) {
    if r.topology.get("instances").is_none_or(|n| *n == 0) {
        return;
    }
    let _ = writeln!(s, "## Detection latency (seconds from the crash)\n");
    let episodes = crash_episodes(r);
    if episodes == 0 {
        let _ = writeln!(s, "No registered instance crashed in this run: there was nothing to detect.\n");
        return;
    }
    let _ = writeln!(
        s,
        "{episodes} crash episodes of registered instances. Each stage is timed from the crash; an episode \
         that ended before a stage counts as *restarted first* (the instance came back before it was \
         detected) or *run ended first*.\n"
    );
    let _ = writeln!(
        s,
        "| stage | detected | min | p50 | p90 | p99 | max | mean | restarted first | run ended first |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for (name, st) in r.detection.stages() {
        let _ = writeln!(s, "{}", stage_row(name, st));
    }
    let _ = writeln!(s);
    plot(s, plots, "detection-cdf.svg", "detection latency from the crash, over every crash episode");
    if let Some(c) = &r.slowest_crash {
        let stages: Vec<String> = c
            .stages
            .iter()
            .map(|(name, t)| match t {
                Some(t) => format!("{} after {t:.3} s", stage_title(name)),
                None => format!("{}: never", stage_title(name)),
            })
            .collect();
        let restart = c.restarted_at_s.map_or(String::new(), |t| format!(" (restarted at {t:.1} s)"));
        let _ = writeln!(
            s,
            "### The slowest-detected crash\n\n{} crashed at {:.1} s{restart}: {}. Every step of it (each \
             server copy, each view, each last request, with the time each added): `regsim explain \
             <scenario file> --instance {}`.\n",
            c.instance,
            c.crashed_at_s,
            stages.join(", "),
            c.instance
        );
    }
}

fn elections_md(s: &mut String, r: &Report, plots: &[String]) {
    let Some(e) = &r.elections else { return };
    let d = &e.downtime;
    let _ = writeln!(s, "## Leader elections\n");
    let times = if d.count == 0 {
        "no new leader measured".to_string()
    } else {
        format!(
            "time to a new leader (s): min {:.3}, p50 {:.3}, p90 {:.3}, p99 {:.3}, max {:.3}, mean {:.3}",
            d.min_s, d.p50_s, d.p90_s, d.p99_s, d.max_s, d.mean_s
        )
    };
    if e.incidents == 0 && e.unresolved == 0 {
        let _ = writeln!(
            s,
            "No leader crashed or paused: {} leader(s) elected, terms up to {}.\n",
            e.leaders_elected, e.max_term
        );
    } else {
        let _ = writeln!(
            s,
            "{} leader failures; {times}. Terms per incident: mean {:.2}, max {}; {} elections without a \
             winner (split votes); {} unresolved at the end.\n",
            e.incidents, e.terms_mean, e.terms_max, e.split_votes, e.unresolved
        );
    }
    for i in &e.isolations {
        let down =
            i.stepped_down_after_s.map_or("never stepped down".to_string(), |x| format!("stepped down after {x:.3} s"));
        let _ = writeln!(
            s,
            "Leader {} was cut off at {:.1} s: it {down}; while cut off it started {} elections (term +{}), the \
             others elected {} leader(s); after the heal {} election(s) followed.\n",
            i.leader,
            i.cut_at_s,
            i.campaigns_while_cut,
            i.term_growth_while_cut,
            i.elected_while_cut,
            i.elected_after_heal
        );
    }
    plot(s, plots, "elections-cdf.svg", "time to a new leader, over every leader failure");
    let _ = writeln!(
        s,
        "Who timed out, who voted for whom and which rounds split, election by election: `regsim explain \
         <scenario file> --election slowest` (or `--election N`).\n"
    );
}

fn load_md(s: &mut String, r: &Report, plots: &[String]) {
    let Some(load) = &r.load else { return };
    let _ = writeln!(s, "## Load by balancer\n");
    let _ = writeln!(
        s,
        "| balancer | clients | requests | max/mean | CV | p99/mean | Gini | worst 60 s max/mean | p50 / p99 latency (ms) | sent to dead | keys moved per view change (ideal) | affinity split |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (name, l) in load {
        let b = |x: &Option<super::model::Balance>, f: fn(&super::model::Balance) -> f64| {
            x.as_ref().map_or("–".to_string(), |b| format!("{:.3}", f(b)))
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {:.1} / {:.1} | {} ({:.2} %) | {} | {} |",
            l.consumers,
            l.requests,
            b(&l.overall, |b| b.max_over_mean),
            b(&l.overall, |b| b.cv),
            b(&l.overall, |b| b.p99_over_mean),
            b(&l.overall, |b| b.gini),
            b(&l.worst_window, |b| b.max_over_mean),
            l.latency.p50_s * 1e3,
            l.latency.p99_s * 1e3,
            l.sent_to_dead,
            l.sent_to_dead_fraction * 100.0,
            match (l.mean_moved, l.mean_ideal) {
                (Some(m), Some(i)) => format!("{m:.3} ({i:.3})"),
                _ => "–".to_string(),
            },
            l.affinity_split.map_or("–".to_string(), |x| format!("{x:.3}"))
        );
    }
    let _ = writeln!(s);
    plot(s, plots, "load-sorted.svg", "requests per instance, sorted, over the mean");
}

/// A request kind as a reader names it.
pub fn kind_name(k: &crate::protocol::RequestKind) -> String {
    let raw = serde_json::to_string(k).unwrap_or_default();
    match raw.trim_matches('"') {
        "register" => "registrations".to_string(),
        "beat" => "heartbeats".to_string(),
        "query" => "lists (queries)".to_string(),
        "call" => "application calls".to_string(),
        other => other.to_string(),
    }
}

pub(crate) fn ratio_cells(m: &RatioByKind) -> String {
    let cells: Vec<String> = m
        .iter()
        .map(|(k, v)| match v.fraction {
            Some(f) => format!("{} {:.4} ({}/{})", kind_name(k), f, v.ok, v.total),
            None => format!("{} –", kind_name(k)),
        })
        .collect();
    if cells.is_empty() { "no requests".into() } else { cells.join(", ") }
}

/// The summary printed on stdout after a run.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "scenario   {} (seed {})", r.scenario, r.seed);
    let topo: Vec<String> = r.topology.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(s, "nodes      {}", topo.join(", "));
    let _ = writeln!(s, "virtual    {:.1} s, {} events, {}", r.virtual_duration_s, r.events, r.outcome.describe());
    let _ = writeln!(s, "digest     {}", r.digest);
    for w in &r.warnings {
        let _ = writeln!(s, "warning    {w}");
    }
    if crash_episodes(r) == 0 {
        if r.topology.get("instances").is_some_and(|n| *n > 0) {
            let _ = writeln!(s, "\ndetection        no registered instance crashed: nothing to detect");
        }
    } else {
        let _ = writeln!(s, "\ndetection latency from the crash (s), {} crash episodes", crash_episodes(r));
        let _ = writeln!(
            s,
            "  {:<30} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}",
            "stage", "count", "min", "p50", "p90", "p99", "max", "mean", "restarted", "run end"
        );
        for (name, st) in r.detection.stages() {
            let m = &st.summary;
            let title = stage_title(name);
            let ran_out = st.missed - st.restarted_first;
            if m.count == 0 {
                let _ = writeln!(
                    s,
                    "  {title:<30} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}",
                    0, "-", "-", "-", "-", "-", "-", st.restarted_first, ran_out
                );
            } else {
                let _ = writeln!(
                    s,
                    "  {title:<30} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9} {:>8}",
                    m.count, m.min_s, m.p50_s, m.p90_s, m.p99_s, m.max_s, m.mean_s, st.restarted_first, ran_out
                );
            }
        }
    }
    let fp = &r.false_positives;
    if fp.count == 0 {
        let _ = writeln!(s, "\nfalse positives  none");
    } else {
        let _ = writeln!(
            s,
            "\nfalse positives  {} outages of live instances ({:.4} per instance-hour; {} instances, {} flaps; causes: {})",
            fp.count,
            fp.per_instance_hour,
            fp.instances,
            fp.flaps,
            causes(r)
        );
    }
    let _ = writeln!(s, "availability     {}", ratio_cells(&r.availability.overall));
    if let Some(e) = &r.elections {
        let d = &e.downtime;
        if e.leaders_elected == 0 {
            let _ = writeln!(
                s,
                "elections        no leader was ever elected (terms up to {}: every election split)",
                e.max_term
            );
        } else if e.incidents == 0 {
            let _ = writeln!(s, "elections        {} leaders elected, terms up to {}", e.leaders_elected, e.max_term);
        } else {
            let _ = writeln!(
                s,
                "elections        {} leader failures: new leader after p50 {:.3} s, p99 {:.3} s, max {:.3} s; {} split votes, max {} terms{}",
                e.incidents,
                d.p50_s,
                d.p99_s,
                d.max_s,
                e.split_votes,
                e.terms_max,
                if e.unresolved > 0 { "; the last one unresolved at the end" } else { "" }
            );
        }
    }
    if let Some(st) = &r.staleness {
        let _ = writeln!(
            s,
            "staleness        {:.2} % of views wrong on average, worst view wrong for {:.1} s",
            st.mean_fraction_wrong * 100.0,
            st.worst_wrong_duration_s
        );
    }
    for c in &r.convergence {
        let after = c.converged_after_s.map_or("did not converge".to_string(), |x| format!("converged {x:.1} s later"));
        let _ = writeln!(s, "convergence      healed at {:.1} s, {after}", c.healed_at_s);
    }
    let c = &r.consistency;
    let stale = match &c.stale {
        Some(st) => format!(
            "{} stale ({} with a fault around, {} replication lag; worst {:.1} s old)",
            c.stale_lists, st.during_faults, st.without_faults, st.worst_age_s
        ),
        None => "none stale".to_string(),
    };
    let _ = writeln!(
        s,
        "consistency      {}: {} ops, {} lists, {stale}; {}",
        verdict_words(c).replace("**", ""),
        c.ops,
        c.lists,
        c.detail
    );
    for o in &c.violation {
        let done = o.complete_s.map_or("never completed".to_string(), |x| format!("completed {x:.3} s"));
        let _ = writeln!(s, "  client {:<6} {:<44} invoked {:.3} s, {done}", o.client, o.op, o.invoke_s);
    }
    for i in r.elections.iter().flat_map(|e| &e.isolations) {
        let down =
            i.stepped_down_after_s.map_or("never stepped down".to_string(), |x| format!("stepped down after {x:.3} s"));
        let _ = writeln!(
            s,
            "isolation        leader {} cut off at {:.1} s: {down}; its term grew by {} while cut off; {} election(s) after the heal",
            i.leader, i.cut_at_s, i.term_growth_while_cut, i.elected_after_heal
        );
    }
    super::api_md::summary(&mut s, r);
    super::alerts_md::summary(&mut s, r);
    let held = r.invariants.iter().filter(|i| i.holds && !i.not_applicable).count();
    let na = r.invariants.iter().filter(|i| i.not_applicable).count();
    let na = if na == 0 { String::new() } else { format!(" ({na} not applicable)") };
    let _ = writeln!(s, "invariants       {held} of {} hold{na}", r.invariants.len());
    for i in r.invariants.iter().filter(|i| !i.holds) {
        let _ = writeln!(s, "  FAILED {}: {}", i.name, i.detail);
    }
    s
}
