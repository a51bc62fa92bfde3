//! The copy: from a source path (file, block device, stream) to a
//! destination that is replaced atomically, keeping holes as the sparse
//! mode promises, and reporting what happened. A copy is five steps, in
//! this order, each a call in [`copy_file`]:
//!
//! 1. **Gather facts.** Open the source and read its [`Layout`] (size,
//!    what kind of file; its data extents once the destination is known,
//!    unless FICLONE is tried first); resolve the destination (a
//!    directory means `dst/NAME`, a symlink the file it points to). A
//!    regular or absent destination gets a temporary in its directory
//!    (`open_output`, `dest`), and its filesystem's [`FsFacts`]
//!    (`fs_facts`): free bytes, block size, whether copy_file_range pays
//!    there. A pipe or device is opened to be written in place.
//! 2. **Plan.** [`plan::plan`] turns layout, destination and options into
//!    a [`CopyPlan`](crate::CopyPlan): the strategy (clone, clone then
//!    punch, copy_file_range with a fallback, sparse workers, the ring,
//!    sequential writes), the ranges to read, the space needed, how holes
//!    will be counted. Nothing is decided after this.
//! 3. **Preflight.** Options no plan can satisfy were refused first
//!    ([`plan::check_options`]); the space check runs before any data
//!    moves (after a declined clone, since a clone needs no space).
//! 4. **Execute.** `execute` runs the plan: FICLONE (`sys::clone_file`),
//!    copy_file_range (`offload`), or a mover (`mover::sparse`'s two
//!    workers, `mover::ring` with its writer in `mover::write`), and for
//!    `--sparse always` clones the punching pass (`dig`). Every syscall
//!    beyond std's plain file I/O (pread, pwrite, stat, rename) is in
//!    `sys`.
//! 5. **Report.** The source is checked unchanged (size, change time), the
//!    destination measured and renamed over the target (`complete`,
//!    `finish`); the
//!    [`CopyReport`]'s phases carry the method and the worker shape the
//!    plan chose.
//!
//! Streams ([`copy_stream`], or a FIFO source) take the same steps with
//! [`plan::plan_stream`]: read front to back through the ring. A copy
//! guided by a bmap file (`bmap::copy`) shares steps 1 and 5 with these.
//! A block-device destination takes its own path after the facts
//! (`blockdev`): held exclusively, planned with its device facts, written
//! in place.
//!
//! With `--in-place` an existing regular destination is written in its own
//! inode instead (`Output::Overwrite`): its space check counts the old
//! blocks as free and runs before it is truncated (`dest`); a failure
//! after that says the destination is now incomplete.
//!
//! Before any of this, a source or destination that backs an attached loop
//! device is refused (`live`) unless the options allow it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::blockdev;
use crate::dest::{self, TempFile};
use crate::error::{Error, IoContext};
use crate::execute::{self, HoleCount, Input, Run};
use crate::layout::{Layout, SourceKind};
use crate::live;
use crate::options::CopyOptions;
use crate::plan::{self, CopyPlan, Destination, FsFacts, Refusal};
use crate::progress::Progress;
use crate::report::CopyReport;
use crate::space::OldDestination;
use crate::stream::CancellableReader;
use crate::sys::{self, WaitError};

/// Copies `src` to `dst`.
///
/// `dst` may be an existing directory (the copy goes to `dst/NAME`), an
/// existing regular file (replaced atomically), a new path, or a
/// block device (written in place, exclusively, its holes made to read
/// as zeros or skipped as `opts.holes` says; see `blockdev`), or another
/// non-regular file such as a pipe or `/dev/null` (written front to back,
/// never truncated or seeked).
pub fn copy(
    src: &Path,
    dst: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, Error> {
    let (file, meta) = open_source(src)?;
    // Its extents are read once the destination is known (`copy_file`).
    let layout = Layout::unwalked(&file, &meta, src)?;
    let target = resolve_destination(src, dst)?;
    if !opts.allow_attached {
        live::check_copy(Some((src, &meta)), &target, opts.in_place)?;
    }
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

/// Opens the source for reading, refusing a directory. open(2) of a FIFO
/// with no writer blocks, out of SIGINT's reach (see `stream`): a FIFO is
/// opened non-blocking, and the stream reader waits in poll.
pub(crate) fn open_source(src: &Path) -> Result<(File, fs::Metadata), Error> {
    let fifo = fs::metadata(src).is_ok_and(|m| m.file_type().is_fifo());
    let file = if fifo {
        sys::open_read_nonblocking(src)
    } else {
        File::open(src)
    }
    .at(src, "open")?;
    let meta = file.metadata().at(src, "stat")?;
    if meta.is_dir() {
        return Err(Error::Unsupported {
            path: src.into(),
            reason: "is a directory".into(),
        });
    }
    Ok((file, meta))
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
    if !opts.allow_attached {
        live::check_copy(None, &target, opts.in_place)?;
    }
    copy_stream_to(reader, label, &target, opts, progress)
}

/// The path the copy will actually write: `dst/NAME` for a directory, the
/// file a symlink points to (so the link survives), else `dst` itself.
pub(crate) fn resolve_destination(src: &Path, dst: &Path) -> Result<PathBuf, Error> {
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
pub(crate) enum Existing {
    /// Nothing there yet.
    Absent,
    /// A regular file, to be replaced atomically.
    Regular(fs::Metadata),
    /// A pipe, device or similar, to be written in place.
    Special,
}

impl Existing {
    /// The regular file the copy will replace, if any.
    pub(crate) fn old(&self) -> Option<&fs::Metadata> {
        match self {
            Existing::Regular(m) => Some(m),
            Existing::Absent | Existing::Special => None,
        }
    }
}

pub(crate) fn existing(
    src_meta: Option<&fs::Metadata>,
    src: &Path,
    target: &Path,
) -> Result<Existing, Error> {
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
        sys::check_writable(target).at(target, "destination is not writable")?;
        Ok(Existing::Regular(meta))
    } else {
        Ok(Existing::Special)
    }
}

/// Copies the seekable source `src` (layout `layout`) to `target`: the
/// five steps of the module docs.
fn copy_file(
    src: &File,
    src_meta: &fs::Metadata,
    mut layout: Layout,
    target: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, Error> {
    let started = Instant::now();
    let src_path = layout.path.clone();
    let src_path = src_path.as_path();
    plan::check_options(layout.kind, opts).map_err(|r| refused(r, target))?;
    let mut report = CopyReport::started(src_path, target, layout.kind, opts.sparse);
    report.size = layout.size;
    report.source_allocated = (layout.kind != SourceKind::BlockDevice).then_some(layout.allocated);

    // 1. Gather facts: where the bytes go, and what that filesystem can do.
    let existing = existing(Some(src_meta), src_path, target)?;
    if fs::metadata(target).is_ok_and(|m| m.file_type().is_block_device()) {
        // Written in place, exclusively, holes zeroed: its own path.
        layout.walk_for_copy(src)?;
        blockdev::copy_to_device(src, &layout, target, opts, progress, &mut report)?;
        check_unchanged(src, src_path, layout.size, src_meta)?;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let mode = dest::inherited_mode(existing.old(), src_meta);
    let (output, dest) = open_output(&existing, target, mode, Some(src), opts, &mut report)?;
    let (out, out_path) = output.file_and_path(target);

    // 2. Plan. The source's extents are read now, unless FICLONE goes
    // first (it reads none; if declined, the plan's fallback walks them).
    if !plan::clones_before_walking(layout.kind, &dest, opts) {
        layout.walk_for_copy(src)?;
    }
    let plan = plan::plan(&layout, &dest, opts);
    output.prepare(&plan, target, &existing)?;

    // 3 and 4. Preflight and execute.
    let run = Run {
        src_path,
        layout: Some(&layout),
        target,
        out,
        out_path,
        dest: &dest,
        opts,
        progress,
    };
    let done = execute::execute(&plan, Input::File(src), &run, &mut report)
        .map_err(|e| output.failed(e, target))?;

    // 5. Report.
    check_unchanged(src, src_path, layout.size, src_meta).map_err(|e| output.failed(e, target))?;
    complete(report, output, done.holes, opts, started)
}

/// Copies a stream to `target`: the same steps, planned by
/// [`plan::plan_stream`].
fn copy_stream_to(
    reader: &mut (dyn Read + Send),
    label: &Path,
    target: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, Error> {
    let started = Instant::now();
    let mut report = CopyReport::started(label, target, SourceKind::Stream, opts.sparse);
    plan::check_options(SourceKind::Stream, opts).map_err(|r| refused(r, target))?;
    let existing = existing(None, label, target)?;
    let mode = existing.old().map_or(0o666, |m| m.mode() & 0o7777);
    let (output, dest) = open_output(&existing, target, mode, None, opts, &mut report)?;
    let (out, out_path) = output.file_and_path(target);
    let plan = plan::plan_stream(&dest, opts);
    output.prepare(&plan, target, &existing)?;
    let run = Run {
        src_path: label,
        layout: None,
        target,
        out,
        out_path,
        dest: &dest,
        opts,
        progress,
    };
    let done = execute::execute(&plan, Input::Stream(reader), &run, &mut report)
        .map_err(|e| output.failed(e, target))?;
    report.size = done.end;
    if let Output::Temp(_) | Output::Overwrite(_) = &output {
        out.set_len(done.end).at(out_path, "set size")?;
    }
    complete(report, output, done.holes, opts, started)
}

/// The destination opened for writing.
pub(crate) enum Output {
    /// A temporary in the target's directory, renamed over it at the end.
    Temp(TempFile),
    /// The target itself (a pipe, device, `/dev/null`), written in place.
    InPlace(File),
    /// The existing regular target itself (`--in-place`): truncated once
    /// the space check passes, then written; not atomic.
    Overwrite(File),
}

impl Output {
    /// The open file and where it is.
    pub(crate) fn file_and_path<'a>(&'a self, target: &'a Path) -> (&'a File, &'a Path) {
        match self {
            Output::Temp(temp) => (temp.file(), temp.path()),
            Output::InPlace(file) | Output::Overwrite(file) => (file, target),
        }
    }

    /// For `--in-place`: the space check (the old blocks count as free),
    /// then the truncation. Nothing to do otherwise.
    fn prepare(&self, plan: &CopyPlan, target: &Path, existing: &Existing) -> Result<(), Error> {
        match self {
            Output::Overwrite(file) => {
                let old = existing.old().map(|m| OldDestination {
                    allocated: m.blocks() * 512,
                    zeros: None,
                });
                dest::truncate_for_overwrite(file, target, plan, old)
            }
            Output::Temp(_) | Output::InPlace(_) => Ok(()),
        }
    }

    /// The error `e` as the caller sees it: once an in-place copy has
    /// truncated the destination, it says so.
    fn failed(&self, e: Error, target: &Path) -> Error {
        match self {
            Output::Overwrite(_) => Error::Incomplete {
                path: target.into(),
                cause: Box::new(e),
            },
            Output::Temp(_) | Output::InPlace(_) => e,
        }
    }
}

/// Opens where the copy writes, and says what it is: a pipe or device in
/// place; otherwise, after removing temporaries of killed copies, a
/// temporary with `mode` and the owner of the file it will replace, with
/// its filesystem's facts (`src`, when seekable, is asked whether
/// copy_file_range pays).
pub(crate) fn open_output(
    existing: &Existing,
    target: &Path,
    mode: u32,
    src: Option<&File>,
    opts: &CopyOptions,
    report: &mut CopyReport,
) -> Result<(Output, Destination), Error> {
    if let Existing::Special = existing {
        let out = open_special(target, opts)?;
        return Ok((Output::InPlace(out), Destination::InPlace));
    }
    if let (true, Existing::Regular(_)) = (opts.in_place, existing) {
        let out = dest::open_overwrite(target)?;
        let facts = fs_facts(src, &out, target)?;
        return Ok((Output::Overwrite(out), Destination::Overwrite(facts)));
    }
    report.stale_removed = dest::remove_stale_temporaries(target);
    let temp = TempFile::create(target, mode)?;
    if let Some(m) = existing.old() {
        dest::adopt_owner(&temp, m)?;
    }
    let facts = fs_facts(src, temp.file(), temp.path())?;
    Ok((Output::Temp(temp), Destination::NewFile(facts)))
}

/// Renames a temporary over the target ([`finish`]); a destination
/// written in place is complete already.
pub(crate) fn complete(
    mut report: CopyReport,
    output: Output,
    holes: HoleCount,
    opts: &CopyOptions,
    started: Instant,
) -> Result<CopyReport, Error> {
    match output {
        Output::Temp(temp) => finish(report, temp, holes, opts, started),
        Output::Overwrite(file) => {
            let path = report.destination.clone();
            measure(&mut report, &file, &path, holes)?;
            if opts.fsync {
                file.sync_all().at(&path, "fsync")?;
            }
            report.seconds = started.elapsed().as_secs_f64();
            Ok(report)
        }
        Output::InPlace(_) => {
            report.seconds = started.elapsed().as_secs_f64();
            Ok(report)
        }
    }
}

/// The error for options no plan can satisfy.
fn refused(refusal: Refusal, target: &Path) -> Error {
    match refusal {
        Refusal::ReflinkDense => Error::Unsupported {
            path: target.into(),
            reason: "--reflink always cannot make a fully allocated (--sparse never) copy".into(),
        },
        Refusal::ReflinkStream => Error::ReflinkUnsupported {
            path: target.into(),
            source: sys::not_supported(),
        },
    }
}

/// What the filesystem holding `out` (at `path`) offers the plan; `src`,
/// when seekable, is asked too whether copy_file_range pays.
fn fs_facts(src: Option<&File>, out: &File, path: &Path) -> Result<FsFacts, Error> {
    let (free_bytes, block_size) = sys::fs_space(out).at(path, "statvfs")?;
    // On ext4 and tmpfs copy_file_range measured slower than our
    // read/write workers (the kernel falls back to splicing page by page);
    // elsewhere (xfs, btrfs, NFS, ...) it lets the filesystem share or
    // offload the work.
    let slow = |f: &File| {
        matches!(
            sys::fs_magic(f),
            Ok(sys::magic::EXT4 | sys::magic::TMPFS) | Err(_)
        )
    };
    Ok(FsFacts {
        free_bytes,
        block_size,
        copy_file_range_pays: src.is_some_and(|src| !slow(src) && !slow(out)),
    })
}

/// Opens a pipe, device or similar for writing. A FIFO is opened
/// non-blocking and waited for in `sys` (open(2) of a FIFO blocks until a
/// reader comes, out of SIGINT's reach), and stays non-blocking: the
/// sequential writer waits for room itself, watching the cancel flag.
fn open_special(target: &Path, opts: &CopyOptions) -> Result<File, Error> {
    let kind = fs::metadata(target).map(|m| m.file_type());
    // A block device written front to back (from a stream, or by a bmap
    // copy) is held exclusively too: a mounted or busy one is refused.
    if kind.as_ref().is_ok_and(|k| k.is_block_device()) {
        return blockdev::open_exclusive(target);
    }
    let fifo = kind.is_ok_and(|k| k.is_fifo());
    if !fifo {
        return OpenOptions::new()
            .write(true)
            .open(target)
            .at(target, "open");
    }
    sys::open_fifo_for_writing(target, &opts.cancel).map_err(|e| match e {
        WaitError::Cancelled => Error::Interrupted {
            path: target.into(),
        },
        WaitError::Failed { op, err } => Error::Io {
            path: target.into(),
            op,
            source: err,
        },
    })
}

/// Measures the destination, commits `temp` over it and completes
/// `report`. `holes` is the destination's hole bytes if the copy knows
/// them exactly (see `Moved::whole_blocks`); otherwise SEEK_DATA/SEEK_HOLE
/// count them, which on 20,000 extents cost a fifth of the copy's time.
fn finish(
    mut report: CopyReport,
    temp: TempFile,
    holes: HoleCount,
    opts: &CopyOptions,
    started: Instant,
) -> Result<CopyReport, Error> {
    if opts.cancel.is_cancelled() {
        return Err(Error::Interrupted {
            path: report.destination,
        });
    }
    measure(&mut report, temp.file(), temp.path(), holes)?;
    temp.commit(opts.fsync)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Records the written destination's allocation and hole bytes.
fn measure(
    report: &mut CopyReport,
    out: &File,
    path: &Path,
    holes: HoleCount,
) -> Result<(), Error> {
    let meta = out.metadata().at(path, "stat")?;
    report.destination_allocated = Some(meta.blocks() * 512);
    report.hole_bytes = match holes {
        HoleCount::Known(holes) => Some(holes),
        HoleCount::Shared => None,
        HoleCount::Measure => {
            let mut data = 0;
            for e in crate::layout::walk(out, 0, meta.len()) {
                data += e.at(path, "seek data/hole")?.length;
            }
            Some(meta.len() - data)
        }
    };
    Ok(())
}

/// A source that grew or shrank while we copied it was not copied whole,
/// and one written meanwhile (a write, a truncate and regrow, a punched
/// hole: each moves its change time) may be torn between two versions.
pub(crate) fn check_unchanged(
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
