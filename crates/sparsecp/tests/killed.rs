//! Killed mid-copy: SIGINT, SIGTERM and SIGKILL at several points of a
//! 1 GiB copy (and of a dig). The old destination stays byte for byte;
//! SIGINT/SIGTERM exit 130 leaving no temporary; SIGKILL may leave one,
//! which the next run to that destination removes, leaving alone the
//! temporaries of live copies and files that only look like ours.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::support::{one_error_line, s, sparsecp, stderr, temporaries, INTERRUPTED};

const MIB: u64 = 1 << 20;
/// Long enough to be hit mid-way: a dense copy takes about a second.
const SIZE: u64 = 1 << 30;

/// A dense file of `size` bytes, no block all zeros.
fn dense(path: &Path, size: u64) {
    let mut f = std::io::BufWriter::new(File::create(path).unwrap());
    let mut block = vec![0u8; MIB as usize];
    for i in 0..size / MIB {
        for (j, b) in block.iter_mut().enumerate() {
            *b = ((i as usize * 7 + j) % 251) as u8 + 1;
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sparsecp"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn allocated(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.blocks() * 512)
}

/// Polls until `ready` holds, failing if the child ends first (the copy
/// was too quick to be hit) or after a minute.
fn wait_for(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the child ended ({st}) before {what}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never reached {what}"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Our temporary for `dst` in `dir`, if it exists yet.
fn temporary(dir: &Path) -> Option<std::path::PathBuf> {
    temporaries(dir).first().map(|n| dir.join(n))
}

/// Where in the copy to strike: after the temporary appears and has this
/// much allocated.
const POINTS: [u64; 3] = [0, 128 * MIB, 640 * MIB];

#[test]
fn sigint_and_sigterm_mid_copy_exit_130_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (
        dir.path().join("active.img"),
        dir.path().join("passive.img"),
    );
    dense(&src, SIZE);
    dense(&dst, 16 * MIB);
    let old = std::fs::read(&dst).unwrap();
    let strikes = POINTS
        .iter()
        .map(|&p| (Signal::INT, p))
        .chain([(Signal::TERM, 256 * MIB)]);
    for (sig, point) in strikes {
        let what = format!("{sig:?} at {} MiB", point / MIB);
        let mut child = spawn(&["copy", "-q", s(&src), s(&dst)]);
        wait_for(&mut child, &what, || {
            temporary(dir.path())
                .and_then(|t| allocated(&t))
                .is_some_and(|a| a >= point)
        });
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(INTERRUPTED),
            "{what}: {}",
            stderr(&out)
        );
        one_error_line(&out, &[s(&dst), "interrupted"]);
        assert!(
            std::fs::read(&dst).unwrap() == old,
            "{what}: destination changed"
        );
        assert_eq!(temporaries(dir.path()), Vec::<String>::new(), "{what}");
    }
}

#[test]
fn sigkill_mid_copy_keeps_the_destination_and_the_next_run_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (
        dir.path().join("active.img"),
        dir.path().join("passive.img"),
    );
    dense(&src, SIZE);
    let small = dir.path().join("small.img");
    std::fs::write(&small, b"the next run").unwrap();
    for point in POINTS {
        let what = format!("SIGKILL at {} MiB", point / MIB);
        dense(&dst, 16 * MIB);
        let old = std::fs::read(&dst).unwrap();
        let mut child = spawn(&["copy", "-q", s(&src), s(&dst)]);
        let pid = child.id();
        wait_for(&mut child, &what, || {
            temporary(dir.path())
                .and_then(|t| allocated(&t))
                .is_some_and(|a| a >= point)
        });
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{what}");
        assert!(
            std::fs::read(&dst).unwrap() == old,
            "{what}: destination changed"
        );
        // What the killed copy left: only temporaries of its own pid.
        let left = temporaries(dir.path());
        assert!(
            !left.is_empty(),
            "{what}: the temporary was there when killed"
        );
        for name in &left {
            assert!(
                name.starts_with(&format!(".passive.img.sparsecp-{pid}-")),
                "{name}"
            );
        }
        // Look-alikes the next run must not touch: a live copy's temporary
        // (this test's own pid), a foreign file, a stale temporary of
        // another destination.
        let keep = [
            format!(".passive.img.sparsecp-{}-7.tmp", std::process::id()),
            ".passive.img.sparsecp-notapid.tmp".to_string(),
            ".passive.img.partial".to_string(),
            ".other.img.sparsecp-4194305-0.tmp".to_string(),
        ];
        for name in &keep {
            std::fs::write(dir.path().join(name), b"not yours").unwrap();
        }
        let out = sparsecp(&["copy", "--json", s(&small), s(&dst)]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut removed: Vec<String> = v["copy"]["stale_removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let p = Path::new(p.as_str().unwrap());
                p.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        removed.sort();
        let mut expected = left.clone();
        expected.sort();
        assert_eq!(
            removed, expected,
            "{what}: the next run removes the dead copy's temporaries"
        );
        for name in &keep {
            let p = dir.path().join(name);
            assert_eq!(
                std::fs::read(&p).unwrap(),
                b"not yours",
                "{what}: {name} kept"
            );
            std::fs::remove_file(p).unwrap();
        }
        assert_eq!(std::fs::read(&dst).unwrap(), b"the next run");
        assert_eq!(temporaries(dir.path()), Vec::<String>::new());
    }
}

/// dig changes only allocation: killed at any point, the content is the
/// same; SIGINT exits 130.
#[test]
fn killed_mid_dig_the_content_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passive.img");
    let reference = dir.path().join("reference.img");
    // 512 MiB: 1 MiB data, 1 MiB written zeros, in turn.
    let build = |path: &Path| {
        let f = File::create(path).unwrap();
        let data = vec![0x3c_u8; MIB as usize];
        let zeros = vec![0u8; MIB as usize];
        for i in 0..512 {
            let block = if i % 2 == 0 { &data } else { &zeros };
            f.write_all_at(block, i * MIB).unwrap();
        }
    };
    build(&reference);
    for sig in [Signal::INT, Signal::KILL] {
        build(&file);
        let full = allocated(&file).unwrap();
        let mut child = spawn(&["dig", "-q", s(&file)]);
        // Strike once some zeros are punched, well before all are.
        wait_for(&mut child, "dig punched 32 MiB", || {
            allocated(&file).is_some_and(|a| a <= full - 32 * MIB)
        });
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
        let out = child.wait_with_output().unwrap();
        match sig {
            Signal::INT => {
                assert_eq!(out.status.code(), Some(INTERRUPTED), "{}", stderr(&out));
                one_error_line(&out, &[s(&file), "interrupted"]);
            }
            _ => assert_eq!(out.status.signal(), Some(9)),
        }
        let same = Command::new("cmp")
            .arg(&file)
            .arg(&reference)
            .status()
            .unwrap();
        assert!(same.success(), "{sig:?}: content changed");
    }
}
