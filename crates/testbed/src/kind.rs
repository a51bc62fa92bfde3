//! The filesystems the testbed knows how to make, check and mount.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::MIB;

/// A filesystem type that the testbed can create on an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// ext2: no journal, no extents; block-mapped files.
    Ext2,
    /// ext4 with the distribution's default features.
    Ext4,
    /// XFS (needs images of at least 300 MiB).
    Xfs,
    /// Btrfs (needs images of at least ~115 MiB); supports reflinks.
    Btrfs,
}

impl FsKind {
    /// Every kind, in a stable order.
    pub fn all() -> [FsKind; 4] {
        [FsKind::Ext2, FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs]
    }

    /// The name the kernel and `mount -t` use; also the `Display` form.
    pub fn name(&self) -> &'static str {
        match self {
            FsKind::Ext2 => "ext2",
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
        }
    }

    /// The `mkfs` program that creates this filesystem.
    pub fn mkfs_tool(&self) -> &'static str {
        match self {
            FsKind::Ext2 => "mkfs.ext2",
            FsKind::Ext4 => "mkfs.ext4",
            FsKind::Xfs => "mkfs.xfs",
            FsKind::Btrfs => "mkfs.btrfs",
        }
    }

    /// The program [`crate::fsck_clean`] runs to check this filesystem.
    pub fn fsck_tool(&self) -> &'static str {
        match self {
            FsKind::Ext2 | FsKind::Ext4 => "e2fsck",
            FsKind::Xfs => "xfs_repair",
            FsKind::Btrfs => "btrfs",
        }
    }

    /// The smallest image `mkfs` accepts for this kind, rounded up to a
    /// comfortable size.
    pub fn min_size(&self) -> u64 {
        match self {
            FsKind::Ext2 | FsKind::Ext4 => 8 * MIB,
            FsKind::Xfs => 300 * MIB,
            FsKind::Btrfs => 128 * MIB,
        }
    }

    /// Whether files on this kind can share extents (`FICLONE`).
    pub fn supports_reflink(&self) -> bool {
        // mkfs.xfs enables reflink by default since xfsprogs 5.1.
        matches!(self, FsKind::Xfs | FsKind::Btrfs)
    }

    /// The longest label `mkfs` accepts for this kind, in bytes.
    pub fn max_label_len(&self) -> usize {
        match self {
            FsKind::Ext2 | FsKind::Ext4 => 16,
            FsKind::Xfs => 12,
            FsKind::Btrfs => 255,
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error from parsing an unknown filesystem name into a [`FsKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFsKindError(pub String);

impl fmt::Display for ParseFsKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown filesystem {:?} (expected ext2, ext4, xfs or btrfs)",
            self.0
        )
    }
}

impl std::error::Error for ParseFsKindError {}

impl FromStr for FsKind {
    type Err = ParseFsKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FsKind::all()
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseFsKindError(s.to_owned()))
    }
}
