//! Where a file keeps its data: the data extents SEEK_DATA/SEEK_HOLE report,
//! refined by FIEMAP's unwritten and shared flags, and the allocation
//! `st_blocks` charges for it.
//!
//! A VM image after months of use holds 10^5 to 10^6 extents; listing them
//! all would cost 24 bytes each (24 MB at a million). So the extents are
//! walked lazily ([`walk`], [`FlaggedExtents`]), and a [`Layout`] read for a
//! copy keeps at most [`KEPT`] of them: past that it keeps the first ones
//! and a [`Counted`] summary of all (count, bytes, flags, the space they
//! need at each block size, how they merge), and the copy walks the file
//! again as it moves the bytes.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, IoContext};
use crate::packed::PackedRanges;
use crate::sys;

mod walk;
pub use walk::{walk, DataExtents, FlaggedExtents};

/// A run of bytes the filesystem reports as data (everything else up to
/// `size` is a hole and reads as zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    /// Offset in the file.
    pub offset: u64,
    /// Length in bytes (never 0).
    pub length: u64,
    /// Some of it is allocated but unwritten (fallocated): it reads as zeros.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unwritten: bool,
    /// Some of it shares blocks with another file (reflink, snapshot).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

impl Extent {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// What kind of thing a source is, which decides how holes can be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A regular file whose filesystem answers SEEK_DATA/SEEK_HOLE.
    Regular,
    /// A regular file on a filesystem that cannot report holes.
    RegularNoHoles,
    /// A block device: a known size, every byte readable, no holes reported.
    BlockDevice,
    /// A pipe, socket, terminal, character device or procfs/sysfs file:
    /// read front to back until end of file, size unknown in advance.
    Stream,
}

impl SourceKind {
    /// Whether the filesystem can tell holes apart from data for this source.
    pub fn reports_holes(self) -> bool {
        self == SourceKind::Regular
    }
}

/// The allocation map of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// The path it was read from.
    pub path: PathBuf,
    /// Logical size in bytes (for streams, 0: unknown).
    pub size: u64,
    /// Bytes charged to the file (`st_blocks * 512`); 0 for devices and streams.
    pub allocated: u64,
    /// The filesystem's block size (`st_blksize`).
    pub block_size: u64,
    /// What kind of source this is.
    pub kind: SourceKind,
    /// Data extents in offset order, clipped to `size`, never touching:
    /// all of them when `counted` is `None`, else only the first.
    pub extents: Vec<Extent>,
    /// For a file of more extents than the layout keeps, what all of them
    /// add up to (`None`: `extents` is the whole list).
    pub counted: Option<Counted>,
    /// Whether the extents were read. A copy that will try FICLONE first
    /// reads only the facts stat gives ([`Layout::unwalked`]) and walks
    /// the source only if the clone is declined; until then `extents` is
    /// empty and says nothing about holes.
    #[serde(skip)]
    pub walked: bool,
}

/// The most extents a layout read for a copy keeps (24 bytes each: 1.5
/// MiB). The install's image has about a thousand, the bench's fragmented
/// file 20,000: both keep their whole list and the plan's exact ranges.
pub const KEPT: usize = 1 << 16;

/// The most bytes of packed merged ranges a counted layout keeps
/// ([`Counted::merged`]): 4-5 bytes a range for a fragmented image, so a
/// million of them fit, and the copy's peak RSS stays under 16 MiB.
pub const MERGED_KEPT: usize = 8 << 20;

/// Block sizes [`Counted::rounded`] is kept for: 512 bytes to 64 KiB.
const ROUNDED_BLOCKS: usize = 8;

/// What all the data extents of a file add up to, gathered as they are
/// walked, for files of more extents than a [`Layout`] keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counted {
    /// Data extents.
    pub extents: u64,
    /// Bytes in them.
    pub data_bytes: u64,
    /// Extents carrying the unwritten flag (0 when flags were not read).
    pub unwritten_extents: u64,
    /// Extents carrying the shared flag (0 when flags were not read).
    pub shared_extents: u64,
    /// The bytes the extents cover once each is rounded out to blocks of
    /// `512 << i` bytes: the space a sparse copy needs on a filesystem of
    /// that block size.
    pub rounded: [u64; ROUNDED_BLOCKS],
    /// Ranges left once extents closer than the copy's merge gap
    /// (`mover::MERGE_GAP`) are merged, and the bytes they span.
    pub merged_ranges: u64,
    /// Bytes the merged ranges span.
    pub merged_bytes: u64,
    /// The merged ranges `(offset, length)` themselves, packed, while they
    /// take no more than [`MERGED_KEPT`] bytes: a copy that reads merged
    /// ranges (with a zero scan, or dense) or a dig then reads these
    /// instead of walking the file a second time, which costs 2 lseeks per
    /// extent (82 ms at 10^5 extents on ext4). `None` past that.
    #[serde(skip)]
    pub merged: Option<Arc<PackedRanges>>,
}

impl Counted {
    /// The summary of `extents` (sorted, never touching).
    pub fn of(extents: impl IntoIterator<Item = Extent>) -> Counted {
        let mut c = Counted::new();
        let mut merge_end = None;
        for e in extents {
            c.add(&e, &mut merge_end);
        }
        c
    }

    /// Nothing counted yet, merged ranges listed.
    fn new() -> Counted {
        Counted {
            merged: Some(Arc::default()),
            ..Counted::default()
        }
    }

    fn add(&mut self, e: &Extent, merge_end: &mut Option<u64>) {
        self.extents += 1;
        self.data_bytes += e.length;
        self.unwritten_extents += u64::from(e.unwritten);
        self.shared_extents += u64::from(e.shared);
        for (i, r) in self.rounded.iter_mut().enumerate() {
            let b = 512u64 << i;
            *r += e.end().div_ceil(b) * b - e.offset / b * b;
        }
        match merge_end {
            Some(end) if e.offset <= *end + crate::mover::MERGE_GAP => {
                self.merged_bytes += e.end().max(*end) - *end;
                *end = e.end().max(*end);
                if let Some(m) = self.merged.as_mut() {
                    Arc::make_mut(m).extend_last(*end);
                }
            }
            _ => {
                self.merged_ranges += 1;
                self.merged_bytes += e.length;
                match &mut self.merged {
                    Some(m) if m.packed_bytes() < MERGED_KEPT => {
                        Arc::make_mut(m).push(e.offset, e.length);
                    }
                    _ => self.merged = None,
                }
                *merge_end = Some(e.end());
            }
        }
    }
}

impl Layout {
    /// Reads the layout of the file at `path`, every extent listed.
    pub fn of(path: &Path) -> Result<Layout, Error> {
        Layout::bounded(path, usize::MAX)
    }

    /// Reads the layout of the file at `path`, keeping at most `keep`
    /// extents (and a [`Counted`] summary of all when there are more).
    pub fn bounded(path: &Path, keep: usize) -> Result<Layout, Error> {
        // Non-blocking: open(2) of a FIFO would wait for a writer, out of
        // SIGINT's reach; a layout needs only stat and seeks.
        let file = sys::open_read_nonblocking(path).at(path, "open")?;
        Layout::read(&file, path, true, keep)
    }

    /// Reads the layout of an open file (the path is only for reports).
    pub fn from_file(file: &File, path: &Path) -> Result<Layout, Error> {
        Layout::read(file, path, true, usize::MAX)
    }

    /// The layout without the unwritten and shared flags, which a copy
    /// does not need (its zero scan or dense write treats an unwritten
    /// extent's zeros like any others): one FIEMAP walk less, 5% of a copy
    /// of 20,000 extents.
    /// At most [`KEPT`] extents are kept.
    pub(crate) fn for_copy(file: &File, path: &Path) -> Result<Layout, Error> {
        Layout::read(file, path, false, KEPT)
    }

    /// Walks a layout from [`Layout::unwalked`] as [`Layout::for_copy`]
    /// reads one.
    pub(crate) fn walk_for_copy(&mut self, file: &File) -> Result<(), Error> {
        self.walk(file, false, KEPT)
    }

    /// Reads the layout with or without the FIEMAP `flags`, keeping at
    /// most `keep` extents.
    pub(crate) fn read(
        file: &File,
        path: &Path,
        flags: bool,
        keep: usize,
    ) -> Result<Layout, Error> {
        let meta = file.metadata().at(path, "stat")?;
        let mut layout = Layout::unwalked(file, &meta, path)?;
        layout.walk(file, flags, keep)?;
        Ok(layout)
    }

    /// What stat (`meta`, the open file's) and statfs tell of an open file
    /// (size, allocation, kind),
    /// its extents not yet read: for a copy that tries FICLONE before
    /// anything else (see `plan::clones_before_walking`). A block device
    /// or a file whose filesystem reports no holes is one extent, known
    /// without a walk; a stream has none.
    pub(crate) fn unwalked(
        file: &File,
        meta: &std::fs::Metadata,
        path: &Path,
    ) -> Result<Layout, Error> {
        let ft = meta.file_type();
        let mut layout = Layout {
            path: path.to_path_buf(),
            size: 0,
            allocated: 0,
            block_size: meta.blksize().max(512),
            kind: SourceKind::Stream,
            extents: Vec::new(),
            counted: None,
            walked: true,
        };
        if ft.is_block_device() {
            layout.kind = SourceKind::BlockDevice;
            layout.size = (&*file)
                .seek(SeekFrom::End(0))
                .at(path, "measure block device")?;
            layout.extents = whole(layout.size);
            return Ok(layout);
        }
        if !ft.is_file() {
            return Ok(layout);
        }
        let magic = sys::fs_magic(file).at(path, "statfs")?;
        if meta.len() == 0 && (magic == sys::magic::PROC || magic == sys::magic::SYSFS) {
            return Ok(layout); // size 0 but content: read it as a stream
        }
        layout.size = meta.len();
        layout.allocated = meta.blocks() * 512;
        if sys::seeks_holes(file) {
            layout.kind = SourceKind::Regular;
            layout.walked = false;
        } else {
            layout.kind = SourceKind::RegularNoHoles;
            layout.extents = whole(layout.size);
        }
        Ok(layout)
    }

    /// Reads the extents of a layout from [`Layout::unwalked`] (nothing to
    /// do if it has them), with or without the FIEMAP `flags`, keeping at
    /// most `keep` of them.
    pub(crate) fn walk(&mut self, file: &File, flags: bool, keep: usize) -> Result<(), Error> {
        if self.walked {
            return Ok(());
        }
        self.keep(FlaggedExtents::new(file, self.size, flags), keep)?;
        self.walked = true;
        Ok(())
    }

    /// Lists the first `keep` of `walk`'s extents, and counts them all if
    /// there are more.
    fn keep(&mut self, walk: FlaggedExtents<'_>, keep: usize) -> Result<(), Error> {
        let mut counted = Counted::new();
        let mut merge_end = None;
        let mut more = false;
        for e in walk {
            let e = e.at(&self.path, "seek data/hole or fiemap")?;
            counted.add(&e, &mut merge_end);
            if self.extents.len() < keep {
                self.extents.push(e);
            } else {
                more = true;
            }
        }
        self.counted = more.then_some(counted);
        Ok(())
    }

    /// Whether `extents` lists every data extent of the file.
    pub fn complete(&self) -> bool {
        self.counted.is_none()
    }

    /// How many data extents the file has.
    pub fn extent_count(&self) -> u64 {
        match &self.counted {
            Some(c) => c.extents,
            None => self.extents.len() as u64,
        }
    }

    /// Bytes inside data extents.
    pub fn data_bytes(&self) -> u64 {
        match &self.counted {
            Some(c) => c.data_bytes,
            None => self.extents.iter().map(|e| e.length).sum(),
        }
    }

    /// The bytes the data extents cover once each is rounded out to blocks
    /// of `block` bytes: the space a sparse copy needs on a filesystem of
    /// that block size. For a counted layout and a block size outside 512
    /// bytes to 64 KiB, a bound: one more block per extent.
    pub fn rounded_bytes(&self, block: u64) -> u64 {
        let round = |e: &Extent| e.end().div_ceil(block) * block - e.offset / block * block;
        match &self.counted {
            None => self.extents.iter().map(round).sum(),
            Some(c) => (0..ROUNDED_BLOCKS)
                .find(|&i| 512u64 << i == block)
                .map_or(c.data_bytes + c.extents * 2 * block, |i| c.rounded[i]),
        }
    }

    /// Bytes in holes (`size - data_bytes`).
    pub fn hole_bytes(&self) -> u64 {
        self.size - self.data_bytes()
    }

    /// Whether the file is sparse in the sense cp uses: it is charged for
    /// fewer blocks than its size needs.
    pub fn is_sparse(&self) -> bool {
        self.kind == SourceKind::Regular && self.allocated < self.size
    }

    /// How many extents carry the unwritten flag.
    pub fn unwritten_extents(&self) -> u64 {
        match &self.counted {
            Some(c) => c.unwritten_extents,
            None => self.extents.iter().filter(|e| e.unwritten).count() as u64,
        }
    }

    /// How many extents carry the shared flag.
    pub fn shared_extents(&self) -> u64 {
        match &self.counted {
            Some(c) => c.shared_extents,
            None => self.extents.iter().filter(|e| e.shared).count() as u64,
        }
    }
}

fn whole(size: u64) -> Vec<Extent> {
    if size == 0 {
        return Vec::new();
    }
    vec![Extent {
        offset: 0,
        length: size,
        unwritten: false,
        shared: false,
    }]
}
