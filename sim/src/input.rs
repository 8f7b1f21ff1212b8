//! Reading an input file (scenario, sweep, swarm base, rule file, rule test, shard) with a
//! size bound checked *while* reading, never after: `regsim check /dev/zero` stops at the
//! bound instead of growing without end, and a 20 MB file of `[[faults]]` is refused before
//! any parsing. Text that is not UTF-8 is an error with the line, column and byte offset of the
//! first bad byte.

use std::io::Read;
use std::path::Path;

/// Bound on a scenario, sweep, swarm base, rule or rule-test file: 1 MiB (the largest shipped
/// file is about 10 KB; a megabyte of TOML parses in a few milliseconds).
pub const MAX_INPUT_BYTES: u64 = 1 << 20;
/// Bound on a sweep shard file (it holds the records of up to 100,000 runs).
pub const MAX_SHARD_BYTES: u64 = 512 << 20;

/// Why an input could not be read: `location` is the file, or `file:line:column` for bad
/// UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    pub location: String,
    pub message: String,
}

/// Reads `path` as UTF-8 text of at most `limit` bytes; `what` names it in messages
/// ("scenario", "rule file").
pub fn read(path: &Path, what: &str, limit: u64) -> Result<String, InputError> {
    let file = path.display().to_string();
    let err = |message: String| InputError { location: file.clone(), message };
    let f = std::fs::File::open(path).map_err(|e| err(format!("cannot read the {what}: {e}")))?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(err(format!("cannot read the {what}: it is a folder")));
    }
    let mut bytes = Vec::new();
    f.take(limit + 1).read_to_end(&mut bytes).map_err(|e| err(format!("cannot read the {what}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(err(format!("the {what} is larger than {limit} bytes, the limit for such files")));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&e.as_bytes()[..at]).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        InputError {
            location: format!("{file}:{line}:{col}"),
            message: format!(
                "the {what} is not UTF-8 text: invalid byte 0x{:02x} at byte offset {at}",
                e.as_bytes()[at]
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_utf8_is_located_and_size_is_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.toml");
        std::fs::write(&p, b"name = \"x\"\nduration = \"6\xff0s\"\n").expect("write");
        let e = read(&p, "scenario", MAX_INPUT_BYTES).expect_err("bad utf-8");
        assert!(e.location.ends_with("s.toml:2:14"), "{e:?}");
        assert!(e.message.contains("invalid byte 0xff at byte offset 24"), "{e:?}");
        std::fs::write(&p, vec![b'#'; 2048]).expect("write");
        let e = read(&p, "scenario", 1024).expect_err("too large");
        assert!(e.message.contains("larger than 1024 bytes"), "{e:?}");
        let e = read(Path::new("/dev/zero"), "scenario", 1024).expect_err("endless");
        assert!(e.message.contains("larger than"), "{e:?}");
        assert!(read(dir.path(), "scenario", 1024).expect_err("folder").message.contains("folder"));
    }
}
