//! Running one case: a fresh temp dir, the files written into it, `regsim` under `prlimit` and a
//! wall-clock bound, and the outcome classified.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Address-space bound of every `regsim` process (`prlimit --as`).
pub const MEMORY_BOUND: u64 = 2 << 30;

/// The input surfaces; the table of counts is per surface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Surface {
    Check,
    Set,
    Run,
    Sweep,
    Swarm,
    RulesCheck,
    RulesTest,
    Cli,
}

impl Surface {
    pub const ALL: [Surface; 8] = [
        Surface::Check,
        Surface::Set,
        Surface::Run,
        Surface::Sweep,
        Surface::Swarm,
        Surface::RulesCheck,
        Surface::RulesTest,
        Surface::Cli,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Surface::Check => "check",
            Surface::Set => "set",
            Surface::Run => "run",
            Surface::Sweep => "sweep",
            Surface::Swarm => "swarm",
            Surface::RulesCheck => "rules-check",
            Surface::RulesTest => "rules-test",
            Surface::Cli => "cli",
        }
    }
}

/// Outcome classes: the first four are allowed, the rest are failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Located2,
    Ok0,
    Invariant1,
    Limit3,
    Panic,
    Signal,
    Timeout,
    Memory,
    Unlocated2,
    OtherExit,
    LeftReport,
}

impl Class {
    pub const ALL: [Class; 11] = [
        Class::Located2,
        Class::Ok0,
        Class::Invariant1,
        Class::Limit3,
        Class::Panic,
        Class::Signal,
        Class::Timeout,
        Class::Memory,
        Class::Unlocated2,
        Class::OtherExit,
        Class::LeftReport,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Located2 => "located-2",
            Class::Ok0 => "ok-0",
            Class::Invariant1 => "invariant-1",
            Class::Limit3 => "limit-3",
            Class::Panic => "PANIC",
            Class::Signal => "SIGNAL",
            Class::Timeout => "TIMEOUT",
            Class::Memory => "MEMORY",
            Class::Unlocated2 => "UNLOCATED-2",
            Class::OtherExit => "OTHER-EXIT",
            Class::LeftReport => "LEFT-REPORT",
        }
    }

    pub fn is_failure(self) -> bool {
        !matches!(self, Class::Located2 | Class::Ok0 | Class::Invariant1 | Class::Limit3)
    }
}

/// One process invocation: files written into a fresh directory (the working directory of the
/// process), then `regsim args...`. `main` names the file the minimizer shrinks.
#[derive(Clone, Debug)]
pub struct Case {
    pub surface: Surface,
    pub files: Vec<(String, Vec<u8>)>,
    pub main: Option<usize>,
    pub args: Vec<String>,
    pub timeout: Duration,
    /// What the generator did (printed with a failure).
    pub desc: String,
    /// The folder `--out` names (relative), checked after an exit 2.
    pub out: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub class: Class,
    pub code: Option<i32>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    /// Dedupe key of a failure: the class and the first line of stderr that says something
    /// (the panic line for panics, with the thread name dropped).
    pub fn signature(&self) -> String {
        let line = if self.class == Class::Panic {
            self.stderr.lines().find(|l| l.contains("panicked")).unwrap_or("")
        } else {
            self.stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
        };
        let line = match line.find("panicked at ") {
            Some(i) => &line[i..],
            None => line,
        };
        let line: String = if self.class == Class::Panic {
            line.to_string()
        } else {
            // Paths and numbers vary with the input, not with the bug.
            line.split(' ')
                .map(|w| {
                    if w.contains('/') || [".toml", ".yml", ".yaml"].iter().any(|e| w.contains(e)) {
                        "FILE".to_string()
                    } else {
                        w.chars().map(|c| if c.is_ascii_digit() { 'N' } else { c }).collect()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let line: String = line.chars().take(160).collect();
        format!("{} | {}", self.class.name(), line)
    }
}

pub fn regsim_bin() -> PathBuf {
    std::env::var_os("REGSIM_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_regsim")))
}

/// Writes the case's files into a fresh temp dir and runs it.
pub fn run_case(case: &Case) -> Outcome {
    let dir = tempfile::Builder::new().prefix("regsim-fuzz-").tempdir().expect("create a temp dir");
    for (name, bytes) in &case.files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create the case's subfolder");
        }
        std::fs::write(&p, bytes).expect("write a case file");
    }
    run_in(case, dir.path())
}

fn run_in(case: &Case, dir: &Path) -> Outcome {
    let mut cmd = Command::new("/usr/bin/prlimit");
    cmd.arg(format!("--as={MEMORY_BOUND}")).arg("--").arg(regsim_bin());
    cmd.args(&case.args).current_dir(dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn prlimit regsim");
    // Drain stderr on a thread so a chatty child never blocks on a full pipe.
    let mut pipe = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.by_ref().take(1 << 20).read_to_end(&mut buf);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        buf
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("wait for regsim") {
            Some(s) => break s,
            None if start.elapsed() > case.timeout => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("reap the killed regsim");
            }
            None => std::thread::sleep(Duration::from_millis(if start.elapsed() < Duration::from_millis(50) {
                2
            } else {
                20
            })),
        }
    };
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&reader.join().expect("stderr reader")).into_owned();
    let code = status.code();
    let class = if timed_out {
        Class::Timeout
    } else if stderr.contains("memory allocation of") || stderr.contains("out of memory") {
        Class::Memory
    } else if stderr.contains("panicked") {
        Class::Panic
    } else if status.signal().is_some() {
        Class::Signal
    } else {
        match code {
            Some(0) => Class::Ok0,
            Some(1) => Class::Invariant1,
            Some(3) => Class::Limit3,
            Some(2) => {
                if case.out.as_ref().is_some_and(|o| dir.join(o).exists()) || dir.join("reports").exists() {
                    Class::LeftReport
                } else if located(&stderr, case, dir) {
                    Class::Located2
                } else {
                    Class::Unlocated2
                }
            }
            _ => Class::OtherExit,
        }
    };
    Outcome { class, code, stderr, elapsed }
}

/// Does an exit-2 message say where the fault is? `file:line:column`; a `--set` argument; a
/// command-line flag or argument (clap's messages, a path that is not a readable file); or the
/// file and a key path.
pub fn located(stderr: &str, case: &Case, dir: &Path) -> bool {
    let text = stderr.trim();
    if text.is_empty() {
        return false;
    }
    // A value or type error (serde's wording) must say which key, position or not: the README
    // promises "file:line:column, the key path and what was expected".
    const DATA: &[&str] =
        &["invalid type:", "invalid value:", "value was too large", "invalid length", "unknown variant"];
    if DATA.iter().any(|d| text.contains(d)) && !has_key_path(text) {
        return false;
    }
    // A fault of the file as a whole (its size) is located by naming the file.
    if text.contains(" bytes; the limit is ") || text.contains(" bytes, the limit for such files") {
        return true;
    }
    if has_line_col(text) || text.contains("--set") || text.contains("--variant") {
        return true;
    }
    // clap: "error: unexpected argument '--x' found", "invalid value 'v' for '--runs <N>'",
    // "the following required arguments were not provided: <FILE>".
    if text.contains("Usage:") || text.contains("'--") || (text.contains('<') && text.contains('>')) {
        return true;
    }
    const WORDS: &[&str] = &["run", "check", "compare", "lb", "route", "sweep", "merge", "swarm", "rules", "test"];
    for a in &case.args {
        if !a.is_empty() && text.contains(&format!("error: {a}: ")) && !dir.join(a).is_file() {
            return true;
        }
        if a.len() < 2 || WORDS.contains(&a.as_str()) || !mentions(text, a) {
            continue;
        }
        let p = dir.join(a);
        // Naming a readable file with content is not enough (the fault is inside it); a flag,
        // a value, or a path that does not exist / is a directory / is empty is.
        if !(p.is_file() && std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false)) {
            return true;
        }
    }
    has_key_path(text)
}

/// `needle` occurs in `text` not inside a longer word.
fn mentions(text: &str, needle: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(needle)
        .any(|(i, _)| !word(text[..i].chars().next_back()) && !word(text[i + needle.len()..].chars().next()))
}

fn has_line_col(text: &str) -> bool {
    // `name:12:5` anywhere, or "line 12 column 5".
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b':' {
            let j = digits(b, i + 1);
            if j > i + 1 && j < b.len() && b[j] == b':' && digits(b, j + 1) > j + 1 {
                return true;
            }
        }
        i += 1;
    }
    text.contains(" line ") && text.contains(" column ")
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// A token like `registry.health.unhealthy_after:`, `faults[0].target:`, `seed:` or
/// `params[0].values[3]` that is not a file name.
fn has_key_path(text: &str) -> bool {
    const TOP: &[&str] = &[
        "name",
        "seed",
        "seeds",
        "duration",
        "limits",
        "network",
        "registry",
        "instances",
        "consumers",
        "metrics",
        "faults",
        "bugs",
        "monitoring",
        "gateway",
        "regions",
        "params",
        "plots",
        "groups",
        "rule_files",
        "evaluation_interval",
        "group_eval_order",
    ];
    // "error: FILE[:LINE:COL]: KEY.PATH: what": a segment between ": " separators, after the
    // first, that is one word of key characters (and not the last segment).
    let is_key = |seg: &str| {
        !seg.is_empty()
            && seg.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && seg.chars().all(|c| c.is_ascii_alphanumeric() || "_-.[]\"*".contains(c))
            && ![".toml", ".yml", ".yaml", ".json"].iter().any(|e| seg.ends_with(e))
    };
    for line in text.lines() {
        let line = line.trim().strip_prefix("error: ").unwrap_or(line.trim());
        let segs: Vec<&str> = line.split(": ").collect();
        if segs.len() >= 3 && segs[1..segs.len() - 1].iter().any(|s| is_key(s)) {
            return true;
        }
    }
    for raw in text.split(|c: char| c.is_whitespace() || c == '`' || c == '"' || c == '\'' || c == '(' || c == ',') {
        let colon = raw.ends_with(':');
        let t = raw.trim_end_matches([':', '.', ';']);
        if t.is_empty()
            || t.contains('/')
            || t.contains(':')
            || [".toml", ".yml", ".yaml", ".json"].iter().any(|e| t.ends_with(e))
        {
            continue;
        }
        let first: &str = t.split(['.', '[']).next().unwrap_or("");
        if !first.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') || first.is_empty() {
            continue;
        }
        let structured = t.contains('.') || (t.contains('[') && t.ends_with(']'));
        if structured && (TOP.contains(&first) || colon) {
            return true;
        }
        if colon && TOP.contains(&t) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_and_positions() {
        assert!(has_line_col("s.toml:3:4: key with no value"));
        assert!(!has_line_col("s.toml: stream did not contain valid UTF-8"));
        assert!(has_key_path("error: s.toml: faults[0].target: index 9 is out of range"));
        assert!(has_key_path("error: sweep.toml: seed: expected a u64"));
        assert!(!has_key_path("error: sweep.toml: invalid number"));
        assert!(!has_key_path("error: w.toml:2:8: u64 value was too large"));
        assert!(!has_key_path("error: s.toml: cannot read the scenario: stream did not contain valid UTF-8"));
        assert!(has_key_path("error: sweeps/w.toml:1:5: set: invalid type: map, expected a sequence"));
        assert!(has_key_path("error: w.toml:1:10: scenario: invalid type: integer `1`, expected a string"));
        assert!(!has_key_path(
            "error: s.toml:1:3: invalid type: integer `18446744073709551616` as i128, expected any valid TOML value"
        ));
    }
}
