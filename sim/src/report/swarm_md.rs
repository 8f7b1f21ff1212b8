//! `swarm.md` (and, through [`super::write_atomically`], `swarm.html`): what a swarm ran, what
//! it covered and, when a run failed, the failing run, its faults and the shrunk scenario with
//! the commands that reproduce both. Written by `regsim swarm` whether or not a run failed.

use std::fmt::Write;

use crate::swarm::{Failure, Shrunk, Summary, Variant};

/// The swarm as a reader asks about it: what ran, what failed, how to reproduce it.
pub fn markdown(
    scenario: &str,
    command: &str,
    requested: u64,
    s: &Summary,
    failed: Option<(&Failure, &Shrunk)>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Swarm of {scenario}\n");
    let _ = writeln!(md, "`{command}`\n");
    let _ = writeln!(md, "## What ran\n");
    let _ = writeln!(
        md,
        "{} runs{}, each the base scenario with a generated fault plan and its own seed: {:.0} s ({:.1} h) of \
         virtual time and {} events in all.{}\n",
        s.runs,
        if requested > s.runs { format!(" of {requested} asked for") } else { String::new() },
        s.virtual_s,
        s.virtual_s / 3600.0,
        s.events,
        if failed.is_some() { " The swarm stopped after the chunk of runs holding the first failure." } else { "" }
    );
    if s.faults.is_empty() {
        let _ = writeln!(md, "No faults were generated.\n");
    } else {
        let _ = writeln!(md, "| fault generated | times |\n|---|---|");
        for (kind, n) in &s.faults {
            let _ = writeln!(md, "| {kind} | {n} |");
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "## What failed\n");
    let _ =
        writeln!(md, "| invariant | runs that checked it | runs it applied to | runs it failed |\n|---|---|---|---|");
    for (name, (checked, applicable, bad)) in &s.invariants {
        let applied = if *applicable == 0 { "0 (*not applicable*)".to_string() } else { applicable.to_string() };
        let failed_cell = if *bad > 0 { format!("**{bad}**") } else { "0".to_string() };
        let _ = writeln!(md, "| {name} | {checked} | {applied} | {failed_cell} |");
    }
    let _ = writeln!(md);
    let Some((f, shrunk)) = failed else {
        let _ = writeln!(md, "Every run passed every invariant that applied to it.");
        return md;
    };
    let v = &f.variant;
    let _ = writeln!(md, "Run {} (seed {}) failed:\n", v.run, v.seed);
    for (name, detail) in &f.failed {
        let _ = writeln!(md, "- **{name}**: {detail}");
    }
    let _ = writeln!(md);
    variant_md(&mut md, "Its plan", v);
    let m = &shrunk.variant;
    let _ = writeln!(
        md,
        "## The smallest scenario that still fails\n\nShrunk in {} candidate runs from {} faults to {}, \
         {} servers, {} instances, {} consumers, {:.1} s; it fails `{}`.\n",
        shrunk.attempts,
        v.plan.faults.len(),
        m.plan.faults.len(),
        m.sizes.servers,
        m.sizes.instances,
        m.sizes.consumers,
        (m.safety_ms + m.liveness_ms) as f64 / 1e3,
        shrunk.signature
    );
    variant_md(&mut md, "Its plan", m);
    let _ = writeln!(
        md,
        "Reproduce: `regsim run failing.toml` (the failing run) or `regsim run minimal.toml` (the smallest), \
         both in this folder."
    );
    md
}

/// A variant's cluster and faults as a table.
fn variant_md(md: &mut String, what: &str, v: &Variant) {
    let z = &v.sizes;
    let _ = writeln!(
        md,
        "{what}: {} mode, {} servers, {} instances, {} consumers, {:.1} s of faults then {:.1} s to recover{}{}.\n",
        if z.cp { "CP" } else { "AP" },
        z.servers,
        z.instances,
        z.consumers,
        v.safety_ms as f64 / 1e3,
        v.liveness_ms as f64 / 1e3,
        if v.plan.loss > 0.0 { format!(", message loss {:.1} %", v.plan.loss * 100.0) } else { String::new() },
        if v.plan.duplicate > 0.0 { format!(", duplication {:.1} %", v.plan.duplicate * 100.0) } else { String::new() },
    );
    if v.plan.faults.is_empty() {
        return;
    }
    let _ = writeln!(md, "| at (s) | fault | for (s) | as written in the scenario |\n|---|---|---|---|");
    for g in &v.plan.faults {
        let written = match crate::swarm::plan::fault_table(g, z) {
            None => "not injected: does not apply to this cluster".to_string(),
            Some(t) => {
                let get = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or("");
                let mut w = format!("{} {}", get("action"), get("target"));
                if !get("shape").is_empty() {
                    w.push_str(&format!(", shape {}", get("shape")));
                }
                if let Some(d) = t.get("drift_ppm").and_then(|v| v.as_integer()) {
                    w.push_str(&format!(", offset {}, drift {d} ppm", get("offset")));
                }
                w
            }
        };
        let _ = writeln!(
            md,
            "| {:.3} | {} | {:.3} | {written} |",
            g.at_ms as f64 / 1e3,
            g.kind.name(),
            g.duration_ms as f64 / 1e3
        );
    }
    let _ = writeln!(md);
}
