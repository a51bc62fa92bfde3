use copy_engine::{copy, Error, NoProgress, SparseMode};
use rstest::rstest;
use testbed::{FsKind, ScratchFs, GIB, MIB};

use crate::support::{self, Piece::*, Spec};

const K4: u64 = 4096;
const TIB: u64 = 1 << 40;

fn empty() -> Spec {
    Spec {
        size: 0,
        pieces: vec![],
    }
}
fn holes_around() -> Spec {
    // leading hole, data, middle hole, data, trailing hole
    Spec {
        size: 64 * MIB,
        pieces: vec![Data(8 * MIB, 3 * MIB), Data(40 * MIB, 5 * MIB + 123)],
    }
}
fn one_unaligned_byte() -> Spec {
    Spec {
        size: 10 * MIB + 77,
        pieces: vec![Data(5 * MIB + 4095, 1)],
    }
}
fn tebibyte_three_extents() -> Spec {
    Spec {
        size: TIB,
        pieces: vec![
            Data(0, K4),
            Data(TIB / 2 + 12345, 70_000),
            Data(TIB - 3 * K4, 3 * K4),
        ],
    }
}
fn alternating_20000() -> Spec {
    Spec {
        size: 40_000 * K4,
        pieces: (0..20_000).map(|i| Data(2 * i * K4, K4)).collect(),
    }
}
fn zero_filled_regions() -> Spec {
    Spec {
        size: 48 * MIB,
        pieces: vec![
            Data(0, MIB),
            Zeros(MIB, 6 * MIB),
            Data(7 * MIB + 100, 900),
            Zeros(20 * MIB, 3 * K4 + 1),
        ],
    }
}
fn unwritten_and_beyond_eof() -> Spec {
    Spec {
        size: 32 * MIB,
        pieces: vec![
            Data(0, 2 * MIB),
            Unwritten(4 * MIB, 8 * MIB),
            Data(6 * MIB, K4),
            BeyondEof(32 * MIB, 4 * MIB),
        ],
    }
}
fn over_two_gib() -> Spec {
    Spec {
        size: 2 * GIB + K4 + 1,
        pieces: vec![Data(2 * GIB - K4 - 1, 2 * K4 + 2), Data(2 * GIB + K4, 1)],
    }
}
fn dense_no_holes() -> Spec {
    Spec {
        size: 16 * MIB + 5,
        pieces: vec![Data(0, 16 * MIB + 5)],
    }
}

/// Copies one layout with every sparse mode and checks what each promises.
#[rstest]
fn every_mode_keeps_content_and_its_allocation_promise(
    #[values(FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
    #[values(
        empty(),
        holes_around(),
        one_unaligned_byte(),
        tebibyte_three_extents(),
        alternating_20000(),
        zero_filled_regions(),
        unwritten_and_beyond_eof(),
        over_two_gib(),
        dense_no_holes()
    )]
    spec: Spec,
) {
    testbed::require_fs!(kind);
    let options = (kind == FsKind::Xfs).then_some("allocsize=4k"); // no speculative preallocation
    let fs = ScratchFs::with_options(kind, 768 * MIB, options).unwrap();
    let src = fs.path().join("src.img");
    support::build(&src, &spec);
    let block = fs.block_size();
    for mode in [SparseMode::Auto, SparseMode::Always, SparseMode::Never] {
        let dst = fs.path().join(format!("dst-{mode}.img"));
        let result = copy(&src, &dst, &support::opts(mode), &NoProgress);
        if mode == SparseMode::Never && spec.size > fs.free_bytes().unwrap() {
            // A dense copy that cannot fit is refused up front, creating nothing.
            assert!(
                matches!(result, Err(Error::NoSpace { .. })),
                "{mode}: {result:?}"
            );
            assert!(!dst.exists());
            continue;
        }
        let report = result.unwrap_or_else(|e| panic!("{kind} {mode}: {e}"));
        assert_eq!(report.size, spec.size);
        support::assert_same_content(&src, &dst);
        // Compared with cp's copy below, so both measured once written back.
        let ours = match mode {
            SparseMode::Never => support::allocated(&dst),
            _ => support::settled_allocation(&dst),
        };
        // The report is the allocation when the copy ended. Writing back
        // delayed allocation (when the kernel gets to it, sooner on a busy
        // machine) adds extent-tree blocks: on ext4 a leaf per 340 extents
        // and an index block.
        let reported = report.destination_allocated.unwrap();
        let tree = block * ((support::data_ranges(&dst).len() as u64).div_ceil(340) + 1);
        assert!(
            reported <= ours && ours <= reported + tree,
            "{kind} {mode}: report tells the allocation: reported {reported}, stat {ours}"
        );
        match mode {
            SparseMode::Auto => {
                support::assert_holes_kept(&src, &dst);
                let cp = support::cp_allocation(&src, "auto");
                assert!(
                    ours <= cp,
                    "{kind} auto: ours {ours} > cp --sparse=auto {cp}"
                );
            }
            SparseMode::Always => {
                support::assert_holes_kept(&src, &dst);
                support::assert_no_zero_blocks(&dst, block);
                let cp = support::cp_allocation(&src, "always");
                assert!(
                    ours <= cp,
                    "{kind} always: ours {ours} > cp --sparse=always {cp}"
                );
            }
            SparseMode::Never => support::assert_fully_allocated(&dst),
        }
        std::fs::remove_file(&dst).unwrap();
    }
}

/// `dig` on a dense copy gives back every zero block, content unchanged.
#[rstest]
fn dig_makes_a_dense_copy_as_small_as_an_always_copy(
    #[values(FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
) {
    testbed::require_fs!(kind);
    let fs = ScratchFs::with_options(
        kind,
        512 * MIB,
        (kind == FsKind::Xfs).then_some("allocsize=4k"),
    )
    .unwrap();
    let src = fs.path().join("src.img");
    support::build(&src, &zero_filled_regions());
    let dense = fs.path().join("dense.img");
    let always = fs.path().join("always.img");
    copy(&src, &dense, &support::opts(SparseMode::Never), &NoProgress).unwrap();
    copy(
        &src,
        &always,
        &support::opts(SparseMode::Always),
        &NoProgress,
    )
    .unwrap();
    let before = support::allocated(&dense);
    let report = copy_engine::dig(&dense, &copy_engine::Cancel::new(), &NoProgress).unwrap();
    support::assert_same_content(&src, &dense);
    support::assert_no_zero_blocks(&dense, fs.block_size());
    assert_eq!(report.allocated_before, before);
    assert_eq!(report.allocated_after, support::allocated(&dense));
    assert_eq!(support::allocated(&dense), support::allocated(&always));
    assert!(
        report.reclaimed() >= 40 * MIB,
        "reclaimed only {}",
        report.reclaimed()
    );
}

/// A block device reports no holes: `auto` finds its zero blocks instead
/// (regression: every device source failed as "changed during the copy",
/// its st_size being 0).
#[test]
fn a_block_device_source_is_copied_with_zero_detection() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let image = dir.path().join("disk.img");
    support::build(
        &image,
        &Spec {
            size: 32 * MIB,
            pieces: vec![
                Data(MIB, 2 * MIB),
                Zeros(8 * MIB, 4 * MIB),
                Data(20 * MIB, 5000),
            ],
        },
    );
    let device = testbed::LoopDevice::attach(&image).unwrap();
    let dst = dir.path().join("copy.img");
    let report = copy(
        device.path(),
        &dst,
        &support::opts(SparseMode::Auto),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.source_kind, copy_engine::SourceKind::BlockDevice);
    support::assert_same_content(&image, &dst);
    assert_eq!(
        support::allocated(&dst),
        2 * MIB + 8192,
        "only the non-zero blocks are allocated"
    );
}

/// A device whose end is not a multiple of 4 KiB, nor of the mover's
/// chunks, copies to the last byte in every mode.
#[test]
fn a_block_device_ending_off_a_page_boundary_is_copied_whole() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let image = dir.path().join("disk.img");
    let size = 3 * MIB + 3 * 512;
    support::build(
        &image,
        &Spec {
            size,
            pieces: vec![Data(MIB - 512, 4096), Data(size - 1000, 1000)],
        },
    );
    let device = testbed::LoopDevice::attach(&image).unwrap();
    for mode in [SparseMode::Auto, SparseMode::Always, SparseMode::Never] {
        let dst = dir.path().join(format!("copy-{mode}.img"));
        let report = copy(device.path(), &dst, &support::opts(mode), &NoProgress).unwrap();
        assert_eq!(report.size, size, "{mode}");
        support::assert_same_content(&image, &dst);
    }
}
