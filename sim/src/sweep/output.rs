//! A sweep's outputs, computed from its run records only (so a merged sharded sweep writes
//! exactly what the unsharded one writes): `sweep.json`, `sweep.csv` (one row per run),
//! (columns: run, point, every swept key, seed, digest, outcome, failed, every metric),
//! `sweep.md` (a table per metric and the failed runs) and one SVG per plot (and per value
//! of each parameter a plot neither draws nor fixes).
//!
//! Aggregates leave out runs that could not run or stopped at the event limit (their values
//! are of a cut-short run); they count as missing. Runs that failed an invariant are kept:
//! their measurements are real, and they are listed with the command that reproduces them.

use serde::Serialize;

use super::file::{Plot, Sweep, sanitize, value_text};
use super::metric::{samples_needed, unit};
use super::plan::{Meta, repro};
use super::plot::{Axes, Line, Pt, short, sweep_svg};
use super::record::{Ordered, RunRecord};
use super::stats::{Summary, summarize};

/// How the statistics are computed, written into `sweep.json`.
pub const STATISTICS: &str = "per point and metric over the point's runs: n values, missing (runs without the \
value, or that could not run or stopped at the event limit), mean, sd (sample standard deviation, n - 1), min, \
max, and the 95 % confidence interval of the mean: mean ± t(0.975, n - 1) · sd / √n (Student t; none when n < 2)";

#[derive(Serialize)]
struct ParamOut<'a> {
    name: &'a str,
    keys: &'a [String],
    values: Vec<serde_json::Value>,
}

#[derive(Serialize)]
struct PointOut<'a> {
    point: u64,
    params: Ordered<'a, serde_json::Value>,
    metrics: Ordered<'a, Summary>,
    runs: &'a [RunRecord],
}

#[derive(Serialize)]
struct FailedRun {
    run: u64,
    point: u64,
    seed: u64,
    reason: String,
    repro: String,
}

#[derive(Serialize)]
struct SweepJson<'a> {
    #[serde(flatten)]
    meta: &'a Meta,
    seed: u64,
    seeds_per_point: u64,
    points: u64,
    runs: u64,
    runs_failed: u64,
    set: &'a [String],
    params: Vec<ParamOut<'a>>,
    /// Concrete metric names (wildcards expanded), in order.
    metrics: &'a [String],
    statistics: &'static str,
    results: Vec<PointOut<'a>>,
    failed_runs: &'a [FailedRun],
}

/// Everything computed from the records.
pub struct Aggregate<'a> {
    pub sweep: &'a Sweep,
    pub meta: &'a Meta,
    pub records: &'a [RunRecord],
    /// Concrete metric names, grouped by the metric path that matched them, in file order.
    pub metrics: Vec<String>,
    /// Which metric path each concrete metric belongs to.
    pub metric_path: Vec<usize>,
    /// `summaries[point][metric]`.
    pub summaries: Vec<Vec<Summary>>,
}

impl<'a> Aggregate<'a> {
    /// `records` must be the sweep's runs, complete and in run order.
    pub fn new(sweep: &'a Sweep, meta: &'a Meta, records: &'a [RunRecord]) -> Aggregate<'a> {
        assert_eq!(records.len() as u64, sweep.runs(), "a sweep report needs every run");
        assert!(records.iter().enumerate().all(|(i, r)| r.run == i as u64), "records must be in run order");
        let mut metrics: Vec<String> = Vec::new();
        let mut metric_path = Vec::new();
        for (i, path) in sweep.metrics.iter().enumerate() {
            if !path.has_wildcard() {
                metrics.push(path.text.clone());
                metric_path.push(i);
                continue;
            }
            for (name, _) in records.iter().flat_map(|r| r.metrics.0.iter()) {
                if path.matches(name) && !metrics.contains(name) {
                    metrics.push(name.clone());
                    metric_path.push(i);
                }
            }
        }
        let seeds = sweep.spec.seeds as usize;
        let summaries = records
            .chunks(seeds)
            .map(|runs| {
                metrics
                    .iter()
                    .map(|m| {
                        let kept = |r: &&RunRecord| r.error.is_none() && !r.hit_limit();
                        let values: Vec<Option<f64>> =
                            runs.iter().map(|r| if kept(&r) { r.value(m) } else { None }).collect();
                        let mut sum = summarize(&values);
                        let counts: Vec<u64> = runs
                            .iter()
                            .filter(kept)
                            .filter(|r| r.value(m).is_some())
                            .filter_map(|r| r.samples.get(m).copied())
                            .collect();
                        if !counts.is_empty() {
                            let total: u64 = counts.iter().sum();
                            sum.samples = Some(total);
                            sum.thin = total < samples_needed(m) * counts.len() as u64;
                        }
                        sum
                    })
                    .collect()
            })
            .collect();
        Aggregate { sweep, meta, records, metrics, metric_path, summaries }
    }

    fn failed_runs(&self) -> Vec<FailedRun> {
        self.records
            .iter()
            .filter(|r| r.failed())
            .map(|r| FailedRun {
                run: r.run,
                point: r.point,
                seed: r.seed,
                reason: r.reason(),
                repro: repro(self.sweep, self.meta, r.point, r.seed),
            })
            .collect()
    }

    fn param_labels(&self, point: u64) -> Vec<String> {
        let values = self.sweep.point_values(point);
        self.sweep.params.iter().zip(values).map(|(p, j)| p.display(j)).collect()
    }

    /// `sweep.json`.
    pub fn json(&self) -> Result<String, String> {
        let s = self.sweep;
        let failed = self.failed_runs();
        let seeds = s.spec.seeds as usize;
        let point_params: Vec<Vec<(String, serde_json::Value)>> = (0..s.points())
            .map(|p| {
                s.params
                    .iter()
                    .zip(s.point_values(p))
                    .map(|(q, j)| Ok((q.name.clone(), serde_json::to_value(&q.values[j]).map_err(|e| e.to_string())?)))
                    .collect::<Result<_, String>>()
            })
            .collect::<Result<_, String>>()?;
        let point_metrics: Vec<Vec<(String, Summary)>> =
            self.summaries.iter().map(|row| self.metrics.iter().cloned().zip(row.iter().cloned()).collect()).collect();
        let results = (0..s.points() as usize)
            .map(|p| PointOut {
                point: p as u64,
                params: Ordered(&point_params[p]),
                metrics: Ordered(&point_metrics[p]),
                runs: &self.records[p * seeds..(p + 1) * seeds],
            })
            .collect();
        let params = s
            .params
            .iter()
            .map(|p| {
                Ok(ParamOut {
                    name: &p.name,
                    keys: &p.key_texts,
                    values: p
                        .values
                        .iter()
                        .map(serde_json::to_value)
                        .collect::<Result<_, _>>()
                        .map_err(|e| e.to_string())?,
                })
            })
            .collect::<Result<_, String>>()?;
        let out = SweepJson {
            meta: self.meta,
            seed: s.spec.seed,
            seeds_per_point: s.spec.seeds,
            points: s.points(),
            runs: s.runs(),
            runs_failed: failed.len() as u64,
            set: &s.spec.set,
            params,
            metrics: &self.metrics,
            statistics: STATISTICS,
            results,
            failed_runs: &failed,
        };
        Ok(serde_json::to_string_pretty(&out).map_err(|e| e.to_string())? + "\n")
    }

    /// `sweep.csv`: one row per run.
    pub fn csv(&self) -> String {
        let mut head: Vec<String> = vec!["run".into(), "point".into()];
        head.extend(self.sweep.params.iter().flat_map(|p| p.key_texts.iter().cloned()));
        head.extend(["seed", "digest", "outcome", "failed"].map(String::from));
        head.extend(self.metrics.iter().cloned());
        let mut out = csv_row(&head);
        for r in self.records {
            let mut row = vec![r.run.to_string(), r.point.to_string()];
            for (p, j) in self.sweep.params.iter().zip(self.sweep.point_values(r.point)) {
                row.extend(p.overrides(j).iter().map(|o| value_text(&o.value)));
            }
            row.extend([r.seed.to_string(), r.digest.clone(), r.outcome.clone(), u8::from(r.failed()).to_string()]);
            row.extend(self.metrics.iter().map(|m| r.value(m).map_or(String::new(), |v| v.to_string())));
            out.push_str(&csv_row(&row));
        }
        out
    }

    /// `sweep.md`.
    pub fn markdown(&self, plot_files: &[String]) -> String {
        let s = self.sweep;
        let m = self.meta;
        let mut out = format!("# Sweep `{}`\n\n", m.sweep);
        let question = header_comment(&s.text);
        if !question.is_empty() {
            out.push_str(&question);
            out.push_str("\n\n");
        }
        let failed = self.failed_runs();
        out.push_str(&format!(
            "Scenario `{}` (`{}`), swept by `{}`: {} points × {} seeds = {} runs, {} failed. Sweep seed {}; regsim {}.\n\n",
            m.scenario,
            m.scenario_file,
            m.sweep_file,
            s.points(),
            s.spec.seeds,
            s.runs(),
            failed.len(),
            s.spec.seed,
            m.regsim_version
        ));
        if !s.spec.set.is_empty() {
            let set: Vec<String> = s.spec.set.iter().map(|x| format!("`{x}`")).collect();
            out.push_str(&format!("Fixed overrides: {}.\n\n", set.join(", ")));
        }
        for p in &s.params {
            let keys =
                if p.key_texts.len() > 1 { format!(" (keys {})", p.key_texts.join(", ")) } else { String::new() };
            let values: Vec<String> = (0..p.values.len()).map(|j| p.display(j)).collect();
            out.push_str(&format!("- `{}`{keys}: {}\n", p.name, values.join(", ")));
        }
        out.push_str(
            "\nCells: mean ± half-width of the 95 % confidence interval of the mean (Student t over the point's \
             seeds), then [min, max] and n (runs with a value). A duration statistic also gives the samples \
             its runs' values rest on (crashes, elections, requests: the report's `count` beside it), marked \
             **thin** below 10 per run, or for a quantile pNN below 100 / (100 - NN) per run (p99: 100), where \
             no sample lies beyond it and it is the largest one; thin points are drawn hollow in the plots.\n\n",
        );
        for f in plot_files {
            out.push_str(&format!("![{f}]({f})\n\n"));
        }
        for p in &s.plots {
            let drawn =
                plot_files.iter().any(|f| f == &format!("{}.svg", p.name) || f.starts_with(&format!("{}--", p.name)));
            if !drawn {
                let y: Vec<&str> = p.y.iter().map(|y| y.text.as_str()).collect();
                out.push_str(&format!(
                    "Plot `{}` is not drawn: no run reported `{}` (see the metric paths in any run's report.json).\n\n",
                    p.name,
                    y.join("`, `")
                ));
            }
        }
        for (k, metric) in self.metrics.iter().enumerate() {
            let u = unit(metric).map_or(String::new(), |u| format!(" ({u})"));
            out.push_str(&format!("## `{metric}`{u}\n\n|"));
            for p in &s.params {
                out.push_str(&format!(" {} |", p.name));
            }
            let with_samples = self.summaries.iter().any(|row| row[k].samples.is_some());
            out.push_str(" mean ± 95 % CI | [min, max] | n |");
            out.push_str(if with_samples { " samples |\n|" } else { "\n|" });
            out.push_str(&"---|".repeat(s.params.len()));
            out.push_str(if with_samples { "---:|---|---:|---:|\n" } else { "---:|---|---:|\n" });
            for (p, row) in self.summaries.iter().enumerate() {
                out.push('|');
                for l in self.param_labels(p as u64) {
                    out.push_str(&format!(" {} |", l.replace('|', "\\|")));
                }
                let x = &row[k];
                let mean = match (x.mean, x.ci95_low, x.ci95_high) {
                    (Some(mu), Some(lo), Some(hi)) => format!("{} ± {}", short(mu), short((hi - lo) / 2.0)),
                    (Some(mu), _, _) => short(mu),
                    _ => "–".into(),
                };
                let span = match (x.min, x.max) {
                    (Some(a), Some(b)) => format!("[{}, {}]", short(a), short(b)),
                    _ => "–".into(),
                };
                out.push_str(&format!(" {mean} | {span} | {} |", x.n));
                if with_samples {
                    let cell = match x.samples {
                        Some(t) if x.n > 0 => {
                            let per = short(t as f64 / x.n as f64);
                            if x.thin {
                                format!("{t} ({per} per run) **thin**")
                            } else {
                                format!("{t} ({per} per run)")
                            }
                        }
                        _ => "–".into(),
                    };
                    out.push_str(&format!(" {cell} |"));
                }
                out.push('\n');
            }
            out.push('\n');
        }
        out.push_str("## Failed runs\n\n");
        if failed.is_empty() {
            out.push_str("None: every run held every invariant and reached its end.\n");
        }
        const SHOWN: usize = 100;
        for f in failed.iter().take(SHOWN) {
            out.push_str(&format!(
                "- run {} (point {}, seed {}): {}\n  `{}`\n",
                f.run, f.point, f.seed, f.reason, f.repro
            ));
        }
        if failed.len() > SHOWN {
            out.push_str(&format!("- ... and {} more in sweep.json\n", failed.len() - SHOWN));
        }
        out
    }

    /// The SVGs of every plot, as (file name, contents).
    pub fn plots(&self) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for plot in &self.sweep.plots {
            out.extend(self.plot(plot)?);
        }
        Ok(out)
    }

    fn plot(&self, plot: &Plot) -> Result<Vec<(String, String)>, String> {
        let s = self.sweep;
        let facets: Vec<usize> = (0..s.params.len())
            .filter(|&i| i != plot.x && Some(i) != plot.series && !plot.fixed.iter().any(|f| f.0 == i))
            .collect();
        let facet_count: usize = facets.iter().map(|&i| s.params[i].values.len()).product();
        let ys: Vec<usize> = (0..self.metrics.len())
            .filter(|&k| plot.y.iter().any(|y| y.text == self.metrics[k] || y.matches(&self.metrics[k])))
            .collect();
        let x = &s.params[plot.x];
        let mut files = Vec::new();
        for f in 0..facet_count {
            // Value index per parameter: fixed ones, this facet's, and x/series filled below.
            let mut values = vec![0usize; s.params.len()];
            for &(q, j) in &plot.fixed {
                values[q] = j;
            }
            let mut rest = f;
            for &q in facets.iter().rev() {
                let n = s.params[q].values.len();
                values[q] = rest % n;
                rest /= n;
            }
            let series_values = plot.series.map_or(1, |q| s.params[q].values.len());
            let mut lines = Vec::new();
            let short_names = distinct_parts(&self.metrics, &ys);
            for &k in &ys {
                for sv in 0..series_values {
                    let mut label = Vec::new();
                    if ys.len() > 1 {
                        // Detection stages in the report's words ("marked unhealthy").
                        let short = &short_names[k];
                        let stage = crate::report::markdown::stage_title(short);
                        label.push(if stage == "other" { plain_words(short) } else { stage.to_string() });
                    }
                    if let Some(q) = plot.series {
                        values[q] = sv;
                        label.push(format!("{} = {}", s.params[q].name, s.params[q].display(sv)));
                    }
                    if label.is_empty() {
                        label.push(self.metrics[k].clone());
                    }
                    let mut points = Vec::new();
                    // Every metric is >= 0 (times, counts, ratios) and a fraction <= 1: the
                    // band stops at the physical range (a t interval over few seeds can pass it).
                    let fraction = unit(&self.metrics[k]) == Some("fraction, 0..1");
                    let clip = |(lo, hi): (f64, f64)| (lo.max(0.0), if fraction { hi.min(1.0) } else { hi });
                    for j in 0..x.values.len() {
                        values[plot.x] = j;
                        let summary = &self.summaries[point_of(s, &values) as usize][k];
                        let Some(mean) = summary.mean else { continue };
                        let xv = x.numeric.as_ref().map_or(j as f64, |v| v[j]);
                        let ci = summary.ci95_low.zip(summary.ci95_high).map(clip);
                        points.push(Pt { x: xv, mean, ci, thin: summary.thin });
                    }
                    lines.push(Line { label: label.join(", "), points });
                }
            }
            let facet_text: Vec<String> = facets
                .iter()
                .chain(plot.fixed.iter().map(|f| &f.0))
                .map(|&q| format!("{} = {}", s.params[q].name, s.params[q].display(values[q])))
                .collect();
            let y_text = plot.y.iter().map(|y| y.text.as_str()).collect::<Vec<_>>().join(", ");
            let y_unit = ys.first().and_then(|&k| unit(&self.metrics[k]));
            let y_name = if plot.y.len() > 1 { common_prefix(&plot.y) } else { y_text.clone() };
            let y_label = match (&plot.y_label, y_unit) {
                (Some(l), _) => l.clone(),
                (None, Some(u)) => format!("{y_name} ({u})"),
                (None, None) => y_name,
            };
            let duration_x = x.numeric.is_some()
                && x.values.iter().all(|v| matches!(v, toml::Value::String(_) | toml::Value::Array(_)));
            let x_label = if duration_x { format!("{} (s)", x.name) } else { x.name.clone() };
            let mut title =
                plot.title.clone().unwrap_or_else(|| format!("{}: {y_text} against {}", self.meta.scenario, x.name));
            if !facet_text.is_empty() {
                title.push_str(&format!(" ({})", facet_text.join(", ")));
            }
            let categories = x.numeric.is_none().then_some(x.labels.as_slice());
            let axes = Axes {
                title: &title,
                x_label: &x_label,
                y_label: &y_label,
                categories,
                log_x: plot.log_x && categories.is_none(),
                log_y: plot.log_y,
            };
            // No plot without data (a y path no run reported): sweep.md says so instead.
            if lines.iter().all(|l| l.points.is_empty()) {
                continue;
            }
            let svg = sweep_svg(&axes, &lines)?;
            let mut name = plot.name.clone();
            for &q in &facets {
                name.push_str(&format!(
                    "--{}={}",
                    sanitize(&s.params[q].name),
                    sanitize(&s.params[q].labels[values[q]])
                ));
            }
            files.push((format!("{name}.svg"), svg));
        }
        Ok(files)
    }

    /// Every output file, as (file name, contents).
    pub fn render(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let plots = self.plots()?;
        let names: Vec<String> = plots.iter().map(|p| p.0.clone()).collect();
        let mut files = vec![
            ("sweep.json".to_string(), self.json()?.into_bytes()),
            ("sweep.csv".to_string(), self.csv().into_bytes()),
            ("sweep.md".to_string(), self.markdown(&names).into_bytes()),
        ];
        files.extend(plots.into_iter().map(|(n, svg)| (n, svg.into_bytes())));
        Ok(files)
    }
}

/// The dotted prefix several metrics share (`elections.downtime` for its p50_s and p99_s),
/// or `value`.
fn common_prefix(ys: &[super::metric::MetricPath]) -> String {
    let parts: Vec<Vec<&str>> = ys.iter().map(|y| y.text.split('.').collect()).collect();
    let mut n = 0;
    while parts.iter().all(|p| p.len() > n + 1 && p[n] == parts[0][n]) {
        n += 1;
    }
    if n == 0 { "value".into() } else { parts[0][..n].join(".") }
}

/// Splits a concrete metric path at the dots outside quotes.
fn segments(name: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in name.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => {
                out.push(&name[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&name[start..]);
    out
}

/// Legend names of the metrics `ys` (indices into `metrics`): each without the dotted
/// segments all of them share at the start and at the end (`load.ring:k=160.overall.cv` and
/// `load.maglev.overall.cv` -> `ring:k=160`, `maglev`). Indexed like `metrics`.
fn distinct_parts(metrics: &[String], ys: &[usize]) -> Vec<String> {
    let segs: Vec<Vec<&str>> = metrics.iter().map(|m| segments(m)).collect();
    let chosen: Vec<&Vec<&str>> = ys.iter().map(|&k| &segs[k]).collect();
    let min_len = chosen.iter().map(|s| s.len()).min().unwrap_or(0);
    let mut head = 0;
    while head + 1 < min_len && chosen.iter().all(|s| s[head] == chosen[0][head]) {
        head += 1;
    }
    let mut tail = 0;
    let from_end = |s: &Vec<&str>, t: usize| s[s.len() - 1 - t].to_string();
    while head + tail + 1 < min_len && chosen.iter().all(|s| from_end(s, tail) == from_end(chosen[0], tail)) {
        tail += 1;
    }
    segs.iter().map(|s| if s.len() > head + tail { s[head..s.len() - tail].join(".") } else { s.join(".") }).collect()
}

/// A metric path's distinct part in a legend's words: statistics without their unit suffix
/// (`p50_s` -> `p50`: the axis carries the unit) and the lb report's key-movement fields by
/// what they mean.
fn plain_words(short: &str) -> String {
    let word = |seg: &str| match seg {
        "mean_moved" => "moved".to_string(),
        "mean_ideal" => "least possible (ideal)".to_string(),
        _ => seg.strip_suffix("_s").filter(|w| !w.is_empty()).unwrap_or(seg).to_string(),
    };
    segments(short).into_iter().map(word).collect::<Vec<_>>().join(", ")
}

/// The point with these value indices (mixed radix, last parameter fastest).
fn point_of(s: &Sweep, values: &[usize]) -> u64 {
    s.params.iter().zip(values).fold(0, |acc, (p, &j)| acc * p.values.len() as u64 + j as u64)
}

/// The comment lines at the top of a sweep file, without `#`, as one paragraph per blank
/// comment line.
fn header_comment(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let Some(c) = line.trim_start().strip_prefix('#') else { break };
        let c = c.strip_prefix(' ').unwrap_or(c).trim_end();
        if c.is_empty() {
            out.push_str("\n\n");
        } else {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push(if c.starts_with("  ") { '\n' } else { ' ' });
            }
            out.push_str(c);
        }
    }
    out.trim().to_string()
}

fn csv_row(fields: &[String]) -> String {
    let cells: Vec<String> = fields
        .iter()
        .map(|f| if f.contains([',', '"', '\n']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.clone() })
        .collect();
    cells.join(",") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quotes() {
        assert_eq!(csv_row(&["a".into(), "b,c".into(), "[\"x\"]".into()]), "a,\"b,c\",\"[\"\"x\"\"]\"\n");
    }

    #[test]
    fn legend_names_drop_shared_segments() {
        let m: Vec<String> =
            ["load.ring:k=160.overall.cv", "load.\"bounded:c=1.25\".overall.cv", "x.y"].map(String::from).to_vec();
        assert_eq!(distinct_parts(&m, &[0, 1])[..2], ["ring:k=160", "\"bounded:c=1.25\""]);
        let m: Vec<String> = ["d.unhealthy.p99_s", "d.unhealthy.p50_s"].map(String::from).to_vec();
        assert_eq!(distinct_parts(&m, &[0, 1]), ["p99_s", "p50_s"]);
    }

    #[test]
    fn legend_words_drop_units_and_name_key_movement() {
        assert_eq!(plain_words("p99_s"), "p99");
        assert_eq!(plain_words("maglev:m=65537.mean_moved"), "maglev:m=65537, moved");
        assert_eq!(plain_words("ring:k=160.mean_ideal"), "ring:k=160, least possible (ideal)");
        assert_eq!(plain_words("\"bounded:c=1.25\".cv"), "\"bounded:c=1.25\", cv");
        assert_eq!(plain_words("_s"), "_s");
    }

    #[test]
    fn header_comment_becomes_paragraphs() {
        let t = "# Question: what\n# happens?\n#\n# Second.\nname = \"x\"\n# not this\n";
        assert_eq!(header_comment(t), "Question: what happens?\n\nSecond.");
    }
}
