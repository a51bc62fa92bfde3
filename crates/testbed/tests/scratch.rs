use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use testbed::{read_uuid, require_fs, FsKind, ScratchFs, MIB};

use crate::common::{assert_released, loop_devices_backed_by, mounts_on};

/// Makes a filesystem, writes to it, checks it is mounted on its loop
/// device, then drops it and checks nothing is left.
fn scratch_fs_is_mounted_then_released(kind: FsKind, size: u64) {
    let fs = ScratchFs::new(kind, size).unwrap();
    assert_eq!(fs.kind(), kind);
    assert_eq!(fs.block_size(), 4096);
    let mounts = mounts_on(fs.path());
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0].fs_type, kind.name(), "{mounts:?}");
    assert_eq!(mounts[0].source, fs.device(), "{mounts:?}");
    assert_eq!(loop_devices_backed_by(fs.backing_file()).len(), 1);
    assert_eq!(read_uuid(fs.device()).unwrap().as_deref(), Some(fs.uuid()));

    let free = fs.free_bytes().unwrap();
    // btrfs keeps two copies of its metadata: a small one has a third free.
    assert!(free > size / 4 && free < size, "{free} free of {size}");
    std::fs::write(fs.path().join("hello"), vec![7u8; 1 << 20]).unwrap();
    fs.sync().unwrap();
    assert!(fs.free_bytes().unwrap() < free);

    let (mountpoint, image) = (fs.path().to_owned(), fs.backing_file().to_owned());
    drop(fs);
    assert_released(&mountpoint, &image);
}

#[test]
fn scratch_ext2_is_mounted_then_released() {
    require_fs!(FsKind::Ext2);
    scratch_fs_is_mounted_then_released(FsKind::Ext2, 64 * MIB);
}

#[test]
fn scratch_ext4_is_mounted_then_released() {
    require_fs!(FsKind::Ext4);
    scratch_fs_is_mounted_then_released(FsKind::Ext4, 64 * MIB);
}

#[test]
fn scratch_xfs_is_mounted_then_released() {
    require_fs!(FsKind::Xfs);
    scratch_fs_is_mounted_then_released(FsKind::Xfs, 300 * MIB);
}

#[test]
fn scratch_btrfs_is_mounted_then_released() {
    require_fs!(FsKind::Btrfs);
    scratch_fs_is_mounted_then_released(FsKind::Btrfs, 128 * MIB);
}

#[test]
fn scratch_fs_is_released_when_the_test_panics() {
    require_fs!(FsKind::Ext4);
    let mut seen: Option<(PathBuf, PathBuf)> = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let fs = ScratchFs::new(FsKind::Ext4, 64 * MIB).unwrap();
        seen = Some((fs.path().to_owned(), fs.backing_file().to_owned()));
        // Hold a file open, as a failing test would.
        let _open = std::fs::File::create(fs.path().join("busy")).unwrap();
        panic!("test body fails while the filesystem is mounted");
    }));
    assert!(result.is_err());
    let (mountpoint, image) = seen.expect("the closure got as far as mounting");
    assert_released(&mountpoint, &image);
}

#[test]
fn scratch_fs_passes_mount_options() {
    require_fs!(FsKind::Ext4);
    let fs = ScratchFs::with_options(FsKind::Ext4, 64 * MIB, Some("ro,noatime")).unwrap();
    let mounts = mounts_on(fs.path());
    assert!(
        mounts[0].mount_options.starts_with("ro,noatime"),
        "{mounts:?}"
    );
    let err = std::fs::write(fs.path().join("x"), b"x").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::ROFS.raw_os_error())
    );
}

#[test]
fn scratch_fs_unmounts_and_checks_clean() {
    require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 64 * MIB).unwrap();
    testbed::generate_tree(fs.path(), &testbed::TreeSpec::os_like(8 * MIB)).unwrap();
    let verdict = fs.unmount_and_check().unwrap();
    assert!(verdict.clean, "{}", verdict.output);
}

#[test]
fn scratch_fs_refuses_a_size_below_the_minimum() {
    let err = ScratchFs::new(FsKind::Xfs, 100 * MIB).unwrap_err();
    assert_eq!(
        err.to_string(),
        "xfs needs at least 300 MiB, asked for 104857600 bytes"
    );
}

/// A file left open keeps the filesystem busy: drop detaches the mount
/// lazily, and everything goes once the file is closed.
#[test]
fn scratch_fs_left_busy_is_released_when_the_file_closes() {
    require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 32 * MIB).unwrap();
    let (mountpoint, image) = (fs.path().to_owned(), fs.backing_file().to_owned());
    let open = std::fs::File::create(fs.path().join("busy")).unwrap();
    drop(fs);
    assert_eq!(mounts_on(&mountpoint), []);
    drop(open);
    assert_released(&mountpoint, &image);
}

/// The builder's label, UUID and names reach the filesystem, and the
/// image survives an unmount to be mounted again and copied.
#[test]
fn scratch_fs_built_with_label_and_uuid_mounts_again_from_its_image() {
    require_fs!(FsKind::Ext4);
    let uuid = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    let fs = ScratchFs::builder(FsKind::Ext4, 32 * MIB)
        .label("COS_STATE")
        .uuid(uuid)
        .mount_prefix("testbed-builder-")
        .image_stem("builder")
        .create()
        .unwrap();
    assert_eq!(read_uuid(fs.device()).unwrap().as_deref(), Some(uuid));
    assert_eq!(
        testbed::read_label(fs.device()).unwrap().as_deref(),
        Some("COS_STATE")
    );
    let mountpoint_name = fs
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        mountpoint_name.starts_with("testbed-builder-"),
        "{mountpoint_name}"
    );
    let image_name = fs
        .backing_file()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let pid = std::process::id();
    assert!(
        image_name.starts_with(&format!("builder-{pid}-")),
        "{image_name}"
    );
    std::fs::write(fs.path().join("kept"), b"across mounts").unwrap();

    let (first_mountpoint, path) = (fs.path().to_owned(), fs.backing_file().to_owned());
    let image = fs.unmount().unwrap();
    assert_eq!(image.path(), path);
    assert!(mounts_on(&first_mountpoint).is_empty() && !first_mountpoint.exists());
    let copy = image
        .copy_with(|from, to| {
            std::fs::copy(from, to)?;
            Ok(())
        })
        .unwrap();
    assert_ne!(copy.path(), image.path());
    let copy_path = copy.path().to_owned();
    drop(copy);
    assert!(
        !copy_path.exists(),
        "a copy is removed on drop like the original"
    );

    let again = image.mount().unwrap();
    assert_eq!(
        std::fs::read(again.path().join("kept")).unwrap(),
        b"across mounts"
    );
    assert_eq!(again.uuid(), uuid);
    let mountpoint = again.path().to_owned();
    drop(again);
    assert_released(&mountpoint, &path);
}
