use std::path::Path;

use copy_engine::{copy, Layout, NoProgress, SparseMode};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestRunner};
use testbed::{FsKind, ScratchFs, MIB};

use crate::support::{self, Piece, Spec};

/// Offsets and lengths near 4 KiB boundaries, where off-by-ones live.
fn near_block() -> impl Strategy<Value = u64> {
    (
        0u64..48,
        prop_oneof![Just(0i64), Just(-1), Just(1), 0i64..4096],
    )
        .prop_map(|(blocks, d)| (blocks * 4096).saturating_add_signed(d))
}

fn piece() -> impl Strategy<Value = Piece> {
    (near_block(), 1u64..3 * 4096 + 2, 0u8..3).prop_map(|(off, len, kind)| match kind {
        0 => Piece::Data(off, len),
        1 => Piece::Zeros(off, len),
        _ => Piece::Unwritten(off / 4096 * 4096, len.div_ceil(4096) * 4096),
    })
}

fn spec() -> impl Strategy<Value = Spec> {
    (near_block(), prop::collection::vec(piece(), 0..12)).prop_map(|(size, pieces)| {
        let size = pieces
            .iter()
            .map(|p| match *p {
                Piece::Data(o, l)
                | Piece::Zeros(o, l)
                | Piece::Unwritten(o, l)
                | Piece::BeyondEof(o, l) => o + l,
            })
            .max()
            .unwrap_or(0)
            .max(size);
        Spec { size, pieces }
    })
}

/// Random layouts, every mode, then dig of the dense copy. One ext4 serves
/// all cases (owned by this test, so it is released even on failure);
/// cases come from PROPTEST_CASES (default 256), and shrunk failures are
/// kept as regression seeds in fixtures/ and replayed first.
#[test]
fn random_layouts_copy_exactly_in_every_mode() {
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 256 * MIB).expect("scratch ext4");
    let config = ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "../../fixtures/proptest-regressions/copy_engine_properties.txt",
        ))),
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&spec(), |spec| check_every_mode(fs.path(), &spec));
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn check_every_mode(root: &Path, spec: &Spec) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir_in(root).unwrap();
    let src = dir.path().join("src");
    support::build(&src, spec);
    for mode in [SparseMode::Auto, SparseMode::Always, SparseMode::Never] {
        let dst = dir.path().join(format!("dst-{mode}"));
        let report = copy(&src, &dst, &support::opts(mode), &NoProgress).unwrap();
        support::assert_same_content(&src, &dst);
        // The report's holes, whether counted or known from the writes,
        // are the ones the filesystem reports; a clone's are the source's,
        // not counted (its holes are checked below like any others).
        let holes = Layout::of(&dst).unwrap().hole_bytes();
        let counted = !(report.reflinked && mode == SparseMode::Auto);
        prop_assert_eq!(
            report.hole_bytes,
            counted.then_some(holes),
            "hole bytes of {}",
            dst.display()
        );
        match mode {
            SparseMode::Auto => {
                support::assert_holes_kept(&src, &dst);
                prop_assert!(support::allocated(&dst) <= support::cp_allocation(&src, "auto"));
            }
            SparseMode::Always => {
                support::assert_holes_kept(&src, &dst);
                support::assert_no_zero_blocks(&dst, 4096);
            }
            SparseMode::Never => support::assert_fully_allocated(&dst),
        }
    }
    let dense = dir.path().join("dst-never");
    copy_engine::dig(&dense, &copy_engine::Cancel::new(), &NoProgress).unwrap();
    support::assert_same_content(&src, &dense);
    support::assert_no_zero_blocks(&dense, 4096);
    Ok(())
}

fn persisted(file: &'static str) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..ProptestConfig::default()
    }
}

/// Dig alone over random layouts: the content never changes, no allocated
/// block stays all zeros (unwritten extents included), no hole becomes
/// data, allocation does not grow, and the report tells the allocation as
/// stat sees it.
#[test]
fn random_layouts_dig_in_place_without_changing_content() {
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 256 * MIB).expect("scratch ext4");
    let mut runner = TestRunner::new(persisted(
        "../../fixtures/proptest-regressions/copy_engine_dig_properties.txt",
    ));
    let result = runner.run(&spec(), |spec| check_dig(fs.path(), &spec));
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn check_dig(root: &Path, spec: &Spec) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir_in(root).unwrap();
    let (file, reference) = (dir.path().join("file"), dir.path().join("reference"));
    support::build(&file, spec);
    support::build(&reference, spec);
    let before = support::allocated(&file);
    let report = copy_engine::dig(&file, &copy_engine::Cancel::new(), &NoProgress).unwrap();
    support::assert_same_content(&reference, &file);
    support::assert_no_zero_blocks(&file, 4096);
    support::assert_holes_kept(&reference, &file);
    prop_assert_eq!(report.size, spec.size);
    prop_assert_eq!(report.allocated_before, before);
    prop_assert_eq!(report.allocated_after, support::allocated(&file));
    // ext4 charges the file an extent-tree block once it has more than
    // four extents, which writing back its delayed allocation (or a split)
    // can bring: allocation never grows by more than that one block.
    prop_assert!(
        report.allocated_after <= before + 4096,
        "allocated {} before dig, {} after",
        before,
        report.allocated_after
    );
    Ok(())
}

/// Content for a stream: runs of zeros and of data, lengths near 4 KiB
/// multiples, served in reads of random sizes the way a pipe delivers them.
fn stream() -> impl Strategy<Value = (Vec<u8>, usize)> {
    let run = (any::<bool>(), near_block(), any::<u8>());
    (prop::collection::vec(run, 0..10), 1usize..200_000).prop_map(|(runs, read_size)| {
        let mut bytes = Vec::new();
        for (zero, len, seed) in runs {
            let len = len.min(300_000) as usize;
            if zero {
                bytes.resize(bytes.len() + len, 0);
            } else {
                bytes.extend((0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed | 1));
            }
        }
        (bytes, read_size)
    })
}

/// A reader that hands out at most `max` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    max: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.max).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// copy_stream (standard input) over random content: exactly the bytes
/// read, and in the sparse modes every all-zero block a hole.
#[test]
fn random_streams_copy_exactly_with_zero_blocks_as_holes() {
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 256 * MIB).expect("scratch ext4");
    let mut runner = TestRunner::new(persisted(
        "../../fixtures/proptest-regressions/copy_engine_stream_properties.txt",
    ));
    let result = runner.run(&stream(), |(bytes, read_size)| {
        check_stream(fs.path(), &bytes, read_size)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn check_stream(root: &Path, bytes: &[u8], read_size: usize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir_in(root).unwrap();
    for mode in [SparseMode::Auto, SparseMode::Always, SparseMode::Never] {
        let dst = dir.path().join(format!("dst-{mode}"));
        let mut reader = Trickle {
            data: bytes,
            max: read_size,
        };
        let report = copy_engine::copy_stream(
            &mut reader,
            Path::new("-"),
            &dst,
            &support::opts(mode),
            &NoProgress,
        )
        .unwrap();
        prop_assert_eq!(report.size, bytes.len() as u64);
        prop_assert!(support::read_all(&dst) == bytes, "{} content differs", mode);
        match mode {
            SparseMode::Never => support::assert_fully_allocated(&dst),
            _ => support::assert_no_zero_blocks(&dst, 4096),
        }
    }
    Ok(())
}
