//! The monitoring sections of `report.md` and of the stdout summary (`alerts`, `rules`).

use std::fmt::Write;

use super::model::Report;
use crate::metrics::Summary;

fn cells(m: &Summary) -> String {
    if m.count == 0 {
        return "0 | – | – | – | – | –".to_string();
    }
    format!("{} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3}", m.count, m.min_s, m.p50_s, m.p90_s, m.max_s, m.mean_s)
}

/// `## Alerts`.
pub fn markdown(s: &mut String, r: &Report) {
    if let Some(a) = &r.alerts {
        let _ = writeln!(s, "## Alerts (seconds from the crash)\n");
        let _ = writeln!(
            s,
            "{} instance crashes. Prometheus scrapes every {} s (timeout {} s), evaluates every {} s, refreshes \
             its targets from the registry every {} s ({}).\n",
            a.crashes,
            a.scrape_interval_s,
            a.scrape_timeout_s,
            a.evaluation_interval_s,
            a.refresh_interval_s,
            if a.healthy_only { "healthy instances only" } else { "every registered instance" }
        );
        rule_tables(s, &a.rules, a.crashes);
        if let Some(g) = &a.global {
            let _ = writeln!(
                s,
                "### Global server (federation)\n\nThe global Prometheus scrapes every regional server's `/federate` every \
                 {} s (timeout {} s) and evaluates every {} s; its windows add the federation scrape.\n",
                g.federation_interval_s, g.federation_timeout_s, g.evaluation_interval_s
            );
            rule_tables(s, &g.rules, a.crashes);
        }
    }
}

/// `## Rules`: every rule's health (at the end of the report: a reference table).
pub fn rules_markdown(s: &mut String, r: &Report) {
    if let Some(rules) = &r.rules {
        let _ = writeln!(
            s,
            "## Rules\n\n| prometheus | file | group | rule | kind | health | evaluations | errors | quarantined | fired | last error |\n\
             |---|---|---|---|---|---|---|---|---|---|---|"
        );
        for x in rules {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                x.prometheus,
                x.file,
                x.group,
                x.rule,
                x.kind,
                x.health,
                x.evaluations,
                x.errors,
                if x.quarantined { "yes" } else { "no" },
                x.times_fired,
                x.last_error.as_deref().unwrap_or("–").replace('|', "\\|")
            );
        }
        let _ = writeln!(s);
    }
}

/// The latency table and the never-fired lists of one server's alerting rules.
fn rule_tables(s: &mut String, rules: &[crate::metrics::alerts::AlertRuleReport], crashes: u64) {
    let a_crashes = crashes;
    let _ = writeln!(
        s,
        "| alert | for | stage | window | count | min | p50 | p90 | max | mean |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for x in rules {
        let mut rows =
            vec![("pending", x.window.pending_s, &x.alert_pending), ("firing", x.window.firing_s, &x.alert_firing)];
        if let (Some(n), Some(w)) = (&x.alert_notified, x.window.notified_s) {
            rows.push(("notified", w, n));
        }
        for (stage, w, m) in rows {
            let _ = writeln!(s, "| {} | {} s | {stage} | {w} s | {} |", x.alert, x.for_s, cells(m));
        }
    }
    let _ = writeln!(s);
    for x in rules {
        if !x.never_fired.is_empty() {
            let _ = writeln!(s, "**{}** never fired for {} of {} crashes:\n", x.alert, x.never_fired.len(), a_crashes);
            for n in &x.never_fired {
                let _ = writeln!(s, "- {} crashed at {:.1} s: {}", n.instance, n.crashed_at_s, n.reason);
            }
            let _ = writeln!(s);
        }
        if !x.never_notified.is_empty() {
            let _ =
                writeln!(s, "**{}** fired but was never notified for {} crashes:\n", x.alert, x.never_notified.len());
            for n in &x.never_notified {
                let _ = writeln!(s, "- {} crashed at {:.1} s: {}", n.instance, n.crashed_at_s, n.reason);
            }
            let _ = writeln!(s);
        }
    }
}

/// One line per alerting rule for the stdout summary.
pub fn summary(s: &mut String, r: &Report) {
    let Some(a) = &r.alerts else { return };
    let _ =
        writeln!(s, "alerts           {} crashes; firing latency from the crash (s), window in brackets", a.crashes);
    let global = a.global.iter().flat_map(|g| g.rules.iter().map(|x| (x, " (global)")));
    for (x, tier) in a.rules.iter().map(|x| (x, "")).chain(global) {
        let f = &x.alert_firing;
        let fired = if f.count == 0 {
            "never fired".to_string()
        } else {
            format!("fired {}: p50 {:.1}, max {:.1} [{}]", f.count, f.p50_s, f.max_s, x.window.firing_s)
        };
        let notified = match (&x.alert_notified, x.window.notified_s) {
            (Some(n), Some(w)) if n.count > 0 => format!("; notified {}: max {:.1} [{w}]", n.count, n.max_s),
            _ => String::new(),
        };
        let _ = writeln!(s, "  {:<18} for {:>5} s  {fired}{notified}", format!("{}{tier}", x.alert), x.for_s);
    }
    if let Some(rules) = &r.rules {
        let bad: Vec<&str> = rules.iter().filter(|x| x.health == "err").map(|x| x.rule.as_str()).collect();
        let _ = writeln!(
            s,
            "rules            {} rules, {} unhealthy{}",
            rules.len(),
            bad.len(),
            if bad.is_empty() { String::new() } else { format!(" ({})", bad.join(", ")) }
        );
    }
}
