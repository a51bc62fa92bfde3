//! The COS_STATE partition and the OS images on it, as RAII guards.
//!
//! [`CosState`] is a sparse backing file, a loop device over it, a
//! filesystem made with a fixed label and UUID, and a mount on a temporary
//! directory. [`MountedImage`] is an image file on it attached to its own
//! loop device and mounted, the way the installer fills `active.img`.
//! Field order is drop order (mount, loop device, backing file, mount
//! point), so everything is released even when a test panics; with
//! `KEEP_IMAGES=1` the backing file stays for inspection.
//!
//! [`StateSnapshot`] is a COS_STATE at rest (unmounted, detached): a run
//! that tries several copiers or upgrade strategies from the same state
//! installs once, then mounts a sparse copy of the snapshot for each try,
//! which is bit for bit the partition the installer left.

use std::path::{Path, PathBuf};

use anyhow::Context;
use copy_engine::{CopyOptions, NoProgress};
use tempfile::TempDir;
use testbed::{BackingFile, FsKind, LoopDevice, Mount};

use crate::scenario::StateSpec;

/// The directory the installer keeps its images in, under COS_STATE.
pub const IMAGE_DIR: &str = "cOS";

/// A mounted COS_STATE partition, released on drop.
#[derive(Debug)]
pub struct CosState {
    // Field order is drop order.
    mount: Mount,
    device: LoopDevice,
    backing: BackingFile,
    mountpoint: TempDir,
    fs: FsKind,
}

impl CosState {
    /// Creates the partition `spec` describes, mounts it, and creates the
    /// empty `cOS` directory.
    pub fn create(spec: &StateSpec) -> anyhow::Result<CosState> {
        let mountpoint = tempfile::Builder::new()
            .prefix("cos-state-")
            .tempdir()
            .context("cannot create a mount point for COS_STATE")?;
        let backing = BackingFile::create(&testbed::fresh_image_path("cos-state"), spec.size())?;
        let device = LoopDevice::attach(backing.path())?;
        testbed::mkfs(spec.fs, device.path(), &spec.label, &spec.uuid)?;
        let mount = Mount::mount(device.path(), mountpoint.path(), spec.fs, None)?;
        let dir = mount.target().join(IMAGE_DIR);
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(CosState {
            mount,
            device,
            backing,
            mountpoint,
            fs: spec.fs,
        })
    }

    /// Unmounts the partition and detaches its loop device, keeping the
    /// backing file as a snapshot to mount again or copy.
    pub fn unmount(self) -> anyhow::Result<StateSnapshot> {
        self.sync()?;
        let CosState {
            mount,
            device,
            backing,
            mountpoint,
            fs,
        } = self;
        drop(mount);
        drop(device);
        drop(mountpoint);
        Ok(StateSnapshot { backing, fs })
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        self.mountpoint.path()
    }

    /// `cOS/<name>` on the partition.
    pub fn image_path(&self, name: &str) -> PathBuf {
        self.root().join(IMAGE_DIR).join(name)
    }

    /// The partition's filesystem.
    pub fn fs(&self) -> FsKind {
        self.fs
    }

    /// The loop device it is on.
    pub fn device(&self) -> &Path {
        self.device.path()
    }

    /// The sparse file behind the loop device.
    pub fn backing_file(&self) -> &Path {
        self.backing.path()
    }

    /// Bytes root can still write (`f_bfree * f_frsize`): the loop driver
    /// writes image blocks with kernel privileges, so reserved blocks
    /// count. Flushes first so that delayed allocation is accounted, then
    /// reads until two reads 50 ms apart agree (at most 2 s): xfs frees an
    /// unlinked file's blocks in the background (inode GC), so right after
    /// an `rm` it still reports them as used.
    pub fn free_bytes(&self) -> anyhow::Result<u64> {
        self.sync()?;
        let read = || -> anyhow::Result<u64> {
            let stat = rustix::fs::statvfs(self.mount.target())
                .with_context(|| format!("cannot statvfs {}", self.root().display()))?;
            Ok(stat.f_bfree * stat.f_frsize)
        };
        let mut last = read()?;
        for _ in 0..40 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = read()?;
            if now == last {
                break;
            }
            last = now;
        }
        Ok(last)
    }

    /// What `df` shows for the partition (flushed first).
    pub fn df(&self) -> anyhow::Result<Df> {
        self.free_bytes()?;
        let stat = rustix::fs::statvfs(self.mount.target())
            .with_context(|| format!("cannot statvfs {}", self.root().display()))?;
        Ok(Df {
            size: stat.f_blocks * stat.f_frsize,
            used: (stat.f_blocks - stat.f_bfree) * stat.f_frsize,
            available: stat.f_bavail * stat.f_frsize,
        })
    }

    /// Flushes the partition (`syncfs`).
    pub fn sync(&self) -> anyhow::Result<()> {
        syncfs(self.root())
    }
}

/// A filesystem's size, use and room as `df` shows them: `available` is
/// what non-root users may still write (without the reserved blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Df {
    /// `f_blocks`: the filesystem's size, less its own metadata.
    pub size: u64,
    /// `f_blocks - f_bfree`.
    pub used: u64,
    /// `f_bavail`.
    pub available: u64,
}

impl std::fmt::Display for Df {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} size, {} used, {} available",
            crate::du_h(self.size),
            crate::du_h(self.used),
            crate::du_h(self.available)
        )
    }
}

/// A COS_STATE partition at rest: its backing file, unmounted and detached.
/// Removed on drop (kept with `KEEP_IMAGES=1`).
#[derive(Debug)]
pub struct StateSnapshot {
    backing: BackingFile,
    fs: FsKind,
}

impl StateSnapshot {
    /// Attaches and mounts the snapshot itself: its changes are for good.
    pub fn mount(self) -> anyhow::Result<CosState> {
        let mountpoint = tempfile::Builder::new()
            .prefix("cos-state-")
            .tempdir()
            .context("cannot create a mount point for COS_STATE")?;
        let device = LoopDevice::attach(self.backing.path())?;
        let mount = Mount::mount(device.path(), mountpoint.path(), self.fs, None)?;
        Ok(CosState {
            mount,
            device,
            backing: self.backing,
            mountpoint,
            fs: self.fs,
        })
    }

    /// A copy of the snapshot to change, keeping this one as it is: a
    /// sparse copy by copy-engine, so only the partition's used blocks are
    /// written.
    pub fn copy(&self) -> anyhow::Result<StateSnapshot> {
        let path = testbed::fresh_image_path("cos-state");
        copy_engine::copy(
            self.backing.path(),
            &path,
            &CopyOptions::auto(),
            &NoProgress,
        )
        .with_context(|| format!("cannot copy COS_STATE {}", self.backing.path().display()))?;
        Ok(StateSnapshot {
            backing: BackingFile::adopt(&path)?,
            fs: self.fs,
        })
    }
}

/// An image file attached to a loop device and mounted, released on drop.
#[derive(Debug)]
pub struct MountedImage {
    // Field order is drop order.
    mount: Mount,
    device: LoopDevice,
    mountpoint: TempDir,
}

impl MountedImage {
    /// Attaches `image` to a loop device and mounts it as `fs`.
    pub fn mount(image: &Path, fs: FsKind) -> anyhow::Result<MountedImage> {
        MountedImage::mount_with(image, fs, None)
    }

    /// Attaches `image` and mounts it read-only, to look without touching.
    pub fn mount_read_only(image: &Path, fs: FsKind) -> anyhow::Result<MountedImage> {
        MountedImage::mount_with(image, fs, Some("ro"))
    }

    fn mount_with(image: &Path, fs: FsKind, options: Option<&str>) -> anyhow::Result<MountedImage> {
        let mountpoint = tempfile::Builder::new()
            .prefix("cos-image-")
            .tempdir()
            .context("cannot create a mount point for an image")?;
        let device = LoopDevice::attach(image)?;
        let mount = Mount::mount(device.path(), mountpoint.path(), fs, options)?;
        Ok(MountedImage {
            mount,
            device,
            mountpoint,
        })
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        self.mountpoint.path()
    }

    /// The loop device.
    pub fn device(&self) -> &Path {
        self.device.path()
    }

    /// Flushes the image's filesystem through the loop device, reporting
    /// write errors the loop device met on the way (`syncfs`).
    pub fn sync(&self) -> anyhow::Result<()> {
        syncfs(self.mount.target())
    }
}

fn syncfs(dir: &Path) -> anyhow::Result<()> {
    let handle =
        std::fs::File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    rustix::fs::syncfs(&handle).with_context(|| format!("cannot sync {}", dir.display()))
}
