//! What an operation actually did, for people (`Display`) and programs
//! (`Serialize`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::human::human_bytes as bytes;
use crate::layout::SourceKind;
use crate::options::SparseMode;
use crate::plan::HoleMethod;

/// A step of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Sharing the source's extents (FICLONE).
    Clone,
    /// Moving the data.
    Data,
    /// Punching all-zero blocks out of a cloned copy (`--sparse always`).
    Punch,
    /// Making a block device read zeros where the source has holes.
    Holes,
}

/// How a phase moved or shaped the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// `ioctl(FICLONE)`: no data moved, extents shared.
    Ficlone,
    /// `copy_file_range(2)` over the data extents (the kernel may offload).
    CopyFileRange,
    /// `pread`/`pwrite` of the data extents, every byte written.
    ReadWrite,
    /// `pread`/`pwrite` with all-zero blocks left as holes.
    ReadWriteZeroScan,
    /// Front-to-back `read`/`write`, every byte written (dense copies,
    /// non-seekable destinations).
    Sequential,
    /// `fallocate(PUNCH_HOLE)` over all-zero blocks.
    PunchHole,
    /// `fallocate(ZERO_RANGE)` over a block device's holes.
    ZeroRange,
    /// `pwrite` of zero buffers over a block device's holes.
    WriteZeros,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Ficlone => "ficlone",
            Method::CopyFileRange => "copy_file_range",
            Method::ReadWrite => "read/write",
            Method::ReadWriteZeroScan => "read/write + zero scan",
            Method::Sequential => "sequential write",
            Method::PunchHole => "punch hole",
            Method::ZeroRange => "fallocate(ZERO_RANGE)",
            Method::WriteZeros => "written zeros",
        })
    }
}

/// Which mover ran a phase: the worker shape the plan chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// No user-space mover: the kernel shared or copied the bytes (FICLONE,
    /// copy_file_range).
    Kernel,
    /// Two workers, each reading, zero-scanning and `pwrite`ing its own
    /// chunks (sparse copies from a seekable source).
    SparseWorkers,
    /// Reader threads and one writer (or puncher) joined by a ring of
    /// buffers (dense and sequential copies, streams, punching).
    Ring,
    /// One thread reading, checking and writing in turn (bmap copies,
    /// which hash each range in order).
    OneThread,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Kernel => "the kernel",
            Shape::SparseWorkers => "sparse workers",
            Shape::Ring => "reader/writer ring",
            Shape::OneThread => "one thread",
        })
    }
}

/// One phase of a copy.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// What the phase was for.
    pub phase: Phase,
    /// How it was done.
    pub method: Method,
    /// Which mover did it.
    pub shape: Shape,
    /// Logical bytes the phase covered.
    pub bytes: u64,
    /// Wall time of the phase.
    pub seconds: f64,
}

/// What a copy did.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// The source as given.
    pub source: PathBuf,
    /// The file that was written (after resolving a directory destination).
    pub destination: PathBuf,
    /// What kind of source it was.
    pub source_kind: SourceKind,
    /// The sparse mode used.
    pub sparse: SparseMode,
    /// Logical size of the copy.
    pub size: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Bytes written to the destination (zeros of a dense copy included).
    pub bytes_written: u64,
    /// Bytes of all-zero data turned into holes.
    pub zeros_to_holes: u64,
    /// Bytes of the destination left as holes (`size` minus its data
    /// extents). `None` for a clone: it shares the source's extents, so its
    /// holes are the source's, and counting them would cost a FIEMAP pass
    /// (or a SEEK walk) over every extent: 10-15% of a clone's time, which
    /// cp does not spend (`sparsecp inspect` counts them).
    pub hole_bytes: Option<u64>,
    /// Whether the destination shares the source's extents.
    pub reflinked: bool,
    /// The phases, in order.
    pub phases: Vec<PhaseReport>,
    /// `st_blocks * 512` of the source (`None` for devices and streams).
    pub source_allocated: Option<u64>,
    /// `st_blocks * 512` of the destination (`None` if not a regular file).
    pub destination_allocated: Option<u64>,
    /// Onto a block device: its size and what became of the holes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceReport>,
    /// Temporaries of killed earlier copies that were removed first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stale_removed: Vec<PathBuf>,
    /// Wall time of the whole copy.
    pub seconds: f64,
}

impl CopyReport {
    /// The report of a copy that has done nothing yet.
    pub(crate) fn started(
        source: &Path,
        destination: &Path,
        kind: SourceKind,
        sparse: SparseMode,
    ) -> CopyReport {
        CopyReport {
            source: source.to_path_buf(),
            destination: destination.to_path_buf(),
            source_kind: kind,
            sparse,
            size: 0,
            bytes_read: 0,
            bytes_written: 0,
            zeros_to_holes: 0,
            hole_bytes: None,
            reflinked: false,
            phases: Vec::new(),
            source_allocated: None,
            destination_allocated: None,
            device: None,
            stale_removed: Vec::new(),
            seconds: 0.0,
        }
    }
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods: Vec<String> = self
            .phases
            .iter()
            .map(|p| match p.shape {
                Shape::Kernel => p.method.to_string(),
                shape => format!("{} by {shape}", p.method),
            })
            .collect();
        writeln!(
            f,
            "{} -> {}: {} in {:.2}s ({})",
            self.source.display(),
            self.destination.display(),
            bytes(self.size),
            self.seconds,
            methods.join(", ")
        )?;
        if let Some(d) = &self.device {
            return write!(
                f,
                "  device {}: holes {} zeroed ({}), {} skipped",
                bytes(d.size),
                bytes(d.holes_zeroed),
                d.hole_method,
                bytes(d.holes_skipped),
            );
        }
        let alloc = |a: Option<u64>| a.map_or_else(|| "-".to_string(), bytes);
        write!(
            f,
            "  allocated: source {}, destination {}; holes {}; zeros turned to holes {}{}",
            alloc(self.source_allocated),
            alloc(self.destination_allocated),
            self.hole_bytes
                .map_or_else(|| "the source's (shared)".to_string(), bytes),
            bytes(self.zeros_to_holes),
            if self.reflinked { "; reflinked" } else { "" }
        )
    }
}

/// What a copy onto a block device did with the source's holes.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    /// The device's size (at least the copy's).
    pub size: u64,
    /// How the holes were filled: the planned method, or its fallback if
    /// the device declined it at the first range.
    pub hole_method: HoleMethod,
    /// Bytes of holes made to read as zeros.
    pub holes_zeroed: u64,
    /// Bytes of holes left untouched (`--holes skip`): stale data there.
    pub holes_skipped: u64,
}

/// What `dig` did.
#[derive(Debug, Clone, Serialize)]
pub struct DigReport {
    /// The file dug.
    pub path: PathBuf,
    /// Its logical size (unchanged).
    pub size: u64,
    /// `st_blocks * 512` before.
    pub allocated_before: u64,
    /// `st_blocks * 512` after.
    pub allocated_after: u64,
    /// Bytes of all-zero blocks punched.
    pub punched: u64,
    /// Wall time.
    pub seconds: f64,
}

impl DigReport {
    /// Bytes of allocation given back to the filesystem.
    pub fn reclaimed(&self) -> u64 {
        self.allocated_before.saturating_sub(self.allocated_after)
    }
}

impl fmt::Display for DigReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: reclaimed {} (allocated {} -> {}, size {}) in {:.2}s",
            self.path.display(),
            bytes(self.reclaimed()),
            bytes(self.allocated_before),
            bytes(self.allocated_after),
            bytes(self.size),
            self.seconds
        )
    }
}
