//! Out of space on small ext4, xfs and btrfs: the copy fails with ENOSPC
//! naming the destination, the old destination stays byte for byte, no
//! temporary remains and every block is given back; the preflight refuses
//! before writing, naming both figures; dig on a full filesystem keeps the
//! content whatever happens.

use std::io::Write;

use copy_engine::{copy, CopyOptions, Error, NoProgress, SparseMode};
use rstest::rstest;
use testbed::{FsKind, ScratchFs, MIB};

use crate::support::{self, Piece::*, Spec};

/// The smallest filesystem of each kind the tools make.
fn small(kind: FsKind) -> u64 {
    kind.min_size().max(64 * MIB)
}

/// A source whose data alone (1.25 times the filesystem) cannot fit, with
/// holes so that every sparse mode goes through its zero-scanning path.
fn too_big(fs_size: u64) -> Spec {
    Spec {
        size: 3 * fs_size,
        pieces: vec![Data(0, fs_size * 3 / 4), Data(2 * fs_size, fs_size / 2)],
    }
}

#[rstest]
fn copy_out_of_space_fails_keeps_the_destination_and_gives_back_every_block(
    #[values(FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
) {
    testbed::require_fs!(kind);
    let size = small(kind);
    let fs = ScratchFs::new(kind, size).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let src = elsewhere.path().join("big.img");
    let spec = too_big(size);
    support::build(&src, &spec);
    let dst = fs.path().join("dst.img");
    support::build(
        &dst,
        &Spec {
            size: MIB + 3,
            pieces: vec![Data(0, MIB + 3)],
        },
    );
    let old = support::read_all(&dst);
    fs.sync().unwrap();
    let free_before = fs.free_bytes().unwrap();

    let cases = [
        (SparseMode::Auto, false),
        (SparseMode::Always, false),
        (SparseMode::Never, false),
        (SparseMode::Auto, true),
        (SparseMode::Never, true),
    ];
    for (mode, fsync) in cases {
        let what = format!("{kind} --sparse {mode} fsync={fsync}");
        // Skip the preflight so the copy really runs into ENOSPC.
        let opts = CopyOptions {
            sparse: mode,
            fsync,
            no_space_check: true,
            ..CopyOptions::default()
        };
        let err = copy(&src, &dst, &opts, &NoProgress).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{what}: {text}");
        assert!(
            text.contains(&*dst.to_string_lossy()) && text.contains("No space left"),
            "{what}: the error names the destination and the cause: {text}"
        );
        assert!(
            support::read_all(&dst) == old,
            "{what}: old destination changed"
        );
        assert_eq!(
            support::temporaries(fs.path()),
            Vec::<String>::new(),
            "{what}"
        );
        fs.sync().unwrap();
        assert_eq!(
            fs.free_bytes().unwrap(),
            free_before,
            "{what}: free bytes after the failed copy"
        );
    }

    // With the preflight, every mode is refused before a byte is written.
    for mode in [SparseMode::Auto, SparseMode::Always, SparseMode::Never] {
        let err = copy(&src, &dst, &support::opts(mode), &NoProgress).unwrap_err();
        let text = err.to_string();
        let Error::NoSpace {
            needed, available, ..
        } = err
        else {
            panic!("{kind} {mode}: expected NoSpace, got {text}")
        };
        let data: u64 = spec
            .pieces
            .iter()
            .map(|p| match p {
                Data(_, l) => *l,
                _ => 0,
            })
            .sum();
        let least = if mode == SparseMode::Never {
            spec.size
        } else {
            data
        };
        assert!(
            needed >= least && needed > available && available <= free_before,
            "{kind} {mode}: needed {needed} (at least {least}), available {available}, free {free_before}"
        );
        assert!(
            text.contains(&copy_engine::human_bytes(needed))
                && text.contains(&copy_engine::human_bytes(available))
                && text.contains(" short"),
            "{kind} {mode}: both figures and the shortfall in the message: {text}"
        );
        assert!(support::read_all(&dst) == old);
        assert_eq!(support::temporaries(fs.path()), Vec::<String>::new());
        assert_eq!(
            fs.free_bytes().unwrap(),
            free_before,
            "{kind} {mode}: nothing written"
        );
    }
}

/// Digging splits extents, which may need metadata blocks on a filesystem
/// with none left: it must either succeed or fail naming ENOSPC, and the
/// content must not change either way.
#[rstest]
fn dig_on_a_full_filesystem_keeps_the_content(
    #[values(FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs)] kind: FsKind,
) {
    testbed::require_fs!(kind);
    let fs = ScratchFs::new(kind, small(kind)).unwrap();
    // Every other 4 KiB block is written zeros: punching them splits the
    // file into 2048 extents.
    let spec = Spec {
        size: 16 * MIB,
        pieces: (0..2048)
            .flat_map(|i| [Data(2 * i * 4096, 4096), Zeros((2 * i + 1) * 4096, 4096)])
            .collect(),
    };
    let file = fs.path().join("passive.img");
    support::build(&file, &spec);
    let elsewhere = tempfile::tempdir().unwrap();
    let reference = elsewhere.path().join("reference.img");
    support::build(&reference, &spec);
    fill(fs.path());
    fs.sync().unwrap();
    let free_before = fs.free_bytes().unwrap();
    let result = copy_engine::dig(&file, &copy_engine::Cancel::new(), &NoProgress);
    eprintln!("{kind}: dig on a full filesystem: {result:?}");
    match result {
        Ok(report) => {
            assert_eq!(report.punched, 8 * MIB, "{kind}: every zero block punched");
            fs.sync().unwrap();
            let free_after = fs.free_bytes().unwrap();
            // btrfs frees an extent only when no byte of it is referenced:
            // punching every other block of a dense file frees nothing
            // there (st_blocks drops, the filesystem's free space not).
            let gave_back = match kind {
                FsKind::Btrfs => free_after >= free_before,
                _ => free_after > free_before,
            };
            assert!(
                gave_back,
                "{kind}: free {free_before} before dig, {free_after} after"
            );
        }
        Err(e) => {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{kind}: {e}");
            assert!(e.to_string().contains("passive.img"), "{e}");
        }
    }
    support::assert_same_content(&reference, &file);
}

/// Fills the filesystem at `root` until writes fail with ENOSPC.
fn fill(root: &std::path::Path) {
    let mut f = std::fs::File::create(root.join("filler")).unwrap();
    let chunk = vec![0x5a_u8; MIB as usize];
    for size in [MIB as usize, 4096, 512] {
        loop {
            match f.write(&chunk[..size]) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
    }
    match f.sync_all() {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {}
        Err(e) => panic!("filling: {e}"),
    }
}
