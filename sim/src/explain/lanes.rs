//! The timeline plot of every `regsim explain` story: a lane per node, x = seconds from the
//! story's start, a dot per step coloured by its kind (one legend row per kind), a short note
//! beside a dot where it helps, and a line at 0.

use plotters::prelude::*;

use crate::report::plot::{COLORS, LEGEND_WIDTH, Mark, side_legend};

/// One step on the timeline.
pub struct Dot {
    pub x: f64,
    pub lane: usize,
    /// Index into the shared palette.
    pub color: usize,
    /// The legend row of its kind.
    pub label: &'static str,
    /// A note drawn beside the dot (e.g. "→servers[2] t5").
    pub text: Option<String>,
}

pub fn lanes_svg(title: &str, x_desc: &str, lanes: &[String], dots: &[Dot]) -> Result<String, String> {
    let lo = dots.iter().map(|d| d.x).fold(0.0_f64, f64::min);
    let hi = dots.iter().map(|d| d.x).fold(0.0_f64, f64::max);
    let pad = ((hi - lo) * 0.05).max(0.01);
    let n = lanes.len().max(1);
    let height = (120 + 34 * n as u32).min(4000);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900 + LEGEND_WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, legend) = root.split_horizontally(900);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(110)
            .build_cartesian_2d(lo - pad..hi + pad, -0.5..n as f64 - 0.5)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_labels(n)
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 {
                    lanes.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .disable_y_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        let mut kinds: Vec<(&str, RGBColor)> = Vec::new();
        for d in dots {
            let c = COLORS[d.color % COLORS.len()];
            chart
                .draw_series(std::iter::once(Circle::new((d.x, d.lane as f64), 5, c.filled())))
                .map_err(|e| e.to_string())?;
            if let Some(t) = &d.text {
                chart
                    .draw_series(std::iter::once(Text::new(t.clone(), (d.x, d.lane as f64 + 0.38), ("sans-serif", 10))))
                    .map_err(|e| e.to_string())?;
            }
            if !kinds.iter().any(|(l, _)| *l == d.label) {
                kinds.push((d.label, c));
            }
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
                COLORS[3].mix(0.6).stroke_width(1),
            )))
            .map_err(|e| e.to_string())?;
        let entries: Vec<(&str, RGBColor, Mark)> = kinds.iter().map(|(l, c)| (*l, *c, Mark::Dot)).collect();
        side_legend(&legend, &entries, &[])?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
