//! Building an OS image the way the installer does, and reading its tree
//! back to see whether what was written actually arrived.

use std::path::Path;

use anyhow::{bail, Context};
use testbed::{FsKind, TreeStats};

use crate::partition::MountedImage;
use crate::scenario::ImageSpec;

/// The digest ([`testbed::tree_digest`]) of the tree on the ext2 image at
/// `path`, read through a read-only mount: names, modes, links and every
/// byte of every file.
pub fn tree_digest_on_image(path: &Path) -> anyhow::Result<u64> {
    let mounted = MountedImage::mount_read_only(path, FsKind::Ext2)?;
    testbed::tree_digest(mounted.root())
}

/// What building an image gave, short of a failure the installer notices.
#[derive(Debug)]
pub struct BuiltImage {
    /// The OS tree written into it.
    pub tree: TreeStats,
    /// Its digest, read back before unmounting (from the page cache: what
    /// the writer handed to the filesystem).
    pub tree_digest: u64,
    /// Why flushing the image through its loop device failed, if it did.
    /// The installer never asks (its `umount` cannot report it), so the
    /// writes "succeeded" and it carries on; we record it.
    pub flush_error: Option<String>,
}

/// Builds an OS image at `path` like the installer: truncate, `mkfs.ext2
/// -L label`, loop device, mount, write the tree, unmount, detach.
///
/// An error means a step the installer would see failing (mkfs, mount,
/// rsync's writes). Errors the loop device met writing to COS_STATE only
/// surface from an explicit flush (`syncfs`) before unmounting, and come
/// back in [`BuiltImage::flush_error`].
pub fn build_image(path: &Path, spec: &ImageSpec, label: &str) -> anyhow::Result<BuiltImage> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.set_len(spec.size())
        .with_context(|| format!("cannot truncate {}", path.display()))?;
    drop(file);
    testbed::mkfs(FsKind::Ext2, path, label, &spec.uuid)?;
    let mounted = MountedImage::mount(path, FsKind::Ext2)?;
    let tree = testbed::generate_tree(mounted.root(), &spec.tree())
        .and_then(|tree| Ok((tree, testbed::tree_digest(mounted.root())?)));
    let flushed = mounted.sync();
    drop(mounted);
    let (tree, tree_digest) = tree.context("cannot write the OS tree")?;
    if tree.bytes != spec.tree_bytes {
        bail!(
            "wrote {} bytes of tree, wanted {}",
            tree.bytes,
            spec.tree_bytes
        );
    }
    Ok(BuiltImage {
        tree,
        tree_digest,
        flush_error: flushed.err().map(|e| format!("{e:#}")),
    })
}
