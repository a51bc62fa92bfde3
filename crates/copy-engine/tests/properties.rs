use std::path::Path;

use copy_engine::{copy, NoProgress, SparseMode};
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
        copy(&src, &dst, &support::opts(mode), &NoProgress).unwrap();
        support::assert_same_content(&src, &dst);
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
