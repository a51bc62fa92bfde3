//! Files whose metadata misleads a copier that trusts it: data still in the
//! page cache (delayed allocation, mmap writes not yet msync'ed), unwritten
//! extents that read as zeros, allocation beyond end of file, a trailing
//! hole, sizes one byte either side of a block and of 2 GiB, a 1 TiB sparse
//! file, and files on tmpfs and squashfs. Every copy must have the
//! source's exact bytes and size, and no more allocation than promised.

use std::fs::OpenOptions;
use std::path::Path;

use copy_engine::{copy, CopyOptions, Error, Layout, NoProgress, ReflinkMode, SparseMode};
use rstest::rstest;
use testbed::{FsKind, ScratchFs, GIB, MIB};

use crate::support::{self, ExtraMount, Piece::*, Spec};

const MODES: [SparseMode; 3] = [SparseMode::Auto, SparseMode::Always, SparseMode::Never];
const K4: u64 = 4096;

/// Copies `src` into `dir` with every mode and checks content, holes and
/// allocation; returns nothing, panics naming the mode.
fn copy_every_mode(src: &Path, dir: &Path, block: u64) {
    for mode in MODES {
        let dst = dir.join(format!("copy-{mode}.img"));
        let report = copy(src, &dst, &support::opts(mode), &NoProgress)
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(report.size, std::fs::metadata(src).unwrap().len(), "{mode}");
        support::assert_same_content(src, &dst);
        match mode {
            SparseMode::Auto => support::assert_holes_kept(src, &dst),
            SparseMode::Always => {
                support::assert_holes_kept(src, &dst);
                support::assert_no_zero_blocks(&dst, block);
            }
            SparseMode::Never => support::assert_fully_allocated(&dst),
        }
        std::fs::remove_file(&dst).unwrap();
    }
}

fn scratch(kind: FsKind) -> ScratchFs {
    // allocsize=4k: no speculative preallocation muddying xfs allocation.
    ScratchFs::with_options(
        kind,
        kind.min_size().max(256 * MIB),
        (kind == FsKind::Xfs).then_some("allocsize=4k"),
    )
    .unwrap()
}

/// Written and copied at once, with no sync: the data may have no blocks
/// yet (delayed allocation), only dirty pages; FIEMAP alone would miss it.
#[rstest]
fn data_not_yet_written_back_is_copied(
    #[values(FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
) {
    testbed::require_fs!(kind);
    let fs = scratch(kind);
    let src = fs.path().join("fresh.img");
    support::build(
        &src,
        &Spec {
            size: 32 * MIB + 5,
            pieces: vec![
                Data(MIB + 1, 3 * MIB),
                Zeros(8 * MIB, MIB),
                Data(32 * MIB, 5),
            ],
        },
    );
    copy_every_mode(&src, fs.path(), fs.block_size());
}

/// Bytes stored through a shared mapping and not msync'ed live only in the
/// page cache; a copy through read(2) must see them.
#[rstest]
fn data_written_through_mmap_without_msync_is_copied(
    #[values(FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
) {
    testbed::require_fs!(kind);
    let fs = scratch(kind);
    mmap_case(fs.path(), fs.block_size());
}

fn mmap_case(dir: &Path, block: u64) {
    testbed::require!("xfs_io");
    let src = dir.join("mapped.img");
    let len = 16 * MIB;
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&src)
        .unwrap();
    f.set_len(len).unwrap();
    // (offset, length, byte) stores made through a shared mapping by
    // xfs_io, which exits without msync: the bytes sit in dirty page cache.
    // (xfs_io keeps `unsafe` mmap code out of this crate.)
    let writes: [(u64, u64, u8); 3] = [
        (MIB + 5, 27, 0x41),
        (9 * MIB, 8192, 0x77),
        (len - 1, 1, 0x21),
    ];
    let mut expected = vec![0u8; len as usize];
    let mut cmd = std::process::Command::new("xfs_io");
    cmd.arg("-c").arg(format!("mmap -rw 0 {len}"));
    for (off, n, byte) in writes {
        cmd.arg("-c").arg(format!("mwrite -S {byte:#x} {off} {n}"));
        expected[off as usize..(off + n) as usize].fill(byte);
    }
    let out = cmd.arg(&src).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "xfs_io: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for mode in MODES {
        let dst = dir.join(format!("copy-{mode}.img"));
        copy(&src, &dst, &support::opts(mode), &NoProgress).unwrap();
        assert!(
            support::read_all(&dst) == expected,
            "{mode}: mmap'ed bytes lost"
        );
        match mode {
            // What the source allocates around a store through a mapping
            // is the filesystem's choice (xfs on 6.1 and 6.12 allocates
            // the whole folio, 6.18 the block written): `auto` keeps the
            // source's allocation and must add no zeros of its own.
            SparseMode::Auto => support::assert_no_zero_blocks_beyond_source(&dst, &src, block),
            SparseMode::Always => support::assert_no_zero_blocks(&dst, block),
            SparseMode::Never => {}
        }
        std::fs::remove_file(&dst).unwrap();
    }
}

/// fallocate'd extents hold no data: they read as zeros and must not come
/// over as allocation (nor as anything but zeros).
#[rstest]
fn unwritten_extents_read_as_zeros_and_are_not_copied_as_allocation(
    #[values(FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
) {
    testbed::require_fs!(kind);
    let fs = scratch(kind);
    let src = fs.path().join("unwritten.img");
    let spec = Spec {
        size: 48 * MIB,
        pieces: vec![
            Unwritten(0, 40 * MIB),
            Data(4 * MIB, K4),
            Data(20 * MIB + 7, 100),
        ],
    };
    support::build(&src, &spec);
    let layout = Layout::of(&src).unwrap();
    assert!(layout.allocated >= 40 * MIB, "{kind}: fallocate allocated");
    copy_every_mode(&src, fs.path(), fs.block_size());
    for mode in [SparseMode::Auto, SparseMode::Always] {
        for reflink in [ReflinkMode::Never, ReflinkMode::Auto] {
            let dst = fs.path().join("dst.img");
            fs.sync().unwrap();
            let free = fs.free_bytes().unwrap();
            let opts = CopyOptions {
                sparse: mode,
                reflink,
                ..CopyOptions::default()
            };
            copy(&src, &dst, &opts, &NoProgress).unwrap();
            fs.sync().unwrap();
            let used = free.saturating_sub(fs.free_bytes().unwrap());
            // A clone may share the unwritten extents (btrfs does: its
            // st_blocks then counts them), but a copy takes only the data.
            assert!(
                used <= MIB,
                "{kind} {mode} reflink {reflink}: the copy took {used} bytes"
            );
            if reflink == ReflinkMode::Never {
                assert!(
                    support::allocated(&dst) <= 3 * fs.block_size(),
                    "{kind} {mode}: {} allocated for 2 data runs",
                    support::allocated(&dst)
                );
            }
            std::fs::remove_file(&dst).unwrap();
        }
    }
    // Dig gives the unwritten extents back, though SEEK_DATA calls them
    // holes (as long as no one has read them into the page cache) and so
    // never shows them to be read. A fresh file, never read.
    let (fresh, reference) = (fs.path().join("fresh.img"), fs.path().join("reference.img"));
    support::build(&fresh, &spec);
    support::build(&reference, &spec);
    let report = copy_engine::dig(&fresh, &copy_engine::Cancel::new(), &NoProgress).unwrap();
    support::assert_same_content(&reference, &fresh);
    assert!(
        report.allocated_after <= 3 * fs.block_size(),
        "{kind}: dig left {} of {} allocated",
        report.allocated_after,
        report.allocated_before
    );
}

/// Blocks allocated past end of file (fallocate KEEP_SIZE) are not part of
/// the file: the copy has the file's size, does not allocate them, and the
/// space preflight does not count them.
#[rstest]
fn extents_beyond_eof_are_neither_copied_nor_counted(
    #[values(FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
) {
    testbed::require_fs!(kind);
    let fs = scratch(kind);
    let src = fs.path().join("beyond.img");
    let free = fs.free_bytes().unwrap();
    // Preallocate more than half the free space past a 1 MiB file: a copy
    // that counted or copied it could not fit.
    let beyond = (free * 3 / 5) / MIB * MIB;
    support::build(
        &src,
        &Spec {
            size: MIB,
            pieces: vec![Data(0, MIB), BeyondEof(MIB, beyond)],
        },
    );
    assert!(support::allocated(&src) > beyond);
    copy_every_mode(&src, fs.path(), fs.block_size());
    let dst = fs.path().join("dst.img");
    copy(&src, &dst, &support::opts(SparseMode::Never), &NoProgress).unwrap();
    assert!(support::allocated(&dst) <= MIB + fs.block_size());
}

/// A file ending in a hole keeps its size and its trailing hole.
#[test]
fn a_file_ending_in_a_hole_keeps_its_size_and_trailing_hole() {
    let dir = tempfile::tempdir().unwrap();
    for size in [K4 + 1, 3 * K4, 10 * MIB + 1] {
        let src = dir.path().join("src.img");
        support::build(
            &src,
            &Spec {
                size,
                pieces: vec![Data(0, 100)],
            },
        );
        for mode in [SparseMode::Auto, SparseMode::Always] {
            let dst = dir.path().join("dst.img");
            copy(&src, &dst, &support::opts(mode), &NoProgress).unwrap();
            assert_eq!(std::fs::metadata(&dst).unwrap().len(), size);
            support::assert_same_content(&src, &dst);
            let holes = support::holes(&dst);
            assert_eq!(
                holes.last().map(|h| h.1),
                Some(size),
                "{size} {mode}: trailing hole {holes:?}"
            );
        }
        copy_every_mode(&src, dir.path(), K4);
    }
}

/// Sizes one byte either side of a block and of 2 GiB (where 32-bit
/// arithmetic breaks), with data in the first and last byte.
#[test]
fn sizes_one_byte_either_side_of_block_and_2_gib_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    for edge in [K4, 2 * GIB] {
        for size in [edge - 1, edge, edge + 1] {
            let src = dir.path().join("src.img");
            support::build(
                &src,
                &Spec {
                    size,
                    pieces: vec![Data(0, 1), Data(size - 1, 1)],
                },
            );
            if edge == K4 {
                copy_every_mode(&src, dir.path(), K4);
            } else {
                // Not 2 GiB of zeros on disk three times: sparse modes to a
                // file, every byte to /dev/null.
                for mode in [SparseMode::Auto, SparseMode::Always] {
                    let dst = dir.path().join("dst.img");
                    let report = copy(&src, &dst, &support::opts(mode), &NoProgress).unwrap();
                    assert_eq!(report.size, size);
                    support::assert_same_content(&src, &dst);
                    support::assert_holes_kept(&src, &dst);
                    assert!(support::allocated(&dst) <= 2 * K4, "{size} {mode}");
                }
            }
            let report = copy(
                &src,
                Path::new("/dev/null"),
                &support::opts(SparseMode::Never),
                &NoProgress,
            )
            .unwrap();
            assert_eq!(
                report.bytes_written, size,
                "every byte of {size} to /dev/null"
            );
        }
    }
}

/// A 1 TiB sparse file copies in moments, with only its data allocated; a
/// dense copy is refused up front, creating nothing.
#[test]
fn a_one_tebibyte_sparse_file_copies_only_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let tib = 1u64 << 40;
    let src = dir.path().join("tib.img");
    support::build(
        &src,
        &Spec {
            size: tib,
            pieces: vec![Data(0, K4), Data(tib / 2 + 1, 100), Data(tib - 1, 1)],
        },
    );
    let started = std::time::Instant::now();
    for mode in [SparseMode::Auto, SparseMode::Always] {
        let dst = dir.path().join(format!("{mode}.img"));
        let report = copy(&src, &dst, &support::opts(mode), &NoProgress).unwrap();
        assert_eq!(report.size, tib);
        support::assert_same_content(&src, &dst);
        support::assert_holes_kept(&src, &dst);
        assert!(
            support::allocated(&dst) <= 4 * K4,
            "{mode}: {}",
            support::allocated(&dst)
        );
    }
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
    let dst = dir.path().join("never.img");
    let err = copy(&src, &dst, &support::opts(SparseMode::Never), &NoProgress).unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert!(!dst.exists());
}

/// tmpfs answers SEEK_DATA/SEEK_HOLE from the page cache: holes, zero
/// pages, mmap'ed pages, to and from disk filesystems.
#[test]
fn files_on_tmpfs_copy_exactly_both_ways() {
    testbed::require!("mount", "umount");
    let tmpfs = ExtraMount::new("tmpfs", "size=256m", Path::new("tmpfs"), None);
    let disk = tempfile::tempdir().unwrap();
    let spec = Spec {
        size: 24 * MIB + 3,
        pieces: vec![
            Data(MIB, 2 * MIB),
            Zeros(8 * MIB, 2 * MIB),
            Data(24 * MIB, 3),
        ],
    };
    let on_tmpfs = tmpfs.path().join("src.img");
    support::build(&on_tmpfs, &spec);
    copy_every_mode(&on_tmpfs, tmpfs.path(), K4);
    copy_every_mode(&on_tmpfs, disk.path(), K4);
    let on_disk = disk.path().join("src.img");
    support::build(&on_disk, &spec);
    copy_every_mode(&on_disk, tmpfs.path(), K4);
    mmap_case(tmpfs.path(), K4);
}

/// squashfs keeps sparse files but long answered SEEK_DATA with "all data"
/// (newer kernels report its holes): either way the copy must be exact,
/// and no bigger than cp's.
#[test]
fn files_on_squashfs_which_reports_no_holes_copy_exactly() {
    testbed::require!("mksquashfs", "mount", "umount", "losetup");
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let sparse = Spec {
        size: 16 * MIB + 1,
        pieces: vec![Data(MIB, 100 * K4), Data(12 * MIB + 3, 5000)],
    };
    support::build(&tree.join("sparse.img"), &sparse);
    let zeros = Spec {
        size: 4 * MIB,
        pieces: vec![Zeros(0, 4 * MIB), Data(2 * MIB, K4)],
    };
    support::build(&tree.join("zeros.img"), &zeros);
    let image = work.path().join("tree.squashfs");
    let st = std::process::Command::new("mksquashfs")
        .arg(&tree)
        .arg(&image)
        .args(["-noappend", "-quiet", "-no-progress"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "mksquashfs");
    let device = testbed::LoopDevice::attach(&image).unwrap();
    let dev_path = device.path().to_path_buf();
    let squash = ExtraMount::new("squashfs", "ro", &dev_path, Some(device));
    let out = tempfile::tempdir().unwrap();
    for name in ["sparse.img", "zeros.img"] {
        let src = squash.path().join(name);
        let layout = Layout::of(&src).unwrap();
        eprintln!(
            "squashfs {name}: {:?}, {} extents, allocated {}",
            layout.kind,
            layout.extents.len(),
            layout.allocated
        );
        for mode in [SparseMode::Auto, SparseMode::Always, SparseMode::Never] {
            let dst = out.path().join(format!("{name}-{mode}"));
            copy(&src, &dst, &support::opts(mode), &NoProgress)
                .unwrap_or_else(|e| panic!("{name} {mode}: {e}"));
            support::assert_same_content(&tree.join(name), &dst);
            match mode {
                SparseMode::Auto => {
                    let cp = support::cp_allocation_into(&src, out.path(), "auto");
                    assert!(
                        support::allocated(&dst) <= cp,
                        "{name} auto: {} > cp {cp}",
                        support::allocated(&dst)
                    );
                }
                SparseMode::Always => support::assert_no_zero_blocks(&dst, K4),
                SparseMode::Never => support::assert_fully_allocated(&dst),
            }
        }
    }
}
