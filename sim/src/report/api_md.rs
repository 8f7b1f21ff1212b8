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
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900 + super::plot::LEGEND_WIDTH, 720)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((3, 1));
        let x_max = a.windows.last().map_or(1.0, |w| (w.start_s + a.window_s).max(1.0));
        let shade = super::plot::fault_shade();
        let mid = |w: &crate::metrics::api::WindowReport| w.start_s + a.window_s / 2.0;
        // At most about 2,000 points per line: every k-th window (the report has them all).
        let step = a.windows.len().div_ceil(2_000).max(1);
        let shown: Vec<_> = a.windows.iter().step_by(step).collect();
        let rate: Vec<(f64, f64)> = shown.iter().map(|w| (mid(w), w.requests_per_s)).collect();
        let errors: Vec<(f64, f64)> = shown.iter().map(|w| (mid(w), w.error_ratio * 100.0)).collect();
        let p50: Vec<(f64, f64)> = shown.iter().filter_map(|w| w.p50_ms.map(|v| (mid(w), v))).collect();
        let p99: Vec<(f64, f64)> = shown.iter().filter_map(|w| w.p99_ms.map(|v| (mid(w), v))).collect();
        let top = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(0.0_f64, f64::max).max(1e-9) * 1.1;
        let panels_spec: [Panel<'_>; 3] = [
            ("requests / s", vec![("requests / s", &rate)]),
            ("errors (%)", vec![("error ratio", &errors)]),
            ("latency (ms)", vec![("p50", &p50), ("p99", &p99)]),
        ];
        for (k, (panel, (y_desc, lines))) in panels.iter().zip(panels_spec).enumerate() {
            let (panel, legend) = panel.split_horizontally(900);
            let (panel, legend) = (&panel, &legend);
            let y_max = lines.iter().map(|(_, v)| top(v)).fold(0.0_f64, f64::max);
            let mut chart = ChartBuilder::on(panel)
                .margin(10)
                .x_label_area_size(if k == 2 { 40 } else { 20 })
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)
                .map_err(|e| e.to_string())?;
            let mut mesh = chart.configure_mesh();
            mesh.y_desc(y_desc);
            if k == 2 {
                mesh.x_desc("virtual time (s)");
            }
            mesh.draw().map_err(|e| e.to_string())?;
            chart
                .draw_series(a.fault_periods_s.iter().map(|(x0, x1)| {
                    Rectangle::new([(*x0, 0.0), (x1.max(*x0 + a.window_s / 10.0), y_max)], shade.filled())
                }))
                .map_err(|e| e.to_string())?;
            let mut entries = Vec::new();
            for (i, (label, pts)) in lines.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                entries.push((*label, color, Mark::Line));
            }
            if !a.fault_periods_s.is_empty() {
                entries.push(("fault (crash or partition)", BLACK, Mark::Band(shade)));
            }
            side_legend(legend, &entries)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
