//! The COS_STATE partition and the OS images on it, as RAII guards.
//!
//! [`CosState`] is the testbed's [`ScratchFs`] (a sparse backing file, a
//! loop device over it, a filesystem, a mount on a temporary directory)
//! made with the scenario's label and UUID. [`MountedImage`] is an image
//! file on it attached to its own loop device and mounted, the way the
//! installer fills `active.img`. Field order is drop order (mount, loop
//! device, backing file, mount point), so everything is released even when
//! a test panics; with `KEEP_IMAGES=1` the backing file stays for
//! inspection.
//!
//! [`StateSnapshot`] is a COS_STATE at rest (unmounted, detached): a run
//! that tries several copiers or upgrade strategies from the same state
//! installs once, then mounts a sparse copy of the snapshot for each try,
//! which is bit for bit the partition the installer left.

use std::path::{Path, PathBuf};

use anyhow::Context;
use copy_engine::{CopyOptions, NoProgress};
use testbed::{FsKind, ImageMount, ScratchFs, ScratchImage};

use crate::scenario::StateSpec;

/// The directory the installer keeps its images in, under COS_STATE.
pub const IMAGE_DIR: &str = "cOS";

/// A mounted COS_STATE partition, released on drop: a [`ScratchFs`] with
/// the scenario's label and UUID, its image named `cos-state-<pid>-<n>.img`
/// in the testbed's scratch directory and its mount point `cos-state-*`
/// (the names the testbed's leak detection knows).
#[derive(Debug)]
pub struct CosState {
    fs: ScratchFs,
}

impl CosState {
    /// Creates the partition `spec` describes, mounts it, and creates the
    /// empty `cOS` directory.
    pub fn create(spec: &StateSpec) -> anyhow::Result<CosState> {
        let fs = ScratchFs::builder(spec.fs, spec.size())
            .label(&spec.label)
            .uuid(&spec.uuid)
            .mount_prefix("cos-state-")
            .image_stem("cos-state")
            .create()?;
        let dir = fs.path().join(IMAGE_DIR);
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(CosState { fs })
    }

    /// Unmounts the partition and detaches its loop device, keeping the
    /// backing file as a snapshot to mount again or copy.
    pub fn unmount(self) -> anyhow::Result<StateSnapshot> {
        Ok(StateSnapshot {
            image: self.fs.unmount()?,
        })
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        self.fs.path()
    }

    /// `cOS/<name>` on the partition.
    pub fn image_path(&self, name: &str) -> PathBuf {
        self.root().join(IMAGE_DIR).join(name)
    }

    /// Bytes root can still write (`f_bfree * f_frsize`): the loop driver
    /// writes image blocks with kernel privileges, so reserved blocks
    /// count.
    pub fn free_bytes(&self) -> anyhow::Result<u64> {
        let stat = self.settled_statvfs()?;
        Ok(stat.f_bfree * stat.f_frsize)
    }

    /// What `df` shows for the partition.
    pub fn df(&self) -> anyhow::Result<Df> {
        let stat = self.settled_statvfs()?;
        Ok(Df {
            size: stat.f_blocks * stat.f_frsize,
            used: (stat.f_blocks - stat.f_bfree) * stat.f_frsize,
            available: stat.f_bavail * stat.f_frsize,
        })
    }

    /// `statvfs` once the counts are final: flushed first so that delayed
    /// allocation is accounted, then read until two reads 50 ms apart
    /// agree on the free blocks (at most 2 s): xfs frees an unlinked
    /// file's blocks in the background (inode GC), so right after an `rm`
    /// it still reports them as used.
    fn settled_statvfs(&self) -> anyhow::Result<rustix::fs::StatVfs> {
        self.sync()?;
        let read = || {
            rustix::fs::statvfs(self.root())
                .with_context(|| format!("cannot statvfs {}", self.root().display()))
        };
        let mut last = read()?;
        for _ in 0..40 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = read()?;
            if now.f_bfree == last.f_bfree {
                return Ok(now);
            }
            last = now;
        }
        Ok(last)
    }

    /// Flushes the partition (`syncfs`).
    pub fn sync(&self) -> anyhow::Result<()> {
        self.fs.sync()
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
    image: ScratchImage,
}

impl StateSnapshot {
    /// Attaches and mounts the snapshot itself: its changes are for good.
    pub fn mount(self) -> anyhow::Result<CosState> {
        Ok(CosState {
            fs: self.image.mount()?,
        })
    }

    /// A copy of the snapshot to change, keeping this one as it is: a
    /// sparse copy by copy-engine, so only the partition's used blocks are
    /// written.
    pub fn copy(&self) -> anyhow::Result<StateSnapshot> {
        let image = self.image.copy_with(|from, to| {
            copy_engine::copy(from, to, &CopyOptions::auto(), &NoProgress)
                .with_context(|| format!("cannot copy COS_STATE {}", from.display()))?;
            Ok(())
        })?;
        Ok(StateSnapshot { image })
    }
}

/// An image file attached to a loop device and mounted, released on drop
/// (the testbed's [`ImageMount`], its mount point named `cos-image-*`).
#[derive(Debug)]
pub struct MountedImage {
    mount: ImageMount,
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
        Ok(MountedImage {
            mount: ImageMount::mount(image, fs, options, "cos-image-")?,
        })
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        self.mount.path()
    }

    /// Flushes the image's filesystem through the loop device, reporting
    /// write errors the loop device met on the way (`syncfs`).
    pub fn sync(&self) -> anyhow::Result<()> {
        self.mount.sync()
    }
}
