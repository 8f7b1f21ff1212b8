//! Standard output and error that end the process quietly when the reader goes away.
//!
//! `std`'s `print!` family panics when a write fails ("failed printing to stdout: Broken
//! pipe", e.g. `regsim run ... | head -c1`). `main.rs` shadows `print!`, `println!`, `eprint!`
//! and `eprintln!` with macros that call [`write`]: on a broken pipe the process exits at once
//! with status 141, what a shell reports for a Unix tool killed by SIGPIPE (128 + 13), without
//! a message; other write errors (e.g. a full disk behind a redirect) are ignored, as `std`
//! ignores a closed descriptor. Reports are written before anything is printed about them, and
//! always as a whole (`regsim::output`), so an exit here never leaves half a report.

use std::io::Write;

/// Exit status on a broken pipe: 128 + SIGPIPE, as a shell shows a tool killed by the signal.
pub const BROKEN_PIPE_EXIT: i32 = 141;

pub fn write(to_stderr: bool, args: std::fmt::Arguments<'_>) {
    let result =
        if to_stderr { std::io::stderr().lock().write_fmt(args) } else { std::io::stdout().lock().write_fmt(args) };
    if let Err(e) = result
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(BROKEN_PIPE_EXIT);
    }
}
