//! The "what users saw" sections of `report.md` about the registry's answers: availability
//! per window and partition side, and consistency (the linearizability verdict, stale reads,
//! and the checker's witness as a table and a space-time diagram, `witness.svg`).

use std::fmt::Write;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::markdown::{ratio_cells, verdict_words};
use super::model::{ConsistencyReport, Report};
use super::plot::{COLORS, LEGEND_WIDTH, Mark, side_legend};

pub fn availability_md(s: &mut String, r: &Report) {
    let a = &r.availability;
    let _ = writeln!(
        s,
        "## Availability (fraction of requests that succeeded)\n\n*During faults*: while a partition was \
         active, a server was down or paused, or a crashed instance was still listed (in a consumer view; \
         without consumers, in a server copy) and had not restarted. Per partition side: while a partition \
         was active, by the requester's side, named by the registry servers it held.\n\n\
         | window | by request kind |\n|---|---|"
    );
    let _ = writeln!(s, "| overall | {} |", ratio_cells(&a.overall));
    let _ = writeln!(s, "| during faults | {} |", ratio_cells(&a.during_faults));
    let _ = writeln!(s, "| outside faults | {} |", ratio_cells(&a.outside_faults));
    for (side, m) in &a.by_side {
        let _ = writeln!(s, "| partition side: {side} | {} |", ratio_cells(m));
    }
    let _ = writeln!(s);
}

/// The registry faults the consistency section tells apart from replication lag, in one
/// wording (`metrics::detection::servers_faulted` and the partition spans decide them).
macro_rules! registry_faults {
    () => {
        "a partition, a server down, paused, cut off or skewed"
    };
}

pub fn consistency_md(s: &mut String, c: &ConsistencyReport, plots: &[String]) {
    let _ = writeln!(s, "## Consistency (linearizability of registry operations)\n");
    let search = if c.states_explored == 0 {
        "decided without a search (no completed list, or no deregistrations: the grow-only pass)".to_string()
    } else {
        format!("{} search states explored", c.states_explored)
    };
    let _ = writeln!(
        s,
        "Verdict: {}. {}. {} operations ({} never completed), {} lists; {search}.\n",
        verdict_words(c),
        c.detail,
        c.ops,
        c.open_ops,
        c.lists,
    );
    if c.verdict == "violation" && !c.promised {
        let _ = writeln!(
            s,
            "The AP registry (Distro) replicates asynchronously: a list answered by a server that a \
             registration has not reached yet misses it. That is its design, not a failure; what matters \
             is how often, how stale and when (below).\n"
        );
    }
    match &c.stale {
        None => {
            let _ = writeln!(
                s,
                "Stale reads: none of the {} lists missed an instance whose registration had completed before \
                 it began.\n",
                c.lists
            );
        }
        Some(st) => {
            let _ = writeln!(
                s,
                concat!(
                    "Stale reads: {} of {} lists ({:.2} %) missed an instance whose registration had completed \
                     before the list began, from {:.1} s to {:.1} s. The missed registration had completed {:.3} s \
                     before the list on average, {:.3} s at worst. {} of them had a fault (",
                    registry_faults!(),
                    ") between that registration and the list; {} had none (replication lag).\n"
                ),
                c.stale_lists,
                c.lists,
                100.0 * c.stale_lists as f64 / c.lists.max(1) as f64,
                st.first_s,
                st.last_s,
                st.mean_age_s,
                st.worst_age_s,
                st.during_faults,
                st.without_faults
            );
        }
    }
    if !c.violation.is_empty() {
        let when = match c.witness_during_faults {
            Some(true) => {
                concat!(" It ran while a registry fault (", registry_faults!(), ") was active.")
            }
            Some(false) => {
                concat!(
                    " No registry fault (",
                    registry_faults!(),
                    ") was active while it ran: replication lag alone produced it."
                )
            }
            None => "",
        };
        let crash = if c.violation.iter().any(|o| o.op.ends_with("(crash)")) {
            " An instance's crash counts as its deregistration, taking effect at some moment between the crash and the restart (the registry drops the instance by itself)."
        } else {
            ""
        };
        let _ =
            writeln!(s, "A minimal set of operations with no linearization (the checker's witness).{when}{crash}\n");
        let _ = writeln!(s, "| client | operation | invoked (s) | completed (s) |\n|---|---|---|---|");
        for o in &c.violation {
            let done = o.complete_s.map_or("never".to_string(), |x| format!("{x:.3}"));
            let _ = writeln!(s, "| {} | {} | {:.3} | {done} |", o.client, o.op, o.invoke_s);
        }
        let _ = writeln!(s);
        super::markdown::plot(s, plots, "witness.svg", "the witness operations as a space-time diagram");
    }
}

/// The witness as a space-time diagram: a lane per client, each operation a bar from its
/// invocation to its completion (to the right edge, marked, when it never completed),
/// labelled with what it did. None without a witness.
pub fn witness_svg(title: &str, c: &ConsistencyReport) -> Result<Option<String>, String> {
    if c.violation.is_empty() {
        return Ok(None);
    }
    let mut clients: Vec<&str> = Vec::new();
    for o in &c.violation {
        if !clients.contains(&o.client.as_str()) {
            clients.push(&o.client);
        }
    }
    let lo = c.violation.iter().map(|o| o.invoke_s).fold(f64::INFINITY, f64::min);
    let hi = c.violation.iter().map(|o| o.complete_s.unwrap_or(o.invoke_s)).fold(lo, f64::max);
    let pad = ((hi - lo) * 0.15).max(0.005);
    let (x0, x1) = (lo - pad, hi + pad);
    let kind = |op: &str| {
        if op.starts_with("register") {
            0
        } else if op.starts_with("deregister") {
            1
        } else {
            2
        }
    };
    const KINDS: [&str; 3] = ["register", "deregister (crash)", "list"];
    let height = (140 + 70 * clients.len() as u32).min(4000);
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
            .build_cartesian_2d(x0..x1, -0.5..clients.len() as f64 - 0.5)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("virtual time (s)")
            .y_labels(clients.len())
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 {
                    clients.get(i as usize).map(|c| c.to_string()).unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .disable_y_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        let mut used = [false; 3];
        // Placed labels (lane, level, pixel span): a label that would overlap one in its lane
        // goes below the bar, then higher above it.
        let mut placed: Vec<(usize, usize, (i32, i32))> = Vec::new();
        for o in &c.violation {
            let lane = clients.iter().position(|c| *c == o.client).unwrap_or(0) as f64;
            let k = kind(&o.op);
            used[k] = true;
            let color = COLORS[k];
            let end = o.complete_s.unwrap_or(x1);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(o.invoke_s, lane - 0.12), (end.max(o.invoke_s + (x1 - x0) / 300.0), lane + 0.12)],
                    color.filled(),
                )))
                .map_err(|e| e.to_string())?;
            let mut label = if o.op.chars().count() > 70 {
                format!("{}…", o.op.chars().take(69).collect::<String>())
            } else {
                o.op.clone()
            };
            if o.complete_s.is_none() {
                label.push_str(" (never completed)");
            }
            // Labels of bars in the right half end at the bar's end, so they stay in the plot.
            let right = o.invoke_s > (x0 + x1) / 2.0;
            let (anchor, at) = if right { (HPos::Right, end) } else { (HPos::Left, o.invoke_s) };
            let px = chart.backend_coord(&(at, lane)).0;
            let w = (label.chars().count() as f64 * 6.5).ceil() as i32;
            let span = if right { (px - w, px) } else { (px, px + w) };
            let lane_ix = lane as usize;
            let free = |level: usize| {
                !placed.iter().any(|&(l, v, (a, b))| l == lane_ix && v == level && a < span.1 + 6 && span.0 < b + 6)
            };
            let level = (0..3).find(|&v| free(v)).unwrap_or(0);
            placed.push((lane_ix, level, span));
            let (dy, vpos) = [(0.2, VPos::Bottom), (-0.2, VPos::Top), (0.36, VPos::Bottom)][level];
            let style = ("sans-serif", 12).into_text_style(&plot).pos(Pos::new(anchor, vpos));
            chart.draw_series(std::iter::once(Text::new(label, (at, lane + dy), style))).map_err(|e| e.to_string())?;
        }
        let entries: Vec<(&str, RGBColor, Mark)> =
            (0..3).filter(|&k| used[k]).map(|k| (KINDS[k], COLORS[k], Mark::Band(COLORS[k].to_rgba()))).collect();
        let notes =
            ["a bar: from invocation to completion;", "no single order of these operations", "explains every answer"];
        side_legend(&legend, &entries, &notes)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::consistency::OpReport;

    fn report(violation: Vec<OpReport>) -> ConsistencyReport {
        ConsistencyReport {
            verdict: if violation.is_empty() { "linearizable" } else { "violation" },
            detail: String::new(),
            ops: 3,
            open_ops: 1,
            lists: 2,
            stale_lists: 0,
            stale: None,
            promised: false,
            states_explored: 0,
            witness_during_faults: Some(false),
            violation,
        }
    }

    /// A lane per client in order of appearance, a bar per operation, an open one labelled.
    #[test]
    fn the_witness_is_drawn_lane_by_lane_and_only_when_there_is_one() {
        assert_eq!(witness_svg("t", &report(Vec::new())), Ok(None));
        let op = |client: &str, op: &str, invoke_s, complete_s| OpReport {
            client: client.into(),
            op: op.into(),
            invoke_s,
            complete_s,
        };
        let c = report(vec![
            op("instances[0]", "register instances[0]", 3.10, Some(3.15)),
            op("consumers[12]", "list: 40 instances, without instances[0]", 3.16, Some(3.18)),
            op("consumers[3]", "list: 41 instances, with instances[0]", 3.17, None),
        ]);
        let svg = witness_svg("t", &c).expect("draws").expect("a witness");
        for text in ["instances[0]", "consumers[12]", "consumers[3]", "register", "(never completed)"] {
            assert!(svg.contains(text), "{text}");
        }
        assert!(!svg.contains("deregister"), "no deregistration in the legend without one");
        let mut md = String::new();
        consistency_md(&mut md, &c, &["witness.svg".to_string()]);
        assert!(md.contains("![the witness operations as a space-time diagram](witness.svg)"), "{md}");
    }
}
