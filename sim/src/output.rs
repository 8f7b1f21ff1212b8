//! Output folders written safely: a report set appears as a whole or not at all, and only
//! where the command line says.
//!
//! - **Checked before the work starts** ([`check_dir`]): the folder is not a system root
//!   (`/`, `/etc`, `/usr`, `/home`, `/tmp`, the user's home, ...; sub-folders of them are
//!   fine), not a symbolic link, not a file, and either new, empty, or a folder regsim wrote
//!   before (it holds the [`MARKER`] file). So `--out README.md` or `--out /` fails at once
//!   with exit 2, before a run of minutes, and a folder of someone's files is never replaced.
//! - **Written as a unit** ([`write_set`]): the whole set (report.json, report.md, plots,
//!   variant folders, the marker) is written into a fresh staging folder beside the
//!   destination, created exclusively with an unpredictable name (`tempfile`, mode 0700: nothing
//!   can be planted in it, no file is ever written through a symbolic link), then moved into
//!   place: with one `rename` onto a new path, or with one atomic `renameat2(RENAME_EXCHANGE)`
//!   over the earlier set, which is then deleted (so stale plots of an earlier report go with
//!   it). A process killed at any point leaves the destination holding either the old set or
//!   the new one, never a mix; what can be left is a hidden `.<name>.staging-*` folder beside
//!   it. On file systems without the exchange (it is Linux-only), the old set is first renamed
//!   aside, leaving a moment in which the destination is missing but never mixed.
//! - **Single files in shared folders** ([`write_file`]): sweep shards share one folder (a
//!   Kubernetes volume): each shard file is written to an exclusive temporary file in that
//!   folder and renamed onto its name.
//!
//! - **Standard output and error** ([`print_or_exit`]): `std`'s `print!` family panics when a
//!   write fails ("failed printing to stdout: Broken pipe", `regsim run ... | head -c1`). The
//!   binaries `use regsim::{print, println, eprintln}` (exported here), which shadows std's
//!   macros with ones that call it: on a broken
//!   pipe the process exits at once with [`BROKEN_PIPE_EXIT`] (141, what a shell reports for a
//!   Unix tool killed by SIGPIPE), without a message; other write errors (a full disk behind a
//!   redirect) are ignored, as `std` ignores a closed descriptor. Reports are written before
//!   anything is printed about them, and as a whole, so such an exit never leaves half a report.
//!
//! The staging names come from OS randomness through `tempfile`; they never reach a decision
//! of a simulation or a byte of its output.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// Exit status on a broken pipe: 128 + SIGPIPE, as a shell shows a tool killed by the signal.
pub const BROKEN_PIPE_EXIT: i32 = 141;

/// Writes to stdout (or stderr); on a broken pipe, ends the process quietly (module doc).
pub fn print_or_exit(to_stderr: bool, args: std::fmt::Arguments<'_>) {
    let result =
        if to_stderr { std::io::stderr().lock().write_fmt(args) } else { std::io::stdout().lock().write_fmt(args) };
    if let Err(e) = result
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        std::process::exit(BROKEN_PIPE_EXIT);
    }
}

/// `print!` through [`print_or_exit`]: the binaries `use regsim::{print, println, eprintln}`,
/// which shadows std's macros (module doc).
#[macro_export]
macro_rules! print {
    ($($t:tt)*) => { $crate::output::print_or_exit(false, format_args!($($t)*)) };
}

/// `println!` through [`print_or_exit`].
#[macro_export]
macro_rules! println {
    () => { $crate::output::print_or_exit(false, format_args!("\n")) };
    ($($t:tt)*) => { $crate::output::print_or_exit(false, format_args!("{}\n", format_args!($($t)*))) };
}

/// `eprintln!` through [`print_or_exit`].
#[macro_export]
macro_rules! eprintln {
    () => { $crate::output::print_or_exit(true, format_args!("\n")) };
    ($($t:tt)*) => { $crate::output::print_or_exit(true, format_args!("{}\n", format_args!($($t)*))) };
}

/// The file that marks a folder as a regsim output set, replaceable by the next one.
pub const MARKER: &str = ".regsim-output";

/// Folders never used as an output folder themselves (their sub-folders are fine).
const SYSTEM_ROOTS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt", "/proc",
    "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
];

/// `dir` made absolute with symbolic links of its existing part resolved and `..` applied.
fn resolved(dir: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(dir)?;
    // The deepest existing ancestor, canonicalized, plus the components that do not exist yet.
    let mut existing = abs.as_path();
    let mut rest: Vec<Component<'_>> = Vec::new();
    let base = loop {
        match existing.canonicalize() {
            Ok(c) => break c,
            Err(_) => {
                let Some(parent) = existing.parent() else { break PathBuf::from("/") };
                if let Some(last) = existing.components().next_back() {
                    rest.push(last);
                }
                existing = parent;
            }
        }
    };
    let mut out = base;
    for c in rest.into_iter().rev() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

/// Refuses `dir` when it resolves to a system root or the user's home (their sub-folders
/// are fine): the check both kinds of output folder share.
fn refuse_roots(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    if dir.as_os_str().is_empty() {
        return Err("expected a folder, got an empty path".into());
    }
    let real = resolved(dir).map_err(|e| format!("{shown}: cannot resolve the path: {e}"))?;
    let home = std::env::var_os("HOME").and_then(|h| Path::new(&h).canonicalize().ok());
    if SYSTEM_ROOTS.iter().any(|r| real == Path::new(r)) || home.as_deref() == Some(real.as_path()) {
        return Err(format!(
            "{shown} is {}, a system or home folder: refusing to write there (give a new sub-folder, e.g. --out {}/regsim-out)",
            real.display(),
            real.display().to_string().trim_end_matches('/')
        ));
    }
    Ok(())
}

/// Checks that `dir` may receive an output set (see the module doc). The message says what
/// is wrong and what to do.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    refuse_roots(dir)?;
    let shown = dir.display();
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    if meta.file_type().is_symlink() {
        return Err(format!("{shown} is a symbolic link: give the folder it points to, or a new folder"));
    }
    if !meta.is_dir() {
        return Err(format!("{shown} exists and is not a folder: give a new or empty folder"));
    }
    let mut entries = std::fs::read_dir(dir).map_err(|e| format!("{shown}: cannot list the folder: {e}"))?;
    if entries.next().is_none() {
        return Ok(());
    }
    match std::fs::symlink_metadata(dir.join(MARKER)) {
        Ok(m) if m.is_file() => Ok(()),
        _ => Err(format!(
            "{shown} holds files regsim did not write (no {MARKER} marker): it would be replaced as a whole, so \
             give a new or empty folder, or remove it first"
        )),
    }
}

/// Checks a file name of a set: relative, plain components, no `..`.
fn check_name(name: &str) -> io::Result<()> {
    let p = Path::new(name);
    if name.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(io::Error::other(format!("invalid output file name {name:?}")));
    }
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes `files` (names relative to `dir`, `a/b.json` allowed) as one set into `dir`,
/// replacing the set that was there (see the module doc). Returns the paths written, in order.
pub fn write_set(dir: &Path, files: &[(String, Vec<u8>)]) -> io::Result<Vec<PathBuf>> {
    check_dir(dir).map_err(io::Error::other)?;
    for (name, _) in files {
        check_name(name)?;
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let base = dir.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let staging = tempfile::Builder::new().prefix(&format!(".{base}.staging-")).tempdir_in(&parent)?;
    for (name, bytes) in files {
        let path = staging.path().join(name);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        write_new(&path, bytes)?;
    }
    // The same bytes from every command (a merged sweep equals the unsharded one, file by file).
    let marker = "Written by regsim. The next regsim command writing into this folder replaces it as a whole.\n";
    write_new(&staging.path().join(MARKER), marker.as_bytes())?;
    // From here the staging folder is ours to move or delete.
    let staged = staging.keep();
    let placed = place(&staged, dir, &parent, &base);
    if placed.is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    placed?;
    Ok(files.iter().map(|(n, _)| dir.join(n)).collect())
}

/// Moves the staged folder to `dir`: a rename onto a new path, an exchange over an old set.
fn place(staged: &Path, dir: &Path, parent: &Path, base: &str) -> io::Result<()> {
    if std::fs::symlink_metadata(dir).is_err() {
        return std::fs::rename(staged, dir);
    }
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, staged, CWD, dir, RenameFlags::EXCHANGE) {
        Ok(()) => {
            // `staged` now holds the old set.
            std::fs::remove_dir_all(staged)
        }
        Err(e) if [rustix::io::Errno::INVAL, rustix::io::Errno::NOSYS, rustix::io::Errno::NOTSUP].contains(&e) => {
            let aside = tempfile::Builder::new().prefix(&format!(".{base}.old-")).tempdir_in(parent)?.keep();
            std::fs::remove_dir(&aside)?;
            std::fs::rename(dir, &aside)?;
            std::fs::rename(staged, dir)?;
            std::fs::remove_dir_all(&aside)
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks a folder that several writers share (sweep shards): not a system root, a folder if
/// it exists; its other files are left alone.
pub fn check_shared_dir(dir: &Path) -> Result<(), String> {
    refuse_roots(dir)?;
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(format!("{} exists and is not a folder", dir.display())),
        _ => Ok(()),
    }
}

/// Writes one file into `dir` (created if needed), atomically: an exclusive temporary file in
/// the same folder, renamed onto `name`. Other files in `dir` are left alone.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    check_name(name)?;
    check_shared_dir(dir).map_err(io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let dst = dir.join(name);
    tmp.persist(&dst).map_err(|e| e.error)?;
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(tag: &str) -> Vec<(String, Vec<u8>)> {
        vec![("report.json".into(), tag.as_bytes().to_vec()), ("sub/plot.svg".into(), b"<svg/>".to_vec())]
    }

    #[test]
    fn a_set_replaces_the_old_one_as_a_whole() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("out");
        write_set(&dir, &files("one")).expect("first");
        std::fs::write(dir.join("stale.svg"), "old").expect("plant");
        write_set(&dir, &files("two")).expect("second");
        assert_eq!(std::fs::read_to_string(dir.join("report.json")).expect("read"), "two");
        assert!(!dir.join("stale.svg").exists(), "the old set goes as a whole");
        assert!(dir.join(MARKER).is_file());
        let left: Vec<_> = std::fs::read_dir(root.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("out")], "no staging folder left: {left:?}");
    }

    #[test]
    fn foreign_folders_files_and_roots_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let foreign = root.path().join("mine");
        std::fs::create_dir(&foreign).expect("mkdir");
        std::fs::write(foreign.join("notes.txt"), "keep me").expect("write");
        let err = write_set(&foreign, &files("x")).expect_err("foreign folder");
        assert!(err.to_string().contains("did not write"), "{err}");
        assert_eq!(std::fs::read_to_string(foreign.join("notes.txt")).expect("kept"), "keep me");
        let file = root.path().join("README.md");
        std::fs::write(&file, "readme").expect("write");
        assert!(check_dir(&file).expect_err("file").contains("not a folder"));
        for r in ["/", "/tmp", "/usr/../etc"] {
            assert!(check_dir(Path::new(r)).expect_err(r).contains("system"), "{r}");
        }
        assert!(check_dir(&root.path().join("new/deeper")).is_ok());
    }

    #[test]
    fn a_symlink_is_never_written_through() {
        let root = tempfile::tempdir().expect("tempdir");
        let victim = root.path().join("victim.txt");
        std::fs::write(&victim, "precious").expect("write");
        let dir = root.path().join("out");
        write_set(&dir, &files("one")).expect("first");
        // Plant links where the old writer staged its files, and make the folder a link.
        std::os::unix::fs::symlink(&victim, dir.join(".report.json.tmp")).expect("symlink");
        write_set(&dir, &files("two")).expect("second");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "precious");
        let link = root.path().join("link");
        std::os::unix::fs::symlink(root.path(), &link).expect("symlink");
        assert!(check_dir(&link).expect_err("link").contains("symbolic link"));
        let err = write_file(&dir, "../escape.json", b"x").expect_err("escape");
        assert!(err.to_string().contains("invalid output file name"), "{err}");
    }

    #[test]
    fn single_files_leave_their_neighbours() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("shards");
        write_file(&dir, "shard-0-of-2.json", b"a").expect("0");
        write_file(&dir, "shard-1-of-2.json", b"b").expect("1");
        let mut names: Vec<_> = std::fs::read_dir(&dir).expect("ls").map(|e| e.expect("e").file_name()).collect();
        names.sort();
        assert_eq!(names, vec!["shard-0-of-2.json", "shard-1-of-2.json"]);
    }
}
