//! Case generation: structure-aware (TOML tables of the shipped scenarios, PromQL and rule YAML
//! from a small grammar, argument vectors from the subcommands' flags) and mutation of the
//! shipped files (bytes, lines, values, nesting, repetition, truncation). Deterministic: case
//! `i` of seed `s` is a pure function of `(s, i)`.

use std::path::Path;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::exec::{Case, Surface};

pub type Rng = ChaCha8Rng;

/// The shipped inputs, read once.
pub struct Corpus {
    /// scenarios/*.toml, scenarios/swarm/*.toml, sim/tests/swarm-regressions/*.toml.
    pub scenarios: Vec<(String, String)>,
    /// scenarios/*.toml only (what sweeps name, relative to `sweeps/`).
    pub top: Vec<(String, String)>,
    pub swarm: Vec<(String, String)>,
    pub sweeps: Vec<(String, String)>,
    /// scenarios/rules/*.yml
    pub rules: Vec<(String, String)>,
    /// scenarios/rules/tests/*.yml
    pub rule_tests: Vec<(String, String)>,
    /// Every leaf key path of every shipped scenario with its value.
    pub paths: Vec<(Vec<Seg>, toml::Value)>,
}

fn read_dir(dir: &Path, ext: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("read a corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| {
            let name = p.file_name().expect("file name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read a corpus file"))
        })
        .collect();
    v.sort();
    v
}

impl Corpus {
    pub fn load() -> Corpus {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let top = read_dir(&root.join("scenarios"), "toml");
        let swarm = read_dir(&root.join("scenarios/swarm"), "toml");
        let regress = read_dir(&root.join("sim/tests/swarm-regressions"), "toml");
        let scenarios: Vec<_> = top.iter().chain(&swarm).chain(&regress).cloned().collect();
        let mut paths = Vec::new();
        for (_, text) in &scenarios {
            if let Ok(t) = text.parse::<toml::Table>() {
                leaves(&toml::Value::Table(t), &mut Vec::new(), &mut paths);
            }
        }
        Corpus {
            scenarios,
            top,
            swarm,
            sweeps: read_dir(&root.join("scenarios/sweeps"), "toml"),
            rules: read_dir(&root.join("scenarios/rules"), "yml"),
            rule_tests: read_dir(&root.join("scenarios/rules/tests"), "yml"),
            paths,
        }
    }

    /// The rule files a monitoring scenario or a rule test names, under `rules/`.
    fn rule_files(&self) -> Vec<(String, Vec<u8>)> {
        self.rules.iter().map(|(n, t)| (format!("rules/{n}"), t.clone().into_bytes())).collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    Key(String),
    Idx(usize),
}

pub fn render_path(p: &[Seg]) -> String {
    let mut s = String::new();
    for seg in p {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Idx(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn leaves(v: &toml::Value, at: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                at.push(Seg::Key(k.clone()));
                leaves(x, at, out);
                at.pop();
            }
        }
        toml::Value::Array(a) if a.iter().all(|x| x.is_table()) && !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                at.push(Seg::Idx(i));
                leaves(x, at, out);
                at.pop();
            }
        }
        _ => out.push((at.clone(), v.clone())),
    }
}

/// Interesting TOML literals (some are not valid TOML: those exercise the parser's errors).
pub const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "4000000000",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "5e-324",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "1.5",
    "-0.0",
    "true",
    "false",
    "\"\"",
    "\"nan\"",
    "\"NaN\"",
    "\"0s\"",
    "\"1us\"",
    "\"1ns\"",
    "\"1ms\"",
    "\"720h\"",
    "\"99999999h\"",
    "\"-5s\"",
    "\"1m30s\"",
    "\"5\"",
    "\"s\"",
    "\"1e400s\"",
    "\"18446744073709551616ns\"",
    "[]",
    "{}",
    "[[]]",
    "[{}]",
    "[\"\"]",
    "\"ap\"",
    "\"cp\"",
    "\"instances[random 50%]\"",
    "\"instances[random 0%]\"",
    "\"instances[random 101%]\"",
    "\"consumers[random 1%]\"",
    "\"consumers[random 50%]\"",
    "\"servers[random 50%]\"",
    "\"leader\"",
    "\"follower[random]\"",
    "\"servers[99]\"",
    "\"servers[0..0]\"",
    "\"instances[5..2]\"",
    "\"instances[0..18446744073709551615]\"",
    "\"rest\"",
    "[\"servers[0]\", \"leader\"]",
    "\"ring:k=4000000000\"",
    "[\"ring:k=4000000000\"]",
    "[\"ring:k=0\"]",
    "[\"maglev:m=4294967311\"]",
    "[\"maglev:m=4\"]",
    "[\"bounded:c=0:k=1\"]",
    "[\"p2c-ewma:tau=0s:rtt0=0s\"]",
    "[\"nonsense\"]",
    "\"zipf:s=0:k=0\"",
    "\"zipf:s=1.1:k=100000000000\"",
    "\"uniform:k=0\"",
    "{ dist = \"constant\", value = \"0s\" }",
    "{ dist = \"uniform\", min = \"10s\", max = \"1s\" }",
    "{ dist = \"normal\", mean = \"1s\", stddev = \"-1s\" }",
    "{ dist = \"lognormal\", median = \"5ms\", sigma = 1e308 }",
    "{ dist = \"exponential\", min = \"0s\", mean = \"0s\" }",
    "{ dist = \"constant\", value = \"1ms\", tail = { fraction = 1.0, scale = \"720h\", alpha = 0.0001 } }",
    "[{ from = \"instances\", to = \"nobody\", loss = 2.0 }]",
];

/// Fault actions, shapes and targets for generated `[[faults]]`.
const ACTIONS: &[&str] = &["crash", "restart", "pause", "resume", "partition", "heal", "skew", "explode", "", "crash "];
const TARGETS: &[&str] = &[
    "servers",
    "servers[0]",
    "servers[1]",
    "servers[99]",
    "instances",
    "instances[0..100]",
    "instances[random 1%]",
    "instances[random 50%]",
    "instances[random 100%]",
    "instances[random 5]",
    "instances[random 0]",
    "consumers",
    "consumers[random 1%]",
    "consumers[random 50%]",
    "consumers[0]",
    "leader",
    "follower[random]",
    "follower",
    "rest",
    "",
    "servers[",
    "instances[random -1%]",
];
const SHAPES: &[&str] = &["isolate", "halves", "majorities-ring", "bridge", "groups", "ring"];
const DURS: &[&str] = &["0s", "1ns", "1us", "1ms", "75ms", "1s", "5s", "60s", "600s", "720h", "99999999h", "-1s", ""];

fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn parse_value(lit: &str) -> Option<toml::Value> {
    format!("v = {lit}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v"))
}

fn value_text(v: &toml::Value) -> String {
    let mut t = toml::Table::new();
    t.insert("v".into(), v.clone());
    let s = toml::to_string(&t).unwrap_or_default();
    s.trim().strip_prefix("v = ").unwrap_or(s.trim()).to_string()
}

fn get_mut<'a>(root: &'a mut toml::Value, path: &[Seg], create: bool) -> Option<&'a mut toml::Value> {
    let mut cur = root;
    for seg in path {
        cur = match seg {
            Seg::Key(k) => {
                let t = cur.as_table_mut()?;
                if create && !t.contains_key(k) {
                    t.insert(k.clone(), toml::Value::Table(toml::Table::new()));
                }
                t.get_mut(k)?
            }
            Seg::Idx(i) => cur.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(cur)
}

fn set_path(root: &mut toml::Value, path: &[Seg], v: toml::Value) -> bool {
    let Some((last, parent)) = path.split_last() else { return false };
    let Some(p) = get_mut(root, parent, true) else { return false };
    match (last, p) {
        (Seg::Key(k), toml::Value::Table(t)) => {
            t.insert(k.clone(), v);
            true
        }
        (Seg::Idx(i), toml::Value::Array(a)) if *i < a.len() => {
            a[*i] = v;
            true
        }
        _ => false,
    }
}

fn remove_path(root: &mut toml::Value, path: &[Seg]) {
    let Some((last, parent)) = path.split_last() else { return };
    if let Some(p) = get_mut(root, parent, false) {
        match (last, p) {
            (Seg::Key(k), toml::Value::Table(t)) => {
                t.remove(k);
            }
            (Seg::Idx(i), toml::Value::Array(a)) if *i < a.len() => {
                a.remove(*i);
            }
            _ => {}
        }
    }
}

fn random_fault(rng: &mut Rng) -> String {
    let mut f = format!(
        "{{ at = \"{}\", action = \"{}\", target = \"{}\"",
        pick(rng, DURS),
        pick(rng, ACTIONS),
        pick(rng, TARGETS)
    );
    if rng.random_bool(0.5) {
        f.push_str(&format!(", duration = \"{}\"", pick(rng, DURS)));
    }
    if rng.random_bool(0.2) {
        f.push_str(&format!(", every = \"{}\"", pick(rng, DURS)));
    }
    if rng.random_bool(0.3) {
        f.push_str(&format!(", shape = \"{}\"", pick(rng, SHAPES)));
    }
    if rng.random_bool(0.1) {
        f.push_str(", offset = \"-2s\", drift_ppm = 1e308");
    }
    f.push_str(" }");
    f
}

/// A random `--set` override: a known key path (sometimes a made-up or malformed one) with an
/// interesting value (or the value of another scenario).
pub fn random_override(rng: &mut Rng, corpus: &Corpus) -> String {
    let r = rng.random_range(0..20);
    if r == 0 {
        return pick(rng, &["", "=", "no-equals", "a..b=1", "faults[=1", "faults[99].at=1s", ".=1", "x=1"]).to_string();
    }
    if r == 1 {
        return format!("faults=[{}]", random_fault(rng));
    }
    if r == 2 {
        return format!("faults[0].target={}", pick(rng, TARGETS));
    }
    let (path, v) = pick(rng, &corpus.paths);
    let key = render_path(path);
    let val = if rng.random_bool(0.2) { value_text(v) } else { pick(rng, VALUES).to_string() };
    // Unquoted strings are taken as strings (`15s`), so drop quotes sometimes.
    let val = if rng.random_bool(0.3) { val.trim_matches('"').to_string() } else { val };
    format!("{key}={val}")
}

/// Structure-aware edits of a scenario table; falls back to the text when the base does not parse.
pub fn structured_scenario(rng: &mut Rng, corpus: &Corpus, base: &str, desc: &mut Vec<String>) -> String {
    let Ok(t) = base.parse::<toml::Table>() else { return base.to_string() };
    let mut root = toml::Value::Table(t);
    let mut own = Vec::new();
    leaves(&root, &mut Vec::new(), &mut own);
    let mut raw_appends = Vec::new();
    for _ in 0..rng.random_range(1..=4) {
        match rng.random_range(0..10) {
            0..=3 if !own.is_empty() => {
                let (p, _) = pick(rng, &own).clone();
                let lit = *pick(rng, VALUES);
                desc.push(format!("set {}={lit}", render_path(&p)));
                if let Some(v) = parse_value(lit) {
                    set_path(&mut root, &p, v);
                } else if let [Seg::Key(k)] = p.as_slice() {
                    remove_path(&mut root, &p);
                    raw_appends.push((None, format!("{k} = {lit}")));
                } else if let (Some((Seg::Key(k), parent)), true) =
                    (p.split_last(), p.iter().all(|s| matches!(s, Seg::Key(_))))
                {
                    remove_path(&mut root, &p);
                    raw_appends.push((Some(render_path(parent)), format!("{k} = {lit}")));
                }
            }
            4 | 5 => {
                let (p, v) = pick(rng, &corpus.paths).clone();
                let v = if rng.random_bool(0.5) {
                    parse_value({
                        let lit: &str = VALUES[rng.random_range(0..VALUES.len())];
                        lit
                    })
                    .unwrap_or(v)
                } else {
                    v
                };
                desc.push(format!("add {}={}", render_path(&p), value_text(&v)));
                set_path(&mut root, &p, v);
            }
            6 if !own.is_empty() => {
                let (mut p, _) = pick(rng, &own).clone();
                if rng.random_bool(0.3) && p.len() > 1 {
                    p.pop();
                }
                desc.push(format!("remove {}", render_path(&p)));
                remove_path(&mut root, &p);
            }
            7 | 8 => {
                let n = if rng.random_bool(0.1) { rng.random_range(50..2000) } else { rng.random_range(1..4) };
                let f = random_fault(rng);
                desc.push(format!("add {n} x fault {f}"));
                if let Some(fv) = parse_value(&f) {
                    let t = root.as_table_mut().expect("a scenario is a table");
                    let faults = t.entry("faults").or_insert_with(|| toml::Value::Array(Vec::new()));
                    if let Some(a) = faults.as_array_mut() {
                        for _ in 0..n {
                            a.push(fv.clone());
                        }
                    }
                }
            }
            _ => {
                let table = *pick(
                    rng,
                    &[
                        "limits",
                        "network",
                        "registry",
                        "instances",
                        "consumers",
                        "metrics",
                        "faults",
                        "bugs",
                        "monitoring",
                    ],
                );
                let lit = *pick(rng, &["{}", "[]", "1", "\"x\"", "[{}]"]);
                desc.push(format!("replace {table} with {lit}"));
                if let Some(v) = parse_value(lit) {
                    set_path(&mut root, &[Seg::Key(table.into())], v);
                }
            }
        }
    }
    let mut text = toml::to_string(&root).unwrap_or_else(|_| base.to_string());
    for (table, line) in raw_appends {
        // Values toml cannot represent (u64 overflow, bad literals) go in as text.
        match table {
            None => text = format!("{line}\n{text}"),
            Some(t) => text.push_str(&format!("\n[{t}]\n{line}\n")),
        }
    }
    text
}

/// PromQL from a small grammar: the supported subset plus a few things outside it.
pub fn promql(rng: &mut Rng, depth: u32) -> String {
    let atom = |rng: &mut Rng| -> String {
        match rng.random_range(0..10) {
            0 => "up".into(),
            1 => "up{job=\"api\"}".into(),
            2 => pick(rng, &["1", "0", "-1", "1e308", "NaN", "Inf", "0x10", "18446744073709551616"]).to_string(),
            3 => "time()".into(),
            4 => format!("rate(up[{}])", pick(rng, &["5m", "0s", "1ms", "99999999h", "1y"])),
            5 => "up offset 5m".into(),
            6 => "vector(1)".into(),
            7 => format!("{}(up[5m])", pick(rng, &["avg_over_time", "count_over_time", "absent_over_time", "delta"])),
            8 => pick(
                rng,
                &["topk(3, up)", "up @ 100", "rate(up[5m:1m])", "histogram_quantile(0.9, up)", "up{", "sum(", ")"],
            )
            .to_string(),
            _ => "absent(nope{a=~\"x.*\"})".into(),
        }
    };
    if depth == 0 || rng.random_bool(0.3) {
        return atom(rng);
    }
    match rng.random_range(0..6) {
        0 => format!("({})", promql(rng, depth - 1)),
        1 => format!(
            "{} {} {}",
            promql(rng, depth - 1),
            pick(rng, &["+", "-", "*", "/", "%", "^", "atan2", "==", "> bool", "and", "or", "unless", "!="]),
            promql(rng, depth - 1)
        ),
        2 => format!(
            "{} {} ({}) ({})",
            pick(rng, &["sum", "avg", "max", "min", "count", "group"]),
            pick(rng, &["by", "without"]),
            pick(rng, &["job", "", "instance, job"]),
            promql(rng, depth - 1)
        ),
        3 => format!("-{}", promql(rng, depth - 1)),
        4 => format!("{} / on(job) {}", promql(rng, depth - 1), promql(rng, depth - 1)),
        _ => format!("scalar({})", promql(rng, depth - 1)),
    }
}

/// Deeply nested or long PromQL (the sizes where recursion and quadratic parsers show).
pub fn deep_promql(rng: &mut Rng) -> String {
    let n = *pick(rng, &[100usize, 1000, 5000, 30000]);
    match rng.random_range(0..4) {
        0 => format!("{}up{}", "(".repeat(n), ")".repeat(n)),
        1 => format!("up{}", " + up".repeat(n.min(10000))),
        2 => format!("{}up{}", "sum(".repeat(n.min(20000)), ")".repeat(n.min(20000))),
        _ => format!("{}up", "-".repeat(n)),
    }
}

/// A rule file from the grammar.
pub fn rule_file(rng: &mut Rng) -> String {
    let mut s = String::from("groups:\n");
    for g in 0..rng.random_range(0..3) {
        s.push_str(&format!("  - name: g{g}\n"));
        if rng.random_bool(0.5) {
            s.push_str(&format!("    interval: {}\n", pick(rng, DURS)));
        }
        if rng.random_bool(0.2) {
            s.push_str(&format!("    limit: {}\n", pick(rng, &["0", "-1", "18446744073709551616", "x"])));
        }
        s.push_str("    rules:\n");
        for r in 0..rng.random_range(0..4) {
            if rng.random_bool(0.6) {
                s.push_str(&format!("      - alert: A{r}\n"));
            } else {
                s.push_str(&format!("      - record: job:r{r}:sum\n"));
            }
            let e = if rng.random_bool(0.15) { deep_promql(rng) } else { promql(rng, 4) };
            s.push_str(&format!("        expr: '{}'\n", e.replace('\'', "''")));
            if rng.random_bool(0.4) {
                s.push_str(&format!("        for: {}\n", pick(rng, DURS)));
            }
            if rng.random_bool(0.2) {
                s.push_str(&format!("        keep_firing_for: {}\n", pick(rng, DURS)));
            }
            if rng.random_bool(0.3) {
                s.push_str("        labels: {severity: page}\n");
                s.push_str(&format!(
                    "        annotations: {{summary: \"{}\"}}\n",
                    pick(rng, &["{{ $labels.job }} {{ $value }}", "{{ $labels. }}", "{{", "{{ .Foo }}", ""])
                ));
            }
        }
    }
    s
}

/// Byte- and line-level mutations of a text.
pub fn mutate_bytes(rng: &mut Rng, input: &[u8], yaml: bool, desc: &mut Vec<String>) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        let len = b.len();
        match rng.random_range(0..13) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                // Mostly within ASCII, so invalid UTF-8 does not crowd out everything else.
                let bits = if rng.random_bool(0.2) { 8 } else { 7 };
                b[i] ^= 1 << rng.random_range(0..bits);
                desc.push(format!("flip byte {i}"));
            }
            1 => {
                let i = rng.random_range(0..=len);
                let ins: &[u8] = pick::<&[u8]>(
                    rng,
                    &[
                        &b"\xff"[..],
                        b"\xc3",
                        b"\xed\xa0\x80",
                        b"\0",
                        b"\"",
                        b"[",
                        b"]",
                        b"{",
                        b"=",
                        b"\n",
                        b"'",
                        b"#",
                        b":",
                        b"\t",
                        b"\r",
                    ],
                );
                b.splice(i..i, ins.iter().copied());
                desc.push(format!("insert {ins:?} at {i}"));
            }
            2 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = (i + rng.random_range(1..32)).min(len);
                b.drain(i..j);
                desc.push(format!("delete bytes {i}..{j}"));
            }
            3 => {
                let i = rng.random_range(0..=len);
                b.truncate(i);
                desc.push(format!("truncate at {i}"));
            }
            4..=8 => {
                let text = String::from_utf8_lossy(&b).into_owned();
                let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
                if lines.is_empty() {
                    continue;
                }
                let n = lines.len();
                let i = rng.random_range(0..n);
                match rng.random_range(0..5) {
                    0 => {
                        lines.remove(i);
                        desc.push(format!("delete line {}", i + 1));
                    }
                    1 => {
                        let times = if rng.random_bool(0.1) { rng.random_range(100..3000) } else { 1 };
                        let l = lines[i].clone();
                        for _ in 0..times {
                            lines.insert(i, l.clone());
                        }
                        desc.push(format!("duplicate line {} x{times}", i + 1));
                    }
                    2 => {
                        let j = rng.random_range(0..n);
                        lines.swap(i, j);
                        desc.push(format!("swap lines {} {}", i + 1, j + 1));
                    }
                    _ => {
                        // Value replacement on a `key = value` / `key: value` line.
                        let cands: Vec<usize> = (0..n)
                            .filter(|&k| {
                                let l = lines[k].trim_start();
                                !l.starts_with('#') && (l.contains(" = ") || l.contains(": "))
                            })
                            .collect();
                        if cands.is_empty() {
                            continue;
                        }
                        let k = *pick(rng, &cands);
                        let sep = if lines[k].contains(" = ") { " = " } else { ": " };
                        let (lhs, _) = lines[k].split_once(sep).expect("separator present");
                        let v = if yaml && rng.random_bool(0.5) {
                            if rng.random_bool(0.5) {
                                format!("'{}'", deep_promql(rng))
                            } else {
                                pick(
                                    rng,
                                    &[
                                        "0s",
                                        "-1",
                                        "99999999h",
                                        "''",
                                        "[]",
                                        "{}",
                                        "~",
                                        "1x18446744073709551616",
                                        "0+1x100000000",
                                        "stale",
                                    ],
                                )
                                .to_string()
                            }
                        } else {
                            pick(rng, VALUES).to_string()
                        };
                        let shown: String = v.chars().take(40).collect();
                        desc.push(format!("line {}: value -> {shown}", k + 1));
                        lines[k] = format!("{lhs}{sep}{v}\n");
                    }
                }
                b = lines.concat().into_bytes();
            }
            9 if !yaml => {
                // Deep nesting of TOML arrays / inline tables.
                let n = *pick(rng, &[100usize, 1000, 10000, 100000]);
                let v = if rng.random_bool(0.5) {
                    format!("{}1{}", "[".repeat(n), "]".repeat(n))
                } else {
                    format!("{}1{}", "{a=".repeat(n), "}".repeat(n))
                };
                b.splice(0..0, format!("deep = {v}\n").into_bytes());
                desc.push(format!("deep nesting {n}"));
            }
            10 if !yaml => {
                // Many [[faults]] tables.
                let n = rng.random_range(100..5000);
                let f = format!("[[faults]]\nat = \"1s\"\naction = \"crash\"\ntarget = \"{}\"\n", pick(rng, TARGETS));
                b.extend_from_slice(f.repeat(n).as_bytes());
                desc.push(format!("{n} x [[faults]]"));
            }
            9 | 10 => {
                // YAML: deep flow nesting or a deep expression.
                let n = *pick(rng, &[100usize, 1000, 10000]);
                b.extend_from_slice(format!("x: {}1{}\n", "[".repeat(n), "]".repeat(n)).as_bytes());
                desc.push(format!("yaml deep nesting {n}"));
            }
            _ => {
                let i = rng.random_range(0..=len);
                let ascii = rng.random_bool(0.8);
                let junk: Vec<u8> = (0..rng.random_range(1..8))
                    .map(|_| if ascii { rng.random_range(0x20u8..0x7f) } else { rng.random::<u8>() })
                    .collect();
                b.splice(i..i, junk.iter().copied());
                desc.push(format!("insert random bytes at {i}"));
            }
        }
    }
    b
}

/// Bounds: parsing-only commands get `QUICK`, simulations `SLOW` (both overridable).
pub fn timeouts() -> (Duration, Duration) {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    (Duration::from_secs(env("FUZZ_TIMEOUT_QUICK", 20)), Duration::from_secs(env("FUZZ_TIMEOUT_SLOW", 60)))
}

fn scenario_mutant(rng: &mut Rng, corpus: &Corpus, base: &str, desc: &mut Vec<String>) -> Vec<u8> {
    if rng.random_bool(0.5) {
        structured_scenario(rng, corpus, base, desc).into_bytes()
    } else {
        mutate_bytes(rng, base.as_bytes(), false, desc)
    }
}

fn files_with_rules(corpus: &Corpus, main: (String, Vec<u8>)) -> Vec<(String, Vec<u8>)> {
    let mut v = vec![main];
    v.extend(corpus.rule_files());
    v
}

/// Case `i` of the campaign with seed `seed`.
pub fn case(corpus: &Corpus, seed: u64, i: u64) -> Case {
    let mut rng = Rng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (quick, slow) = timeouts();
    let mut desc = Vec::new();
    let roll = rng.random_range(0..100);
    let s = |x: &str| x.to_string();
    let mut case = Case {
        surface: Surface::Check,
        files: Vec::new(),
        main: Some(0),
        args: Vec::new(),
        timeout: quick,
        desc: String::new(),
        out: None,
    };
    match roll {
        0..=29 => {
            let (name, base) = pick(&mut rng, &corpus.scenarios);
            desc.push(format!("base {name}"));
            let text = scenario_mutant(&mut rng, corpus, base, &mut desc);
            case.files = files_with_rules(corpus, (s("s.toml"), text));
            case.args = vec![s("check"), s("s.toml")];
        }
        30..=41 => {
            case.surface = Surface::Set;
            let (name, base) = pick(&mut rng, &corpus.scenarios);
            desc.push(format!("base {name}"));
            case.files = files_with_rules(corpus, (s("s.toml"), base.clone().into_bytes()));
            case.main = None;
            case.args = vec![s("check"), s("s.toml")];
            for _ in 0..rng.random_range(1..=4) {
                case.args.push(s("--set"));
                case.args.push(random_override(&mut rng, corpus));
            }
        }
        42..=51 => {
            case.surface = Surface::Run;
            case.timeout = slow;
            let (name, base) = pick(&mut rng, &corpus.scenarios);
            desc.push(format!("base {name}"));
            let text = if rng.random_bool(0.8) {
                structured_scenario(&mut rng, corpus, base, &mut desc).into_bytes()
            } else {
                mutate_bytes(&mut rng, base.as_bytes(), false, &mut desc)
            };
            case.files = files_with_rules(corpus, (s("s.toml"), text));
            case.args = vec![s("run"), s("s.toml")];
            if rng.random_bool(0.3) {
                case.args.push(s("--set"));
                case.args.push(random_override(&mut rng, corpus));
            }
            case.args.extend([s("--set"), s("limits.max_events=200000"), s("--out"), s("out")]);
            case.out = Some(s("out"));
        }
        52..=59 => {
            case.surface = Surface::Sweep;
            case.timeout = slow;
            let (name, base) = pick(&mut rng, &corpus.sweeps);
            desc.push(format!("base {name}"));
            let text = mutate_bytes(&mut rng, shrink_sweep(base).as_bytes(), false, &mut desc);
            let mut files = vec![(s("sweeps/w.toml"), text)];
            files.extend(corpus.top.iter().map(|(n, t)| (n.clone(), t.clone().into_bytes())));
            case.files = files_with_rules(corpus, files.remove(0));
            case.files.extend(files);
            case.args = vec![s("sweep"), s("sweeps/w.toml"), s("--out"), s("out"), s("--jobs"), s("1")];
            case.out = Some(s("out"));
        }
        60..=66 => {
            case.surface = Surface::Swarm;
            case.timeout = slow;
            let (name, base) = pick(&mut rng, &corpus.swarm);
            desc.push(format!("base {name}"));
            let text = scenario_mutant(&mut rng, corpus, base, &mut desc);
            case.files = vec![(s("s.toml"), text)];
            case.args = vec![s("swarm"), s("s.toml"), s("--runs"), s("3"), s("--jobs"), s("1"), s("--out"), s("out")];
            case.out = Some(s("out"));
        }
        67..=78 => {
            case.surface = Surface::RulesCheck;
            let text = if rng.random_bool(0.4) {
                desc.push(s("generated rule file"));
                let t = rule_file(&mut rng).into_bytes();
                if rng.random_bool(0.3) { mutate_bytes(&mut rng, &t, true, &mut desc) } else { t }
            } else {
                let (name, base) = pick(&mut rng, &corpus.rules);
                desc.push(format!("base {name}"));
                mutate_bytes(&mut rng, base.as_bytes(), true, &mut desc)
            };
            case.files = vec![(s("rules/r.yml"), text)];
            case.args = vec![s("rules"), s("check"), s("rules/r.yml")];
        }
        79..=89 => {
            case.surface = Surface::RulesTest;
            let (name, base) = pick(&mut rng, &corpus.rule_tests);
            desc.push(format!("base {name}"));
            let mut files = corpus.rule_files();
            if rng.random_bool(0.6) {
                files.insert(
                    0,
                    (format!("rules/tests/{name}"), mutate_bytes(&mut rng, base.as_bytes(), true, &mut desc)),
                );
            } else {
                // Mutate (or regenerate) the rule file the test names.
                let target = base
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("- ../"))
                    .map(|n| format!("rules/{}", n.trim()))
                    .unwrap_or_else(|| s("rules/instances.yml"));
                let k = files.iter().position(|(n, _)| *n == target).unwrap_or(0);
                let (n, t) = files.remove(k);
                let t = if rng.random_bool(0.4) {
                    rule_file(&mut rng).into_bytes()
                } else {
                    mutate_bytes(&mut rng, &t, true, &mut desc)
                };
                desc.push(format!("mutated {n}"));
                files.insert(0, (n, t));
                files.push((format!("rules/tests/{name}"), base.clone().into_bytes()));
            }
            case.files = files;
            case.args = vec![s("rules"), s("test"), format!("rules/tests/{name}")];
        }
        _ => {
            case.surface = Surface::Cli;
            case.main = None;
            let (_, ap) = &corpus.swarm[0];
            case.files = vec![
                (s("s.toml"), ap.clone().into_bytes()),
                (s("w.toml"), tiny_sweep().into_bytes()),
                (s("r.yml"), corpus.rules[0].1.clone().into_bytes()),
                (s("empty"), Vec::new()),
            ];
            case.args = random_argv(&mut rng, corpus);
            case.timeout = slow;
            if let Some(k) = case.args.iter().position(|a| a == "--out") {
                case.out = case.args.get(k + 1).filter(|o| o.as_str() == "out").cloned();
            }
            desc.push(s("random argv"));
        }
    }
    case.desc = desc.join("; ");
    case
}

/// A sweep made cheap: one seed, at most two values per parameter, a short run and an event limit.
fn shrink_sweep(text: &str) -> String {
    let Ok(mut t) = text.parse::<toml::Table>() else { return text.to_string() };
    t.insert("seeds".into(), toml::Value::Integer(1));
    if let Some(toml::Value::Array(ps)) = t.get_mut("params") {
        for p in ps.iter_mut() {
            if let Some(toml::Value::Array(v)) = p.get_mut("values") {
                v.truncate(2);
            }
        }
    }
    let set = t.entry("set").or_insert_with(|| toml::Value::Array(Vec::new()));
    if let Some(a) = set.as_array_mut() {
        a.push(toml::Value::String("duration=20s".into()));
        a.push(toml::Value::String("limits.max_events=100000".into()));
    }
    let header: String = text.lines().take_while(|l| l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    header + &toml::to_string(&t).unwrap_or_else(|_| text.to_string())
}

fn tiny_sweep() -> String {
    "scenario = \"s.toml\"\nseed = 1\nseeds = 1\nset = [\"duration=10s\"]\nmetrics = [\"events\"]\n\n[[params]]\nkey = \"instances.count\"\nvalues = [1, 2]\n".to_string()
}

fn random_argv(rng: &mut Rng, corpus: &Corpus) -> Vec<String> {
    const ODD: &[&str] = &[
        "0",
        "1",
        "2",
        "-1",
        "7",
        "100",
        "100001",
        "4000000000",
        "18446744073709551615",
        "18446744073709551616",
        "",
        "/",
        "/dev/null",
        ".",
        "nonexistent.toml",
        "s.toml",
        "w.toml",
        "r.yml",
        "empty",
        "out",
        "1/0",
        "0/0",
        "3/2",
        "1/2",
        "auto",
        "NaN",
        "ring:k=4000000000",
        "maglev:m=4",
        "remove:1",
        "add:100000",
        "remove:1000",
        "zipf:s=1.1:k=100000000000",
        "uniform:k=0",
        "0x",
        "0xffffffffffffffffff",
        "ap:registry.mode=cp",
        ":x=1",
        "a:",
    ];
    let (sub, flags): (&[&str], &[&str]) = match rng.random_range(0..10) {
        0 => (&["run"], &["--seed", "--set", "--out", "--check-determinism"]),
        1 => (&["check"], &["--set"]),
        2 => (&["compare"], &["--variant", "--seed", "--set", "--out"]),
        3 => (
            &["lb"],
            &[
                "--nodes",
                "--keys",
                "--algo",
                "--churn",
                "--dist",
                "--requests",
                "--window",
                "--seed",
                "--json",
                "--out",
            ],
        ),
        4 => (&["lb", "route"], &["--algo", "--nodes", "--key"]),
        5 => (&["sweep"], &["--jobs", "--shard", "--shards", "--out"]),
        6 => (&["merge"], &["--out"]),
        7 => (&["swarm"], &["--runs", "--seed", "--jobs", "--set", "--out"]),
        8 => (&["rules", "test"], &[]),
        _ => (&["rules", "check"], &[]),
    };
    let mut a: Vec<String> = sub.iter().map(|x| x.to_string()).collect();
    if rng.random_bool(0.05) {
        a.clear();
        a.push(pick(rng, &["", "--help", "help", "bogus", "--version", "-x"]).to_string());
    }
    // Positional file for the commands that take one.
    if !matches!(sub, ["lb"] | ["lb", "route"]) && rng.random_bool(0.85) {
        for _ in 0..rng.random_range(1..=2) {
            a.push(pick(rng, ODD).to_string());
        }
    }
    for _ in 0..rng.random_range(0..5) {
        if flags.is_empty() || rng.random_bool(0.1) {
            a.push(pick(rng, &["--bogus", "-", "--", "--set", "--out=", "-h"]).to_string());
            continue;
        }
        let f = *pick(rng, flags);
        a.push(f.to_string());
        match f {
            "--json" | "--check-determinism" => {}
            "--set" => a.push(random_override(rng, corpus)),
            "--nodes" | "--keys" | "--requests" | "--window" => a.push(
                pick(rng, &["0", "1", "3", "100", "-1", "100001", "4000000000", "18446744073709551616", "", "x"])
                    .to_string(),
            ),
            "--runs" => {
                a.push(pick(rng, &["0", "1", "3", "-1", "1000001", "18446744073709551616", "", "x"]).to_string())
            }
            "--jobs" => a.push(pick(rng, &["0", "1", "2", "-1", "4000000000", "", "x"]).to_string()),
            _ => a.push(pick(rng, ODD).to_string()),
        }
    }
    // lb always gets small sizes unless the generator chose otherwise, to keep cases cheap.
    if sub == ["lb"] && !a.iter().any(|x| x == "--keys") {
        a.extend(["--keys".into(), "1000".into()]);
    }
    if sub == ["lb"] && !a.iter().any(|x| x == "--requests") {
        a.extend(["--requests".into(), "1000".into()]);
    }
    if sub == ["swarm"] && !a.iter().any(|x| x == "--runs") {
        a.extend(["--runs".into(), "2".into()]);
    }
    a
}
