//! A copy guided by a bmap file: only the bmap's mapped ranges are read
//! and written, each checked against its SHA-256; everything else becomes
//! a hole of a fresh regular file (or zeros, written in order, on a device
//! written in place). For sources that cannot tell where their holes are:
//! a pipe or standard input, a fully allocated file, a block device.
//!
//! The steps are the copy's (`crate::copy`): the bmap is read and checked
//! first (its own checksum, its ranges) and the source's size against it,
//! before anything is opened for writing; the plan is
//! [`plan::plan`](crate::plan::plan) of the bmap's [`Layout`] (so space is
//! checked as for any copy); the mover below reads the ranges in order (a
//! stream's unmapped bytes are read and discarded), hashes and writes
//! them; a mismatch fails the copy before the temporary is renamed, so an
//! existing destination is left as it was.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{range_text, Bmap};
use crate::copy::{self, Output};
use crate::dest;
use crate::error::{Error, IoContext};
use crate::execute::HoleCount;
use crate::layout::{Layout, SourceKind};
use crate::mover::COPY_CHUNK;
use crate::options::{CopyOptions, ReflinkMode, SparseMode};
use crate::plan::{self, Destination, Strategy, WriteMode};
use crate::progress::Progress;
use crate::report::{CopyReport, Method, Phase, PhaseReport, Shape};
use crate::stream::CancellableReader;

/// Copies the ranges the bmap file at `bmap_path` maps from `src` (a
/// file, block device or pipe) to `dst`, checking each range's SHA-256
/// (a range without one, from `bmaptool create --no-checksum`, is copied
/// unchecked, as bmaptool does).
/// `dst` is replaced atomically like [`copy`](crate::copy()) does; the
/// unmapped rest of the image becomes holes. A source of known size must
/// be the image's size (a block device may be larger). `opts.sparse` and
/// `opts.reflink` do not apply: the bmap decides what is data.
pub fn copy_with_bmap(
    src: &Path,
    bmap_path: &Path,
    dst: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, Error> {
    let bmap = Bmap::read(bmap_path)?;
    let (file, meta) = copy::open_source(src)?;
    let layout = Layout::for_copy(&file, src)?;
    let target = copy::resolve_destination(src, dst)?;
    let job = Job {
        src,
        bmap: &bmap,
        bmap_path,
        target: &target,
        opts,
        progress,
        in_place: Cell::new(false),
    };
    if layout.kind == SourceKind::Stream {
        let mut reader = CancellableReader::new(file, opts.cancel.clone());
        return job.run(Input::Stream(&mut reader), None);
    }
    let larger_ok = layout.kind == SourceKind::BlockDevice;
    if layout.size < bmap.image_size || (layout.size > bmap.image_size && !larger_ok) {
        return Err(Error::BmapSizeMismatch {
            src: src.into(),
            bmap: bmap_path.into(),
            found: layout.size,
            image_size: bmap.image_size,
        });
    }
    let report = job.run(Input::File(&file, layout.kind, layout.size), Some(&meta))?;
    Ok(report)
}

/// Like [`copy_with_bmap`], from what `reader` yields (standard input);
/// `label` names the source in reports and errors.
pub fn copy_stream_with_bmap(
    reader: &mut (dyn Read + Send),
    label: &Path,
    bmap_path: &Path,
    dst: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, Error> {
    let bmap = Bmap::read(bmap_path)?;
    let target = copy::resolve_destination(label, dst)?;
    let job = Job {
        src: label,
        bmap: &bmap,
        bmap_path,
        target: &target,
        opts,
        progress,
        in_place: Cell::new(false),
    };
    job.run(Input::Stream(reader), None)
}

/// Where the bytes come from.
enum Input<'a> {
    /// A file or block device of this kind and size, read at the
    /// ranges' offsets.
    File(&'a File, SourceKind, u64),
    /// A pipe, read front to back.
    Stream(&'a mut (dyn Read + Send)),
}

/// One bmap copy's ends and settings.
struct Job<'a> {
    src: &'a Path,
    bmap: &'a Bmap,
    bmap_path: &'a Path,
    target: &'a Path,
    opts: &'a CopyOptions,
    progress: &'a dyn Progress,
    /// Whether the destination is written in place (set once opened).
    in_place: Cell<bool>,
}

impl Job<'_> {
    /// The copy's steps (module docs); `src_meta` is a seekable source's.
    fn run(&self, input: Input<'_>, src_meta: Option<&fs::Metadata>) -> Result<CopyReport, Error> {
        let started = Instant::now();
        // The bmap decides what is data: no clone (it would copy all), no
        // zero scan, no dense writes.
        let opts = CopyOptions {
            sparse: SparseMode::Auto,
            reflink: ReflinkMode::Never,
            ..self.opts.clone()
        };
        let kind = match &input {
            Input::File(_, kind, _) => *kind,
            Input::Stream(_) => SourceKind::Stream,
        };
        let mut report = CopyReport::started(self.src, self.target, kind, SparseMode::Auto);
        report.size = self.bmap.image_size;
        report.source_allocated = src_meta
            .filter(|_| kind != SourceKind::BlockDevice)
            .map(|m| std::os::unix::fs::MetadataExt::blocks(m) * 512);
        if fs::metadata(self.target).is_ok_and(|m| m.file_type().is_fifo()) {
            return Err(Error::Unsupported {
                path: self.target.into(),
                reason: "a copy with --bmap writes a file or a device, not a pipe".into(),
            });
        }
        let existing = copy::existing(src_meta, self.src, self.target)?;
        let mode = match (existing.old(), src_meta) {
            (old, Some(meta)) => dest::inherited_mode(old, meta),
            (Some(old), None) => {
                std::os::unix::fs::PermissionsExt::mode(&old.permissions()) & 0o7777
            }
            (None, None) => 0o666,
        };
        let (output, dest) =
            copy::open_output(&existing, self.target, mode, None, &opts, &mut report)?;
        let (out, out_path) = output.file_and_path(self.target);
        self.in_place.set(matches!(output, Output::InPlace(_)));
        let plan = plan::plan(&self.bmap.layout(self.src), &dest, &opts);
        if let (Some(needed), Destination::NewFile(facts)) = (plan.space_needed, &dest) {
            if needed > facts.free_bytes {
                let old = crate::space::OldDestination::measure(self.target, facts.block_size);
                crate::space::check(self.target, needed, facts.free_bytes, old, false)?;
            }
        }
        let sequential =
            matches!(&plan.strategy, Strategy::Move(m) if m.write == WriteMode::Sequential);
        if let Output::Temp(_) = output {
            out.set_len(self.bmap.image_size).at(out_path, "set size")?;
        }
        let src_file = match &input {
            Input::File(file, _, size) => Some((*file, *size)),
            Input::Stream(_) => None,
        };
        let phase = Instant::now();
        self.progress.start("copy", plan.progress_total);
        let moved = self.move_ranges(input, out, out_path, sequential);
        self.progress.finish();
        let (read, written) = moved?;
        report.bytes_read = read;
        report.bytes_written = written;
        report.phases.push(PhaseReport {
            phase: Phase::Data,
            method: if sequential {
                Method::Sequential
            } else {
                Method::ReadWrite
            },
            shape: Shape::OneThread,
            bytes: read,
            seconds: phase.elapsed().as_secs_f64(),
        });
        if let (Some((file, size)), Some(meta)) = (src_file, src_meta) {
            copy::check_unchanged(file, self.src, size, meta)?;
        }
        copy::complete(report, output, HoleCount::Measure, &opts, started)
    }

    /// Reads each mapped range in order, hashes it, checks it and writes
    /// it: at its offset into a fresh file, or (`sequential`) in order
    /// after zeros for the gap. A stream's unmapped bytes are read and
    /// discarded, up to the image's end. Returns bytes read and written.
    fn move_ranges(
        &self,
        input: Input<'_>,
        mut out: &File,
        out_path: &Path,
        sequential: bool,
    ) -> Result<(u64, u64), Error> {
        let image_size = self.bmap.image_size;
        let mut buf = vec![0u8; COPY_CHUNK];
        let zeros = vec![0u8; COPY_CHUNK];
        let (mut read, mut written) = (0, 0);
        let mut input = input;
        let mut pos = 0; // where a stream, and a sequential output, stand
        let pad = |out: &mut &File, from: u64, to: u64| -> Result<u64, Error> {
            let mut at = from;
            while at < to {
                let n = (to - at).min(COPY_CHUNK as u64) as usize;
                out.write_all(&zeros[..n]).at(self.target, "write")?;
                at += n as u64;
            }
            Ok(to - from)
        };
        for r in &self.bmap.ranges {
            let (start, len) = self.bmap.byte_range(r);
            if let Input::Stream(reader) = &mut input {
                read += self.discard(&mut **reader, pos, start, &mut buf)?;
            }
            if sequential {
                written += pad(&mut out, pos, start)?;
            }
            let mut hash = Sha256::new();
            let mut at = start;
            while at < start + len {
                if self.opts.cancel.is_cancelled() {
                    return Err(Error::Interrupted {
                        path: self.target.into(),
                    });
                }
                let n = (start + len - at).min(COPY_CHUNK as u64) as usize;
                let chunk = &mut buf[..n];
                match &mut input {
                    Input::File(file, _, _) => file
                        .read_exact_at(chunk, at)
                        .at(self.src, &format!("read at offset {at}"))?,
                    Input::Stream(reader) => self.read_full(&mut **reader, chunk, at)?,
                }
                hash.update(&*chunk);
                if sequential {
                    out.write_all(chunk).at(self.target, "write")?;
                } else {
                    out.write_all_at(chunk, at).at(out_path, "write")?;
                }
                self.progress.advance(n as u64);
                read += n as u64;
                written += n as u64;
                at += n as u64;
            }
            if r.sha256.is_some_and(|want| hash.finalize()[..] != want[..]) {
                return Err(Error::BmapMismatch {
                    src: self.src.into(),
                    bmap: self.bmap_path.into(),
                    range: match r.first == r.last {
                        true => format!("block {}", r.first),
                        false => format!("blocks {}", range_text(r)),
                    },
                    start,
                    end: start + len,
                    outcome: self.outcome(sequential, at),
                });
            }
            pos = start + len;
        }
        if let Input::Stream(reader) = &mut input {
            read += self.discard(&mut **reader, pos, image_size, &mut buf)?;
        }
        if sequential {
            written += pad(&mut out, pos, image_size)?;
        }
        Ok((read, written))
    }

    /// What a failed copy left of the destination: a temporary is
    /// removed, a device or `/dev/null` was written in place up to `at`.
    fn outcome(&self, in_place: bool, at: u64) -> String {
        match in_place {
            false => "destination left untouched".into(),
            true => format!(
                "{} was written in place up to byte {at}",
                self.target.display()
            ),
        }
    }

    /// Reads and drops a stream's bytes from `from` to `to`.
    fn discard(
        &self,
        reader: &mut dyn Read,
        from: u64,
        to: u64,
        buf: &mut [u8],
    ) -> Result<u64, Error> {
        let mut at = from;
        while at < to {
            let n = (to - at).min(buf.len() as u64) as usize;
            self.read_full(reader, &mut buf[..n], at)?;
            at += n as u64;
        }
        Ok(to - from)
    }

    /// Fills `chunk` from a stream standing at `at`; its end before the
    /// image's is an error naming both sizes.
    fn read_full(&self, reader: &mut dyn Read, chunk: &mut [u8], at: u64) -> Result<(), Error> {
        let mut got = 0;
        while got < chunk.len() {
            match reader.read(&mut chunk[got..]) {
                Ok(0) => {
                    return Err(Error::BmapSourceEnded {
                        src: self.src.into(),
                        bmap: self.bmap_path.into(),
                        found: at + got as u64,
                        image_size: self.bmap.image_size,
                        outcome: self.outcome(self.in_place.get(), at + got as u64),
                    })
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) if self.opts.cancel.is_cancelled() => {
                    return Err(Error::Interrupted {
                        path: self.target.into(),
                    })
                }
                Err(e) => return Err(e).at(self.src, "read"),
            }
        }
        Ok(())
    }
}
