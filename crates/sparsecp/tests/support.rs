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

/// Exit status of an operation that failed, as the README documents.
pub const FAILED: i32 = 3;
/// Exit status after SIGINT or SIGTERM.
pub const INTERRUPTED: i32 = 130;

/// Asserts stderr is one line, `sparsecp: ...`, containing each of
/// `needles`, and returns it.
pub fn one_error_line(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(err.starts_with("sparsecp: "), "{err:?}");
    for n in needles {
        assert!(err.contains(n), "stderr names {n:?}: {err:?}");
    }
    err
}

/// What a directory holds: each entry's name, type, size, mode and bytes
/// (for files up to 1 MiB), to show that nothing was created or changed.
pub fn listing(dir: &Path) -> Vec<(std::ffi::OsString, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let content = if m.is_file() && m.len() <= 1 << 20 {
                format!("{:?}", std::fs::read(e.path()).unwrap())
            } else {
                String::new()
            };
            let what = format!(
                "{:?} {} {:o} {content}",
                m.file_type(),
                m.len(),
                m.permissions().mode()
            );
            (e.file_name(), what)
        })
        .collect();
    out.sort();
    out
}

/// Temporaries of ours (`.NAME.sparsecp-PID-N.tmp`) in `dir`.
pub fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".sparsecp-"))
        .collect()
}

/// `mount --bind SOURCE TARGET` (read-only with `ro`), unmounted on drop
/// even when the test panics.
pub struct BindMount {
    target: std::path::PathBuf,
}

impl BindMount {
    pub fn new(source: &Path, target: &Path, ro: bool) -> BindMount {
        let st = Command::new("mount")
            .arg("--bind")
            .arg(source)
            .arg(target)
            .status()
            .unwrap();
        assert!(st.success(), "mount --bind {}", source.display());
        let guard = BindMount {
            target: target.to_path_buf(),
        };
        if ro {
            let st = Command::new("mount")
                .args(["-o", "remount,bind,ro"])
                .arg(target)
                .status()
                .unwrap();
            assert!(st.success(), "remount {} read-only", target.display());
        }
        guard
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        match Command::new("umount").arg(&self.target).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("cannot unmount {}: {other:?}", self.target.display()),
        }
    }
}

/// A fully allocated file of `size` bytes (a multiple of 1 MiB): non-zero
/// data, except its last `zero_tail` bytes, written as zeros (as io.Copy
/// leaves an image's empty space). `seed` varies the data.
pub fn dense_file(path: &Path, size: u64, zero_tail: u64, seed: u64) {
    use std::io::Write;
    const MIB: u64 = 1 << 20;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; MIB as usize];
    for i in 0..size / MIB {
        let zeros = i * MIB >= size - zero_tail;
        for (j, b) in block.iter_mut().enumerate() {
            *b = if zeros {
                0
            } else {
                ((i + seed) as usize * 7 + j) as u8 % 251 + 1
            };
        }
        f.write_all(&block).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

/// Whether two files have the same bytes (compared chunk by chunk).
pub fn same_content(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}
