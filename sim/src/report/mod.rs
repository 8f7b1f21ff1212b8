//! Reports: the serde model (`report.json`), Markdown (`report.md`), SVG plots, and writing
//! them atomically (temporary files renamed into place, so an interrupted run leaves no half
//! report).

pub mod alerts_md;
pub mod api_md;
pub mod compare;
pub mod families;
pub mod html;
pub mod lb;
pub mod lb_plot;
pub mod markdown;
pub mod model;
pub mod plot;
pub mod swarm_md;
pub mod users_md;

use std::path::{Path, PathBuf};

pub use markdown::{markdown, summary};
pub use model::Report;

use crate::metrics::Analyzer;

/// The files of one report, as (file name, contents).
pub fn render(report: &Report, analyzer: &Analyzer) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut files = Vec::new();
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())? + "\n";
    files.push(("report.json".to_string(), json.into_bytes()));
    let d = &analyzer.detection;
    // Each stage over every crash episode it applies to: the detected ones and the missed ones.
    let line = plot::CdfLine::stage;
    use markdown::stage_title as t;
    let mut lines =
        vec![line(t("unhealthy"), &d.unhealthy), line(t("deleted"), &d.deleted), line(t("replicated"), &d.replicated)];
    if report.detection.views_updated.is_some() {
        lines.push(line(t("views_updated"), &d.views_updated));
    }
    if report.detection.traffic_stopped.is_some() {
        lines.push(line(t("traffic_stopped"), &d.traffic_stopped));
    }
    let title = format!("{}: detection latency from the crash", report.scenario);
    let mut plots = Vec::new();
    // No plot without data: a run with no crash episode gets a sentence instead.
    if lines.iter().any(|l| l.total > 0) {
        let svg = plot::cdf_svg(&title, "seconds from the crash", "fraction of crash episodes", &lines)?;
        plots.push(("detection-cdf.svg".to_string(), svg));
    }
    if report.staleness.is_some() {
        let spans: Vec<(f64, f64)> =
            analyzer.history.partition_spans.iter().map(|(a, b)| (a.as_secs_f64(), b.as_secs_f64())).collect();
        let series: Vec<(f64, f64)> = analyzer.staleness.series.iter().map(|(t, f)| (t.as_secs_f64(), *f)).collect();
        let who = if report.api.is_some() { "gateway" } else { "consumer" };
        let title = format!("{}: {who} views differing from ground truth", report.scenario);
        let svg =
            plot::series_svg(&title, &format!("fraction of {who} views wrong"), &series, &spans, "partition active")?;
        plots.push(("staleness.svg".to_string(), svg));
    }
    let title = format!("{}: the linearizability witness, operation by operation", report.scenario);
    plots.extend(users_md::witness_svg(&title, &report.consistency)?.map(|svg| ("witness.svg".to_string(), svg)));
    if report.elections.as_ref().is_some_and(|e| e.incidents + e.unresolved > 0) {
        let downtimes: Vec<f64> = analyzer.elections.incidents.iter().map(|x| x.0).collect();
        let title = format!("{}: time to elect a new leader", report.scenario);
        let unresolved = report.elections.as_ref().map_or(0, |e| e.unresolved as usize);
        let lines = [plot::CdfLine::new("new leader", &downtimes, downtimes.len() + unresolved)];
        plots.push((
            "elections-cdf.svg".to_string(),
            plot::cdf_svg(&title, "seconds from the leader's crash", "fraction of leader failures", &lines)?,
        ));
    }
    if let Some(a) = &report.alerts {
        let global = a.global.iter().flat_map(|g| g.rules.iter().map(|r| (r, " (global)")));
        let labels: Vec<(String, &[f64])> = a
            .rules
            .iter()
            .map(|r| (r, ""))
            .chain(global)
            .flat_map(|(r, tier)| {
                let of = |what: &str| format!("{}{tier} {what}", r.alert);
                [(of("firing"), &r.firing_samples_s), (of("notified"), &r.notified_samples_s)]
            })
            .filter(|(_, s)| !s.is_empty())
            .map(|(l, s)| (l, s.as_slice()))
            .collect();
        if !labels.is_empty() {
            let crashes = a.crashes as usize;
            let lines: Vec<plot::CdfLine<'_>> =
                labels.iter().map(|(label, samples)| plot::CdfLine::new(label, samples, crashes)).collect();
            let title = format!("{}: alert latency from the crash", report.scenario);
            let svg = plot::cdf_svg(&title, "seconds from the crash", "fraction of crashes", &lines)?;
            plots.push(("alerts-cdf.svg".to_string(), svg));
        }
    }
    if let Some(a) = &report.api {
        let title = format!("{}: API gateway requests, errors and latency", report.scenario);
        plots.push(("api.svg".to_string(), api_md::svg(&title, a)?));
        if let Some(z) = &a.zoom {
            let title =
                format!("{}: {} at {} after its crash at {:.1} s", report.scenario, z.instance, z.gateway, z.crashed_s);
            plots.extend(api_md::zoom_svg(&title, a)?.map(|svg| ("api-crash.svg".to_string(), svg)));
        }
    }
    if let Some(load) = &analyzer.load {
        let loads: Vec<(String, Vec<u64>)> =
            load.groups.iter().map(|g| (g.label.clone(), g.sent.values().copied().collect())).collect();
        let lines: Vec<lb_plot::LoadLine<'_>> =
            loads.iter().map(|(label, l)| lb_plot::LoadLine { label, loads: l }).collect();
        let title = format!("{}: requests per instance, sorted", report.scenario);
        plots.push(("load-sorted.svg".to_string(), lb_plot::sorted_load_svg(&title, "requests / mean", &lines)?));
    }
    let names: Vec<String> = plots.iter().map(|(n, _)| n.clone()).collect();
    files.push(("report.md".to_string(), markdown(report, &names).into_bytes()));
    files.extend(plots.into_iter().map(|(n, svg)| (n, svg.into_bytes())));
    Ok(files)
}

/// Writes the files as one set into `dir`, with a self-contained HTML page beside every
/// Markdown file ([`html::add_pages`]), replacing an earlier set as a whole (see
/// [`crate::output`]).
pub fn write_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = files.to_vec();
    html::add_pages(&mut files);
    crate::output::write_set(dir, &files)
}
