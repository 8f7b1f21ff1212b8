//! SVG plots (plotters, SVG backend only: no system fonts needed).

use plotters::prelude::*;

/// One line of a CDF plot: a label, its samples (seconds) and the number of cases it is over
/// (`total`: the samples plus the cases that never got one, e.g. crashes never detected).
pub struct CdfLine<'a> {
    pub label: &'a str,
    pub samples: &'a [f64],
    pub total: usize,
    /// Why cases got no sample, as (count, reason), e.g. (116, "restarted first"); the
    /// legend names these, and any remainder as "never".
    pub why_not: Vec<(usize, &'static str)>,
}

impl<'a> CdfLine<'a> {
    /// A line over `total` cases whose missing ones have no known reason ("never").
    pub fn new(label: &'a str, samples: &'a [f64], total: usize) -> Self {
        CdfLine { label, samples, total, why_not: Vec::new() }
    }

    /// A detection stage over its crash episodes: the missing ones restarted first or ran
    /// to the end of the run, as the report's table says.
    pub fn stage(label: &'a str, s: &'a crate::metrics::detection::Stage) -> Self {
        let restarted = s.restarted as usize;
        let why_not =
            vec![(restarted, "restarted first"), ((s.missed as usize).saturating_sub(restarted), "run ended first")];
        CdfLine { label, samples: &s.latencies_s, total: s.latencies_s.len() + s.missed as usize, why_not }
    }

    /// The legend text: the label and how many cases the line covers, and why the others
    /// have no sample.
    fn legend(&self) -> String {
        let n = self.samples.len();
        let total = self.total.max(n);
        if total == n {
            return format!("{} (n = {n})", self.label);
        }
        let mut rest = total - n;
        let mut parts = Vec::new();
        for (k, why) in &self.why_not {
            let k = (*k).min(rest);
            if k > 0 {
                parts.push(format!("{k} {why}"));
                rest -= k;
            }
        }
        if rest > 0 {
            parts.push(format!("{rest} never"));
        }
        format!("{} ({n} of {total}; {})", self.label, parts.join(", "))
    }
}

/// The categorical palette of every regsim plot (matplotlib's tab10).
pub const COLORS: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The width of the legend panel right of every plot: legends never cover data.
pub const LEGEND_WIDTH: u32 = 420;

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub(crate) enum Mark {
    Line,
    Dot,
    Triangle,
    /// A shaded span (fault periods).
    Band(RGBAColor),
}

/// A legend in its own panel (right of the plot): one row per (label, colour, mark), long labels
/// wrapped onto further lines; then `notes`, one small line each, below it.
pub(crate) fn side_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(&str, RGBColor, Mark)],
    notes: &[&str],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    // About 7 px per character of 13 px sans-serif; the text starts at x = 38.
    let columns = (area.dim_in_pixel().0.saturating_sub(46) / 7).max(20) as usize;
    let mut y = 60;
    for &(label, c, mark) in entries {
        match mark {
            Mark::Line => area.draw(&PathElement::new(vec![(8, y), (30, y)], c.stroke_width(3))).map_err(err)?,
            Mark::Dot => area.draw(&Circle::new((19, y), 5, c.filled())).map_err(err)?,
            Mark::Triangle => area.draw(&TriangleMarker::new((19, y), 6, c.filled())).map_err(err)?,
            Mark::Band(fill) => area.draw(&Rectangle::new([(8, y - 6), (30, y + 6)], fill.filled())).map_err(err)?,
        }
        for line in wrap(label, columns) {
            area.draw(&Text::new(line, (38, y - 7), ("sans-serif", 13))).map_err(err)?;
            y += 16;
        }
        y += 4;
    }
    for (k, note) in notes.iter().enumerate() {
        area.draw(&Text::new(*note, (8, y + 16 * k as i32), ("sans-serif", 12))).map_err(err)?;
    }
    Ok(())
}

/// `text` broken at spaces into lines of at most `columns` characters (a longer word stays
/// whole on its own line).
fn wrap(text: &str, columns: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > columns {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// Draws the legend of `chart` (the one style of every regsim plot) at `pos` and writes the
/// document out.
pub fn finish<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// An empirical CDF per line over all its cases, as an SVG document: a line whose cases did
/// not all get a sample ends below 1 (at samples / total, carried to the right edge) and its
/// legend says how many never did. Lines without samples are left out.
pub fn cdf_svg(title: &str, x_label: &str, y_label: &str, lines: &[CdfLine<'_>]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let size = (820 + LEGEND_WIDTH, 480);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, legend) = root.split_horizontally(size.0 - LEGEND_WIDTH);
        let x_max = lines.iter().flat_map(|l| l.samples.iter().copied()).fold(0.0_f64, f64::max);
        let x_max = if x_max > 0.0 { x_max * 1.05 } else { 1.0 };
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, 0.0..1.0)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(|e| e.to_string())?;
        let mut labels = Vec::new();
        // Earlier lines wider: a line drawn over one with the same samples (deleted and gone
        // from every server, two alerts firing together) leaves the one below visible as a
        // border instead of hiding it.
        let drawn = lines.iter().filter(|l| !l.samples.is_empty()).count();
        for (k, (i, line)) in lines.iter().enumerate().filter(|(_, l)| !l.samples.is_empty()).enumerate() {
            let width = (2 + 2 * (drawn - 1 - k)).min(10) as u32;
            let color = COLORS[i % COLORS.len()];
            let mut v = line.samples.to_vec();
            v.sort_by(f64::total_cmp);
            let total = line.total.max(v.len());
            let n = total as f64;
            let mut pts = vec![(0.0, 0.0)];
            for (k, x) in v.iter().enumerate() {
                pts.push((*x, k as f64 / n));
                pts.push((*x, (k + 1) as f64 / n));
            }
            pts.push((x_max, v.len() as f64 / n));
            let label = line.legend();
            chart.draw_series(LineSeries::new(pts, color.stroke_width(width))).map_err(|e| e.to_string())?;
            labels.push((label, color));
        }
        let entries: Vec<(&str, RGBColor, Mark)> = labels.iter().map(|(l, c)| (l.as_str(), *c, Mark::Line)).collect();
        side_legend(&legend, &entries, &[])?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The fill of fault periods in every time plot.
pub fn fault_shade() -> RGBAColor {
    RGBColor(0xff, 0xcc, 0x99).mix(0.5)
}

/// A time series of fractions (0..1) against virtual time, with shaded spans (fault periods,
/// e.g. partitions), as Jepsen's plots shade nemesis activity; the legend names the spans
/// only when there are some.
pub fn series_svg(
    title: &str,
    y_label: &str,
    series: &[(f64, f64)],
    shaded: &[(f64, f64)],
    shade_label: &str,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let size = (820 + LEGEND_WIDTH, 420);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, legend) = root.split_horizontally(size.0 - LEGEND_WIDTH);
        let x_max = series.last().map_or(1.0, |p| p.0.max(1.0));
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, 0.0..1.0)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("virtual time (s)").y_desc(y_label).draw().map_err(|e| e.to_string())?;
        let shade = fault_shade();
        chart
            .draw_series(shaded.iter().map(|(a, b)| Rectangle::new([(*a, 0.0), (*b, 1.0)], shade.filled())))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(series.iter().copied(), COLORS[0].stroke_width(2)))
            .map_err(|e| e.to_string())?;
        let mut entries = vec![("views wrong", COLORS[0], Mark::Line)];
        if !shaded.is_empty() {
            entries.push((shade_label, COLORS[0], Mark::Band(shade)));
        }
        side_legend(&legend, &entries, &[])?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line over 4 cases with 2 samples ends at one half and says 2 never got one; a line
    /// whose every case has a sample reads "n = ..."; a line without samples is left out.
    #[test]
    fn long_legend_labels_wrap_at_spaces() {
        assert_eq!(wrap("short", 20), vec!["short"]);
        assert_eq!(
            wrap("ap: marked unhealthy (5 of 125; 116 restarted first)", 24),
            vec!["ap: marked unhealthy (5", "of 125; 116 restarted", "first)"]
        );
        assert_eq!(wrap("averyveryverylongword and more", 8), vec!["averyveryverylongword", "and more"]);
    }

    #[test]
    fn a_cdf_is_over_all_cases_and_names_the_missing_ones() {
        let lines = [
            CdfLine::new("half", &[1.0, 2.0], 4),
            CdfLine::new("all", &[1.5], 1),
            CdfLine::new("zilch", &[], 3),
            CdfLine {
                label: "why",
                samples: &[1.0],
                total: 5,
                why_not: vec![(3, "restarted first"), (0, "run ended first")],
            },
        ];
        let svg = cdf_svg("t", "x", "y", &lines).expect("svg");
        assert!(svg.contains("half (2 of 4; 2 never)"), "{svg}");
        assert!(svg.contains("all (n = 1)"));
        assert!(!svg.contains("zilch"));
        assert!(svg.contains("why (1 of 5; 3 restarted first, 1 never)"), "{svg}");
    }
}
