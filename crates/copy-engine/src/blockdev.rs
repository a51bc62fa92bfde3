//! Block-device destinations (issue 16): `sparsecp copy IMG /dev/sdX`.
//!
//! The device is opened `O_EXCL`, which the kernel refuses (`EBUSY`) while
//! it is mounted or claimed by anyone else, and keeps others from claiming
//! it while we write. Its size and zeroing facts are read, the plan made
//! ([`plan::plan`] with [`Destination::BlockDevice`]), and a device too
//! small for the image refused: all before a byte is written. Then the
//! source's data extents are written at their offsets by the sparse
//! workers, the holes filled as the plan's [`HoleFill`] says, and the
//! device flushed (`fsync`), so the data is on it when the copy returns.
//! `verify` reads it back past its page cache (`verify::first_device_difference`).
//!
//! Filling holes, measured on a loop device over a 1 GiB file of random
//! bytes on ext4 (kernel 6.18, three rounds each, refilled before each):
//! `fallocate(ZERO_RANGE)` 0.04 / 0.10 / 0.13 s, BLKZEROOUT (`blkdiscard
//! -z`) 0.12 / 0.09 / 0.12 s, `fallocate(PUNCH_HOLE)` 0.25 / 0.30 / 0.36 s
//! (it also deallocated the backing file), writing zeros with `dd ...
//! conv=fsync` 2.2 / 5.4 / 3.8 s. ZERO_RANGE and BLKZEROOUT are the same
//! kernel call (`blkdev_issue_zeroout` without unmapping); ZERO_RANGE
//! needs no ioctl wrapper (no `unsafe`), so it is the method, and writing
//! zeros the fallback when the device declines it.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::Instant;

use crate::buffer::AlignedBuf;
use crate::error::{Error, IoContext};
use crate::execute::phase_report;
use crate::layout::Layout;
use crate::mounts;
use crate::mover::{sparse, Job, Moved, Reads};
use crate::options::CopyOptions;
use crate::plan::{self, Destination, DeviceFacts, HoleFill, HoleMethod, Ranges};
use crate::progress::Progress;
use crate::report::{CopyReport, DeviceReport, Method, Phase, Shape};
use crate::sys::{self, ZeroOutcome};

/// The most one ZERO_RANGE call covers, so that progress moves and a
/// cancel is seen between calls (256 MiB took about 25 ms above).
const ZERO_CALL: u64 = 256 << 20;
/// The zero buffer of the written-zeros fallback.
const ZERO_BUF: usize = 1 << 20;

/// Copies `src` (layout `layout`) onto the block device `target`,
/// recording what happened in `report`. Nothing is written before the
/// device is held exclusively and known to be large enough.
pub(crate) fn copy_to_device(
    src: &File,
    layout: &Layout,
    target: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
    report: &mut CopyReport,
) -> Result<(), Error> {
    let out = open_exclusive(target)?;
    let facts = device_facts(&out, target)?;
    let plan = plan::plan(layout, &Destination::BlockDevice(facts), opts);
    if let Some(needed) = plan.space_needed.filter(|&n| n > facts.size) {
        return Err(Error::DeviceTooSmall {
            path: target.into(),
            device_size: facts.size,
            source_path: layout.path.clone(),
            image_size: needed,
        });
    }
    let fill = plan.hole_fill.as_ref().expect("a device plan fills holes");
    sys::advise_sequential(src);
    progress.start("copy", plan.progress_total);
    let result = (|| {
        let job = Job {
            src_path: &layout.path,
            dst_path: target,
            zero_block: None,
            dst_block: facts.logical_block,
            fill_to: Some(plan.size),
            progress,
            cancel: &opts.cancel,
        };
        let phase = Instant::now();
        let moved = match plan.ranges.count() {
            0 => Moved::default(),
            _ => sparse::move_sparse(src, Reads::of(&plan.ranges), plan.size, &out, &job)?,
        };
        report.bytes_read += moved.read;
        report.bytes_written += moved.written;
        report.phases.push(phase_report(
            Phase::Data,
            Method::ReadWrite,
            Shape::SparseWorkers,
            moved.read,
            phase,
        ));
        let holes = hole_list(src, &layout.path, &fill.ranges, plan.size);
        let device = fill_holes(&out, target, holes, fill, &facts, opts, progress, report)?;
        report.device = Some(device);
        // The data must be on the device, not in its page cache, when
        // the copy returns.
        out.sync_all().at(target, "fsync")
    })();
    progress.finish();
    result.map_err(|e| match e {
        Error::Interrupted { path } => Error::DeviceInterrupted { path },
        e => e,
    })?;
    report.hole_bytes = Some(fill.bytes());
    Ok(())
}

/// Opens the device exclusively; `EBUSY` becomes [`Error::DeviceBusy`],
/// naming where it (or one of its partitions) is mounted, if it is.
pub(crate) fn open_exclusive(target: &Path) -> Result<File, Error> {
    match sys::open_device_exclusive(target) {
        Ok(f) => Ok(f),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(Error::DeviceBusy {
            path: target.into(),
            mount_point: fs::metadata(target)
                .ok()
                .and_then(|m| mounts::mount_point_of(m.rdev())),
        }),
        Err(e) => Err(e).at(target, "open exclusively"),
    }
}

/// The device's size (its end) and what its queue says in sysfs (for a
/// partition, its disk's queue). Unreadable sysfs values fall back to the
/// safe side: 512-byte blocks, no write-zeroes.
pub(crate) fn device_facts(out: &File, target: &Path) -> Result<DeviceFacts, Error> {
    let size = (&*out)
        .seek(SeekFrom::End(0))
        .at(target, "measure block device")?;
    let rdev = out.metadata().at(target, "stat")?.rdev();
    let (major, minor) = sys::dev_numbers(rdev);
    let queue = |name: &str| -> Option<u64> {
        ["queue", "../queue"].iter().find_map(|dir| {
            let path = format!("/sys/dev/block/{major}:{minor}/{dir}/{name}");
            fs::read_to_string(path).ok()?.trim().parse().ok()
        })
    };
    Ok(DeviceFacts {
        size,
        logical_block: queue("logical_block_size").unwrap_or(512).max(512),
        write_zeroes_max: queue("write_zeroes_max_bytes").unwrap_or(0),
    })
}

/// Fills the holes of `fill`: the planned method, and from the first range
/// it declines on, its fallback. Returns what was done.
#[allow(clippy::too_many_arguments)]
fn fill_holes(
    out: &File,
    target: &Path,
    holes: impl Iterator<Item = Result<(u64, u64), Error>>,
    fill: &HoleFill,
    facts: &DeviceFacts,
    opts: &CopyOptions,
    progress: &dyn Progress,
    report: &mut CopyReport,
) -> Result<DeviceReport, Error> {
    let mut done = DeviceReport {
        size: facts.size,
        hole_method: fill.method,
        holes_zeroed: 0,
        holes_skipped: 0,
    };
    if fill.method == HoleMethod::Skip {
        done.holes_skipped = fill.bytes();
        progress.advance(done.holes_skipped);
        return Ok(done);
    }
    let zeros = AlignedBuf::new(ZERO_BUF);
    let mut phase = Instant::now();
    let mut phase_bytes = 0;
    for hole in holes {
        let (offset, length) = hole?;
        let mut pos = offset;
        while pos < offset + length {
            if opts.cancel.is_cancelled() {
                return Err(Error::Interrupted {
                    path: target.into(),
                });
            }
            let len = (offset + length - pos).min(ZERO_CALL);
            let zeroed = match done.hole_method {
                HoleMethod::ZeroRange => zero_range(out, target, pos, len, facts, &zeros)?,
                HoleMethod::WriteZeros => {
                    write_zeros(out, target, pos, len, &zeros).map(|_| true)?
                }
                HoleMethod::Skip => unreachable!("skipped above"),
            };
            if !zeroed {
                // Declined: the rest is the fallback's, as its own phase.
                report
                    .phases
                    .push(hole_phase(done.hole_method, phase_bytes, phase));
                done.hole_method = fill.fallback.ok_or_else(|| Error::Unsupported {
                    path: target.into(),
                    reason: format!("the device declined {}", fill.method),
                })?;
                (phase, phase_bytes) = (Instant::now(), 0);
                continue;
            }
            pos += len;
            phase_bytes += len;
            done.holes_zeroed += len;
            progress.advance(len);
        }
    }
    report
        .phases
        .push(hole_phase(done.hole_method, phase_bytes, phase));
    Ok(done)
}

/// The holes to fill, in order: the plan's list, or the gaps between the
/// data extents of a walk of `src` (of `size` bytes, at `path`).
fn hole_list<'a>(
    src: &'a File,
    path: &'a Path,
    holes: &'a Ranges,
    size: u64,
) -> Box<dyn Iterator<Item = Result<(u64, u64), Error>> + 'a> {
    match holes {
        Ranges::Listed(list) => Box::new(list.iter().map(|&h| Ok(h))),
        Ranges::Packed(list) => Box::new(list.iter().map(Ok)),
        Ranges::Walk { .. } => {
            let mut pos = 0;
            let mut data = crate::layout::walk(src, 0, size);
            Box::new(std::iter::from_fn(move || loop {
                match data.next() {
                    Some(Ok(e)) => {
                        let gap = (pos, e.offset - pos);
                        pos = e.end();
                        if gap.1 > 0 {
                            return Some(Ok(gap));
                        }
                    }
                    Some(Err(e)) => return Some(Err(e).at(path, "seek data/hole")),
                    None if pos < size => {
                        let gap = (pos, size - pos);
                        pos = size;
                        return Some(Ok(gap));
                    }
                    None => return None,
                }
            }))
        }
    }
}

fn hole_phase(method: HoleMethod, bytes: u64, since: Instant) -> crate::report::PhaseReport {
    let method = match method {
        HoleMethod::ZeroRange => Method::ZeroRange,
        HoleMethod::WriteZeros | HoleMethod::Skip => Method::WriteZeros,
    };
    phase_report(Phase::Holes, method, Shape::Kernel, bytes, since)
}

/// ZERO_RANGE over the part of `[pos, pos + len)` on logical-block
/// boundaries, zeros written at the unaligned edges (a hole of a file
/// may end at an odd size). `false` if the device declined.
fn zero_range(
    out: &File,
    target: &Path,
    pos: u64,
    len: u64,
    facts: &DeviceFacts,
    zeros: &[u8],
) -> Result<bool, Error> {
    let block = facts.logical_block;
    let (start, end) = (pos.next_multiple_of(block), (pos + len) / block * block);
    if start >= end {
        write_zeros(out, target, pos, len, zeros)?;
        return Ok(true);
    }
    let what = format!("zero range at offset {start}");
    if sys::zero_range(out, start, end - start).at(target, &what)? == ZeroOutcome::Declined {
        return Ok(false);
    }
    write_zeros(out, target, pos, start - pos, zeros)?;
    write_zeros(out, target, end, pos + len - end, zeros)?;
    Ok(true)
}

/// `pwrite`s `len` zero bytes at `pos`.
fn write_zeros(out: &File, target: &Path, pos: u64, len: u64, zeros: &[u8]) -> Result<(), Error> {
    let mut at = pos;
    while at < pos + len {
        let n = (pos + len - at).min(zeros.len() as u64) as usize;
        out.write_all_at(&zeros[..n], at)
            .at(target, &format!("write zeros at offset {at}"))?;
        at += n as u64;
    }
    Ok(())
}
