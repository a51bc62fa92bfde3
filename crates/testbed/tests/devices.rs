use std::os::unix::fs::MetadataExt;

use testbed::{
    fresh_image_path, require, scratch_dir, BackingFile, FsKind, LoopDevice, ScratchFs, MIB,
};

use crate::common::{assert_detached, assert_released, loop_devices_backed_by};

#[test]
fn backing_file_is_sparse_and_removed_on_drop() {
    let path = fresh_image_path("backing");
    let file = BackingFile::create(&path, 256 * MIB).unwrap();
    let meta = std::fs::metadata(file.path()).unwrap();
    assert_eq!(meta.len(), 256 * MIB);
    assert_eq!(meta.blocks(), 0, "a fresh backing file allocates nothing");
    // An existing file is never clobbered.
    assert!(BackingFile::create(&path, MIB).is_err());
    drop(file);
    assert!(!path.exists());
}

#[test]
fn scratch_dir_is_not_tmpfs() {
    let stat = rustix::fs::statfs(scratch_dir()).unwrap();
    #[allow(clippy::unnecessary_cast)]
    let magic = stat.f_type as u64;
    assert_ne!(magic, 0x0102_1994);
}

#[test]
fn loop_device_is_detached_on_drop() {
    require!("losetup");
    let file = BackingFile::create(&fresh_image_path("loop"), 16 * MIB).unwrap();
    let device = LoopDevice::attach(file.path()).unwrap();
    assert!(
        device.path().to_string_lossy().starts_with("/dev/loop"),
        "{device:?}"
    );
    assert_eq!(loop_devices_backed_by(file.path()).len(), 1);
    let size = std::fs::File::open(device.path())
        .and_then(|mut f| std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)))
        .unwrap();
    assert_eq!(size, 16 * MIB);
    drop(device);
    assert_detached(file.path());
}

/// Threads racing for the same free loop device must all get one.
#[test]
fn scratch_filesystems_made_in_parallel_all_work() {
    testbed::require_fs!(FsKind::Ext4);
    let released: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let fs = ScratchFs::new(FsKind::Ext4, 32 * MIB).unwrap();
                    std::fs::write(fs.path().join("x"), b"x").unwrap();
                    (fs.path().to_owned(), fs.backing_file().to_owned())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (mountpoint, image) in released {
        assert_released(&mountpoint, &image);
    }
}
