//! Where a file keeps its data: the data extents SEEK_DATA/SEEK_HOLE report,
//! refined by FIEMAP's unwritten and shared flags, and the allocation
//! `st_blocks` charges for it.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, IoContext};
use crate::sys;

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
    /// Data extents in offset order, clipped to `size`, never touching.
    pub extents: Vec<Extent>,
}

impl Layout {
    /// Reads the layout of the file at `path`.
    pub fn of(path: &Path) -> Result<Layout, Error> {
        // Non-blocking: open(2) of a FIFO would wait for a writer, out of
        // SIGINT's reach; a layout needs only stat and seeks.
        let file = sys::open_read_nonblocking(path).at(path, "open")?;
        Layout::from_file(&file, path)
    }

    /// Reads the layout of an open file (the path is only for reports).
    pub fn from_file(file: &File, path: &Path) -> Result<Layout, Error> {
        Layout::read(file, path, true)
    }

    /// The layout without the unwritten and shared flags, which a copy
    /// does not need (its zero scan or dense write treats an unwritten
    /// extent's zeros like any others): one FIEMAP walk less, 5% of a copy
    /// of 20,000 extents.
    pub(crate) fn for_copy(file: &File, path: &Path) -> Result<Layout, Error> {
        Layout::read(file, path, false)
    }

    fn read(file: &File, path: &Path, flags: bool) -> Result<Layout, Error> {
        let meta = file.metadata().at(path, "stat")?;
        let ft = meta.file_type();
        let mut layout = Layout {
            path: path.to_path_buf(),
            size: 0,
            allocated: 0,
            block_size: meta.blksize().max(512),
            kind: SourceKind::Stream,
            extents: Vec::new(),
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
            layout.extents = data_extents(file, layout.size).at(path, "seek data/hole")?;
            if flags {
                mark_flags(file, &mut layout.extents).at(path, "fiemap")?;
            }
        } else {
            layout.kind = SourceKind::RegularNoHoles;
            layout.extents = whole(layout.size);
        }
        Ok(layout)
    }

    /// Bytes inside data extents.
    pub fn data_bytes(&self) -> u64 {
        self.extents.iter().map(|e| e.length).sum()
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
    pub fn unwritten_extents(&self) -> usize {
        self.extents.iter().filter(|e| e.unwritten).count()
    }

    /// How many extents carry the shared flag.
    pub fn shared_extents(&self) -> usize {
        self.extents.iter().filter(|e| e.shared).count()
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

/// Walks SEEK_DATA/SEEK_HOLE from the start to `size`.
pub(crate) fn data_extents(file: &File, size: u64) -> io::Result<Vec<Extent>> {
    let mut extents = Vec::new();
    let mut pos = 0;
    while pos < size {
        let Some(start) = sys::seek_data(file, pos)? else {
            break;
        };
        if start >= size {
            break;
        }
        let end = sys::seek_hole(file, start)?.unwrap_or(size).min(size);
        if end <= start {
            // A file shrinking under us can make the answers disagree; stop
            // here and let the copy's size check report it.
            break;
        }
        extents.push(Extent {
            offset: start,
            length: end - start,
            unwritten: false,
            shared: false,
        });
        pos = end;
    }
    Ok(extents)
}

/// Marks extents that overlap an unwritten or shared FIEMAP extent.
fn mark_flags(file: &File, extents: &mut [Extent]) -> io::Result<()> {
    let Some(last) = extents.last() else {
        return Ok(());
    };
    let Some(map) = sys::fiemap(file, last.end())? else {
        return Ok(());
    };
    let mut i = 0;
    for e in extents.iter_mut() {
        while i < map.len() && map[i].logical + map[i].length <= e.offset {
            i += 1;
        }
        let mut j = i;
        while j < map.len() && map[j].logical < e.end() {
            e.unwritten |= map[j].unwritten;
            e.shared |= map[j].shared;
            j += 1;
        }
    }
    Ok(())
}
