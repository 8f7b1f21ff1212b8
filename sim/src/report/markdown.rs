//! `report.md` and the stdout summary: the same facts, for people.

use std::fmt::Write;

use super::model::{RatioByKind, Report, StageReport};

fn stage_row(name: &str, s: &StageReport) -> String {
    let m = &s.summary;
    if m.count == 0 {
        return format!("| {name} | 0 | – | – | – | – | – | – | {} |", s.missed);
    }
    format!(
        "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
        m.count, m.min_s, m.p50_s, m.p90_s, m.p99_s, m.max_s, m.mean_s, s.missed
    )
}

fn causes(r: &Report) -> String {
    let c: Vec<String> = r
        .false_positives
        .causes
        .iter()
        .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).unwrap_or_default().trim_matches('"')))
        .collect();
    if c.is_empty() { "none".into() } else { c.join(", ") }
}

pub fn markdown(r: &Report, plots: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# regsim report: {}\n", r.scenario);
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| seed | {} |", r.seed);
    let _ = writeln!(s, "| virtual duration | {:.3} s |", r.virtual_duration_s);
    let _ = writeln!(s, "| events | {} |", r.events);
    let _ = writeln!(s, "| outcome | {} |", r.outcome.describe());
    let _ = writeln!(s, "| digest | `{}` |", r.digest);
    let topo: Vec<String> = r.topology.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(s, "| nodes | {} |", topo.join(", "));
    let faults: Vec<String> = r.faults.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(s, "| faults injected | {} |", if faults.is_empty() { "none".into() } else { faults.join(", ") });
    let _ = writeln!(s, "| regsim | {} |\n", r.regsim_version);
    if !r.warnings.is_empty() {
        let _ = writeln!(s, "**Warnings** (settings that ran but cannot work as meant):\n");
        for w in &r.warnings {
            let _ = writeln!(s, "- {w}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Detection latency (seconds from the crash)\n");
    let _ = writeln!(
        s,
        "| stage | count | min | p50 | p90 | p99 | max | mean | missed |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (name, st) in r.detection.stages() {
        let _ = writeln!(s, "{}", stage_row(name, st));
    }
    let _ = writeln!(s);
    for p in plots {
        let _ = writeln!(s, "![{p}]({p})\n");
    }
    availability_md(&mut s, r);
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
    }
    consistency_md(&mut s, &r.consistency);
    if let Some(e) = &r.elections {
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
        let _ = writeln!(
            s,
            "{} leader failures; {times}. \
             Terms per incident: mean {:.2}, max {}; {} elections without a winner (split votes); {} unresolved at the end.\n",
            e.incidents, e.terms_mean, e.terms_max, e.split_votes, e.unresolved
        );
    }
    for i in r.elections.iter().flat_map(|e| &e.isolations) {
        let down =
            i.stepped_down_after_s.map_or("never stepped down".to_string(), |x| format!("stepped down after {x:.3} s"));
        let _ = writeln!(
            s,
            "Leader {} was cut off at {:.1} s: it {down}; while cut off it started {} elections (term +{}), the others elected {} leader(s); after the heal {} election(s) followed.\n",
            i.leader,
            i.cut_at_s,
            i.campaigns_while_cut,
            i.term_growth_while_cut,
            i.elected_while_cut,
            i.elected_after_heal
        );
    }
    if let Some(load) = &r.load {
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
    }
    if !r.convergence.is_empty() {
        let _ = writeln!(s, "## Convergence after heals\n\n| healed at (s) | converged after (s) |\n|---|---|");
        for c in &r.convergence {
            let after = c.converged_after_s.map_or("not before the end".to_string(), |x| format!("{x:.1}"));
            let _ = writeln!(s, "| {:.1} | {after} |", c.healed_at_s);
        }
        let _ = writeln!(s);
    }
    super::api_md::markdown(&mut s, r);
    super::alerts_md::markdown(&mut s, r);
    let fp = &r.false_positives;
    let _ = writeln!(s, "## False positives\n");
    let _ = writeln!(
        s,
        "{} wrongful evictions of live instances ({} marked unhealthy, {} deleted) on {} instances; {} came back (flaps). Causes: {}.\n",
        fp.count,
        fp.unhealthy,
        fp.deleted,
        fp.instances,
        fp.flaps,
        causes(r)
    );
    let n = &r.network;
    let _ = writeln!(s, "## Network\n");
    let _ = writeln!(
        s,
        "{} messages sent, {} lost, {} dropped by partitions, {} duplicated.\n",
        n.sent, n.dropped_loss, n.dropped_partition, n.duplicated
    );
    let _ = writeln!(s, "## Invariants\n\n| invariant | holds | detail |\n|---|---|---|");
    for i in &r.invariants {
        let _ = writeln!(s, "| {} | {} | {} |", i.name, if i.holds { "yes" } else { "**NO**" }, i.detail);
    }
    s
}

fn ratio_cells(m: &RatioByKind) -> String {
    let cells: Vec<String> = m
        .iter()
        .map(|(k, v)| {
            let name = serde_json::to_string(k).unwrap_or_default();
            match v.fraction {
                Some(f) => format!("{} {:.4} ({}/{})", name.trim_matches('"'), f, v.ok, v.total),
                None => format!("{} –", name.trim_matches('"')),
            }
        })
        .collect();
    if cells.is_empty() { "no requests".into() } else { cells.join(", ") }
}

fn availability_md(s: &mut String, r: &Report) {
    let a = &r.availability;
    let _ =
        writeln!(s, "## Availability (fraction of requests that succeeded)\n\n| window | by request kind |\n|---|---|");
    let _ = writeln!(s, "| overall | {} |", ratio_cells(&a.overall));
    let _ = writeln!(s, "| during faults | {} |", ratio_cells(&a.during_faults));
    let _ = writeln!(s, "| outside faults | {} |", ratio_cells(&a.outside_faults));
    for (side, m) in &a.by_side {
        let _ = writeln!(s, "| partition {side} | {} |", ratio_cells(m));
    }
    let _ = writeln!(s);
}

/// The summary printed on stdout after a run.
fn consistency_md(s: &mut String, c: &crate::report::model::ConsistencyReport) {
    let _ = writeln!(s, "## Consistency (linearizability of registry operations)\n");
    let _ = writeln!(
        s,
        "Verdict: **{}**. {}. {} operations ({} never completed), {} lists, of which {} missed an instance \
         whose registration had completed before the list began (stale reads); {}.\n",
        c.verdict.replace('_', " "),
        c.detail,
        c.ops,
        c.open_ops,
        c.lists,
        c.stale_lists,
        if c.states_explored == 0 {
            "decided without a search (no completed list, or no deregistrations: the grow-only pass)".to_string()
        } else {
            format!("{} search states explored", c.states_explored)
        }
    );
    if !c.violation.is_empty() {
        let _ = writeln!(s, "A minimal set of operations with no linearization:\n");
        let _ = writeln!(s, "| client | operation | invoked (s) | completed (s) |\n|---|---|---|---|");
        for o in &c.violation {
            let done = o.complete_s.map_or("never".to_string(), |x| format!("{x:.3}"));
            let _ = writeln!(s, "| {} | {} | {:.3} | {done} |", o.client, o.op, o.invoke_s);
        }
        let _ = writeln!(s);
    }
}

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
    let _ = writeln!(s, "\ndetection latency from the crash (s)");
    let _ = writeln!(
        s,
        "  {:<15} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "stage", "count", "min", "p50", "p90", "p99", "max", "mean", "missed"
    );
    for (name, st) in r.detection.stages() {
        let m = &st.summary;
        if m.count == 0 {
            let _ = writeln!(
                s,
                "  {name:<15} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
                0, "-", "-", "-", "-", "-", "-", st.missed
            );
        } else {
            let _ = writeln!(
                s,
                "  {name:<15} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7}",
                m.count, m.min_s, m.p50_s, m.p90_s, m.p99_s, m.max_s, m.mean_s, st.missed
            );
        }
    }
    let fp = &r.false_positives;
    let _ = writeln!(
        s,
        "\nfalse positives  {} ({} instances, {} flaps; causes: {})",
        fp.count,
        fp.instances,
        fp.flaps,
        causes(r)
    );
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
    let _ = writeln!(
        s,
        "consistency      {}: {} ops ({} lists, {} stale); {}",
        c.verdict.replace('_', " "),
        c.ops,
        c.lists,
        c.stale_lists,
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
    let held = r.invariants.iter().filter(|i| i.holds).count();
    let _ = writeln!(s, "invariants       {held} of {} hold", r.invariants.len());
    for i in r.invariants.iter().filter(|i| !i.holds) {
        let _ = writeln!(s, "  FAILED {}: {}", i.name, i.detail);
    }
    s
}
