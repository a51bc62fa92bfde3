//! The copy's decisions, made before a byte moves: a [`CopyPlan`] is a pure
//! function of the source's [`Layout`], the [`Destination`] (with the
//! destination filesystem's [`FsFacts`]) and the [`CopyOptions`]. It says
//! which strategy runs (clone, clone then punch, offload with its fallback,
//! sparse workers, the ring, sequential writes), which ranges of the
//! source are read, how much space the copy needs and how the
//! destination's holes will be known. `copy` then only executes it.
//!
//! Being pure, plans are snapshot-tested for a table of layouts, options
//! and filesystem facts without root or a loop device
//! (`tests/plans.rs`).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::human::human_bytes;
use crate::layout::{Counted, Layout, SourceKind};
use crate::mover;
use crate::options::{CopyOptions, HoleMode, ReflinkMode, SparseMode};
use crate::packed::PackedRanges;
use crate::report::{Method, Shape};

/// What the destination filesystem is known to do, gathered once before
/// planning (`fstatvfs`, `fstatfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FsFacts {
    /// Bytes available to unprivileged users (`f_bavail * f_frsize`).
    pub free_bytes: u64,
    /// The fundamental block size (`f_frsize`, at least 512): the unit of
    /// allocation, of zero detection and of the space estimate.
    pub block_size: u64,
    /// Whether copy_file_range is expected to beat our own read/write
    /// workers: not when the source or the destination is on ext4 or tmpfs
    /// (the kernel falls back to splicing page by page there, measured
    /// slower), nor when fstatfs failed. Elsewhere (xfs, btrfs, NFS, ...)
    /// it lets the filesystem share or offload the work.
    pub copy_file_range_pays: bool,
}

/// What the copy writes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Destination {
    /// A fresh temporary regular file on a filesystem with these facts,
    /// renamed over the target once complete.
    NewFile(FsFacts),
    /// A pipe, character device or `/dev/null`, written front to back in
    /// place: never truncated, seeked or measured.
    InPlace,
    /// The existing regular destination itself (`--in-place`), truncated
    /// and then written like a fresh file on a filesystem with these facts,
    /// whose `free_bytes` count the old content's blocks as free. Not
    /// atomic: a failure leaves it truncated or partly written.
    Overwrite(FsFacts),
    /// A block device, opened exclusively: the image's data is written at
    /// its offsets and its holes filled as [`HoleFill`] says.
    BlockDevice(DeviceFacts),
}

impl Destination {
    /// The facts of the filesystem holding a destination file (fresh or
    /// overwritten); `None` for a pipe or device.
    pub fn facts(&self) -> Option<&FsFacts> {
        match self {
            Destination::NewFile(f) | Destination::Overwrite(f) => Some(f),
            Destination::InPlace | Destination::BlockDevice(_) => None,
        }
    }
}

/// What a block device is known to do, read once before planning (its
/// size from the open device, the rest from `/sys/dev/block/MAJ:MIN/queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceFacts {
    /// The device's size in bytes.
    pub size: u64,
    /// Its logical block size: zeroing calls must start and end on it.
    pub logical_block: u64,
    /// The most one write-zeroes command may cover (`write_zeroes_max_bytes`);
    /// 0 means the device cannot zero by itself, and the kernel then
    /// writes zero pages for `fallocate(ZERO_RANGE)` instead.
    pub write_zeroes_max: u64,
}

/// How the holes of an image become zeros on a block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoleMethod {
    /// `fallocate(FALLOC_FL_ZERO_RANGE)` on the device: the kernel's
    /// `blkdev_issue_zeroout`, by write-zeroes commands where the device
    /// has them, else by zero pages it writes itself. Zeros guaranteed.
    ZeroRange,
    /// `pwrite` of zero buffers: works everywhere, costs the bandwidth.
    WriteZeros,
    /// Not touched (`--holes skip`): the device keeps its old bytes there.
    Skip,
}

impl fmt::Display for HoleMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HoleMethod::ZeroRange => "fallocate(ZERO_RANGE)",
            HoleMethod::WriteZeros => "written zeros",
            HoleMethod::Skip => "skipped",
        })
    }
}

/// The holes of a copy onto a block device, and how they are filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoleFill {
    /// The method tried first.
    pub method: HoleMethod,
    /// What takes over from the first range `method` is declined on
    /// (`EOPNOTSUPP`, `ENOTTY`, `EINVAL`, ...).
    pub fallback: Option<HoleMethod>,
    /// The `(offset, length)` holes of the source, in order: listed, or
    /// (for a source with more extents than a layout keeps) the gaps of a
    /// walk of its data extents.
    pub ranges: Ranges,
    /// Whether the device zeroes by itself (write-zeroes commands) rather
    /// than the kernel writing zero pages for [`HoleMethod::ZeroRange`].
    pub device_zeroes: bool,
}

impl HoleFill {
    /// Bytes of holes.
    pub fn bytes(&self) -> u64 {
        self.ranges.bytes()
    }
}

/// How the bytes land in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// `pwrite` the data runs only; gaps stay holes (the destination is a
    /// fresh file whose size is set first).
    Sparse,
    /// `pwrite` every byte, gaps as written zeros: fully allocated.
    Dense,
    /// `write` every byte in order: pipes, devices, `/dev/null`.
    Sequential,
}

/// The user-space movers (`crate::mover`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mover {
    /// Two read-scan-`pwrite` workers: sparse writes from a seekable source.
    SparseWorkers,
    /// A reader and a writer joined by a ring of buffers: dense and
    /// sequential writes (which need their chunks in order) and streams.
    Ring,
}

impl From<Mover> for Shape {
    fn from(m: Mover) -> Shape {
        match m {
            Mover::SparseWorkers => Shape::SparseWorkers,
            Mover::Ring => Shape::Ring,
        }
    }
}

/// A user-space move of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Move {
    /// What the report calls it.
    pub method: Method,
    /// Which mover runs it.
    pub mover: Mover,
    /// How bytes land.
    pub write: WriteMode,
    /// Split what is read into blocks of this size and leave the all-zero
    /// ones as holes (`None`: every byte read is data).
    pub zero_block: Option<u64>,
}

/// What the copy does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Share the source's extents (FICLONE); with `punch`, then punch the
    /// clone's all-zero blocks (`--sparse always`). If the filesystem
    /// cannot share extents, `fallback` says what runs instead. FICLONE is
    /// always tried when the options allow it: its answer is the only
    /// reliable test.
    Clone {
        /// Punch the clone's zero blocks afterwards.
        punch: bool,
        /// What runs if FICLONE is declined.
        fallback: CloneFallback,
    },
    /// copy_file_range over the ranges; whatever the kernel declines
    /// (from the first declined call on) is moved by `fallback`.
    Offload {
        /// The mover for the declined rest.
        fallback: Move,
    },
    /// Move the bytes in user space.
    Move(Move),
}

/// What a copy does when FICLONE is declined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloneFallback {
    /// Nothing: the copy fails (`--reflink always`).
    Fail,
    /// This plan, made from the source's walked layout.
    Planned(Box<CopyPlan>),
    /// Walk the source, then plan the copy ([`after_declined_clone`]). A
    /// clone into a fresh file is tried before the source is walked (see
    /// [`clones_before_walking`]): it reads nothing and needs no room, and
    /// the walk was 15% of such a copy's samples (2,458 lseeks for a
    /// 1,229-extent file on btrfs, which cp does not make).
    WalkThenPlan,
}

/// How the destination's hole bytes will be known for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holes {
    /// Known before copying (a clone has the source's holes).
    Known(u64),
    /// Not counted: a clone of an unwalked source has the source's holes,
    /// and counting them (FIEMAP or a walk) costs 10-15% of the clone.
    Shared,
    /// The size minus the bytes written, when every write covered whole
    /// blocks of a file that held only holes and nothing was offloaded
    /// (the filesystem then chose how to store those); else measured.
    Unwritten,
    /// Measured afterwards with SEEK_DATA/SEEK_HOLE.
    Measured,
    /// Not reported: the destination is written in place.
    NotReported,
}

/// Everything a copy will do, decided up front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyPlan {
    /// What runs.
    pub strategy: Strategy,
    /// Logical size of the copy (0 for a stream: unknown until its end).
    pub size: u64,
    /// The ranges of the source that are read, in order (none for a
    /// clone, which reads nothing, and for a stream, read front to back).
    pub ranges: Ranges,
    /// Bytes the destination filesystem must have free before any data
    /// moves (`None`: not checked).
    pub space_needed: Option<u64>,
    /// How the destination's holes will be known.
    pub holes: Holes,
    /// Logical bytes the progress bar counts (0: unknown or no bar).
    pub progress_total: u64,
    /// Written into the truncated destination itself (`--in-place`), not
    /// into a temporary renamed over it: not atomic.
    pub overwrite: bool,
    /// Onto a block device: its holes and how they are filled (after the
    /// data moves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hole_fill: Option<HoleFill>,
}

/// The ranges of the source a plan reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ranges {
    /// These `(offset, length)` ranges, in order: the source's layout
    /// listed all its extents.
    Listed(Vec<(u64, u64)>),
    /// The source's merged data ranges as its layout counted them past
    /// [`crate::layout::KEPT`] extents, packed (a few bytes each, a million
    /// in a few MiB): read without walking the source again.
    Packed(Arc<PackedRanges>),
    /// Every data extent of the source, found by walking SEEK_DATA and
    /// SEEK_HOLE as the bytes move: a source of more extents than a layout
    /// keeps ([`crate::layout::KEPT`]), whose list would cost memory in
    /// proportion (24 MB at a million extents), read unmerged or with more
    /// merged ranges than it packs ([`crate::layout::MERGED_KEPT`]). With
    /// `merge_gap`, extents closer than that are read as one range, as
    /// [`Ranges::Listed`] ones are merged.
    Walk {
        /// Read extents closer than this as one range.
        merge_gap: Option<u64>,
        /// How many ranges the walk will give, as the layout counted them.
        count: u64,
        /// The bytes they span.
        bytes: u64,
    },
}

impl Ranges {
    /// No ranges.
    pub fn none() -> Ranges {
        Ranges::Listed(Vec::new())
    }

    /// How many ranges are read.
    pub fn count(&self) -> u64 {
        match self {
            Ranges::Listed(r) => r.len() as u64,
            Ranges::Packed(r) => r.len(),
            Ranges::Walk { count, .. } => *count,
        }
    }

    /// The bytes the ranges span.
    pub fn bytes(&self) -> u64 {
        match self {
            Ranges::Listed(r) => r.iter().map(|r| r.1).sum(),
            Ranges::Packed(r) => r.span(),
            Ranges::Walk { bytes, .. } => *bytes,
        }
    }
}

/// A combination of options and source no plan can satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--reflink always` with `--sparse never`: a shared copy is not a
    /// fully allocated one.
    ReflinkDense,
    /// `--reflink always` from a stream: it has no extents to share.
    ReflinkStream,
}

/// Whether `opts` can apply to a source of `kind` at all.
pub fn check_options(kind: SourceKind, opts: &CopyOptions) -> Result<(), Refusal> {
    match (kind, opts.reflink, opts.sparse) {
        (SourceKind::Stream, ReflinkMode::Always, _) => Err(Refusal::ReflinkStream),
        (_, ReflinkMode::Always, SparseMode::Never) => Err(Refusal::ReflinkDense),
        _ => Ok(()),
    }
}

/// Plans the copy of the seekable source `layout` (a regular file or a
/// block device) into `dst` under `opts`.
pub fn plan(layout: &Layout, dst: &Destination, opts: &CopyOptions) -> CopyPlan {
    let facts = match dst {
        Destination::InPlace => return sequential(layout),
        Destination::BlockDevice(device) => return device_plan(layout, device, opts),
        Destination::NewFile(facts) | Destination::Overwrite(facts) => facts,
    };
    let overwrite = matches!(dst, Destination::Overwrite(_));
    let mut plan = file_plan(layout, facts, opts);
    plan.overwrite = overwrite;
    if let Strategy::Clone {
        fallback: CloneFallback::Planned(fallback),
        ..
    } = &mut plan.strategy
    {
        fallback.overwrite = overwrite;
    }
    plan
}

/// Whether a copy of a source of `kind` into `dst` tries FICLONE before
/// the source's extents are read ([`CloneFallback::WalkThenPlan`]): into a
/// fresh file, when the options allow a clone. An in-place copy walks
/// first: the space its fallback needs is checked before the destination
/// is truncated, and the clone can only be tried after that.
pub fn clones_before_walking(kind: SourceKind, dst: &Destination, opts: &CopyOptions) -> bool {
    kind == SourceKind::Regular
        && matches!(dst, Destination::NewFile(_))
        && opts.sparse != SparseMode::Never
        && opts.reflink != ReflinkMode::Never
}

/// Plans the copy into a destination file (fresh, or truncated in place).
fn file_plan(layout: &Layout, facts: &FsFacts, opts: &CopyOptions) -> CopyPlan {
    if opts.sparse != SparseMode::Never && opts.reflink != ReflinkMode::Never {
        let punch = opts.sparse == SparseMode::Always;
        return CopyPlan {
            strategy: Strategy::Clone {
                punch,
                fallback: match (opts.reflink, layout.walked) {
                    (ReflinkMode::Always, _) => CloneFallback::Fail,
                    (_, true) => CloneFallback::Planned(Box::new(data_plan(layout, facts, opts))),
                    (_, false) => CloneFallback::WalkThenPlan,
                },
            },
            size: layout.size,
            ranges: Ranges::none(),
            space_needed: None,
            // A clone shares the source's extents at the same offsets, so
            // it has the holes the source's layout shows: no second
            // SEEK_DATA/SEEK_HOLE walk (5 of the 13 ms of a 3 GiB clone
            // with 1,256 extents on btrfs). Unwalked, they go uncounted.
            // After a punch, count them.
            holes: match (punch, layout.walked) {
                (true, _) => Holes::Measured,
                (false, true) => Holes::Known(layout.hole_bytes()),
                (false, false) => Holes::Shared,
            },
            progress_total: 0,
            overwrite: false,
            hole_fill: None,
        };
    }
    assert!(layout.walked, "only a clone is planned before the walk");
    data_plan(layout, facts, opts)
}

/// Plans the copy after FICLONE declined a [`CloneFallback::WalkThenPlan`]
/// clone, from the source's now walked layout: the plan a walked layout's
/// clone would have carried as [`CloneFallback::Planned`].
pub fn after_declined_clone(layout: &Layout, dst: &Destination, opts: &CopyOptions) -> CopyPlan {
    match dst {
        Destination::NewFile(facts) | Destination::Overwrite(facts) => CopyPlan {
            overwrite: matches!(dst, Destination::Overwrite(_)),
            ..data_plan(layout, facts, opts)
        },
        Destination::InPlace | Destination::BlockDevice(_) => plan(layout, dst, opts),
    }
}

/// Plans the copy of a stream (a pipe, standard input, a procfs file):
/// read front to back through the ring.
pub fn plan_stream(dst: &Destination, opts: &CopyOptions) -> CopyPlan {
    let (mv, holes) = match (dst, opts.sparse) {
        (Destination::InPlace | Destination::BlockDevice(_), _) => (SEQUENTIAL, Holes::NotReported),
        (Destination::NewFile(_) | Destination::Overwrite(_), SparseMode::Never) => (
            Move {
                method: Method::ReadWrite,
                mover: Mover::Ring,
                write: WriteMode::Dense,
                zero_block: None,
            },
            Holes::Measured,
        ),
        (Destination::NewFile(facts) | Destination::Overwrite(facts), _) => (
            Move {
                method: Method::ReadWriteZeroScan,
                mover: Mover::Ring,
                write: WriteMode::Sparse,
                zero_block: Some(facts.block_size),
            },
            Holes::Measured,
        ),
    };
    CopyPlan {
        strategy: Strategy::Move(mv),
        size: 0,
        ranges: Ranges::none(),
        space_needed: None,
        holes,
        progress_total: 0,
        overwrite: matches!(dst, Destination::Overwrite(_)),
        hole_fill: None,
    }
}

/// Front-to-back writes through the ring, every byte.
const SEQUENTIAL: Move = Move {
    method: Method::Sequential,
    mover: Mover::Ring,
    write: WriteMode::Sequential,
    zero_block: None,
};

/// Into a pipe or device: every byte, holes as zeros, in order.
fn sequential(layout: &Layout) -> CopyPlan {
    CopyPlan {
        strategy: Strategy::Move(SEQUENTIAL),
        size: layout.size,
        ranges: extent_ranges(layout, false),
        space_needed: None,
        holes: Holes::NotReported,
        progress_total: layout.size,
        overwrite: false,
        hole_fill: None,
    }
}

/// Onto a block device: `pwrite` the source's data extents at their
/// offsets (every byte of them: the device is not a fresh file of holes,
/// so a zero scan would only have to zero what it skipped), then fill the
/// holes. `--sparse never` writes the holes as zeros like any other byte;
/// otherwise `--holes` decides. A device cannot clone or offload.
fn device_plan(layout: &Layout, device: &DeviceFacts, opts: &CopyOptions) -> CopyPlan {
    let ranges = extent_ranges(layout, false);
    let holes = match &ranges {
        Ranges::Listed(data) => Ranges::Listed(hole_ranges(data.iter().copied(), layout.size)),
        // Not planned (unmerged ranges are never packed), but as exact.
        Ranges::Packed(data) => Ranges::Listed(hole_ranges(data.iter(), layout.size)),
        // The gaps of the same walk: one more than the data extents at
        // most, the bytes they leave.
        Ranges::Walk { count, bytes, .. } => Ranges::Walk {
            merge_gap: None,
            count: count + 1,
            bytes: layout.size - bytes,
        },
    };
    let (method, fallback) = match (opts.sparse, opts.holes) {
        (SparseMode::Never, _) => (HoleMethod::WriteZeros, None),
        (_, HoleMode::Skip) => (HoleMethod::Skip, None),
        // Measured in `crate::blockdev`: ZERO_RANGE (or BLKZEROOUT, the
        // same kernel call) zeroes 1 GiB of a loop device in about 0.1 s,
        // writing zeros took 2-5 s. Without write-zeroes support the
        // kernel writes zero pages itself, still without our copy.
        (_, HoleMode::Zero) => (HoleMethod::ZeroRange, Some(HoleMethod::WriteZeros)),
    };
    CopyPlan {
        strategy: Strategy::Move(Move {
            method: Method::ReadWrite,
            mover: Mover::SparseWorkers,
            write: WriteMode::Sparse,
            zero_block: None,
        }),
        size: layout.size,
        ranges,
        // The device must hold the whole image: checked before any write.
        space_needed: Some(layout.size),
        holes: Holes::Known(layout.hole_bytes()),
        progress_total: layout.size,
        overwrite: false,
        hole_fill: Some(HoleFill {
            method,
            fallback,
            ranges: holes,
            device_zeroes: device.write_zeroes_max > 0,
        }),
    }
}

/// The gaps between `ranges` (sorted, disjoint) up to `size`.
fn hole_ranges(ranges: impl IntoIterator<Item = (u64, u64)>, size: u64) -> Vec<(u64, u64)> {
    let mut holes = Vec::new();
    let mut pos = 0;
    for (offset, length) in ranges {
        if offset > pos {
            holes.push((pos, offset - pos));
        }
        pos = pos.max(offset + length);
    }
    if size > pos {
        holes.push((pos, size - pos));
    }
    holes
}

/// Moving the data into a fresh file (no clone, or the clone's fallback).
fn data_plan(layout: &Layout, facts: &FsFacts, opts: &CopyOptions) -> CopyPlan {
    let block = facts.block_size;
    let zero_scan = match opts.sparse {
        SparseMode::Never => false,
        SparseMode::Always => true,
        SparseMode::Auto => layout.is_sparse() || !layout.kind.reports_holes(),
    };
    let dense = opts.sparse == SparseMode::Never;
    let needed = if dense {
        layout.size.div_ceil(block) * block
    } else {
        layout.rounded_bytes(block)
    };
    // Gaps read as zeros and stay holes (or are written as zeros, when
    // dense) either way; reading them costs less than a hand-off per small
    // extent.
    let ranges = extent_ranges(layout, zero_scan || dense);
    let progress_total = if dense { layout.size } else { ranges.bytes() };
    let mv = match (dense, zero_scan) {
        (true, _) => Move {
            method: Method::ReadWrite,
            mover: Mover::Ring,
            write: WriteMode::Dense,
            zero_block: None,
        },
        (false, scan) => Move {
            method: if scan {
                Method::ReadWriteZeroScan
            } else {
                Method::ReadWrite
            },
            mover: Mover::SparseWorkers,
            write: WriteMode::Sparse,
            zero_block: scan.then_some(block),
        },
    };
    // The kernel cannot scan for zeros nor write them densely; it can only
    // copy the data extents, which is exactly a sparse copy without scan.
    // Nor is a walked source offloaded: what the kernel declines must go
    // on from a listed rest, and copy_file_range is not worth a call per
    // extent of a few KiB anyway.
    let offload = !zero_scan
        && !dense
        && opts.reflink != ReflinkMode::Never
        && facts.copy_file_range_pays
        && layout.complete();
    CopyPlan {
        strategy: if offload {
            Strategy::Offload { fallback: mv }
        } else {
            Strategy::Move(mv)
        },
        size: layout.size,
        ranges,
        space_needed: (!opts.no_space_check).then_some(needed),
        // A fresh file of holes, written by sparse moves only.
        holes: if dense {
            Holes::Measured
        } else {
            Holes::Unwritten
        },
        progress_total,
        overwrite: false,
        hole_fill: None,
    }
}

/// The source's data extents as ranges, extents closer than the merge gap
/// read as one if `merge`: listed when the layout lists them all, its
/// packed merged ranges when merging and it kept them, else a walk with
/// the counts the layout gathered.
fn extent_ranges(layout: &Layout, merge: bool) -> Ranges {
    match &layout.counted {
        None => {
            let listed: Vec<(u64, u64)> = layout
                .extents
                .iter()
                .map(|e| (e.offset, e.length))
                .collect();
            Ranges::Listed(if merge {
                mover::coalesce(&listed, mover::MERGE_GAP)
            } else {
                listed
            })
        }
        Some(Counted {
            merged: Some(merged),
            ..
        }) if merge => Ranges::Packed(Arc::clone(merged)),
        Some(c) => Ranges::Walk {
            merge_gap: merge.then_some(mover::MERGE_GAP),
            count: if merge { c.merged_ranges } else { c.extents },
            bytes: if merge { c.merged_bytes } else { c.data_bytes },
        },
    }
}

impl fmt::Display for CopyPlan {
    /// One line per decision, for people and snapshots.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(f, "")
    }
}

impl CopyPlan {
    fn render(&self, f: &mut fmt::Formatter<'_>, indent: &str) -> fmt::Result {
        let mv = |m: &Move| {
            let scan = m.zero_block.map_or_else(String::new, |b| {
                format!(", zero blocks of {}", human_bytes(b))
            });
            format!(
                "{} by {} ({} writes{scan})",
                m.method,
                Shape::from(m.mover),
                match m.write {
                    WriteMode::Sparse => "sparse",
                    WriteMode::Dense => "dense",
                    WriteMode::Sequential => "sequential",
                }
            )
        };
        match &self.strategy {
            Strategy::Clone { punch, .. } => writeln!(
                f,
                "{indent}strategy: ficlone{}",
                if *punch {
                    ", then punch zero blocks"
                } else {
                    ""
                }
            )?,
            Strategy::Offload { fallback } => writeln!(
                f,
                "{indent}strategy: copy_file_range, declined rest {}",
                mv(fallback)
            )?,
            Strategy::Move(m) => writeln!(f, "{indent}strategy: {}", mv(m))?,
        }
        write!(
            f,
            "{indent}reads: {} ranges, {} of {}",
            self.ranges.count(),
            human_bytes(self.ranges.bytes()),
            human_bytes(self.size)
        )?;
        match self.ranges {
            Ranges::Listed(_) => writeln!(f)?,
            Ranges::Packed(_) => writeln!(
                f,
                ", as the layout's walk found them (gaps under {} merged)",
                human_bytes(mover::MERGE_GAP)
            )?,
            Ranges::Walk { merge_gap, .. } => writeln!(
                f,
                ", walked with SEEK_DATA/SEEK_HOLE as they are read{}",
                merge_gap.map_or_else(String::new, |g| format!(
                    " (gaps under {} merged)",
                    human_bytes(g)
                ))
            )?,
        }
        if self.overwrite {
            writeln!(
                f,
                "{indent}destination: truncated, then written in place (not atomic)"
            )?;
        }
        match self.space_needed {
            Some(n) => writeln!(f, "{indent}space needed: {} ({n} bytes)", human_bytes(n))?,
            None => writeln!(f, "{indent}space needed: not checked")?,
        }
        writeln!(
            f,
            "{indent}holes: {}",
            match self.holes {
                Holes::Known(n) => format!("{}, known from the source", human_bytes(n)),
                Holes::Shared => "the source's, shared (not counted)".into(),
                Holes::Unwritten => "size minus bytes written".into(),
                Holes::Measured => "measured after the copy".into(),
                Holes::NotReported => "not reported".into(),
            }
        )?;
        if let Some(fill) = &self.hole_fill {
            let how = match (fill.method, fill.device_zeroes) {
                (HoleMethod::Skip, _) => "left untouched (stale data stays)".to_string(),
                (HoleMethod::ZeroRange, true) => {
                    format!("by {} (the device's write-zeroes)", fill.method)
                }
                (HoleMethod::ZeroRange, false) => {
                    format!("by {} (the kernel writes zero pages)", fill.method)
                }
                (HoleMethod::WriteZeros, _) => format!("by {}", fill.method),
            };
            let ranges = match fill.ranges {
                Ranges::Listed(_) | Ranges::Packed(_) => format!("{} ranges", fill.ranges.count()),
                Ranges::Walk { count, .. } => format!("up to {count} ranges, walked"),
            };
            writeln!(
                f,
                "{indent}hole fill: {ranges}, {} {how}{}",
                human_bytes(fill.bytes()),
                fill.fallback
                    .map_or_else(String::new, |m| format!(", if declined {m}"))
            )?;
        }
        write!(
            f,
            "{indent}progress total: {}",
            human_bytes(self.progress_total)
        )?;
        match &self.strategy {
            Strategy::Clone {
                fallback: CloneFallback::Planned(plan),
                ..
            } => {
                writeln!(f, "\n{indent}if ficlone is declined:")?;
                plan.render(f, &format!("{indent}  "))
            }
            Strategy::Clone {
                fallback: CloneFallback::WalkThenPlan,
                ..
            } => write!(
                f,
                "\n{indent}if ficlone is declined: walk the source, then plan its copy"
            ),
            Strategy::Clone {
                fallback: CloneFallback::Fail,
                ..
            } => write!(f, "\n{indent}if ficlone is declined: fail"),
            _ => Ok(()),
        }
    }
}
