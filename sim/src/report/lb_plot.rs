//! SVG plots of a balancer evaluation (`regsim lb --out DIR`), plotters' SVG backend as in
//! [`super::plot`].
//!
//! - Sorted load: nodes sorted from most to least loaded, node rank on x, load / mean on y,
//!   one line per balancer; a flat line at 1 is perfect balance, the left end is max/mean.
//!   Above [`MAX_POINTS`] nodes a line is thinned to evenly spaced ranks (always keeping the
//!   first and the last) so the SVG stays small.
//! - Disruption: per churn step, the moved fraction of probe keys of every balancer as a
//!   point, beside the ideal as a black bar, on a log scale (ideal ~1/n and modn ~1 differ by
//!   orders of magnitude); a moved fraction of 0 is drawn at the bottom of the axis.

use plotters::prelude::*;

use super::plot::{COLORS, Mark, side_legend};

/// Most points drawn per sorted-load line.
pub const MAX_POINTS: usize = 1000;

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// (colour index, label, points) of one drawn line.
type Series<'a> = (usize, &'a str, Vec<(f64, f64)>);

/// One balancer's per-node loads.
pub struct LoadLine<'a> {
    pub label: &'a str,
    pub loads: &'a [u64],
}

/// (rank, load / mean) points of one line, sorted descending and thinned to [`MAX_POINTS`].
pub fn sorted_points(loads: &[u64]) -> Vec<(f64, f64)> {
    let mut v = loads.to_vec();
    v.sort_unstable_by(|a, b| b.cmp(a));
    let mean = v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    let y = |x: u64| if mean > 0.0 { x as f64 / mean } else { 1.0 };
    let n = v.len();
    if n <= MAX_POINTS {
        return v.iter().enumerate().map(|(i, &x)| ((i + 1) as f64, y(x))).collect();
    }
    (0..MAX_POINTS)
        .map(|j| {
            let i = j * (n - 1) / (MAX_POINTS - 1);
            ((i + 1) as f64, y(v[i]))
        })
        .collect()
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Size of a plot; the right [`LEGEND_WIDTH`] pixels hold the legend, so long spec names
/// never cover data.
const SIZE: (u32, u32) = (1060, 520);
const LEGEND_WIDTH: u32 = super::plot::LEGEND_WIDTH;

/// Sorted-load plot: one line per balancer (lines without loads are left out).
pub fn sorted_load_svg(title: &str, y_label: &str, lines: &[LoadLine<'_>]) -> Result<String, String> {
    let series: Vec<Series<'_>> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.loads.is_empty())
        .map(|(i, l)| (i, l.label, sorted_points(l.loads)))
        .collect();
    let x_max = series.iter().flat_map(|s| s.2.last().map(|p| p.0)).fold(1.0_f64, f64::max);
    let y_max = series.iter().flat_map(|s| s.2.first().map(|p| p.1)).fold(1.0_f64, f64::max) * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(1.0..x_max.max(2.0), 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("node rank (most loaded first)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(y_label)
            .draw()
            .map_err(err)?;
        let mut entries = Vec::new();
        for (i, label, pts) in series {
            chart.draw_series(LineSeries::new(pts, color(i).stroke_width(2))).map_err(err)?;
            entries.push((label, color(i), Mark::Line));
        }
        side_legend(&legend, &entries, &[])?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One balancer's moved fraction per churn step.
pub struct MovedLine<'a> {
    pub label: &'a str,
    pub moved: &'a [f64],
}

/// Disruption plot: per step (`steps[i]`, ideal `ideal[i]`), one point per balancer.
pub fn disruption_svg(title: &str, steps: &[String], ideal: &[f64], lines: &[MovedLine<'_>]) -> Result<String, String> {
    let positive = ideal.iter().chain(lines.iter().flat_map(|l| l.moved.iter())).copied().filter(|&x| x > 0.0);
    let y_min = (positive.fold(1.0_f64, f64::min) / 3.0).clamp(1e-9, 0.3);
    let floor = |x: f64| x.clamp(y_min, 1.0);
    let groups = steps.len().max(1) as f64;
    let width = 0.8 / lines.len().max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..groups - 0.5, (y_min..1.0).log_scale())
            .map_err(err)?;
        let names = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                steps.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(steps.len().max(1) + 1)
            .x_label_formatter(&names)
            .x_desc("churn step")
            .y_desc("moved fraction of probe keys (log)")
            .draw()
            .map_err(err)?;
        let bars = ideal.iter().enumerate().map(|(i, &y)| {
            let x = i as f64;
            PathElement::new(vec![(x - 0.45, floor(y)), (x + 0.45, floor(y))], BLACK.stroke_width(3))
        });
        chart.draw_series(bars).map_err(err)?;
        let mut entries = vec![("ideal", BLACK, Mark::Line)];
        for (a, line) in lines.iter().enumerate() {
            let c = color(a);
            let dx = -0.4 + width * (a as f64 + 0.5);
            let pts =
                line.moved.iter().enumerate().map(|(i, &y)| Circle::new((i as f64 + dx, floor(y)), 5, c.filled()));
            chart.draw_series(pts).map_err(err)?;
            entries.push((line.label, c, Mark::Dot));
        }
        side_legend(&legend, &entries, &[])?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_points_are_descending_and_thinned() {
        let pts = sorted_points(&[1, 3, 2, 2]);
        assert_eq!(pts, vec![(1.0, 1.5), (2.0, 1.0), (3.0, 1.0), (4.0, 0.5)]);
        let many: Vec<u64> = (0..5000).collect();
        let pts = sorted_points(&many);
        assert_eq!(pts.len(), MAX_POINTS);
        assert_eq!(pts[0].0, 1.0);
        assert_eq!(pts[MAX_POINTS - 1], (5000.0, 0.0));
        assert!(pts.windows(2).all(|w| w[0].1 >= w[1].1 && w[0].0 < w[1].0));
        assert_eq!(sorted_points(&[0, 0]), vec![(1.0, 1.0), (2.0, 1.0)]);
    }

    #[test]
    fn plots_render_with_labels() {
        let svg =
            sorted_load_svg("t", "keys / mean", &[LoadLine { label: "ring", loads: &[5, 3, 4] }]).expect("renders");
        assert!(svg.starts_with("<svg") && svg.contains("ring"));
        let steps = vec!["remove:1".to_string(), "add:1".to_string()];
        let svg = disruption_svg(
            "d",
            &steps,
            &[0.1, 0.09],
            &[MovedLine { label: "modn", moved: &[0.9, 0.0] }, MovedLine { label: "jump", moved: &[0.1, 0.09] }],
        )
        .expect("renders");
        assert!(svg.contains("remove:1") && svg.contains("modn") && svg.contains("ideal"));
    }
}
