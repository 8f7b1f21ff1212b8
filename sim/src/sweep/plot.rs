//! Sweep plots: a metric's mean against a parameter, with its 95 % confidence interval as a
//! band, one line per series; plotters' SVG backend and the shared palette, as every regsim
//! plot. Log axes are drawn by plotting log10 of the values and labelling ticks with 10^v,
//! which keeps one coordinate type; values <= 0 are left out of a log axis and the legend
//! says how many. A categorical x
//! (values that are neither numbers nor durations) is drawn at positions 0, 1, 2, ... with the
//! values as tick labels.

use plotters::prelude::*;

use crate::report::plot::COLORS;
use crate::report::plot::{Mark, side_legend};

/// One point of a line: x, mean and the interval (when n >= 2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pt {
    pub x: f64,
    pub mean: f64,
    pub ci: Option<(f64, f64)>,
    /// Resting on few samples per run (drawn hollow, [`crate::sweep::metric::samples_needed`]).
    pub thin: bool,
}

pub struct Line {
    pub label: String,
    pub points: Vec<Pt>,
}

/// Axes and labels of one plot.
pub struct Axes<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Tick labels of a categorical x (positions 0..n).
    pub categories: Option<&'a [String]>,
    pub log_x: bool,
    pub log_y: bool,
}

/// A point in plot coordinates: x, mean, interval, thin.
type Drawn = (f64, f64, Option<(f64, f64)>, bool);

const SIZE: (u32, u32) = (1060, 520);
const LEGEND_WIDTH: u32 = 300;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A number with about four significant digits, without trailing zeros.
pub fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x.is_finite() { "0".into() } else { x.to_string() };
    }
    let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let lo = if from_zero && lo >= 0.0 && lo <= 0.3 * hi { 0.0 } else { lo };
    let pad = if hi > lo { (hi - lo) * 0.06 } else { lo.abs().max(1.0) * 0.1 };
    (if lo == 0.0 { 0.0 } else { lo - pad }, hi + pad)
}

/// Tick count for a log axis spanning `lo..hi` (log10 units): about one per decade, so the
/// ticks fall on powers of ten (or on 1-2-5 steps within one decade).
fn decades(lo: f64, hi: f64) -> usize {
    let n = (hi - lo).floor() as usize + 1;
    if n < 2 { 6 } else { n }
}

/// The SVG of one sweep plot.
pub fn sweep_svg(axes: &Axes<'_>, lines: &[Line]) -> Result<String, String> {
    let tx = |x: f64| if axes.log_x { (x > 0.0).then(|| x.log10()) } else { Some(x) };
    let ty = |y: f64| if axes.log_y { (y > 0.0).then(|| y.log10()) } else { Some(y) };
    // Lines in plot coordinates; a band only where both ends map.
    let drawn: Vec<Vec<Drawn>> = lines
        .iter()
        .map(|l| {
            l.points
                .iter()
                .filter_map(|p| {
                    let ci = p.ci.and_then(|(a, b)| Some((ty(a)?, ty(b)?)));
                    Some((tx(p.x)?, ty(p.mean)?, ci, p.thin))
                })
                .collect()
        })
        .collect();
    let (x_lo, x_hi) = match axes.categories {
        Some(c) => (-0.5, c.len().max(1) as f64 - 0.5),
        None => range(drawn.iter().flatten().map(|p| p.0), false),
    };
    let ys = drawn.iter().flatten().flat_map(|p| [Some(p.1), p.2.map(|c| c.0), p.2.map(|c| c.1)]).flatten();
    let (y_lo, y_hi) = range(ys, !axes.log_y);
    let x_fmt = |x: &f64| match axes.categories {
        Some(c) => {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                c.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
        None if axes.log_x => short(10f64.powf(*x)),
        None => short(*x),
    };
    let y_fmt = |y: &f64| if axes.log_y { short(10f64.powf(*y)) } else { short(*y) };
    // Points a log axis cannot show (a value <= 0): said in the legend, never dropped silently.
    let dropped = lines.iter().map(|l| l.points.len()).sum::<usize>() - drawn.iter().map(Vec::len).sum::<usize>();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(axes.title, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(axes.x_label).y_desc(axes.y_label).x_label_formatter(&x_fmt).y_label_formatter(&y_fmt);
        if let Some(c) = axes.categories {
            mesh.disable_x_mesh().x_labels(c.len() + 1);
        } else if axes.log_x {
            mesh.x_labels(decades(x_lo, x_hi));
        }
        if axes.log_y {
            mesh.y_labels(decades(y_lo, y_hi));
        }
        mesh.draw().map_err(err)?;
        let mut labels: Vec<(String, RGBColor)> = Vec::new();
        for (i, (line, pts)) in lines.iter().zip(&drawn).enumerate() {
            let c = COLORS[i % COLORS.len()];
            // The band: contiguous runs of points that have an interval.
            for chunk in pts.split(|p| p.2.is_none()).filter(|ch| ch.len() >= 2) {
                let mut poly: Vec<(f64, f64)> = chunk.iter().filter_map(|p| p.2.map(|ci| (p.0, ci.1))).collect();
                poly.extend(chunk.iter().rev().filter_map(|p| p.2.map(|ci| (p.0, ci.0))));
                chart.draw_series(std::iter::once(Polygon::new(poly, c.mix(0.18).filled()))).map_err(err)?;
            }
            // Error bars where a point's interval stands alone.
            for p in pts {
                if let Some((a, b)) = p.2 {
                    chart
                        .draw_series(std::iter::once(PathElement::new(vec![(p.0, a), (p.0, b)], c.mix(0.5))))
                        .map_err(err)?;
                }
            }
            chart.draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), c.stroke_width(2))).map_err(err)?;
            chart
                .draw_series(pts.iter().filter(|p| !p.3).map(|p| Circle::new((p.0, p.1), 3, c.filled())))
                .map_err(err)?;
            // A thin point: a white dot in a ring of the line's colour.
            for p in pts.iter().filter(|p| p.3) {
                chart.draw_series(std::iter::once(Circle::new((p.0, p.1), 5, WHITE.filled()))).map_err(err)?;
                chart.draw_series(std::iter::once(Circle::new((p.0, p.1), 5, c.stroke_width(2)))).map_err(err)?;
            }
            labels.push((if pts.is_empty() { format!("{} (no value)", line.label) } else { line.label.clone() }, c));
        }
        // A series with no value at any point (e.g. never converged) says so in the legend.
        let entries: Vec<(&str, RGBColor, Mark)> = labels.iter().map(|(l, c)| (l.as_str(), *c, Mark::Line)).collect();
        let mut notes = vec!["band: 95 % CI of the mean,".to_string(), "clipped to the metric's range".to_string()];
        if drawn.iter().flatten().any(|p| p.3) {
            notes.push("hollow point: thin, too few samples per run".to_string());
        }
        if dropped > 0 {
            notes.push(format!("log axis: {dropped} point(s) at 0 not shown"));
        }
        let notes: Vec<&str> = notes.iter().map(String::as_str).collect();
        side_legend(&legend, &entries, &notes)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(15.123456), "15.12");
        assert_eq!(short(0.0123456), "0.01235");
        assert_eq!(short(119_644.0), "119644");
        assert_eq!(short(2.0), "2");
    }

    #[test]
    fn renders_lines_bands_and_categories() {
        let lines = vec![
            Line {
                label: "loss=0".into(),
                points: vec![
                    Pt { x: 1.0, mean: 10.0, ci: Some((9.0, 11.0)), thin: false },
                    Pt { x: 2.0, mean: 12.0, ci: Some((11.0, 13.0)), thin: true },
                ],
            },
            Line { label: "loss=0.05".into(), points: vec![Pt { x: 1.0, mean: 0.0, ci: None, thin: false }] },
        ];
        let axes =
            Axes { title: "t", x_label: "beat (s)", y_label: "p99 (s)", categories: None, log_x: true, log_y: true };
        let svg = sweep_svg(&axes, &lines).expect("renders");
        assert!(svg.contains("loss=0.05") && svg.contains("<polygon"), "{svg}");
        let cats = vec!["a".to_string(), "b".to_string()];
        let axes = Axes { categories: Some(&cats), log_x: false, log_y: false, ..axes };
        let svg = sweep_svg(&axes, &lines).expect("renders");
        assert!(svg.contains(">\nb\n</text>"), "{svg}");
    }
}
