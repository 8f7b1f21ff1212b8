//! `report.md` and the stdout summary: the same facts, for people.

use std::fmt::Write;

use super::model::{Report, StageReport};

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
    let _ = writeln!(s, "## Detection latency (seconds from the crash)\n");
    let _ = writeln!(
        s,
        "| stage | count | min | p50 | p90 | p99 | max | mean | missed |\n|---|---|---|---|---|---|---|---|---|"
    );
    let _ = writeln!(s, "{}", stage_row("unhealthy", &r.detection.unhealthy));
    let _ = writeln!(s, "{}\n", stage_row("deleted", &r.detection.deleted));
    for p in plots {
        let _ = writeln!(s, "![{p}]({p})\n");
    }
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

/// The summary printed on stdout after a run.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "scenario   {} (seed {})", r.scenario, r.seed);
    let topo: Vec<String> = r.topology.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(s, "nodes      {}", topo.join(", "));
    let _ = writeln!(s, "virtual    {:.1} s, {} events, {}", r.virtual_duration_s, r.events, r.outcome.describe());
    let _ = writeln!(s, "digest     {}", r.digest);
    let _ = writeln!(s, "\ndetection latency from the crash (s)");
    let _ = writeln!(
        s,
        "  {:<10} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "stage", "count", "min", "p50", "p90", "p99", "max", "mean", "missed"
    );
    for (name, st) in [("unhealthy", &r.detection.unhealthy), ("deleted", &r.detection.deleted)] {
        let m = &st.summary;
        if m.count == 0 {
            let _ = writeln!(
                s,
                "  {name:<10} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
                0, "-", "-", "-", "-", "-", "-", st.missed
            );
        } else {
            let _ = writeln!(
                s,
                "  {name:<10} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7}",
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
    let held = r.invariants.iter().filter(|i| i.holds).count();
    let _ = writeln!(s, "invariants       {held} of {} hold", r.invariants.len());
    for i in r.invariants.iter().filter(|i| !i.holds) {
        let _ = writeln!(s, "  FAILED {}: {}", i.name, i.detail);
    }
    s
}
