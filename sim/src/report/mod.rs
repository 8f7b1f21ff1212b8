//! Reports: the serde model (`report.json`), Markdown (`report.md`), SVG plots, and writing
//! them atomically (temporary files renamed into place, so an interrupted run leaves no half
//! report).

pub mod lb;
pub mod lb_plot;
pub mod markdown;
pub mod model;
pub mod plot;

use std::path::{Path, PathBuf};

pub use markdown::{markdown, summary};
pub use model::Report;

use crate::metrics::Detection;

/// The files of one report, as (file name, contents).
pub fn render(report: &Report, detection: &Detection) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut files = Vec::new();
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())? + "\n";
    files.push(("report.json".to_string(), json.into_bytes()));
    let svg = plot::cdf_svg(
        &format!("{}: detection latency from the crash", report.scenario),
        "seconds from the crash",
        &[
            plot::CdfLine { label: "unhealthy", samples: &detection.unhealthy.latencies_s },
            plot::CdfLine { label: "deleted", samples: &detection.deleted.latencies_s },
        ],
    )?;
    let plots = vec!["detection-cdf.svg".to_string()];
    files.push(("report.md".to_string(), markdown(report, &plots).into_bytes()));
    files.push((plots[0].clone(), svg.into_bytes()));
    Ok(files)
}

/// Writes every file to a temporary name first, then renames them all into `dir`.
pub fn write_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut staged = Vec::new();
    for (name, bytes) in files {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        staged.push((tmp, dir.join(name)));
    }
    let mut out = Vec::new();
    for (tmp, dst) in staged {
        std::fs::rename(&tmp, &dst)?;
        out.push(dst);
    }
    Ok(out)
}
