//! The `api` section of `report.md` and of the stdout summary, and its plot: gateway request
//! rate, error ratio and latency per window, with fault periods shaded.

use std::fmt::Write;

use plotters::prelude::*;

use super::model::Report;
use super::plot::{COLORS, Mark, side_legend};
use crate::metrics::api::ApiReport;

fn opt(x: Option<f64>) -> String {
    x.map_or("–".to_string(), |v| format!("{v:.1}"))
}

/// `## API gateway`.
pub fn markdown(s: &mut String, r: &Report) {
    let Some(a) = &r.api else { return };
    let _ = writeln!(s, "## API gateway\n");
    let codes: Vec<String> = a.by_code.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    let attempts: Vec<String> = a.attempts.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    let l = &a.latency_s;
    let _ = writeln!(
        s,
        "{} requests ({}); error ratio {:.4} %. Latency at the gateway: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms. \
         Upstream attempts: {}; {} retries; {} circuit-breaker openings.\n",
        a.requests,
        codes.join(", "),
        a.error_ratio * 100.0,
        l.p50_s * 1e3,
        l.p99_s * 1e3,
        l.max_s * 1e3,
        attempts.join(", "),
        a.retries,
        a.breaker_openings,
    );
    let st = &a.stopped_after_s;
    let by = |what: &str| a.crashes.iter().filter(|c| c.stopped_by == what).count();
    let _ = writeln!(
        s,
        "After {} crash × gateway pairs, the gateway's last attempt to the dead instance came {} s after the \
         crash (p50 {}, max {}); traffic stopped by registry update {} times, by circuit breaker {} times, \
         with no traffic after the crash {} times. {} attempts to dead instances failed and {} API requests \
         failed between a crash and the gateway's stop. {}\n",
        a.crashes.len(),
        if st.count == 0 { "–".to_string() } else { format!("{:.3}", st.mean_s) },
        if st.count == 0 { "–".to_string() } else { format!("{:.3}", st.p50_s) },
        if st.count == 0 { "–".to_string() } else { format!("{:.3}", st.max_s) },
        by("registry"),
        by("breaker"),
        by("no_traffic"),
        a.failed_attempts_to_dead,
        a.failed_requests_before_stop,
        if a.invariant.holds {
            "No gateway sent to an instance after its view dropped it.".to_string()
        } else {
            format!("**Violation**: {}", a.invariant.detail)
        }
    );
    if !a.crashes.is_empty() {
        let _ = writeln!(
            s,
            "| instance | gateway | crashed at (s) | last attempt (s) | view updated (s) | breaker opened (s) | \
             failed attempts | failed requests | stopped by |\n|---|---|---|---|---|---|---|---|---|"
        );
        for c in &a.crashes {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.3} | {} | {} | {} | {} | {} |",
                c.instance,
                c.gateway,
                c.crashed_s,
                c.stopped_after_s,
                c.view_updated_after_s.map_or("–".into(), |v| format!("{v:.3}")),
                c.breaker_opened_after_s.map_or("–".into(), |v| format!("{v:.3}")),
                c.failed_attempts,
                c.failed_requests,
                c.stopped_by
            );
        }
        let _ = writeln!(s);
    }
    let worst = a.windows.iter().max_by(|x, y| x.error_ratio.total_cmp(&y.error_ratio));
    if let Some(w) = worst.filter(|w| w.error_ratio > 0.0) {
        let _ = writeln!(
            s,
            "Worst {} s window: from {:.0} s, error ratio {:.2} %, p99 {} ms.\n",
            a.window_s,
            w.start_s,
            w.error_ratio * 100.0,
            opt(w.p99_ms)
        );
    }
}

/// The sentence before the crash zoom: which crash and what it shows.
pub fn zoom_markdown(s: &mut String, r: &Report) {
    let Some(z) = r.api.as_ref().and_then(|a| a.zoom.as_ref()) else { return };
    let sum = |f: fn(&crate::metrics::api::ZoomPoint) -> u64| z.points.iter().map(f).sum::<u64>();
    let _ = writeln!(
        s,
        "The {} s windows above cannot show a response that takes a second. Below, in {} s steps, the crash \
         whose traffic stopped last: {} at {}, crashed at {:.1} s. It sent {} attempts to the dead instance \
         ({} failed; the last {:.3} s after the crash), its breaker {}, {} more were stopped by the open breaker, \
         and its registry view {}; {} requests were retried on another instance and {} failed in the span shown.\n",
        r.api.as_ref().map_or(0.0, |a| a.window_s),
        z.step_s,
        z.instance,
        z.gateway,
        z.crashed_s,
        sum(|p| p.sent_to_dead),
        sum(|p| p.failed_to_dead),
        z.stopped_after_s,
        z.breaker_opened_after_s.map_or("did not open".to_string(), |x| format!("opened at {x:.3} s")),
        sum(|p| p.refused_by_breaker),
        z.view_updated_after_s.map_or("still listed it".to_string(), |x| format!("dropped it at {x:.3} s")),
        sum(|p| p.retried),
        sum(|p| p.errors),
    );
}

/// The summary lines.
pub fn summary(s: &mut String, r: &Report) {
    let Some(a) = &r.api else { return };
    let st = &a.stopped_after_s;
    let _ = writeln!(
        s,
        "api: {} requests, error ratio {:.4} %, p99 {:.1} ms, {} retries, {} breaker openings; traffic to a \
         crashed instance stopped after mean {} s ({} failed requests before)",
        a.requests,
        a.error_ratio * 100.0,
        a.latency_s.p99_s * 1e3,
        a.retries,
        a.breaker_openings,
        if st.count == 0 { "–".to_string() } else { format!("{:.3}", st.mean_s) },
        a.failed_requests_before_stop,
    );
}

/// A panel: its y axis and its lines (label, points).
type Panel<'a> = (&'a str, Vec<(&'a str, &'a [(f64, f64)])>);

/// Three panels over virtual time: requests per second, error ratio, p50 and p99 latency.
pub fn svg(title: &str, a: &ApiReport) -> Result<String, String> {
    let x_max = a.windows.last().map_or(1.0, |w| (w.start_s + a.window_s).max(1.0));
    let mid = |w: &crate::metrics::api::WindowReport| w.start_s + a.window_s / 2.0;
    // At most about 2,000 points per line: every k-th window (the report has them all).
    let step = a.windows.len().div_ceil(2_000).max(1);
    let shown: Vec<_> = a.windows.iter().step_by(step).collect();
    let rate: Vec<(f64, f64)> = shown.iter().map(|w| (mid(w), w.requests_per_s)).collect();
    let errors: Vec<(f64, f64)> = shown.iter().map(|w| (mid(w), w.error_ratio * 100.0)).collect();
    let p50: Vec<(f64, f64)> = shown.iter().filter_map(|w| w.p50_ms.map(|v| (mid(w), v))).collect();
    let p99: Vec<(f64, f64)> = shown.iter().filter_map(|w| w.p99_ms.map(|v| (mid(w), v))).collect();
    let panels: [Panel<'_>; 3] = [
        ("requests / s", vec![("requests / s", &rate)]),
        ("errors (%)", vec![("error ratio", &errors)]),
        ("latency (ms)", vec![("p50", &p50), ("p99", &p99)]),
    ];
    let bands = (a.fault_periods_s.as_slice(), a.window_s / 10.0);
    panels_svg(title, "virtual time (s)", (0.0, x_max), &panels, bands, &[])
}

/// The crash zoom ([`crate::metrics::api::ApiZoom`]) over seconds from the crash: attempts
/// to the dead instance, the gateway's retried and failed requests, its slowest answer, with
/// the crash, the breaker opening, the last attempt and the view update marked.
pub fn zoom_svg(title: &str, a: &ApiReport) -> Result<Option<String>, String> {
    let Some(z) = &a.zoom else { return Ok(None) };
    // Counts since the crash (from the step that holds it), drawn at each step's end.
    let since = |f: fn(&crate::metrics::api::ZoomPoint) -> u64| -> Vec<(f64, f64)> {
        let mut total = 0;
        let after = z.points.iter().filter(|p| p.from_crash_s + z.step_s > 0.0);
        let mut line = vec![(0.0, 0.0)];
        line.extend(after.map(|p| {
            total += f(p);
            (p.from_crash_s + z.step_s, total as f64)
        }));
        line
    };
    let (sent, failed, refused) =
        (since(|p| p.sent_to_dead), since(|p| p.failed_to_dead), since(|p| p.refused_by_breaker));
    let (retried, errors) = (since(|p| p.retried), since(|p| p.errors));
    let slowest: Vec<(f64, f64)> =
        z.points.iter().filter_map(|p| p.max_ms.map(|v| (p.from_crash_s + z.step_s / 2.0, v))).collect();
    let slowest_label = format!("slowest answer of each {} s", z.step_s);
    let panels: [Panel<'_>; 3] = [
        (
            "attempts since the crash",
            vec![
                ("sent to the dead instance", &sent),
                ("of them failed", &failed),
                ("stopped by its open breaker", &refused),
            ],
        ),
        (
            "requests since the crash",
            vec![("retried on another instance", &retried), ("answered with an error", &errors)],
        ),
        ("slowest answer (ms)", vec![(&slowest_label, &slowest)]),
    ];
    let x0 = z.points.first().map_or(-2.0, |p| p.from_crash_s);
    let x1 = z.points.last().map_or(1.0, |p| p.from_crash_s + z.step_s);
    let mut marks = vec![("crash", 0.0), ("last attempt to it", z.stopped_after_s)];
    marks.extend(z.breaker_opened_after_s.map(|x| ("breaker opened", x)));
    marks.extend(z.view_updated_after_s.map(|x| ("registry view dropped it", x)));
    panels_svg(title, "seconds from the crash", (x0, x1), &panels, (&[], 0.0), &marks).map(Some)
}

/// Stacked panels sharing one x axis, each with its legend beside it: `bands` (spans, least
/// width) shaded as faults, `marks` (label, x) drawn as vertical lines through every panel.
fn panels_svg(
    title: &str,
    x_desc: &str,
    (x_min, x_max): (f64, f64),
    panels: &[Panel<'_>],
    (bands, least): (&[(f64, f64)], f64),
    marks: &[(&str, f64)],
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900 + super::plot::LEGEND_WIDTH, 720)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels.len(), 1));
        let shade = super::plot::fault_shade();
        let top = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(0.0_f64, f64::max).max(1e-9) * 1.1;
        let last = panels.len() - 1;
        for (k, (area, (y_desc, lines))) in areas.iter().zip(panels).enumerate() {
            let (panel, legend) = area.split_horizontally(900);
            let y_max = lines.iter().map(|(_, v)| top(v)).fold(0.0_f64, f64::max);
            let mut chart = ChartBuilder::on(&panel)
                .margin(10)
                .x_label_area_size(if k == last { 40 } else { 20 })
                .y_label_area_size(60)
                .build_cartesian_2d(x_min..x_max, 0.0..y_max)
                .map_err(|e| e.to_string())?;
            let mut mesh = chart.configure_mesh();
            mesh.y_desc(*y_desc);
            if k == last {
                mesh.x_desc(x_desc);
            }
            mesh.draw().map_err(|e| e.to_string())?;
            chart
                .draw_series(
                    bands
                        .iter()
                        .map(|(x0, x1)| Rectangle::new([(*x0, 0.0), (x1.max(*x0 + least), y_max)], shade.filled())),
                )
                .map_err(|e| e.to_string())?;
            let mut entries = Vec::new();
            for (i, (label, pts)) in lines.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                // A line a later one repeats exactly is drawn wider, to stay visible under it.
                let covered = lines[i + 1..].iter().filter(|(_, later)| later == pts).count() as u32;
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2 + 3 * covered)))
                    .map_err(|e| e.to_string())?;
                entries.push((*label, color, Mark::Line));
            }
            for (i, (label, x)) in marks.iter().enumerate() {
                let color = MARK_COLORS[i % MARK_COLORS.len()];
                // A mark another one drawn later nearly covers is drawn wider, to stay visible.
                let near = (x_max - x_min) / 200.0;
                let covered = marks[i + 1..].iter().filter(|(_, y)| (y - x).abs() < near).count() as u32;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(*x, 0.0), (*x, y_max)],
                        color.stroke_width(1 + 3 * covered),
                    )))
                    .map_err(|e| e.to_string())?;
                entries.push((*label, color, Mark::Line));
            }
            if !bands.is_empty() {
                entries.push(("fault (crash or partition)", BLACK, Mark::Band(shade)));
            }
            side_legend(&legend, &entries, &[])?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Colours of the vertical marks of the zoom, apart from the lines' [`COLORS`].
const MARK_COLORS: [RGBColor; 4] = [BLACK, RGBColor(214, 39, 40), RGBColor(148, 103, 189), RGBColor(140, 86, 75)];
