//! How much COS_STATE space an upgrade's `transition.img` will take, worked
//! out before a byte of it is written: the free-space check that
//! elemental-toolkit #2103 asks for.
//!
//! The image is an ext2 filesystem written through a loop device, so
//! COS_STATE allocates exactly the image blocks ext2 writes. Those are:
//! - what `mkfs.ext2` writes: it is run with the image's size, label and
//!   UUID on a scratch file off COS_STATE, and that file's allocation is
//!   measured (superblocks, group descriptors, bitmaps, root and
//!   lost+found). Its block and inode sizes are read from the superblock.
//! - for each file of the new tree, its data blocks (zero runs included:
//!   rsync writes them) and ext2's indirect blocks (past the 12 direct
//!   pointers: one single-indirect block, then a double-indirect block and
//!   one block per `block/4` pointers, and so on);
//! - each directory's entries packed into blocks as ext2 packs them
//!   (`8 + name length`, rounded up to 4 bytes, never across a block);
//! - one block per symlink whose target does not fit in the inode (60
//!   bytes or more);
//! - the inode-table blocks the new inodes land in (inodes times the inode
//!   size: mkfs leaves untouched tables as holes).
//!
//! The COS_STATE filesystem adds its own metadata for the image file (an
//! extent tree, btrfs checksums). The report measures the estimate's error
//! against `transition.img`'s real allocation on each filesystem, and the
//! `preflight` strategy asks for [`HEADROOM_PERCENT`] more than the
//! estimate.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;
use testbed::{FsKind, TreeListing};

use crate::scenario::ImageSpec;

/// The preflight refuses unless COS_STATE has this many percent more free
/// space than the estimate: room for the COS_STATE filesystem's own
/// metadata and for the estimate's error (measured under 1%, see the
/// report).
pub const HEADROOM_PERCENT: u64 = 2;

/// What `transition.img` is expected to allocate on COS_STATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// The total: what the upgrade needs free on COS_STATE.
    pub needed: u64,
    /// Written by `mkfs.ext2` (measured on a scratch copy).
    pub mkfs: u64,
    /// File data blocks.
    pub data: u64,
    /// Indirect blocks, directory blocks, symlink blocks and inode-table
    /// blocks of the tree.
    pub tree_metadata: u64,
    /// The image's ext2 block size.
    pub block_size: u64,
}

impl Estimate {
    /// What the preflight wants free: the estimate plus the headroom.
    pub fn with_headroom(&self) -> u64 {
        self.needed + self.needed * HEADROOM_PERCENT / 100
    }

    /// The estimate's error against what an image really allocated, as a
    /// fraction (+0.01: the estimate was 1% too high).
    pub fn error_against(&self, allocated: u64) -> f64 {
        if allocated == 0 {
            return 0.0;
        }
        (self.needed as f64 - allocated as f64) / allocated as f64
    }
}

/// Estimates what an image built from `spec` will allocate, with `label`.
pub fn estimate_image(spec: &ImageSpec, label: &str) -> anyhow::Result<Estimate> {
    let (mkfs, geometry) = empty_image(spec, label)?;
    let listing = testbed::tree_listing(&spec.tree());
    Ok(estimate_tree(&listing, mkfs, geometry))
}

/// The ext2 geometry the tree's blocks are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Block size in bytes.
    pub block: u64,
    /// Inode size in bytes.
    pub inode: u64,
}

/// The estimate for `listing` in an image whose empty filesystem allocates
/// `mkfs` bytes.
pub fn estimate_tree(listing: &TreeListing, mkfs: u64, geometry: Geometry) -> Estimate {
    let block = geometry.block;
    let pointers = block / 4;
    let mut data_blocks = 0;
    let mut meta_blocks = 0;
    for (_, size) in &listing.files {
        let blocks = size.div_ceil(block);
        data_blocks += blocks;
        meta_blocks += indirect_blocks(blocks, pointers);
    }
    // Directory entries: every directory holds "." and "..", plus one
    // entry per child.
    let mut entries: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    entries.insert(PathBuf::new(), vec![1, 2, "lost+found".len()]);
    for dir in &listing.dirs {
        entries.entry(dir.clone()).or_default().extend([1, 2]);
    }
    let children = listing
        .dirs
        .iter()
        .chain(listing.files.iter().map(|(p, _)| p))
        .chain(listing.symlinks.iter().map(|(p, _)| p));
    for child in children {
        let parent = child.parent().unwrap_or(Path::new("")).to_owned();
        let name = child.file_name().unwrap_or(OsStr::new("")).len();
        entries.entry(parent).or_default().push(name);
    }
    for (dir, names) in &entries {
        let blocks = directory_blocks(names, block);
        // mkfs already wrote the root directory's first block.
        meta_blocks += if dir.as_os_str().is_empty() {
            blocks - 1
        } else {
            blocks
        };
    }
    let long_links = listing
        .symlinks
        .iter()
        .filter(|(_, target)| target.as_os_str().as_bytes().len() >= 60)
        .count() as u64;
    meta_blocks += long_links;
    let inodes = (listing.dirs.len() + listing.files.len() + listing.symlinks.len()) as u64;
    meta_blocks += (inodes * geometry.inode).div_ceil(block);
    Estimate {
        needed: mkfs + (data_blocks + meta_blocks) * block,
        mkfs,
        data: data_blocks * block,
        tree_metadata: meta_blocks * block,
        block_size: block,
    }
}

/// Indirect blocks ext2 needs to map `blocks` data blocks with `pointers`
/// block numbers per block (12 direct pointers in the inode).
pub fn indirect_blocks(blocks: u64, pointers: u64) -> u64 {
    let mut left = blocks.saturating_sub(12);
    let mut meta = 0;
    // Level L (single, double, triple indirect) maps up to pointers^L data
    // blocks through ceil(n / pointers^k) index blocks for k = 1..=L.
    let mut span = pointers;
    for level in 1..=3 {
        if left == 0 {
            break;
        }
        let here = left.min(span);
        let mut per = 1;
        for _ in 0..level {
            per *= pointers;
            meta += here.div_ceil(per);
        }
        left -= here;
        span *= pointers;
    }
    meta
}

/// Blocks a directory with entries of these name lengths takes.
fn directory_blocks(names: &[usize], block: u64) -> u64 {
    let mut blocks = 1;
    let mut used = 0;
    for &name in names {
        let len = (8 + name as u64).next_multiple_of(4);
        if used + len > block {
            blocks += 1;
            used = 0;
        }
        used += len;
    }
    blocks
}

/// Makes the empty image on a scratch file and returns its allocation and
/// geometry.
fn empty_image(spec: &ImageSpec, label: &str) -> anyhow::Result<(u64, Geometry)> {
    let backing = testbed::BackingFile::create(
        &testbed::fresh_image_path("transition-estimate"),
        spec.size(),
    )?;
    testbed::mkfs(FsKind::Ext2, backing.path(), label, &spec.uuid)?;
    let file = std::fs::File::open(backing.path())
        .with_context(|| format!("cannot open {}", backing.path().display()))?;
    let allocated = file
        .metadata()
        .with_context(|| format!("cannot stat {}", backing.path().display()))?
        .blocks()
        * 512;
    let geometry = read_geometry(&file)
        .with_context(|| format!("cannot read the superblock of {}", backing.path().display()))?;
    Ok((allocated, geometry))
}

/// Block and inode size from an ext2 superblock (at byte 1024:
/// `s_log_block_size` at +24, `s_magic` at +56, `s_inode_size` at +88).
/// Two fields of a fixed on-disk format; a tool's text output would be
/// parsed for no gain.
fn read_geometry(file: &std::fs::File) -> anyhow::Result<Geometry> {
    let mut superblock = [0u8; 1024];
    file.read_exact_at(&mut superblock, 1024)?;
    let le16 = |at: usize| u16::from_le_bytes([superblock[at], superblock[at + 1]]);
    if le16(56) != 0xef53 {
        bail!("no ext2 magic");
    }
    let log = u32::from_le_bytes(superblock[24..28].try_into().expect("4 bytes"));
    if log > 6 {
        bail!("block size 1024 << {log} is not ext2's");
    }
    Ok(Geometry {
        block: 1024 << log,
        inode: u64::from(le16(88)).max(128),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indirect_blocks_follow_ext2s_pointer_levels() {
        // 4 KiB blocks: 1024 pointers per block.
        assert_eq!(indirect_blocks(0, 1024), 0);
        assert_eq!(indirect_blocks(12, 1024), 0);
        assert_eq!(indirect_blocks(13, 1024), 1);
        assert_eq!(indirect_blocks(12 + 1024, 1024), 1);
        // Past the single-indirect block: the double-indirect block and
        // one second-level block per 1024 data blocks.
        assert_eq!(indirect_blocks(12 + 1024 + 1, 1024), 1 + 2);
        assert_eq!(indirect_blocks(12 + 1024 + 2048, 1024), 1 + 3);
        // A 1 GiB file: 262144 blocks.
        let double: u64 = 262_144 - 12 - 1024;
        assert_eq!(
            indirect_blocks(262_144, 1024),
            1 + 1 + double.div_ceil(1024)
        );
    }

    #[test]
    fn directories_pack_entries_without_crossing_blocks() {
        assert_eq!(directory_blocks(&[1, 2], 1024), 1);
        // 8 + 248 = 256 bytes each: four fill a 1 KiB block exactly.
        assert_eq!(directory_blocks(&[248; 4], 1024), 1);
        assert_eq!(directory_blocks(&[248; 5], 1024), 2);
    }

    #[test]
    fn a_tree_costs_its_blocks_and_their_metadata() {
        let listing = TreeListing {
            dirs: vec![PathBuf::from("usr")],
            files: vec![
                (PathBuf::from("usr/a"), 1),
                (PathBuf::from("usr/b"), 4096 * 13),
            ],
            symlinks: vec![(PathBuf::from("bin"), PathBuf::from("usr/bin"))],
        };
        let geometry = Geometry {
            block: 4096,
            inode: 256,
        };
        let estimate = estimate_tree(&listing, 1 << 20, geometry);
        assert_eq!(estimate.data, 14 * 4096);
        // One indirect block, usr's directory block, one inode-table block.
        assert_eq!(estimate.tree_metadata, 3 * 4096);
        assert_eq!(estimate.needed, (1 << 20) + 17 * 4096);
    }
}
