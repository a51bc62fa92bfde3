use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use copy_engine::{copy, CopyOptions, Error, NoProgress, SparseMode};
use testbed::{FsKind, ScratchFs, MIB};

use crate::support::{self, Piece::*, Spec};

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".sparsecp-"))
        .collect()
}

#[test]
fn out_of_space_keeps_the_old_destination_and_leaves_no_temporary() {
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 64 * MIB).unwrap();
    let big = fs.path().join("big.img");
    support::build(
        &big,
        &Spec {
            size: 40 * MIB,
            pieces: vec![Data(0, 40 * MIB)],
        },
    );
    let dst = fs.path().join("dst.img");
    std::fs::write(&dst, b"the old destination").unwrap();
    let free_before = fs.free_bytes().unwrap();
    // Skip the preflight so the copy really runs into ENOSPC.
    let opts = CopyOptions {
        no_space_check: true,
        ..CopyOptions::default()
    };
    let err = copy(&big, &dst, &opts, &NoProgress).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    assert!(
        err.to_string().contains("dst.img"),
        "error names the destination: {err}"
    );
    assert_eq!(std::fs::read(&dst).unwrap(), b"the old destination");
    assert!(
        leftovers(fs.path()).is_empty(),
        "{:?}",
        leftovers(fs.path())
    );
    fs.sync().unwrap();
    assert_eq!(fs.free_bytes().unwrap(), free_before, "space is given back");
    // The preflight refuses early, naming both figures.
    let err = copy(&big, &dst, &CopyOptions::default(), &NoProgress).unwrap_err();
    let Error::NoSpace {
        needed, available, ..
    } = err
    else {
        panic!("{err}")
    };
    assert!(
        needed >= 40 * MIB && available < needed,
        "{needed} {available}"
    );
    assert_eq!(std::fs::read(&dst).unwrap(), b"the old destination");
}

#[test]
fn same_file_is_refused_through_hard_and_symbolic_links() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, b"content").unwrap();
    std::fs::hard_link(&a, dir.path().join("hard")).unwrap();
    std::os::unix::fs::symlink(&a, dir.path().join("soft")).unwrap();
    for dst in [
        a.clone(),
        dir.path().join("hard"),
        dir.path().join("soft"),
        dir.path().to_path_buf(),
    ] {
        let err = copy(&a, &dst, &CopyOptions::default(), &NoProgress).unwrap_err();
        assert!(
            matches!(err, Error::SameFile { .. }),
            "{}: {err}",
            dst.display()
        );
    }
    assert_eq!(std::fs::read(&a).unwrap(), b"content");
}

#[test]
fn a_directory_destination_receives_the_source_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("active.img");
    support::build(
        &src,
        &Spec {
            size: 3 * MIB,
            pieces: vec![Data(MIB, 5000)],
        },
    );
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let report = copy(&src, &out, &CopyOptions::default(), &NoProgress).unwrap();
    assert_eq!(report.destination, out.join("active.img"));
    support::assert_same_content(&src, &out.join("active.img"));
}

#[test]
fn a_symlinked_destination_is_replaced_behind_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, b"new").unwrap();
    let real = dir.path().join("real");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    copy(&src, &link, &CopyOptions::default(), &NoProgress).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&real).unwrap(), b"new");
}

#[test]
fn non_regular_destinations_are_written_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    support::build(
        &src,
        &Spec {
            size: 5 * MIB + 3,
            pieces: vec![Data(2 * MIB, 100)],
        },
    );
    let report = copy(
        &src,
        Path::new("/dev/null"),
        &CopyOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        report.bytes_written,
        5 * MIB + 3,
        "every byte, holes included, goes to a device"
    );
    assert!(Path::new("/dev/null").exists());
    // A FIFO gets the bytes in order, zeros included.
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::read(fifo).unwrap()
    });
    copy(&src, &fifo, &CopyOptions::default(), &NoProgress).unwrap();
    assert_eq!(reader.join().unwrap(), support::read_all(&src));
}

#[test]
fn stale_temporaries_of_dead_copies_are_removed_and_others_kept() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("passive.img");
    // pid 2^22+1 is above any pid_max default: that copy is surely dead.
    let dead = dir.path().join(".passive.img.sparsecp-4194305-0.tmp");
    let alive = dir.path().join(format!(
        ".passive.img.sparsecp-{}-99.tmp",
        std::process::id()
    ));
    let foreign = dir.path().join(".passive.img.someone-else.tmp");
    for p in [&dead, &alive, &foreign] {
        std::fs::write(p, b"x").unwrap();
    }
    let src = dir.path().join("src");
    std::fs::write(&src, b"data").unwrap();
    let report = copy(&src, &dst, &CopyOptions::default(), &NoProgress).unwrap();
    assert_eq!(report.stale_removed, vec![dead.clone()]);
    assert!(!dead.exists() && alive.exists() && foreign.exists());
}

#[test]
fn the_copy_keeps_the_mode_of_the_destination_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    std::fs::write(&src, b"data").unwrap();
    std::fs::write(&dst, b"old").unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o640)).unwrap();
    copy(&src, &dst, &CopyOptions::default(), &NoProgress).unwrap();
    assert_eq!(
        std::fs::metadata(&dst).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(std::fs::read(&dst).unwrap(), b"data");
}

#[test]
fn a_read_only_filesystem_fails_cleanly() {
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 64 * MIB).unwrap();
    let dst = fs.path().join("dst");
    std::fs::write(&dst, b"keep me").unwrap();
    let src = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(src.path(), b"new").unwrap();
    fs.sync().unwrap();
    let remount = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(fs.path())
        .status()
        .unwrap();
    assert!(remount.success());
    let err = copy(src.path(), &dst, &CopyOptions::default(), &NoProgress).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert_eq!(std::fs::read(&dst).unwrap(), b"keep me");
}

#[test]
fn a_dense_copy_of_a_sparse_file_from_stdin_like_stream_makes_holes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    support::build(
        &src,
        &Spec {
            size: 8 * MIB,
            pieces: vec![Data(MIB, 4096), Data(6 * MIB, 10)],
        },
    );
    let dst = dir.path().join("dst");
    let mut reader = std::fs::File::open(&src).unwrap();
    let report = copy_engine::copy_stream(
        &mut reader,
        Path::new("-"),
        &dst,
        &support::opts(SparseMode::Auto),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.size, 8 * MIB);
    support::assert_same_content(&src, &dst);
    assert_eq!(support::allocated(&dst), 2 * 4096);
}
