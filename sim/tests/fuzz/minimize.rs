//! Delta debugging of a failing case: over the lines of its main file, then over bytes when the
//! file is small (for argument-vector cases: over the arguments), keeping the failure signature.

use std::time::{Duration, Instant};

use crate::exec::{Case, Outcome, run_case};
use crate::regress::expand;

/// Budget of one minimization (wall clock), `FUZZ_MIN_SECS` (default 30).
fn budget() -> Duration {
    Duration::from_secs(std::env::var("FUZZ_MIN_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30))
}

/// Classic ddmin over the units of `items`: removes chunks while `fails` holds.
fn ddmin<T: Clone>(mut items: Vec<T>, deadline: Instant, fails: &mut dyn FnMut(&[T]) -> bool) -> Vec<T> {
    let mut n = 2usize;
    while items.len() >= 2 && Instant::now() < deadline {
        let chunk = items.len().div_ceil(n);
        let mut reduced = false;
        let mut start = 0;
        while start < items.len() && Instant::now() < deadline {
            let end = (start + chunk).min(items.len());
            let candidate: Vec<T> = items[..start].iter().chain(&items[end..]).cloned().collect();
            if fails(&candidate) {
                items = candidate;
                reduced = true;
                n = (n - 1).max(2);
                break;
            }
            start = end;
        }
        if !reduced {
            if n >= items.len() {
                break;
            }
            n = (n * 2).min(items.len());
        }
    }
    items
}

/// Collapses a run of 8 or more copies of a short token (1 to 8 characters) into `{{N*TOKEN}}`.
pub fn compress(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    'outer: while i < c.len() {
        for len in 1..=8usize {
            if i + len > c.len() {
                break;
            }
            let tok = &c[i..i + len];
            let mut n = 1;
            while i + (n + 1) * len <= c.len() && &c[i + n * len..i + (n + 1) * len] == tok {
                n += 1;
            }
            if n >= 8 && !tok.contains(&'\n') {
                out.push_str(&format!("{{{{{n}*{}}}}}", tok.iter().collect::<String>()));
                i += n * len;
                continue 'outer;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// The counts of the `{{N*TOKEN}}` runs of a compressed text, ascending.
fn run_counts(short: &str) -> Vec<usize> {
    let mut v: Vec<usize> =
        short.split("{{").skip(1).filter_map(|p| p.split_once('*').and_then(|(n, _)| n.parse().ok())).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Shrinks `case` while it fails with the same signature; returns the case and its outcome.
pub fn minimize(case: &Case, first: &Outcome) -> (Case, Outcome, usize) {
    let sig = first.signature();
    let deadline = Instant::now() + budget();
    let mut best = case.clone();
    let mut best_out = first.clone();
    let mut tries = 0usize;
    let mut check = |c: &Case, best_out: &mut Outcome| -> bool {
        tries += 1;
        let o = run_case(c);
        if o.signature() == sig {
            *best_out = o;
            true
        } else {
            false
        }
    };
    if let Some(m) = case.main {
        let text = best.files[m].1.clone();
        let lines: Vec<Vec<u8>> = text.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        let lines = ddmin(lines, deadline, &mut |ls: &[Vec<u8>]| {
            let mut c = best.clone();
            c.files[m].1 = ls.concat();
            check(&c, &mut best_out)
        });
        best.files[m].1 = lines.concat();
        // Halve repetitions (every run of the largest count at once, so nesting stays balanced).
        loop {
            let short = compress(&String::from_utf8_lossy(&best.files[m].1));
            let Some(&n) = run_counts(&short).last() else { break };
            if n < 16 || Instant::now() >= deadline {
                break;
            }
            let halved = short.replace(&format!("{{{{{n}*"), &format!("{{{{{}*", n / 2));
            let mut c = best.clone();
            c.files[m].1 = expand(&halved);
            if check(&c, &mut best_out) {
                best = c;
            } else {
                break;
            }
        }
        if best.files[m].1.len() <= 4096 {
            let bytes = best.files[m].1.clone();
            let bytes = ddmin(bytes, deadline, &mut |bs: &[u8]| {
                let mut c = best.clone();
                c.files[m].1 = bs.to_vec();
                check(&c, &mut best_out)
            });
            best.files[m].1 = bytes;
        }
    } else {
        // Keep the subcommand words (first two), shrink the rest.
        let keep = best.args.iter().take_while(|a| !a.starts_with('-') && !a.contains('.')).count().min(2);
        let head = best.args[..keep].to_vec();
        let tail = best.args[keep..].to_vec();
        let tail = ddmin(tail, deadline, &mut |t: &[String]| {
            let mut c = best.clone();
            c.args = head.iter().chain(t).cloned().collect();
            check(&c, &mut best_out)
        });
        best.args = head.into_iter().chain(tail).collect();
    }
    (best, best_out, tries)
}
