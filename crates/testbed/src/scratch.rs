//! A real, mounted filesystem for one test, released on drop.

use std::path::Path;

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::backing::fresh_image_path;
use crate::fs_tools::uuid_from_seed;
use crate::{fsck_clean, mkfs, BackingFile, FsKind, FsckVerdict, LoopDevice, Mount};

/// A freshly made filesystem mounted on a temporary directory: a sparse
/// backing file in [`crate::scratch_dir`], a loop device over it, `mkfs`,
/// and a mount.
///
/// Dropping it unmounts, detaches, removes the image and the mount point,
/// in that order, even when the test panics.
#[derive(Debug)]
pub struct ScratchFs {
    // Field order is drop order: mount, loop device, image, mount point.
    mount: Option<Mount>,
    device: LoopDevice,
    backing: BackingFile,
    mountpoint: TempDir,
    kind: FsKind,
    uuid: String,
    block_size: u64,
}

impl ScratchFs {
    /// Makes and mounts a `kind` filesystem of `size` bytes with default
    /// mount options.
    pub fn new(kind: FsKind, size: u64) -> anyhow::Result<ScratchFs> {
        ScratchFs::with_options(kind, size, None)
    }

    /// Makes and mounts a `kind` filesystem of `size` bytes, mounted with
    /// `mount_options` (a `mount -o` list such as `"noatime"`).
    ///
    /// Each filesystem gets its own UUID (two XFS filesystems with the same
    /// UUID cannot both be mounted) and the label `scratch`.
    pub fn with_options(
        kind: FsKind,
        size: u64,
        mount_options: Option<&str>,
    ) -> anyhow::Result<ScratchFs> {
        if size < kind.min_size() {
            bail!(
                "{kind} needs at least {} MiB, asked for {size} bytes",
                kind.min_size() >> 20
            );
        }
        let mountpoint = tempfile::Builder::new()
            .prefix(&format!("testbed-{kind}-"))
            .tempdir()
            .context("cannot create a mount point")?;
        let backing = BackingFile::create(&fresh_image_path(&format!("scratch-{kind}")), size)?;
        let device = LoopDevice::attach(backing.path())?;
        let uuid = uuid_from_seed(rand::random());
        mkfs(kind, device.path(), "scratch", &uuid)?;
        let mount = Mount::mount(device.path(), mountpoint.path(), kind, mount_options)?;
        let stat = rustix::fs::statvfs(mount.target())
            .with_context(|| format!("cannot statvfs {}", mount.target().display()))?;
        Ok(ScratchFs {
            mount: Some(mount),
            device,
            backing,
            mountpoint,
            kind,
            uuid,
            block_size: stat.f_bsize,
        })
    }

    /// The mount point: the root directory of the filesystem.
    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// What kind of filesystem this is.
    pub fn kind(&self) -> FsKind {
        self.kind
    }

    /// The loop device it lives on, like `/dev/loop3`.
    pub fn device(&self) -> &Path {
        self.device.path()
    }

    /// The image file behind the loop device.
    pub fn backing_file(&self) -> &Path {
        self.backing.path()
    }

    /// The filesystem UUID given to `mkfs`.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// Bytes an unprivileged user could still write (`f_bavail * f_frsize`).
    pub fn free_bytes(&self) -> anyhow::Result<u64> {
        let stat = rustix::fs::statvfs(self.path())
            .with_context(|| format!("cannot statvfs {}", self.path().display()))?;
        Ok(stat.f_bavail * stat.f_frsize)
    }

    /// The filesystem block size (`f_bsize`), read once after mounting.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Flushes the filesystem's dirty data and metadata to the image
    /// (`syncfs`), so that the image file reflects what was written.
    pub fn sync(&self) -> anyhow::Result<()> {
        let dir = std::fs::File::open(self.path())
            .with_context(|| format!("cannot open {}", self.path().display()))?;
        rustix::fs::syncfs(&dir).with_context(|| format!("cannot sync {}", self.path().display()))
    }

    /// Unmounts the filesystem and checks it read-only; the image is
    /// released afterwards. Use it to assert a test left the filesystem
    /// consistent.
    pub fn unmount_and_check(mut self) -> anyhow::Result<FsckVerdict> {
        drop(self.mount.take());
        fsck_clean(self.kind, self.device.path())
    }
}
