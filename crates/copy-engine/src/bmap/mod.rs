//! bmap files: bmaptool's block maps (format 2.0), which list the blocks of
//! an image that hold data, each run of blocks with its SHA-256 (unless
//! made with `bmaptool create --no-checksum`), so that a copy reads and
//! writes only those and can check what it read.
//!
//! - [`Bmap`]: the map itself, validated on every way in (ranges sorted,
//!   apart and inside the image); [`Bmap::read`] also checks the file's
//!   own checksum, [`Bmap::write`] writes one bmaptool 3.6 accepts.
//! - `xml`: parsing and rendering the XML text.
//! - [`Bmap::create`]: the map of a file, from its allocation map
//!   (SEEK_DATA/SEEK_HOLE, like bmaptool's FIEMAP: allocated blocks are
//!   mapped even when they hold zeros), hashed range by range.
//! - `copy`: [`copy_with_bmap`](crate::copy_with_bmap), a copy of the
//!   mapped ranges only, checked against their checksums.

pub(crate) mod copy;
mod xml;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::dest::TempFile;
use crate::error::{Error, IoContext};
use crate::layout::{Extent, Layout, SourceKind};
use crate::progress::{Cancel, Progress};

/// The block size of the bmaps we write, as bmaptool's default.
pub const BMAP_BLOCK_SIZE: u64 = 4096;

/// Bytes hashed per read while creating a bmap.
const HASH_CHUNK: usize = 1 << 20;

/// A run of mapped blocks, `first..=last`, and the SHA-256 of its bytes
/// (up to the image's end: the last block of an image may be partial), if
/// the file has one (`bmaptool create --no-checksum` leaves it out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BmapRange {
    /// The first block.
    pub first: u64,
    /// The last block (inclusive, as in the file).
    pub last: u64,
    /// SHA-256 of the range's bytes.
    pub sha256: Option<[u8; 32]>,
}

/// A validated block map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    /// The image's size in bytes.
    pub image_size: u64,
    /// The size of a block in bytes.
    pub block_size: u64,
    /// The mapped ranges, sorted, apart, inside the image.
    pub ranges: Vec<BmapRange>,
}

impl Bmap {
    /// Reads and checks the bmap file at `path`: XML of format 2.0 (or its
    /// twin 1.4), checksum type sha256, the file's own checksum, ranges in
    /// order inside the image. Errors name `path` and the cause.
    pub fn read(path: &Path) -> Result<Bmap, Error> {
        let bytes = std::fs::read(path).at(path, "read bmap file")?;
        Bmap::parse(&bytes).map_err(|reason| Error::BadBmap {
            path: path.into(),
            reason,
        })
    }

    /// Parses and checks the text of a bmap file (see [`Bmap::read`]).
    pub fn parse(bytes: &[u8]) -> Result<Bmap, String> {
        xml::parse(bytes)
    }

    /// The bmap file's text, its own checksum included, as bmaptool 3.6
    /// writes and checks it.
    pub fn to_xml(&self) -> String {
        xml::render(self)
    }

    /// Writes the bmap file to `path`, replacing it atomically (a
    /// temporary beside it, renamed over it once complete).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let temp = TempFile::create(path, 0o666)?;
        let mut file = temp.file();
        file.write_all(self.to_xml().as_bytes())
            .at(temp.path(), "write bmap file")?;
        temp.commit(false)
    }

    /// Number of blocks of the image (the last may be partial).
    pub fn blocks_count(&self) -> u64 {
        self.image_size.div_ceil(self.block_size)
    }

    /// Number of mapped blocks.
    pub fn mapped_blocks(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| (r.last + 1).saturating_sub(r.first))
            .sum()
    }

    /// The `(offset, length)` bytes of a range, clipped to the image.
    pub fn byte_range(&self, r: &BmapRange) -> (u64, u64) {
        let start = r.first * self.block_size;
        let end = ((r.last + 1) * self.block_size).min(self.image_size);
        (start, end.saturating_sub(start))
    }

    /// The mapped bytes as a [`Layout`] of `path` (which the copy's plan
    /// takes): the bmap answers what SEEK_DATA/SEEK_HOLE would, so the
    /// layout is a `Regular` one. `allocated` is the image size: a bmap
    /// says nothing of allocation, and counting it dense keeps the plan
    /// from zero-scanning; the map is the map, as for bmaptool.
    pub fn layout(&self, path: &Path) -> Layout {
        Layout {
            path: path.to_path_buf(),
            size: self.image_size,
            allocated: self.image_size,
            block_size: self.block_size,
            kind: SourceKind::Regular,
            extents: self
                .ranges
                .iter()
                .map(|r| {
                    let (offset, length) = self.byte_range(r);
                    Extent {
                        offset,
                        length,
                        unwritten: false,
                        shared: false,
                    }
                })
                .collect(),
            // Every range listed: the bmap file lists them all already.
            counted: None,
            walked: true,
        }
    }

    /// The bmap of the file at `path`, in blocks of `block_size`: its data
    /// extents (SEEK_DATA/SEEK_HOLE; a block device or a file whose
    /// filesystem reports no holes is mapped whole) rounded out to blocks,
    /// each range hashed. Like bmaptool, it maps what is allocated, not
    /// what is non-zero.
    pub fn create(
        path: &Path,
        block_size: u64,
        cancel: &Cancel,
        progress: &dyn Progress,
    ) -> Result<Bmap, Error> {
        assert!(block_size > 0, "a bmap's block size is positive");
        let file = File::open(path).at(path, "open")?;
        let layout = Layout::for_copy(&file, path)?;
        if layout.kind == SourceKind::Stream {
            return Err(Error::Unsupported {
                path: path.into(),
                reason: "a bmap needs a file or block device of known size, not a stream".into(),
            });
        }
        let mut ranges: Vec<BmapRange> = Vec::new();
        for e in &layout.extents {
            let (first, last) = (e.offset / block_size, (e.end() - 1) / block_size);
            match ranges.last_mut() {
                // Extents that share or touch a block become one range.
                Some(prev) if first <= prev.last + 1 => prev.last = prev.last.max(last),
                _ => ranges.push(BmapRange {
                    first,
                    last,
                    sha256: None,
                }),
            }
        }
        let mut bmap = Bmap {
            image_size: layout.size,
            block_size,
            ranges,
        };
        let total = bmap.ranges.iter().map(|r| bmap.byte_range(r).1).sum();
        progress.start("hash", total);
        let hashed = bmap.hash_ranges(&file, path, cancel, progress);
        progress.finish();
        hashed?;
        Ok(bmap)
    }

    /// Fills in each range's SHA-256 from `file`.
    fn hash_ranges(
        &mut self,
        file: &File,
        path: &Path,
        cancel: &Cancel,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        let mut buf = vec![0u8; HASH_CHUNK];
        for i in 0..self.ranges.len() {
            let (mut offset, len) = self.byte_range(&self.ranges[i]);
            let end = offset + len;
            let mut hash = Sha256::new();
            while offset < end {
                if cancel.is_cancelled() {
                    return Err(Error::Interrupted { path: path.into() });
                }
                let n = (end - offset).min(HASH_CHUNK as u64) as usize;
                file.read_exact_at(&mut buf[..n], offset)
                    .at(path, &format!("read at offset {offset}"))?;
                hash.update(&buf[..n]);
                progress.advance(n as u64);
                offset += n as u64;
            }
            self.ranges[i].sha256 = Some(hash.finalize().into());
        }
        Ok(())
    }

    /// Checks what every way in promises: a positive block size, ranges
    /// in order, apart, each inside the image.
    fn validate(&self) -> Result<(), String> {
        if self.block_size == 0 {
            return Err("block size 0".into());
        }
        let blocks = self.blocks_count();
        let mut next = 0; // the first block the next range may start at
        for r in &self.ranges {
            let text = range_text(r);
            if r.first > r.last {
                return Err(format!("range {text} runs backwards"));
            }
            if r.last >= blocks {
                return Err(format!(
                    "range {text} lies beyond the image's {blocks} blocks"
                ));
            }
            if r.first < next {
                return Err(format!(
                    "range {text} overlaps or precedes the range before it (ranges must be sorted and apart)"
                ));
            }
            next = r.last + 1;
        }
        Ok(())
    }
}

/// A range as the file writes it: `first-last`, or `first` for one block.
pub(crate) fn range_text(r: &BmapRange) -> String {
    if r.first == r.last {
        r.first.to_string()
    } else {
        format!("{}-{}", r.first, r.last)
    }
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
