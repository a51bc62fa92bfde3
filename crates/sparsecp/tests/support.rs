//! Running the binary and making sparse files for it.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `sparsecp ARGS` and returns its output.
pub fn sparsecp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sparsecp"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Exit code (panics on death by signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A `size`-byte file with non-zero data of `len` bytes at each offset and
/// holes elsewhere.
pub fn sparse_file(path: &Path, size: u64, data: &[(u64, u64)]) {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .unwrap();
    f.set_len(size).unwrap();
    for &(off, len) in data {
        let buf: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
        f.write_all_at(&buf, off).unwrap();
    }
}

/// `st_blocks * 512`.
pub fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// Path as &str (tests use UTF-8 temp paths).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
