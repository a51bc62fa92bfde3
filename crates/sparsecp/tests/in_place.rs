//! Issue 16, item 2: a dense image copied over an existing dense image on
//! a filesystem without room for both. The atomic copy is refused before
//! anything is written, naming `--in-place` and `sparsecp dig`;
//! `--in-place` succeeds in the same inode. In place, ENOSPC and SIGKILL
//! leave the destination incomplete (and say so), and no temporary.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testbed::{FsKind, ScratchFs};

use crate::support::{
    code, dense_file, one_error_line, s, same_content, sparsecp, stderr, temporaries, FAILED,
    INTERRUPTED,
};

const MIB: u64 = 1 << 20;

/// `x` rounded down to whole MiB.
fn mib_floor(x: u64) -> u64 {
    x / MIB * MIB
}

#[test]
fn atomic_copy_without_room_names_in_place_and_dig_which_then_succeed() {
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 60 * MIB).unwrap();
    let free = fs.free_bytes().unwrap();
    // The old destination takes 55 % of the free space, half of it
    // written zeros; the new copy is as large: it fits only once the
    // old one's blocks are freed.
    let size = mib_floor(free * 55 / 100);
    let dst = fs.path().join("passive.img");
    dense_file(&dst, size, size / 2, 1);
    let src_dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let src = src_dir.path().join("active.img");
    dense_file(&src, size, 0, 2);
    let old = std::fs::read(&dst).unwrap();
    let ino = std::fs::metadata(&dst).unwrap().ino();

    let o = sparsecp(&["copy", "-q", s(&src), s(&dst)]);
    assert_eq!(code(&o), FAILED, "{}", stderr(&o));
    let line = one_error_line(
        &o,
        &[
            s(&dst),
            "not enough space to replace it atomically",
            "--in-place",
            &format!("sparsecp dig {}", s(&dst)),
        ],
    );
    eprintln!("refusal: {line}");
    assert!(std::fs::read(&dst).unwrap() == old, "old destination kept");
    assert!(temporaries(fs.path()).is_empty());

    let o = sparsecp(&["copy", "-q", "--in-place", s(&src), s(&dst)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(same_content(&src, &dst), "the copy equals the source");
    assert_eq!(std::fs::metadata(&dst).unwrap().ino(), ino, "same inode");
    assert!(temporaries(fs.path()).is_empty());
}

#[test]
fn in_place_without_room_even_in_place_is_refused_then_enospc_says_incomplete() {
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 60 * MIB).unwrap();
    let free = fs.free_bytes().unwrap();
    let dst = fs.path().join("passive.img");
    dense_file(&dst, mib_floor(free / 4), 0, 1);
    let old = std::fs::read(&dst).unwrap();
    // Larger than everything the filesystem had free before the old
    // destination was written.
    let src_dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let src = src_dir.path().join("active.img");
    dense_file(&src, mib_floor(free) + 8 * MIB, 0, 2);

    // The preflight counts the old blocks as free, and still refuses.
    let o = sparsecp(&["copy", "-q", "--in-place", s(&src), s(&dst)]);
    assert_eq!(code(&o), FAILED);
    let line = one_error_line(&o, &[s(&dst), "not enough space even in place", "short"]);
    eprintln!("refusal: {line}");
    assert!(std::fs::read(&dst).unwrap() == old, "old destination kept");

    // Atomic mode says it would not fit in place either.
    let o = sparsecp(&["copy", "-q", s(&src), s(&dst)]);
    assert_eq!(code(&o), FAILED);
    let line = one_error_line(&o, &[s(&dst), "short even with --in-place"]);
    eprintln!("refusal: {line}");
    assert!(std::fs::read(&dst).unwrap() == old, "old destination kept");

    // Forced, the in-place copy runs into ENOSPC: one line saying the
    // destination is now incomplete; no temporary anywhere.
    let o = sparsecp(&[
        "copy",
        "-q",
        "--in-place",
        "--no-space-check",
        s(&src),
        s(&dst),
    ]);
    assert_eq!(code(&o), FAILED);
    let line = one_error_line(
        &o,
        &[
            "No space left on device",
            &format!("{} is now incomplete", s(&dst)),
        ],
    );
    eprintln!("failure: {line}");
    assert!(temporaries(fs.path()).is_empty());
    // What survives: the old content is gone (truncated), and what was
    // written is the source's, not all of it.
    assert!(std::fs::read(&dst).unwrap() != old);
    assert!(!same_content(&src, &dst));
}

/// Starts `sparsecp copy --in-place FIFO DST` over a 64 MiB dense `dst`,
/// feeds it 8 MiB and waits until they are written, keeping the FIFO's
/// writer open so the copy waits for more. Returns the child, the bytes
/// fed and the writer.
fn in_place_copy_waiting_for_more(dir: &Path, dst: &Path) -> (Child, Vec<u8>, File) {
    dense_file(dst, 64 * MIB, 0, 1);
    let fifo = dir.join("feed");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_sparsecp"))
        .args(["copy", "-q", "--in-place", s(&fifo), s(dst)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fed: Vec<u8> = (0..8 * MIB).map(|i| (i % 251) as u8 + 1).collect();
    let mut writer = File::options().write(true).open(&fifo).unwrap();
    writer.write_all(&fed).unwrap();
    let start = Instant::now();
    while std::fs::metadata(dst).unwrap().len() < fed.len() as u64 {
        assert!(child.try_wait().unwrap().is_none(), "copy ended early");
        assert!(start.elapsed() < Duration::from_secs(60), "never copied");
        std::thread::sleep(Duration::from_millis(1));
    }
    (child, fed, writer)
}

#[test]
fn sigkill_mid_in_place_copy_leaves_a_prefix_of_the_source_and_no_temporary() {
    testbed::require!("mkfifo");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let dst = dir.path().join("passive.img");
    let (mut child, fed, writer) = in_place_copy_waiting_for_more(dir.path(), &dst);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(rustix::process::Signal::KILL.as_raw()),
        "{status}"
    );
    drop(writer);
    // What survives: the destination truncated and holding exactly what
    // the copy had received, the old content gone, no temporary.
    assert_eq!(std::fs::read(&dst).unwrap(), fed);
    assert!(temporaries(dir.path()).is_empty(), "no temporary");
}

#[test]
fn sigterm_mid_in_place_copy_exits_130_saying_the_destination_is_incomplete() {
    testbed::require!("mkfifo");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let dst = dir.path().join("passive.img");
    let (child, fed, writer) = in_place_copy_waiting_for_more(dir.path(), &dst);
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let o = child.wait_with_output().unwrap();
    drop(writer);
    assert_eq!(code(&o), INTERRUPTED, "{}", stderr(&o));
    let line = one_error_line(
        &o,
        &["interrupted", &format!("{} is now incomplete", s(&dst))],
    );
    eprintln!("interrupted: {line}");
    assert_eq!(std::fs::read(&dst).unwrap(), fed);
    assert!(temporaries(dir.path()).is_empty(), "no temporary");
}

#[test]
fn in_place_onto_a_missing_destination_still_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&src, b"content").unwrap();
    let o = sparsecp(&["copy", "-q", "--in-place", s(&src), s(&dst)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&dst).unwrap(), b"content");
    // And onto itself it is refused, nothing truncated.
    let o = sparsecp(&["copy", "-q", "--in-place", s(&src), s(&src)]);
    assert_eq!(code(&o), FAILED);
    assert_eq!(std::fs::read(&src).unwrap(), b"content");
}
