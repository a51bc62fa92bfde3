use copy_engine::{copy, CopyOptions, Error, Layout, Method, NoProgress, ReflinkMode, SparseMode};
use rstest::rstest;
use testbed::{FsKind, ScratchFs, MIB};

use crate::support::{self, Piece::*, Spec};

#[rstest]
fn reflink_shares_extents_where_the_filesystem_can(
    #[values(FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
) {
    testbed::require_fs!(kind);
    let fs = ScratchFs::new(kind, 512 * MIB).unwrap();
    let src = fs.path().join("src.img");
    support::build(
        &src,
        &Spec {
            size: 64 * MIB,
            pieces: vec![
                Data(0, 8 * MIB),
                Zeros(8 * MIB, 4 * MIB),
                Data(32 * MIB, MIB),
            ],
        },
    );
    fs.sync().unwrap();
    let free = fs.free_bytes().unwrap();
    let dst = fs.path().join("auto.img");
    let report = copy(&src, &dst, &CopyOptions::default(), &NoProgress).unwrap();
    assert!(report.reflinked);
    assert_eq!(report.phases[0].method, Method::Ficlone);
    // Its holes are the source's, shared, and go uncounted.
    assert_eq!(report.hole_bytes, None, "{report}");
    support::assert_same_content(&src, &dst);
    support::assert_holes_kept(&src, &dst);
    fs.sync().unwrap();
    assert!(
        free - fs.free_bytes().unwrap() < MIB,
        "a clone allocates (almost) nothing"
    );
    assert!(
        Layout::of(&dst).unwrap().shared_extents() > 0,
        "FIEMAP shows shared extents"
    );
    // always = clone, then punch the zero blocks out of the clone.
    let always = fs.path().join("always.img");
    let report = copy(
        &src,
        &always,
        &support::opts(SparseMode::Always),
        &NoProgress,
    )
    .unwrap();
    assert!(
        report.reflinked && report.zeros_to_holes >= 4 * MIB,
        "{report}"
    );
    assert_eq!(
        report.hole_bytes,
        Some(Layout::of(&always).unwrap().hole_bytes())
    );
    support::assert_same_content(&src, &always);
    support::assert_no_zero_blocks(&always, fs.block_size());
    // A source with dirty pages: the clone writes them back first, and the
    // clone has the holes the source has once written.
    let fresh = fs.path().join("fresh.img");
    support::build(
        &fresh,
        &Spec {
            size: 16 * MIB + 5,
            pieces: vec![
                Data(MIB, 3 * MIB),
                Unwritten(8 * MIB, 2 * MIB),
                Data(16 * MIB - 7, 12),
            ],
        },
    );
    let dst = fs.path().join("fresh-copy.img");
    let report = copy(&fresh, &dst, &CopyOptions::default(), &NoProgress).unwrap();
    assert!(report.reflinked);
    support::assert_same_content(&fresh, &dst);
    support::assert_holes_kept(&fresh, &dst);
}

#[test]
fn reflink_always_on_ext4_is_a_clear_error_and_creates_nothing() {
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 64 * MIB).unwrap();
    let src = fs.path().join("src.img");
    support::build(
        &src,
        &Spec {
            size: MIB,
            pieces: vec![Data(0, 4096)],
        },
    );
    let dst = fs.path().join("dst.img");
    let opts = CopyOptions {
        reflink: ReflinkMode::Always,
        ..CopyOptions::default()
    };
    let err = copy(&src, &dst, &opts, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::ReflinkUnsupported { .. }), "{err}");
    assert!(err.to_string().contains("dst.img"));
    assert!(!dst.exists());
    let report = copy(&src, &dst, &CopyOptions::default(), &NoProgress).unwrap();
    assert!(!report.reflinked);
}

/// `--in-place` still clones: FICLONE onto the truncated destination inode,
/// whose old, larger content is gone (not left beyond the clone's end).
#[rstest]
fn in_place_clones_into_the_truncated_destination(
    #[values(FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
) {
    use std::os::unix::fs::MetadataExt;
    testbed::require_fs!(kind);
    let fs = ScratchFs::new(kind, 512 * MIB).unwrap();
    let src = fs.path().join("src.img");
    support::build(
        &src,
        &Spec {
            size: 16 * MIB,
            pieces: vec![Data(0, 4 * MIB), Data(12 * MIB, MIB)],
        },
    );
    let dst = fs.path().join("dst.img");
    support::build(
        &dst,
        &Spec {
            size: 40 * MIB,
            pieces: vec![Data(0, 40 * MIB)],
        },
    );
    let ino = std::fs::metadata(&dst).unwrap().ino();
    let opts = CopyOptions {
        in_place: true,
        ..CopyOptions::default()
    };
    let report = copy(&src, &dst, &opts, &NoProgress).unwrap();
    assert!(report.reflinked, "{report}");
    assert_eq!(std::fs::metadata(&dst).unwrap().ino(), ino, "same inode");
    support::assert_same_content(&src, &dst);
    support::assert_holes_kept(&src, &dst);
    assert!(support::temporaries(fs.path()).is_empty());
}
