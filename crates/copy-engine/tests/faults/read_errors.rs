//! A source whose reads fail with EIO at a chosen offset, served by faultfs:
//! the copy fails naming the source and the offset of the first unreadable
//! bytes, the destination stays byte for byte, and no temporary remains.
//! Bad bytes inside a hole are never read, so they cannot fail a copy.

use std::ops::Range;
use std::path::{Path, PathBuf};

use copy_engine::{copy, Error, NoProgress, SparseMode};
use faultfs::{FaultFs, FaultSpec};
use rstest::rstest;
use tempfile::TempDir;
use testbed::MIB;

use crate::support::{self, Piece::*, Spec};

/// The backing image: data, a 2 MiB hole, data.
fn image() -> Spec {
    Spec {
        size: 8 * MIB,
        pieces: vec![Data(0, 3 * MIB), Data(5 * MIB, 3 * MIB)],
    }
}

/// A backing image on disk, a faultfs mount serving it, and a destination
/// directory holding an old destination. Drops the mount first.
struct Bench {
    fs: FaultFs,
    dir: TempDir,
}

impl Bench {
    fn new(eio: Range<u64>) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        support::build(&dir.path().join("backing.img"), &image());
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::fs::write(dir.path().join("out/dst.img"), b"the old destination").unwrap();
        let fs = FaultFs::mount(
            &dir.path().join("backing.img"),
            &dir.path().join("mnt"),
            FaultSpec {
                eio_ranges: vec![eio],
            },
        )
        .unwrap();
        Bench { fs, dir }
    }

    fn backing(&self) -> PathBuf {
        self.dir.path().join("backing.img")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn dst(&self) -> PathBuf {
        self.out().join("dst.img")
    }
}

/// Whether faultfs can mount here; if not, prints why the test skips.
fn fuse_ok(test: &str) -> bool {
    let reason = match testbed::skip_reason(&[]) {
        Some(r) => Some(r),
        None => faultfs::fuse_available(),
    };
    if let Some(reason) = &reason {
        testbed::report_skip(test, reason);
    }
    reason.is_none()
}

/// The offset named by an `Error::Io` of a failed read of `src`.
fn failed_read_offset(err: &Error, src: &Path) -> u64 {
    let Error::Io { path, op, source } = err else {
        panic!("expected a read error, got {err}");
    };
    assert_eq!(path, src, "the error names the source: {err}");
    assert_eq!(source.raw_os_error(), Some(libc::EIO), "{err}");
    let offset = op
        .strip_prefix("read at offset ")
        .unwrap_or_else(|| panic!("op names the offset: {err}"));
    offset.parse().unwrap()
}

#[rstest]
#[case::first_byte(0..1)]
#[case::mid_chunk_unaligned(MIB + 12_345..MIB + 12_346)]
#[case::a_block_after_the_hole(5 * MIB + 3 * 4096..5 * MIB + 4 * 4096)]
#[case::last_byte(8 * MIB - 1..8 * MIB)]
fn a_read_error_fails_the_copy_naming_its_offset(#[case] bad: Range<u64>) {
    if !fuse_ok("faults::read_errors::a_read_error_fails_the_copy_naming_its_offset") {
        return;
    }
    let bench = Bench::new(bad.clone());
    let src = bench.fs.file();
    for mode in [SparseMode::Auto, SparseMode::Always, SparseMode::Never] {
        for dst in [bench.dst(), PathBuf::from("/dev/null")] {
            let what = format!("{mode} to {}, EIO at {bad:?}", dst.display());
            let err = copy(&src, &dst, &support::opts(mode), &NoProgress).unwrap_err();
            let named = failed_read_offset(&err, &src);
            // The first unreadable 512-byte sector, not the start of the
            // 1 MiB read that failed.
            assert!(
                named <= bad.start && bad.start - named < 512,
                "{what}: error names offset {named}: {err}"
            );
            assert_eq!(
                std::fs::read(bench.dst()).unwrap(),
                b"the old destination",
                "{what}"
            );
            assert_eq!(support::temporaries(&bench.out()), Vec::<String>::new());
        }
    }
    // A stream cannot be read twice: it names the offset where its
    // failing read started, at most one chunk before the bad bytes.
    let mut reader = std::fs::File::open(&src).unwrap();
    let err = copy_engine::copy_stream(
        &mut reader,
        &src,
        &bench.dst(),
        &support::opts(SparseMode::Auto),
        &NoProgress,
    )
    .unwrap_err();
    let named = failed_read_offset(&err, &src);
    assert!(
        named <= bad.start && bad.start - named < MIB,
        "stream: {err}"
    );
    assert_eq!(std::fs::read(bench.dst()).unwrap(), b"the old destination");
    assert_eq!(support::temporaries(&bench.out()), Vec::<String>::new());
    assert!(bench.fs.reads_failed() > 0);
}

#[test]
fn bad_bytes_inside_a_hole_are_never_read() {
    if !fuse_ok("faults::read_errors::bad_bytes_inside_a_hole_are_never_read") {
        return;
    }
    let bench = Bench::new(4 * MIB..4 * MIB + 4096);
    for mode in [SparseMode::Auto, SparseMode::Always, SparseMode::Never] {
        let dst = bench.out().join(format!("{mode}.img"));
        copy(&bench.fs.file(), &dst, &support::opts(mode), &NoProgress)
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        support::assert_same_content(&bench.backing(), &dst);
    }
    assert_eq!(bench.fs.reads_failed(), 0);
}
