//! Balancer-evaluation reports (`regsim lb`): the readable tables on stdout, `lb.json`,
//! `lb.md` and the SVG plots of [`super::lb_plot`]. Every output is a pure function of the
//! [`Evaluation`] (no paths, no clock), so the same config and seed give identical bytes.

use std::fmt::Write;

use super::lb_plot::{LoadLine, MovedLine, disruption_svg, sorted_load_svg};
use crate::balance::eval::{AlgoReport, EvalReport, Evaluation, LoadSummary};

/// Pretty JSON of the report, newline-terminated (`--json` and `lb.json`).
pub fn json(r: &EvalReport) -> Result<String, String> {
    serde_json::to_string_pretty(r).map(|s| s + "\n").map_err(|e| e.to_string())
}

fn headline(r: &EvalReport) -> String {
    let requests = if r.requests > 0 {
        format!("{} requests ({}, {} in flight, rtt {} ms)", r.requests, r.dist, r.window, r.rtt_s * 1e3)
    } else {
        "no requests".to_string()
    };
    format!("{} nodes, {} probe keys, {requests}, seed {}", r.nodes, r.keys, r.seed)
}

fn load_cells(l: &LoadSummary) -> [String; 4] {
    [
        format!("{:.3}", l.max_over_mean),
        format!("{:.4}", l.cv),
        format!("{:.3}", l.p99_over_mean),
        format!("{:.4}", l.gini),
    ]
}

/// Balance table rows: algorithm, key stats, request stats, peak in flight.
fn balance_rows(r: &EvalReport) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut head = vec!["algorithm", "keys max/mean", "keys cv", "keys p99/mean", "keys gini"];
    if r.requests > 0 {
        head.extend(["req max/mean", "req cv", "req p99/mean", "req gini", "in-flight max"]);
    }
    let rows = r
        .algorithms
        .iter()
        .map(|a| {
            let mut row = vec![a.algorithm.clone()];
            row.extend(load_cells(&a.keys));
            if let Some(q) = &a.requests {
                row.extend(load_cells(&q.load));
                row.push(format!("{} (mean {:.2})", q.in_flight_max, q.in_flight_mean));
            }
            row
        })
        .collect();
    (head, rows)
}

fn moved_cell(a: &AlgoReport, i: usize) -> String {
    if !a.keyed {
        return "– (ignores keys)".to_string();
    }
    a.churn.get(i).map_or(String::new(), |c| format!("{:.4} ({:.2}x)", c.moved_fraction, c.moved_over_ideal))
}

/// Disruption table rows: one column per step; the first row is the ideal.
fn disruption_rows(r: &EvalReport) -> (Vec<String>, Vec<Vec<String>>) {
    let first = r.algorithms.first().map(|a| a.churn.as_slice()).unwrap_or_default();
    let mut head = vec!["algorithm".to_string()];
    head.extend(first.iter().map(|c| format!("{} ({}->{})", c.step, c.nodes_before, c.nodes_after)));
    let mut ideal = vec!["ideal".to_string()];
    ideal.extend(first.iter().map(|c| format!("{:.4}", c.ideal_fraction)));
    let mut rows = vec![ideal];
    for a in &r.algorithms {
        let mut row = vec![a.algorithm.clone()];
        row.extend((0..first.len()).map(|i| moved_cell(a, i)));
        rows.push(row);
    }
    (head, rows)
}

/// Fixed-width text table: first column left-aligned, the others right-aligned.
fn text_table<S: AsRef<str>>(head: &[S], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.as_ref().chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut s = line(head.iter().map(AsRef::as_ref).collect());
    for row in rows {
        s += &line(row.iter().map(String::as_str).collect());
    }
    s
}

fn md_table<S: AsRef<str>>(head: &[S], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n", head.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" | "));
    s += &format!("|{}\n", "---|".repeat(head.len()));
    for row in rows {
        s += &format!("| {} |\n", row.join(" | "));
    }
    s
}

/// The readable stdout summary: a balance table and, with churn, a disruption table.
pub fn table(r: &EvalReport) -> String {
    let mut s = format!("regsim lb: {}\n\nbalance (load / mean over nodes)\n", headline(r));
    let (head, rows) = balance_rows(r);
    s += &text_table(&head, &rows);
    if !r.churn.is_empty() {
        s += "\ndisruption (moved probe keys / probe keys; x ideal)\n";
        let (head, rows) = disruption_rows(r);
        s += &text_table(&head, &rows);
    }
    s
}

/// `lb.md`: the same tables in Markdown, with the plots.
pub fn markdown(r: &EvalReport, plots: &[String]) -> String {
    let mut s = format!("# regsim lb\n\n{}; regsim {}.\n\n## Balance\n\n", headline(r), r.regsim_version);
    let _ = writeln!(
        s,
        "Keys: each probe key placed once on an idle balancer (keyspace share). Requests: closed loop \
         with {} requests in flight, each held for one rtt.\n",
        r.window
    );
    let (head, rows) = balance_rows(r);
    s += &md_table(&head, &rows);
    if !r.churn.is_empty() {
        s += "\n## Disruption\n\nMoved probe keys / probe keys per churn step (and as a multiple of the ideal).\n\n";
        let (head, rows) = disruption_rows(r);
        s += &md_table(&head, &rows);
    }
    s += "\n";
    for p in plots {
        let _ = writeln!(s, "![{p}]({p})\n");
    }
    s
}

/// The files of `regsim lb --out DIR`: `lb.json`, `lb.md` and the SVG plots.
pub fn render(e: &Evaluation) -> Result<Vec<(String, Vec<u8>)>, String> {
    let r = &e.report;
    let mut svgs = Vec::new();
    let keys: Vec<LoadLine<'_>> = e.loads.iter().map(|l| LoadLine { label: &l.algorithm, loads: &l.keys }).collect();
    svgs.push(("load-keys.svg", sorted_load_svg("probe keys per node, sorted", "keys / mean", &keys)?));
    if r.requests > 0 {
        let req: Vec<LoadLine<'_>> =
            e.loads.iter().map(|l| LoadLine { label: &l.algorithm, loads: &l.requests }).collect();
        let title = format!("requests per node, sorted ({})", r.dist);
        svgs.push(("load-requests.svg", sorted_load_svg(&title, "requests / mean", &req)?));
    }
    if !r.churn.is_empty() {
        let first = r.algorithms.first().map(|a| a.churn.as_slice()).unwrap_or_default();
        let ideal: Vec<f64> = first.iter().map(|c| c.ideal_fraction).collect();
        let moved: Vec<Vec<f64>> =
            r.algorithms.iter().map(|a| a.churn.iter().map(|c| c.moved_fraction).collect()).collect();
        // Balancers that ignore the key have no placement to disrupt: left out of the plot.
        let lines: Vec<MovedLine<'_>> = r
            .algorithms
            .iter()
            .zip(&moved)
            .filter(|(a, _)| a.keyed)
            .map(|(a, m)| MovedLine { label: &a.algorithm, moved: m })
            .collect();
        let title = format!("disruption under churn, {} nodes", r.nodes);
        svgs.push(("disruption.svg", disruption_svg(&title, &r.churn, &ideal, &lines)?));
    }
    let plots: Vec<String> = svgs.iter().map(|(n, _)| n.to_string()).collect();
    let mut files =
        vec![("lb.json".to_string(), json(r)?.into_bytes()), ("lb.md".to_string(), markdown(r, &plots).into_bytes())];
    files.extend(svgs.into_iter().map(|(n, s)| (n.to_string(), s.into_bytes())));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::{EvalConfig, evaluate, parse_churn, parse_spec};

    #[test]
    fn tables_name_every_algorithm_and_step() {
        let cfg = EvalConfig {
            nodes: 12,
            keys: 5000,
            requests: 3000,
            dist: "uniform:k=100".parse().expect("valid"),
            window: None,
            churn: parse_churn("remove:1,add:2").expect("valid"),
            seed: 3,
            algos: parse_spec("ring,modn,p2c").expect("valid"),
        };
        let e = evaluate(&cfg).expect("valid");
        let t = table(&e.report);
        for needle in
            ["ring:k=160:hash=xxh64", "modn:hash=xxh64", "p2c", "remove:1 (12->11)", "add:2 (11->13)", "ideal"]
        {
            assert!(t.contains(needle), "{needle} missing in\n{t}");
        }
        let files = render(&e).expect("renders");
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["lb.json", "lb.md", "load-keys.svg", "load-requests.svg", "disruption.svg"]);
        let md = String::from_utf8(files[1].1.clone()).expect("utf-8");
        assert!(md.contains("| ideal | 0.0833 | 0.1538 |") && md.contains("![disruption.svg](disruption.svg)"), "{md}");
        assert_eq!(render(&e), render(&evaluate(&cfg).expect("valid")));
    }
}
