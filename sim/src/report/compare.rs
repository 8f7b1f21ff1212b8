//! Side-by-side comparison of one scenario run in several variants (by default the AP and the
//! CP registry): `compare.json`, `compare.md` and `cap.svg` (availability against staleness).
//!
//! Availability is taken *during faults* (while a partition is active or a server is down),
//! per partition side from the report's `by_side`, because that is where AP and CP differ;
//! staleness is the share of completed `list` operations that missed an instance whose
//! registration had completed before the list began (`consistency.stale_lists`), together
//! with the linearizability verdict and the consumers' view staleness.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use plotters::prelude::*;
use serde::Serialize;

use super::model::{Ratio, RatioByKind, Report};
use super::plot::COLORS;
use crate::protocol::RequestKind;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Variant {
    pub name: String,
    /// The overrides that make this variant, as given.
    pub overrides: Vec<String>,
    pub digest: String,
    /// Availability during faults, per request kind.
    pub during_faults: RatioByKind,
    /// Availability per partition side (while the first partition was active).
    pub by_side: BTreeMap<String, RatioByKind>,
    pub stale_lists: u64,
    pub lists: u64,
    pub stale_fraction: Option<f64>,
    pub linearizability: &'static str,
    pub mean_views_wrong: Option<f64>,
    pub worst_view_wrong_s: Option<f64>,
    pub converged_after_heal_s: Vec<Option<f64>>,
    pub false_positives: u64,
    pub invariants_failed: Vec<&'static str>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Comparison {
    pub scenario: String,
    pub seed: u64,
    pub variants: Vec<Variant>,
}

impl Comparison {
    pub fn new(scenario: &str, seed: u64, runs: &[(String, Vec<String>, &Report)]) -> Self {
        let variants = runs
            .iter()
            .map(|(name, overrides, r)| {
                let c = &r.consistency;
                Variant {
                    name: name.clone(),
                    overrides: overrides.clone(),
                    digest: r.digest.clone(),
                    during_faults: r.availability.during_faults.clone(),
                    by_side: r.availability.by_side.clone(),
                    stale_lists: c.stale_lists,
                    lists: c.lists,
                    stale_fraction: (c.lists > 0).then(|| c.stale_lists as f64 / c.lists as f64),
                    linearizability: c.verdict,
                    mean_views_wrong: r.staleness.as_ref().map(|s| s.mean_fraction_wrong),
                    worst_view_wrong_s: r.staleness.as_ref().map(|s| s.worst_wrong_duration_s),
                    converged_after_heal_s: r.convergence.iter().map(|c| c.converged_after_s).collect(),
                    false_positives: r.false_positives.count,
                    invariants_failed: r.invariants.iter().filter(|i| !i.holds).map(|i| i.name).collect(),
                }
            })
            .collect();
        Comparison { scenario: scenario.to_string(), seed, variants }
    }
}

fn cell(r: Option<&Ratio>) -> String {
    match r {
        Some(Ratio { ok, total, fraction: Some(f) }) => format!("{:.1} % ({ok}/{total})", f * 100.0),
        _ => "–".to_string(),
    }
}

const WRITES: RequestKind = RequestKind::Register;
const READS: RequestKind = RequestKind::Query;

pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# regsim comparison: {} (seed {})\n", c.scenario, c.seed);
    let names: Vec<&str> = c.variants.iter().map(|v| v.name.as_str()).collect();
    let _ = writeln!(s, "| | {} |", names.join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(names.len()));
    let mut row = |label: &str, f: &dyn Fn(&Variant) -> String| {
        let cells: Vec<String> = c.variants.iter().map(f).collect();
        let _ = writeln!(s, "| {label} | {} |", cells.join(" | "));
    };
    row("overrides", &|v| if v.overrides.is_empty() { "none".into() } else { format!("`{}`", v.overrides.join(" ")) });
    row("writes (register) during faults", &|v| cell(v.during_faults.get(&WRITES)));
    row("reads (list) during faults", &|v| cell(v.during_faults.get(&READS)));
    row("application calls during faults", &|v| cell(v.during_faults.get(&RequestKind::Call)));
    let sides: std::collections::BTreeSet<&String> = c.variants.iter().flat_map(|v| v.by_side.keys()).collect();
    for side in sides {
        row(&format!("writes, {side}"), &|v| cell(v.by_side.get(side).and_then(|m| m.get(&WRITES))));
        row(&format!("reads, {side}"), &|v| cell(v.by_side.get(side).and_then(|m| m.get(&READS))));
    }
    row("stale reads (lists missing a registered instance)", &|v| match v.stale_fraction {
        Some(f) => format!("{:.2} % ({}/{})", f * 100.0, v.stale_lists, v.lists),
        None => "–".into(),
    });
    row("linearizable", &|v| v.linearizability.replace('_', " "));
    row("consumer views wrong (mean, worst)", &|v| match (v.mean_views_wrong, v.worst_view_wrong_s) {
        (Some(m), Some(w)) => format!("{:.2} %, {w:.1} s", m * 100.0),
        _ => "–".into(),
    });
    row("converged after the heal", &|v| {
        let parts: Vec<String> =
            v.converged_after_heal_s.iter().map(|c| c.map_or("never".to_string(), |x| format!("{x:.1} s"))).collect();
        if parts.is_empty() { "–".into() } else { parts.join(", ") }
    });
    row("wrongful evictions", &|v| v.false_positives.to_string());
    row("invariants failed", &|v| {
        if v.invariants_failed.is_empty() { "none".into() } else { v.invariants_failed.join(", ") }
    });
    row("digest", &|v| format!("`{}`", v.digest));
    let _ = writeln!(
        s,
        "\nAvailability counts requests that finished while a fault was active (per side: while the first \
         partition was active, by the requester's side). A stale read is a completed list that missed an \
         instance whose registration completed before the list began, with no deregistration (crash) that \
         could have come in between. Each variant's full report is in its own folder.\n"
    );
    let _ = writeln!(s, "![availability against staleness](cap.svg)\n");
    s
}

/// Availability during faults against the share of stale reads: one marker per variant and
/// request kind (writes, reads).
pub fn cap_svg(c: &Comparison) -> Result<String, String> {
    let mut pts: Vec<(String, usize, bool, f64, f64)> = Vec::new();
    for (i, v) in c.variants.iter().enumerate() {
        let x = v.stale_fraction.unwrap_or(0.0) * 100.0;
        for (kind, label, is_write) in [(WRITES, "writes", true), (READS, "reads", false)] {
            if let Some(f) = v.during_faults.get(&kind).and_then(|r| r.fraction) {
                pts.push((format!("{} {label}", v.name), i, is_write, x, f * 100.0));
            }
        }
    }
    let x_max = pts.iter().map(|p| p.3).fold(1.0_f64, f64::max) * 1.15;
    let mut svg = String::new();
    {
        let size = (820 + super::plot::LEGEND_WIDTH, 480);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, legend) = root.split_horizontally(size.0 - super::plot::LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("{}: availability against staleness", c.scenario), ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(-x_max * 0.05..x_max, 0.0..105.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("stale reads (% of completed lists)")
            .y_desc("requests succeeding during faults (%)")
            .draw()
            .map_err(|e| e.to_string())?;
        let mut entries = Vec::new();
        for (label, i, is_write, x, y) in &pts {
            let color = COLORS[i % COLORS.len()];
            if *is_write {
                chart
                    .draw_series(std::iter::once(TriangleMarker::new((*x, *y), 9, color.filled())))
                    .map_err(|e| e.to_string())?;
            } else {
                chart
                    .draw_series(std::iter::once(Circle::new((*x, *y), 7, color.filled())))
                    .map_err(|e| e.to_string())?;
            }
            let mark = if *is_write { super::plot::Mark::Triangle } else { super::plot::Mark::Dot };
            entries.push((label.as_str(), color, mark));
        }
        super::plot::side_legend(&legend, &entries)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
