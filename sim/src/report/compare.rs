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

use super::model::{RatioByKind, Report};
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
    /// Every family the variants exercise, side by side (see `report::families`).
    pub families: Vec<super::families::Family>,
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
        let reports: Vec<&Report> = runs.iter().map(|r| r.2).collect();
        Comparison { scenario: scenario.to_string(), seed, variants, families: super::families::families(&reports) }
    }
}

const WRITES: RequestKind = RequestKind::Register;
const READS: RequestKind = RequestKind::Query;

pub fn markdown(c: &Comparison, plots: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# regsim comparison: {} (seed {})\n", c.scenario, c.seed);
    let names: Vec<&str> = c.variants.iter().map(|v| v.name.as_str()).collect();
    let head = |s: &mut String, first: &str| {
        let _ = writeln!(s, "| {first} | {} |", names.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(names.len()));
    };
    head(&mut s, "variant");
    let overrides: Vec<String> = c
        .variants
        .iter()
        .map(|v| if v.overrides.is_empty() { "none".into() } else { format!("`{}`", v.overrides.join(" ")) })
        .collect();
    let _ = writeln!(s, "| overrides | {} |", overrides.join(" | "));
    let digests: Vec<String> = c.variants.iter().map(|v| format!("`{}`", v.digest)).collect();
    let _ = writeln!(s, "| digest | {} |", digests.join(" | "));
    let reports: Vec<String> = names.iter().map(|n| format!("[{n}/report.md]({n}/report.md)")).collect();
    let _ = writeln!(s, "| full report | {} |\n", reports.join(" | "));
    let _ = writeln!(
        s,
        "The better value of a row is in **bold** (lower or higher, as the row's measure improves; \
         nothing is marked where the variants agree or the row is a count). *During faults*: while a \
         partition was active, a server down or paused, or a crashed instance still listed and not \
         restarted. A stale list missed an instance whose registration completed before the list began, \
         with no deregistration (crash) that could have come in between.\n"
    );
    for f in &c.families {
        let _ = writeln!(s, "## {}\n", f.name);
        head(&mut s, "measure");
        for row in &f.rows {
            let best = row.best();
            let cells: Vec<String> = row
                .cells
                .iter()
                .enumerate()
                .map(|(i, cell)| if best.contains(&i) { format!("**{cell}**") } else { cell.clone() })
                .collect();
            let _ = writeln!(s, "| {} | {} |", row.label, cells.join(" | "));
        }
        let _ = writeln!(s);
    }
    if has_cap(c) {
        let _ = writeln!(s, "## Availability against staleness\n\n![availability against staleness](cap.svg)\n");
    }
    if plots.iter().any(|p| p == "detection-cdf.svg") {
        let _ = writeln!(
            s,
            "## Detection, variant by variant\n\nOver every crash episode of each variant; a line that ends below 1 \
             is the share its stage never reached.\n\n![detection latency per variant](detection-cdf.svg)\n"
        );
    }
    if plots.iter().any(|p| p == "elections-cdf.svg") {
        let _ = writeln!(
            s,
            "## Leader elections, variant by variant\n\n![time to a new leader per variant](elections-cdf.svg)\n"
        );
    }
    s
}

/// One plot per family the variants' tables cannot show as a distribution: detection (the
/// first and the last stage of each variant, over its crash episodes) and elections (time to
/// a new leader over each variant's leader failures). Each only when some variant has data.
pub fn family_plots(scenario: &str, runs: &[(&str, &crate::run::RunOutput)]) -> Result<Vec<(String, String)>, String> {
    use super::markdown::stage_title as t;
    let mut out = Vec::new();
    let mut labels: Vec<(String, &crate::metrics::detection::Stage)> = Vec::new();
    for (name, o) in runs {
        let d = &o.analyzer.detection;
        let last = if o.report.detection.views_updated.is_some() {
            ("views_updated", &d.views_updated)
        } else {
            ("deleted", &d.deleted)
        };
        for (stage, st) in [("unhealthy", &d.unhealthy), last] {
            if !st.latencies_s.is_empty() || st.missed > 0 {
                labels.push((format!("{name}: {}", t(stage)), st));
            }
        }
    }
    if !labels.is_empty() {
        let lines: Vec<super::plot::CdfLine<'_>> =
            labels.iter().map(|(l, st)| super::plot::CdfLine::stage(l, st)).collect();
        let title = format!("{scenario}: detection latency from the crash, per variant");
        out.push((
            "detection-cdf.svg".to_string(),
            super::plot::cdf_svg(&title, "seconds from the crash", "fraction of crash episodes", &lines)?,
        ));
    }
    let downtimes: Vec<(String, Vec<f64>, usize)> = runs
        .iter()
        .filter_map(|(name, o)| {
            let e = o.report.elections.as_ref()?;
            let samples: Vec<f64> = o.analyzer.elections.incidents.iter().map(|x| x.0).collect();
            let total = samples.len() + e.unresolved as usize;
            (total > 0).then(|| (name.to_string(), samples, total))
        })
        .collect();
    if !downtimes.is_empty() {
        let lines: Vec<super::plot::CdfLine<'_>> =
            downtimes.iter().map(|(l, s, total)| super::plot::CdfLine::new(l, s, *total)).collect();
        let title = format!("{scenario}: time to elect a new leader, per variant");
        out.push((
            "elections-cdf.svg".to_string(),
            super::plot::cdf_svg(&title, "seconds from the leader's failure", "fraction of leader failures", &lines)?,
        ));
    }
    Ok(out)
}

/// Whether the variants have what `cap.svg` plots: lists, and writes or reads during faults.
pub fn has_cap(c: &Comparison) -> bool {
    c.variants.iter().any(|v| {
        v.stale_fraction.is_some()
            && [WRITES, READS].iter().any(|k| v.during_faults.get(k).is_some_and(|r| r.fraction.is_some()))
    })
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
        super::plot::side_legend(&legend, &entries, &[])?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
