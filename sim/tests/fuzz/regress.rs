//! Regression inputs in `sim/tests/fuzz-regressions/`.
//!
//! A plain file (`*.toml`, `*.yml`, ...) is one case: written as itself into a fresh folder and
//! run with the command of its header. Header lines (anywhere before the first other line):
//!
//! ```text
//! # cmd: check {file} --set limits.max_events=200000    ({file} is the file's own name)
//! # expect: 2            (allowed exit codes, comma-separated; 2 means a located error; default 0,1,2,3)
//! # timeout: 20          (seconds; default 20 for check/rules, 60 otherwise)
//! # why: what went wrong
//! ```
//!
//! A `*.gen` file describes several files, or files too big to keep: the header as above, then
//! sections `=== PATH` whose lines are the file's text, in which `{{N*TEXT}}` expands to TEXT
//! N times (`{i}` in TEXT becomes the repetition's index) and `{{hex:ff fe}}` to raw bytes.
//! `{file}` in the command is then the first section's path.

use std::path::Path;
use std::time::Duration;

use crate::exec::{Case, Class, Surface};

pub struct Regression {
    pub name: String,
    pub case: Case,
    pub expect: Vec<Class>,
}

/// Expands `{{N*TEXT}}` and `{{hex:..}}`; any other `{{...}}` stays as it is.
pub fn expand(line: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("{{") {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let Some(j) = rest[i..].find("}}") else { break };
        let inner = &rest[i + 2..i + j];
        if let Some(hex) = inner.strip_prefix("hex:") {
            for h in hex.split_whitespace() {
                out.push(u8::from_str_radix(h, 16).expect("hex byte in a .gen file"));
            }
        } else if let Some((n, text)) =
            inner.split_once('*').and_then(|(n, t)| Some((n.trim().parse::<usize>().ok()?, t)))
        {
            for k in 0..n {
                out.extend_from_slice(text.replace("{i}", &k.to_string()).as_bytes());
            }
        } else {
            out.extend_from_slice(format!("{{{{{inner}}}}}").as_bytes());
        }
        rest = &rest[i + j + 2..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

pub fn load(path: &Path) -> Regression {
    let name = path.file_name().expect("file name").to_string_lossy().into_owned();
    let bytes = std::fs::read(path).expect("read a regression file");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (mut cmd, mut expect, mut timeout) = (None, None, None);
    for l in text.lines().take_while(|l| l.starts_with('#') || l.trim().is_empty()) {
        let l = l.trim_start_matches('#').trim();
        if let Some(c) = l.strip_prefix("cmd:") {
            cmd = Some(c.trim().to_string());
        } else if let Some(e) = l.strip_prefix("expect:") {
            expect = Some(e.trim().to_string());
        } else if let Some(t) = l.strip_prefix("timeout:") {
            timeout = Some(t.trim().parse::<u64>().expect("timeout in seconds"));
        }
    }
    let cmd = cmd.unwrap_or_else(|| panic!("{name}: no `# cmd:` header"));
    let files: Vec<(String, Vec<u8>)> = if name.ends_with(".gen") {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for l in text.lines() {
            if let Some(p) = l.strip_prefix("=== ") {
                files.push((p.trim().to_string(), Vec::new()));
            } else if let Some((_, body)) = files.last_mut() {
                body.extend(expand(l));
                body.push(b'\n');
            }
        }
        files
    } else {
        vec![(name.clone(), bytes)]
    };
    let main = files.first().map(|(n, _)| n.clone()).expect("a regression has a file");
    let args: Vec<String> = cmd.split_whitespace().map(|a| a.replace("{file}", &main)).collect();
    let quick = matches!(args.first().map(String::as_str), Some("check" | "rules"));
    let expect: Vec<Class> = expect
        .unwrap_or_else(|| "0,1,2,3".into())
        .split(',')
        .map(|c| match c.trim() {
            "0" => Class::Ok0,
            "1" => Class::Invariant1,
            "2" => Class::Located2,
            "3" => Class::Limit3,
            other => panic!("{name}: unknown expected exit {other:?}"),
        })
        .collect();
    let out = args.iter().position(|a| a == "--out").and_then(|k| args.get(k + 1)).cloned();
    let surface = match args.first().map(String::as_str) {
        Some("check") if args.iter().any(|a| a == "--set") => Surface::Set,
        Some("check") => Surface::Check,
        Some("run") => Surface::Run,
        Some("sweep") => Surface::Sweep,
        Some("swarm") => Surface::Swarm,
        Some("rules") if args.get(1).is_some_and(|a| a == "test") => Surface::RulesTest,
        Some("rules") => Surface::RulesCheck,
        _ => Surface::Cli,
    };
    let case = Case {
        surface,
        files,
        main: Some(0),
        args,
        timeout: Duration::from_secs(timeout.unwrap_or(if quick { 20 } else { 60 })),
        desc: format!("regression {name}"),
        out,
    };
    Regression { name, case, expect }
}
