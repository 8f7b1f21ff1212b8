//! Build script: the commit `regsim --version` prints (`REGSIM_COMMIT`), from git when the
//! source is a checkout, else "unknown commit". Only `--version` shows it: reports carry the
//! crate version alone, so a new commit does not change a report's bytes.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    // Uncommitted changes are not detected: the script reruns only when HEAD moves.
    let text = commit.map_or("unknown commit".to_string(), |c| format!("commit {c}"));
    println!("cargo:rustc-env=REGSIM_COMMIT={text}");
    // Rerun when HEAD moves (a commit, a checkout).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{r}");
        }
    }
}
