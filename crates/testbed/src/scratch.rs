//! A real, mounted filesystem for one test, released on drop, and the
//! same filesystem at rest ([`ScratchImage`]) to mount again or copy;
//! [`ImageMount`] mounts an image file someone else owns.

use std::path::Path;

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::backing::fresh_image_path;
use crate::fs_tools::uuid_from_seed;
use crate::mount::syncfs;
use crate::{fsck_clean, mkfs, BackingFile, FsKind, FsckVerdict, LoopDevice, Mount};

/// A freshly made filesystem mounted on a temporary directory: a sparse
/// backing file in [`crate::scratch_dir`], a loop device over it, `mkfs`,
/// and a mount.
///
/// Dropping it unmounts, detaches, removes the image and the mount point,
/// in that order, even when the test panics. [`ScratchFs::unmount`] keeps
/// the image instead.
#[derive(Debug)]
pub struct ScratchFs {
    // Field order is drop order: mount, loop device, image, mount point.
    mount: Option<Mount>,
    device: LoopDevice,
    backing: BackingFile,
    mountpoint: TempDir,
    settings: Settings,
    block_size: u64,
}

/// What a [`ScratchFs`] was made with, kept to mount its image again.
#[derive(Debug, Clone)]
struct Settings {
    kind: FsKind,
    uuid: String,
    mount_options: Option<String>,
    mount_prefix: String,
    image_stem: String,
}

/// Chooses the label, UUID, mount options and names of a [`ScratchFs`]
/// before making it; from [`ScratchFs::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `create` is called"]
pub struct ScratchFsBuilder {
    size: u64,
    label: String,
    uuid: Option<String>,
    settings: Settings,
}

impl ScratchFsBuilder {
    /// The filesystem label (default `scratch`).
    pub fn label(mut self, label: &str) -> Self {
        label.clone_into(&mut self.label);
        self
    }

    /// The filesystem UUID, like `01234567-89ab-cdef-0123-456789abcdef`
    /// (default: a random one, so that two scratch filesystems never share
    /// one: two XFS filesystems with the same UUID cannot both be mounted).
    pub fn uuid(mut self, uuid: &str) -> Self {
        self.uuid = Some(uuid.to_owned());
        self
    }

    /// A `mount -o` list such as `"noatime"` (default: none).
    pub fn mount_options(mut self, options: &str) -> Self {
        self.settings.mount_options = Some(options.to_owned());
        self
    }

    /// The prefix of the mount point's name in the temporary directory
    /// (default `testbed-<kind>-`). Leak detection ([`crate::leaks`])
    /// recognises images inside mount points named `testbed-*` and
    /// `cos-state-*` as ours.
    pub fn mount_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.settings.mount_prefix);
        self
    }

    /// The stem of the image's name in [`crate::scratch_dir`] (default
    /// `scratch-<kind>`): it becomes `<stem>-<pid>-<n>.img`, which tells
    /// leak detection whose image it is.
    pub fn image_stem(mut self, stem: &str) -> Self {
        stem.clone_into(&mut self.settings.image_stem);
        self
    }

    /// Makes the filesystem and mounts it.
    pub fn create(self) -> anyhow::Result<ScratchFs> {
        let ScratchFsBuilder {
            size,
            label,
            uuid,
            mut settings,
        } = self;
        let kind = settings.kind;
        if size < kind.min_size() {
            bail!(
                "{kind} needs at least {} MiB, asked for {size} bytes",
                kind.min_size() >> 20
            );
        }
        let mountpoint = make_mountpoint(&settings.mount_prefix)?;
        let backing = BackingFile::create(&fresh_image_path(&settings.image_stem), size)?;
        let device = LoopDevice::attach(backing.path())?;
        settings.uuid = uuid.unwrap_or_else(|| uuid_from_seed(rand::random()));
        mkfs(kind, device.path(), &label, &settings.uuid)?;
        ScratchFs::mount(backing, device, mountpoint, settings)
    }
}

impl ScratchFs {
    /// Starts describing a `kind` filesystem of `size` bytes; see
    /// [`ScratchFsBuilder`] for what can be chosen.
    pub fn builder(kind: FsKind, size: u64) -> ScratchFsBuilder {
        ScratchFsBuilder {
            size,
            label: "scratch".to_owned(),
            uuid: None,
            settings: Settings {
                kind,
                uuid: String::new(),
                mount_options: None,
                mount_prefix: format!("testbed-{kind}-"),
                image_stem: format!("scratch-{kind}"),
            },
        }
    }

    /// Makes and mounts a `kind` filesystem of `size` bytes with default
    /// mount options, labelled `scratch`, with a random UUID.
    pub fn new(kind: FsKind, size: u64) -> anyhow::Result<ScratchFs> {
        ScratchFs::builder(kind, size).create()
    }

    /// Makes and mounts a `kind` filesystem of `size` bytes, mounted with
    /// `mount_options` (a `mount -o` list such as `"noatime"`).
    pub fn with_options(
        kind: FsKind,
        size: u64,
        mount_options: Option<&str>,
    ) -> anyhow::Result<ScratchFs> {
        let builder = ScratchFs::builder(kind, size);
        match mount_options {
            Some(options) => builder.mount_options(options),
            None => builder,
        }
        .create()
    }

    fn mount(
        backing: BackingFile,
        device: LoopDevice,
        mountpoint: TempDir,
        settings: Settings,
    ) -> anyhow::Result<ScratchFs> {
        let mount = Mount::mount(
            device.path(),
            mountpoint.path(),
            settings.kind,
            settings.mount_options.as_deref(),
        )?;
        let stat = rustix::fs::statvfs(mount.target())
            .with_context(|| format!("cannot statvfs {}", mount.target().display()))?;
        Ok(ScratchFs {
            mount: Some(mount),
            device,
            backing,
            mountpoint,
            settings,
            block_size: stat.f_bsize,
        })
    }

    /// The mount point: the root directory of the filesystem.
    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// What kind of filesystem this is.
    pub fn kind(&self) -> FsKind {
        self.settings.kind
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
        &self.settings.uuid
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
    /// ([`syncfs`]), so that the image file reflects what was written.
    pub fn sync(&self) -> anyhow::Result<()> {
        syncfs(self.path())
    }

    /// Unmounts the filesystem and checks it read-only; the image is
    /// released afterwards. Use it to assert a test left the filesystem
    /// consistent.
    pub fn unmount_and_check(mut self) -> anyhow::Result<FsckVerdict> {
        drop(self.mount.take());
        fsck_clean(self.settings.kind, self.device.path())
    }

    /// Flushes, unmounts, detaches the loop device and removes the mount
    /// point, keeping the image to mount again or copy.
    pub fn unmount(self) -> anyhow::Result<ScratchImage> {
        self.sync()?;
        let ScratchFs {
            mount,
            device,
            backing,
            mountpoint,
            settings,
            block_size: _,
        } = self;
        drop(mount);
        drop(device);
        drop(mountpoint);
        Ok(ScratchImage { backing, settings })
    }
}

/// The image of an unmounted [`ScratchFs`]: its backing file, detached.
/// Removed on drop (kept with `KEEP_IMAGES=1`).
#[derive(Debug)]
pub struct ScratchImage {
    backing: BackingFile,
    settings: Settings,
}

impl ScratchImage {
    /// The image file.
    pub fn path(&self) -> &Path {
        self.backing.path()
    }

    /// Attaches and mounts the image again, with the mount options and
    /// mount point prefix it was made with.
    pub fn mount(self) -> anyhow::Result<ScratchFs> {
        let mountpoint = make_mountpoint(&self.settings.mount_prefix)?;
        let device = LoopDevice::attach(self.backing.path())?;
        ScratchFs::mount(self.backing, device, mountpoint, self.settings)
    }

    /// A copy of the image, under a fresh name with the same stem, made by
    /// `copy(from, to)` (which creates `to`); this image stays as it is.
    /// The copy has the same UUID, so it must not be mounted beside this
    /// one where the filesystem forbids that (XFS).
    pub fn copy_with(
        &self,
        copy: impl FnOnce(&Path, &Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<ScratchImage> {
        let path = fresh_image_path(&self.settings.image_stem);
        let copied = copy(self.path(), &path);
        if let Err(e) = copied {
            // Whatever the copy left under our fresh name is ours to remove.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(ScratchImage {
            backing: BackingFile::adopt(&path)?,
            settings: self.settings.clone(),
        })
    }
}

fn make_mountpoint(prefix: &str) -> anyhow::Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .with_context(|| {
            format!("cannot create a mount point {prefix}* in the temporary directory")
        })
}

/// An existing image file attached to a loop device and mounted on a
/// temporary directory: unmounted, detached and the mount point removed
/// on drop, in that order. The image itself is not ours: it stays.
#[derive(Debug)]
pub struct ImageMount {
    // Field order is drop order: mount, loop device, mount point.
    mount: Mount,
    device: LoopDevice,
    mountpoint: TempDir,
}

impl ImageMount {
    /// Attaches `image` and mounts it as `kind` with `mount_options` (a
    /// `mount -o` list such as `"ro"`) on a fresh directory named
    /// `<mount_prefix>*` in the temporary directory.
    pub fn mount(
        image: &Path,
        kind: FsKind,
        mount_options: Option<&str>,
        mount_prefix: &str,
    ) -> anyhow::Result<ImageMount> {
        let mountpoint = make_mountpoint(mount_prefix)?;
        let device = LoopDevice::attach(image)?;
        let mount = Mount::mount(device.path(), mountpoint.path(), kind, mount_options)?;
        Ok(ImageMount {
            mount,
            device,
            mountpoint,
        })
    }

    /// The mount point: the root directory of the image's filesystem.
    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// The loop device, like `/dev/loop3`.
    pub fn device(&self) -> &Path {
        self.device.path()
    }

    /// Flushes the image's filesystem through the loop device ([`syncfs`]),
    /// reporting write errors the loop device met on the way.
    pub fn sync(&self) -> anyhow::Result<()> {
        syncfs(self.mount.target())
    }
}
