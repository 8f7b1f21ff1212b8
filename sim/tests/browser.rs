//! The HTML reports in a real browser: headless Chromium (Debian's `chromium`, installed by
//! scripts/test; REGSIM_SKIP_BROWSER=1 skips this test on a machine without it) loads every
//! committed `reports/**/*.html` page and pages written fresh by `regsim run` and `regsim
//! compare`, and a probe injected into a copy of each page reports, after the load event:
//! script or resource errors, references to other files or the network (the page must stand
//! alone), and every plot's rendered size and drawn elements. A page passes when it loaded
//! without errors, refers to nothing outside itself, and every plot of its Markdown is there
//! and drew (at least 200×100 px and a dozen shapes and labels).

use std::path::{Path, PathBuf};
use std::process::Command;

const PROBE: &str = r#"<script>
window.__errors = [];
window.addEventListener('error', e => { __errors.push(String(e.message || (e.target && e.target.outerHTML))); }, true);
window.addEventListener('load', () => {
  const svgs = [...document.querySelectorAll('.plot svg')];
  const small = svgs.filter(s => { const r = s.getBoundingClientRect(); return !(r.width >= 200 && r.height >= 100); }).length;
  const bare = svgs.filter(s => s.querySelectorAll('path,polyline,polygon,line,rect,circle,text').length < 12).length;
  const outside = [...document.querySelectorAll('[src],[href],link,img,iframe,object,embed')]
    .map(e => e.getAttribute('src') || e.getAttribute('href') || e.tagName)
    .filter(u => !u.startsWith('#') && !/\.html$/.test(u)).length;
  const missing = document.querySelectorAll('.missing').length;
  document.body.setAttribute('data-probe', JSON.stringify({ plots: svgs.length, small, bare, outside, missing, errors: __errors }));
});
</script>"#;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            pages(&p, out);
        } else if p.extension().is_some_and(|e| e == "html") {
            out.push(p);
        }
    }
}

/// The probe's findings for one page, checked against the plots its Markdown embeds.
fn check(browser: &str, page: &Path, work: &Path) -> Result<usize, String> {
    let html = std::fs::read_to_string(page).map_err(|e| format!("{}: {e}", page.display()))?;
    let md = std::fs::read_to_string(page.with_extension("md")).map_err(|e| format!("{}: {e}", page.display()))?;
    let expected_plots = md.lines().filter(|l| l.starts_with("![")).count();
    let probed = work.join("probed.html");
    std::fs::write(&probed, html.replacen("<head>", &format!("<head>\n{PROBE}"), 1)).map_err(|e| e.to_string())?;
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}", probed.display()))
        .output()
        .map_err(|e| format!("spawn {browser}: {e}"))?;
    let dom = String::from_utf8_lossy(&out.stdout);
    let Some(start) = dom.find("data-probe=\"") else {
        return Err(format!("{}: the probe did not report (the page did not load?)", page.display()));
    };
    let raw = &dom[start + 12..];
    let raw = &raw[..raw.find('"').unwrap_or(raw.len())];
    let json = raw.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    let v: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("{}: probe {json}: {e}", page.display()))?;
    let n = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    let problems: Vec<String> = [
        (n("plots") as usize != expected_plots)
            .then(|| format!("{} plots drawn, the Markdown embeds {expected_plots}", n("plots"))),
        (n("small") != 0).then(|| format!("{} plots rendered smaller than 200x100 px", n("small"))),
        (n("bare") != 0).then(|| format!("{} plots drew almost nothing", n("bare"))),
        (n("outside") != 0).then(|| format!("{} references to files or the network", n("outside"))),
        (n("missing") != 0).then(|| format!("{} plots missing from the set", n("missing"))),
        v["errors"].as_array().is_none_or(|e| !e.is_empty()).then(|| format!("errors: {}", v["errors"])),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() { Ok(expected_plots) } else { Err(format!("{}: {}", page.display(), problems.join("; "))) }
}

#[test]
fn every_report_page_loads_in_chromium_and_every_plot_renders() {
    let Some(browser) = chromium() else {
        if std::env::var_os("REGSIM_SKIP_BROWSER").is_some() {
            eprintln!("skipped: no chromium (REGSIM_SKIP_BROWSER set)");
            return;
        }
        panic!(
            "chromium not found on PATH: install it (Debian: apt-get install chromium) or set REGSIM_SKIP_BROWSER=1"
        );
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = tempfile::tempdir().expect("temp dir");
    // Fresh pages: a run with detection, staleness and load plots, one with alerts, a compare
    // (cap.svg and two variant reports), a Raft run (elections) and a swarm.
    let bin = env!("CARGO_BIN_EXE_regsim");
    let fresh = work.path().join("fresh");
    let runs: [&[&str]; 5] = [
        &["run", "scenarios/nacos-crash.toml"],
        &["run", "scenarios/monitoring.toml"],
        &["compare", "scenarios/cap-partition.toml"],
        &["run", "scenarios/raft-election-timing.toml"],
        // A failing swarm: swarm.html with the failing and the shrunk plan.
        &["swarm", "scenarios/swarm/cp.toml", "--runs", "20", "--set", "bugs.vote_twice=true"],
    ];
    for (k, args) in runs.into_iter().enumerate() {
        let out = fresh.join(k.to_string());
        let st = Command::new(bin).current_dir(&root).args(args).arg("--out").arg(&out).output().expect("regsim");
        assert!(st.status.code().is_some_and(|c| c <= 1), "{args:?}: {}", String::from_utf8_lossy(&st.stderr));
    }
    let mut list = Vec::new();
    pages(&fresh, &mut list);
    let fresh_pages = list.len();
    assert!(fresh_pages >= 6, "{fresh_pages} fresh pages: {list:?}");
    pages(&root.join("reports"), &mut list);
    assert!(list.len() >= fresh_pages + 12, "committed pages missing: {} in all", list.len());
    let mut failures = Vec::new();
    let mut plots = 0;
    for page in &list {
        match check(browser, page, work.path()) {
            Ok(n) => plots += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{} of {} pages failed:\n{}", failures.len(), list.len(), failures.join("\n"));
    assert!(plots >= 30, "only {plots} plots checked");
}
