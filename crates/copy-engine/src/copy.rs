//! The copy: from a source path (file, block device, stream) to a
//! destination that is replaced atomically, keeping holes as the sparse
//! mode promises, and reporting what happened.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::dest::{self, TempFile};
use crate::dig;
use crate::error::{Error, IoContext};
use crate::layout::{Extent, Layout, SourceKind};
use crate::mover::{self, Job, Source, WriteMode};
use crate::options::{CopyOptions, ReflinkMode, SparseMode};
use crate::progress::Progress;
use crate::report::{CopyReport, Method, Phase, PhaseReport};
use crate::stream::CancellableReader;
use crate::sys::{self, CloneOutcome, RangeOutcome};

/// Copies `src` to `dst`.
///
/// `dst` may be an existing directory (the copy goes to `dst/NAME`), an
/// existing regular file (replaced atomically), a new path, or a
/// non-regular file such as a pipe, `/dev/null` or a block device (written
/// front to back, never truncated or seeked).
pub fn copy(
    src: &Path,
    dst: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, Error> {
    // open(2) of a FIFO with no writer blocks, out of SIGINT's reach (see
    // `stream`): open it non-blocking; the stream reader waits in poll.
    let fifo = fs::metadata(src).is_ok_and(|m| m.file_type().is_fifo());
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(if fifo { libc::O_NONBLOCK } else { 0 })
        .open(src)
        .at(src, "open")?;
    let meta = file.metadata().at(src, "stat")?;
    if meta.is_dir() {
        return Err(Error::Unsupported {
            path: src.into(),
            reason: "is a directory".into(),
        });
    }
    let layout = Layout::for_copy(&file, src)?;
    let target = resolve_destination(src, dst)?;
    if layout.kind == SourceKind::Stream {
        let mut reader = CancellableReader::new(file, opts.cancel.clone());
        return copy_stream_to(&mut reader, src, &target, opts, progress);
    }
    copy_file(&file, &meta, layout, &target, opts, progress).map_err(|e| match e {
        // Name the symlink the caller gave, not only the file it leads to.
        Error::SameFile { src, .. } if is_symlink(dst) => Error::SameFile {
            src,
            dst: dst.into(),
        },
        e => e,
    })
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Copies everything `reader` yields until end of file to `dst` (for
/// standard input); `label` names the source in reports and errors.
pub fn copy_stream(
    reader: &mut (dyn Read + Send),
    label: &Path,
    dst: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, Error> {
    let target = resolve_destination(label, dst)?;
    copy_stream_to(reader, label, &target, opts, progress)
}

/// The path the copy will actually write: `dst/NAME` for a directory, the
/// file a symlink points to (so the link survives), else `dst` itself.
fn resolve_destination(src: &Path, dst: &Path) -> Result<PathBuf, Error> {
    let mut target = dst.to_path_buf();
    if fs::metadata(dst).map(|m| m.is_dir()).unwrap_or(false) {
        let name = src.file_name().ok_or_else(|| Error::Unsupported {
            path: src.into(),
            reason: "has no file name to copy into a directory".into(),
        })?;
        target = dst.join(name);
    }
    if fs::symlink_metadata(&target)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
    {
        if let Ok(real) = fs::canonicalize(&target) {
            target = real;
        }
    }
    Ok(target)
}

/// Where the destination stands before we write.
enum Existing {
    /// Nothing there yet.
    Absent,
    /// A regular file, to be replaced atomically.
    Regular(fs::Metadata),
    /// A pipe, device or similar, to be written in place.
    Special,
}

fn existing(src_meta: Option<&fs::Metadata>, src: &Path, target: &Path) -> Result<Existing, Error> {
    let meta = match fs::metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(e).at(target, "stat"),
    };
    if let Some(s) = src_meta {
        if s.dev() == meta.dev() && s.ino() == meta.ino() {
            return Err(Error::SameFile {
                src: src.into(),
                dst: target.into(),
            });
        }
    }
    if meta.is_dir() {
        return Err(Error::Unsupported {
            path: target.into(),
            reason: "is a directory".into(),
        });
    }
    if meta.file_type().is_file() {
        // Root may write anything; others should not replace a file they
        // could not have written to.
        rustix::fs::access(target, rustix::fs::Access::WRITE_OK)
            .map_err(std::io::Error::from)
            .at(target, "destination is not writable")?;
        Ok(Existing::Regular(meta))
    } else {
        Ok(Existing::Special)
    }
}

fn copy_file(
    src: &File,
    src_meta: &fs::Metadata,
    layout: Layout,
    target: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, Error> {
    let started = Instant::now();
    let src_path = layout.path.clone();
    if opts.sparse == SparseMode::Never && opts.reflink == ReflinkMode::Always {
        return Err(Error::Unsupported {
            path: target.into(),
            reason: "--reflink always cannot make a fully allocated (--sparse never) copy".into(),
        });
    }
    let mut report = CopyReport::started(&src_path, target, layout.kind, opts.sparse);
    report.size = layout.size;
    report.source_allocated = (layout.kind != SourceKind::BlockDevice).then_some(layout.allocated);
    let existing = existing(Some(src_meta), &src_path, target)?;
    if let Existing::Special = existing {
        let out = open_special(target, opts)?;
        let ranges = ranges(&layout.extents);
        let job = Job {
            fill_to: Some(layout.size),
            ..job(&src_path, target, opts, progress)
        };
        progress.start("copy", layout.size);
        let phase = Instant::now();
        let moved = mover::move_data(
            Source::Ranges {
                file: src,
                ranges: &ranges,
                size: layout.size,
            },
            &out,
            &job,
        );
        progress.finish();
        let moved = moved?;
        check_unchanged(src, &src_path, layout.size, src_meta)?;
        report.bytes_read = moved.read;
        report.bytes_written = moved.written;
        report.phases.push(phase_report(
            Phase::Data,
            Method::Sequential,
            layout.size,
            phase,
        ));
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    report.stale_removed = dest::remove_stale_temporaries(target);
    let old = match &existing {
        Existing::Regular(m) => Some(m),
        _ => None,
    };
    let temp = TempFile::create(target, dest::inherited_mode(old, src_meta))?;
    if let Some(m) = old {
        dest::adopt_owner(&temp, m)?;
    }
    let out = temp.file();
    let (_, block) = sys::fs_space(out).at(temp.path(), "statvfs")?;

    if opts.sparse != SparseMode::Never && opts.reflink != ReflinkMode::Never {
        let phase = Instant::now();
        match sys::clone_file(out, src).at(target, "reflink")? {
            CloneOutcome::Cloned => {
                report.reflinked = true;
                report.phases.push(phase_report(
                    Phase::Clone,
                    Method::Ficlone,
                    layout.size,
                    phase,
                ));
                // A clone shares the source's extents at the same offsets, so
                // it has the holes the source's layout shows: no second
                // SEEK_DATA/SEEK_HOLE walk (5 of the 13 ms of a 3 GiB clone
                // with 1,256 extents on btrfs). After a punch, count them.
                let holes = (opts.sparse != SparseMode::Always).then(|| layout.hole_bytes());
                if opts.sparse == SparseMode::Always {
                    let phase = Instant::now();
                    let punched = dig::punch_zero_blocks(out, temp.path(), &opts.cancel, progress)?;
                    report.zeros_to_holes = punched;
                    report.phases.push(phase_report(
                        Phase::Punch,
                        Method::PunchHole,
                        layout.size,
                        phase,
                    ));
                }
                check_unchanged(src, &src_path, layout.size, src_meta)?;
                return finish(report, temp, holes, opts, started);
            }
            CloneOutcome::Unsupported(errno) if opts.reflink == ReflinkMode::Always => {
                return Err(Error::ReflinkUnsupported {
                    path: target.into(),
                    source: errno.into(),
                });
            }
            CloneOutcome::Unsupported(_) => {}
        }
    }

    let zero_scan = match opts.sparse {
        SparseMode::Never => false,
        SparseMode::Always => true,
        SparseMode::Auto => layout.is_sparse() || !layout.kind.reports_holes(),
    };
    let mode = if opts.sparse == SparseMode::Never {
        WriteMode::Dense
    } else {
        WriteMode::Sparse
    };
    let needed = match mode {
        WriteMode::Dense => round_up(layout.size, block),
        _ => layout
            .extents
            .iter()
            .map(|e| round_up(e.end(), block) - e.offset / block * block)
            .sum(),
    };
    if !opts.no_space_check {
        let (available, _) = sys::fs_space(out).at(temp.path(), "statvfs")?;
        if needed > available {
            return Err(Error::NoSpace {
                path: target.into(),
                needed,
                available,
            });
        }
    }
    out.set_len(layout.size).at(temp.path(), "set size")?;
    sys::advise_sequential(src);

    let mut ranges = ranges(&layout.extents);
    if zero_scan || mode == WriteMode::Dense {
        // Gaps read as zeros and stay holes (or are written as zeros, when
        // dense) either way; reading them costs less than a hand-off per
        // small extent.
        ranges = mover::coalesce(&ranges, mover::MERGE_GAP);
    }
    let total = if mode == WriteMode::Dense {
        layout.size
    } else {
        ranges.iter().map(|r| r.1).sum()
    };
    progress.start("copy", total);
    // The destination's holes, while they follow from what was written: a
    // fresh file of holes, written by sparse moves only.
    let mut holes = (mode == WriteMode::Sparse).then_some(layout.size);
    let offload_ok = !zero_scan && mode == WriteMode::Sparse && opts.reflink != ReflinkMode::Never;
    if offload_ok && offload_pays(src, out) {
        let phase = Instant::now();
        let (done, rest) = offload(src, out, &ranges, &src_path, target, opts, progress)?;
        if done > 0 {
            report.bytes_read += done;
            report.bytes_written += done;
            report.phases.push(phase_report(
                Phase::Data,
                Method::CopyFileRange,
                done,
                phase,
            ));
        }
        ranges = rest;
        if done > 0 {
            holes = None; // the filesystem chose how to store those
        }
    }
    if !ranges.is_empty() || mode == WriteMode::Dense {
        let method = match (mode, zero_scan) {
            (WriteMode::Dense, _) => Method::ReadWrite,
            (_, true) => Method::ReadWriteZeroScan,
            (_, false) => Method::ReadWrite,
        };
        let zero_block = zero_scan.then_some(block as usize);
        let job = Job {
            zero_block,
            dst_block: block,
            mode,
            fill_to: Some(layout.size),
            ..job(&src_path, target, opts, progress)
        };
        let phase = Instant::now();
        let moved = mover::move_data(
            Source::Ranges {
                file: src,
                ranges: &ranges,
                size: layout.size,
            },
            out,
            &job,
        );
        let moved = moved.inspect_err(|_| progress.finish())?;
        report.bytes_read += moved.read;
        report.bytes_written += moved.written;
        report.zeros_to_holes += moved.zero_skipped;
        report
            .phases
            .push(phase_report(Phase::Data, method, moved.read, phase));
        holes = holes
            .filter(|_| moved.whole_blocks)
            .map(|h| h - moved.written);
    }
    progress.finish();
    check_unchanged(src, &src_path, layout.size, src_meta)?;
    finish(report, temp, holes, opts, started)
}

fn copy_stream_to(
    reader: &mut (dyn Read + Send),
    label: &Path,
    target: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, Error> {
    let started = Instant::now();
    let mut report = CopyReport::started(label, target, SourceKind::Stream, opts.sparse);
    if opts.reflink == ReflinkMode::Always {
        return Err(Error::ReflinkUnsupported {
            path: target.into(),
            source: std::io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        });
    }
    let existing = existing(None, label, target)?;
    let (sequential, temp, out) = match existing {
        Existing::Special => (true, None, open_special(target, opts)?),
        Existing::Regular(ref m) => {
            report.stale_removed = dest::remove_stale_temporaries(target);
            let temp = TempFile::create(target, m.mode() & 0o7777)?;
            dest::adopt_owner(&temp, m)?;
            let out = temp.file().try_clone().at(temp.path(), "dup")?;
            (false, Some(temp), out)
        }
        Existing::Absent => {
            report.stale_removed = dest::remove_stale_temporaries(target);
            let temp = TempFile::create(target, 0o666)?;
            let out = temp.file().try_clone().at(temp.path(), "dup")?;
            (false, Some(temp), out)
        }
    };
    let (_, block) = sys::fs_space(&out).at(target, "statvfs")?;
    let (mode, zero_block, method) = match (sequential, opts.sparse) {
        (true, _) => (WriteMode::Sequential, None, Method::Sequential),
        (false, SparseMode::Never) => (WriteMode::Dense, None, Method::ReadWrite),
        (false, _) => (
            WriteMode::Sparse,
            Some(block as usize),
            Method::ReadWriteZeroScan,
        ),
    };
    let job = Job {
        zero_block,
        dst_block: block,
        mode,
        ..job(label, target, opts, progress)
    };
    progress.start("copy", 0);
    let phase = Instant::now();
    let moved = mover::move_data(Source::Stream(reader), &out, &job);
    progress.finish();
    let moved = moved?;
    report.size = moved.end;
    report.bytes_read = moved.read;
    report.bytes_written = moved.written;
    report.zeros_to_holes = moved.zero_skipped;
    report
        .phases
        .push(phase_report(Phase::Data, method, moved.end, phase));
    match temp {
        Some(temp) => {
            out.set_len(moved.end).at(temp.path(), "set size")?;
            finish(report, temp, None, opts, started)
        }
        None => {
            report.seconds = started.elapsed().as_secs_f64();
            Ok(report)
        }
    }
}

/// Opens a pipe, device or similar for writing. open(2) of a FIFO blocks
/// until a reader comes, and signal handlers restart it, so that SIGINT
/// could not stop the wait: a FIFO is opened non-blocking, retried until a
/// reader appears or the copy is cancelled, and stays non-blocking (the
/// mover waits for room itself, watching the cancel flag).
fn open_special(target: &Path, opts: &CopyOptions) -> Result<File, Error> {
    let fifo = fs::metadata(target).is_ok_and(|m| m.file_type().is_fifo());
    if !fifo {
        return OpenOptions::new()
            .write(true)
            .open(target)
            .at(target, "open");
    }
    loop {
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(target);
        match opened {
            Ok(file) => return Ok(file),
            // ENXIO: no reader yet.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if opts.cancel.is_cancelled() {
                    return Err(Error::Interrupted {
                        path: target.into(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e).at(target, "open"),
        }
    }
}

/// A job between `src` and `dst` under `opts`, writing in order with no
/// zero scan; callers set what differs.
fn job<'a>(
    src: &'a Path,
    dst: &'a Path,
    opts: &'a CopyOptions,
    progress: &'a dyn Progress,
) -> Job<'a> {
    Job {
        src_path: src,
        dst_path: dst,
        zero_block: None,
        dst_block: 1,
        mode: WriteMode::Sequential,
        fill_to: None,
        progress,
        cancel: &opts.cancel,
    }
}

/// Measures the destination, commits `temp` over it and completes
/// `report`. `holes` is the destination's hole bytes if the copy knows
/// them exactly (see `Moved::whole_blocks`); otherwise SEEK_DATA/SEEK_HOLE
/// count them, which on 20,000 extents cost a fifth of the copy's time.
fn finish(
    mut report: CopyReport,
    temp: TempFile,
    holes: Option<u64>,
    opts: &CopyOptions,
    started: Instant,
) -> Result<CopyReport, Error> {
    if opts.cancel.is_cancelled() {
        return Err(Error::Interrupted {
            path: report.destination,
        });
    }
    let out = temp.file();
    let meta = out.metadata().at(temp.path(), "stat")?;
    report.destination_allocated = Some(meta.blocks() * 512);
    report.hole_bytes = match holes {
        Some(holes) => holes,
        None => {
            let data =
                crate::layout::data_extents(out, meta.len()).at(temp.path(), "seek data/hole")?;
            meta.len() - data.iter().map(|e| e.length).sum::<u64>()
        }
    };
    temp.commit(opts.fsync)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A source that grew or shrank while we copied it was not copied whole,
/// and one written meanwhile (a write, a truncate and regrow, a punched
/// hole: each moves its change time) may be torn between two versions.
fn check_unchanged(
    src: &File,
    path: &Path,
    before: u64,
    at_start: &fs::Metadata,
) -> Result<(), Error> {
    let now = src.metadata().at(path, "stat")?;
    // A device node's st_size is 0: its size is where its end is.
    let after = if now.file_type().is_block_device() {
        (&*src)
            .seek(std::io::SeekFrom::End(0))
            .at(path, "measure block device")?
    } else {
        now.len()
    };
    let ctime = |m: &fs::Metadata| (m.ctime(), m.ctime_nsec());
    if after != before || ctime(&now) != ctime(at_start) {
        return Err(Error::SourceChanged {
            path: path.into(),
            before,
            after,
        });
    }
    Ok(())
}

fn ranges(extents: &[Extent]) -> Vec<(u64, u64)> {
    extents.iter().map(|e| (e.offset, e.length)).collect()
}

fn round_up(n: u64, block: u64) -> u64 {
    n.div_ceil(block) * block
}

fn phase_report(phase: Phase, method: Method, bytes: u64, since: Instant) -> PhaseReport {
    PhaseReport {
        phase,
        method,
        bytes,
        seconds: since.elapsed().as_secs_f64(),
    }
}

/// Whether copy_file_range is worth trying: on ext4 and tmpfs it measured
/// slower than our read/write pipeline (the kernel falls back to splicing
/// page by page); elsewhere (xfs, btrfs, NFS, ...) it lets the filesystem
/// share or offload the work.
fn offload_pays(src: &File, dst: &File) -> bool {
    let slow = |f: &File| {
        matches!(
            sys::fs_magic(f),
            Ok(sys::magic::EXT4 | sys::magic::TMPFS) | Err(_)
        )
    };
    !slow(src) && !slow(dst)
}

/// Copies `ranges` with copy_file_range until done or until the kernel
/// declines; returns the bytes copied and the ranges still to copy.
fn offload(
    src: &File,
    dst: &File,
    ranges: &[(u64, u64)],
    src_path: &Path,
    dst_path: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<(u64, Vec<(u64, u64)>), Error> {
    let mut done = 0u64;
    for (i, &(start, len)) in ranges.iter().enumerate() {
        let end = start + len;
        let mut pos = start;
        while pos < end {
            if opts.cancel.is_cancelled() {
                return Err(Error::Interrupted {
                    path: dst_path.into(),
                });
            }
            let want = (end - pos).min(1 << 30) as usize;
            match sys::copy_range(src, pos, dst, pos, want)
                .at(src_path, &format!("copy_file_range at offset {pos}"))?
            {
                RangeOutcome::Copied(n) => {
                    pos += n as u64;
                    done += n as u64;
                    progress.advance(n as u64);
                }
                RangeOutcome::Unsupported => {
                    let mut rest = vec![(pos, end - pos)];
                    rest.extend_from_slice(&ranges[i + 1..]);
                    return Ok((done, rest));
                }
            }
        }
    }
    Ok((done, Vec::new()))
}
