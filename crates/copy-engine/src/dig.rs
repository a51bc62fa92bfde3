//! Digging: punching every all-zero block of a file out in place, so a
//! fully allocated image (an io.Copy'd `passive.img`) gives its zeros back
//! to the filesystem. The content never changes; only allocation does.
//!
//! A pass of its own, for `sparsecp dig` and for a cloned copy made with
//! `--sparse always`: two workers share the data extents' chunks
//! (`mover::Pieces`); each reads a chunk, zero-scans it and punches its
//! zero runs itself. Then FIEMAP's unwritten extents, which SEEK_DATA
//! calls holes but which stay allocated, are punched too.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::buffer::AlignedBuf;
use crate::error::{Error, IoContext};
use crate::layout::{Layout, SourceKind};
use crate::mover::{self, read_piece, split_runs, Job, Pieces, Reads};
use crate::progress::{Cancel, Progress};
use crate::report::DigReport;
use crate::sys;

/// Bytes per chunk of a dig: nothing is written, so larger reads (fewer
/// syscalls) win: 0.50 s with 1 MiB against 0.6-0.8 s with 128 KiB on a
/// dense 3 GiB image.
const DIG_CHUNK: usize = 1 << 20;
// Scanning the page cache in place instead (mmap with MADV_POPULATE_READ
// where mincore finds a chunk cached) was tried and not kept: warm, on a
// fresh dense 2 GiB copy, 206-222 ms against 223-229 ms with pread
// (alternated, 3 rounds), and slower than pread in 256 KiB chunks (each
// munmap's TLB shootdown interrupts the other core); for that, another
// process truncating the file mid-dig would kill the dig with SIGBUS.

/// Workers of a dig, one per core of the CI machine. Each punches its own
/// zero runs: a punch holds the inode lock, but reading cached pages does
/// not take it, so one worker reads while the other punches. Measured warm
/// on a fresh dense 3 GiB ext2 image (2 GB of data) on ext4, 7 alternated
/// rounds: 274 ms median, against 356 ms for two readers handing their
/// chunks to a third thread that punched (11% of that dig's samples were
/// the hand-offs' futex calls); `fallocate --dig-holes` took 662 ms. Chunks
/// of 256 KiB to 2 MiB took within 10% of each other.
const WORKERS: usize = 2;

/// Punches every all-zero filesystem block of the file at `path` out
/// (`PUNCH_HOLE | KEEP_SIZE`) and reports the allocation given back.
///
/// A file backing an attached loop device is not refused here: callers
/// that take paths from users ask [`crate::live::check_dig`] first (as
/// `sparsecp dig` does unless `--force`).
pub fn dig(path: &Path, cancel: &Cancel, progress: &dyn Progress) -> Result<DigReport, Error> {
    let started = Instant::now();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path, "open for writing")?;
    let meta = file.metadata().at(path, "stat")?;
    if !meta.is_file() {
        return Err(Error::Unsupported {
            path: path.into(),
            reason: "dig needs a regular file".into(),
        });
    }
    let before = meta.blocks() * 512;
    let punched = punch_zero_blocks(&file, path, cancel, progress)?;
    let meta = file.metadata().at(path, "stat")?;
    Ok(DigReport {
        path: path.into(),
        size: meta.len(),
        allocated_before: before,
        allocated_after: meta.blocks() * 512,
        punched,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Punches the all-zero blocks of an open, writable regular file; returns
/// the bytes punched. Holes are skipped (SEEK_DATA), so a sparse file costs
/// only its data.
pub(crate) fn punch_zero_blocks(
    file: &File,
    path: &Path,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Result<u64, Error> {
    // Counted, not listed (constant memory for a file of a million
    // extents): the dig reads the merged ranges the count kept, or walks the
    // extents again when even those are too many.
    let layout = Layout::read(file, path, false, 0)?;
    if layout.kind != SourceKind::Regular {
        return Err(Error::Unsupported {
            path: path.into(),
            reason: "this filesystem cannot report or punch holes".into(),
        });
    }
    let (_, block) = sys::fs_space(file).at(path, "statvfs")?;
    let job = Job {
        src_path: path,
        dst_path: path,
        zero_block: Some(block as usize),
        dst_block: block,
        fill_to: None,
        progress,
        cancel,
    };
    sys::advise_sequential(file);
    progress.start("dig", layout.data_bytes());
    // Small holes between extents read as zeros; punching them again is a
    // no-op, and far cheaper than a piece per small extent.
    // The layout's merged ranges when it kept them, else a second walk.
    let merged = layout.counted.as_ref().and_then(|c| c.merged.as_deref());
    let reads = merged.map_or(
        Reads::Walk {
            merge_gap: Some(mover::MERGE_GAP),
        },
        Reads::Packed,
    );
    let pieces = Mutex::new(Pieces::new(file, reads, layout.size, DIG_CHUNK, path));
    let dug = mover::run_workers(WORKERS, |stop| {
        worker(file, layout.size, &pieces, &job, stop)
    });
    progress.finish();
    let punched = dug?.into_iter().sum();
    free_unwritten(file, path, layout.size, block)?;
    Ok(punched)
}

/// One worker of a dig: takes chunks until none are left or another worker
/// failed, reads each, zero-scans it and punches its zero runs. Returns
/// the bytes punched; an error comes with the offset of its chunk.
fn worker(
    file: &File,
    size: u64,
    pieces: &Mutex<Pieces<'_>>,
    job: &Job<'_>,
    stop: &AtomicBool,
) -> Result<u64, (u64, Error)> {
    let mut buf = AlignedBuf::new(DIG_CHUNK);
    let mut runs = Vec::new();
    let mut punches = Punches {
        file,
        path: job.dst_path,
        pending: None,
        tail: size,
        block: job.dst_block,
        punched: 0,
    };
    let fail = |at: u64, e: Error| {
        stop.store(true, Ordering::Relaxed);
        (at, e)
    };
    while !stop.load(Ordering::Relaxed) {
        let piece = pieces
            .lock()
            .expect("no worker panics holding the plan")
            .next();
        let Some(piece) = piece else { break };
        // Offsets below a walk's failure were all handed out already.
        let (pos, len) = piece.map_err(|e| fail(u64::MAX, e))?;
        let chunk = &mut buf[..len];
        read_piece(file, size, chunk, pos, job).map_err(|e| fail(pos, e))?;
        split_runs(chunk, job.zero_block, &mut runs);
        punches.take(pos, len, &runs).map_err(|e| fail(pos, e))?;
        job.progress.advance(len as u64);
    }
    // The last punch, if it fails, fails at its own offset.
    let last = punches.pending.map_or(size, |(offset, _)| offset);
    punches.flush().map_err(|e| fail(last, e))?;
    Ok(punches.punched)
}

/// Punches the zero runs of the chunks it is given, merging adjacent ones
/// (a zero run often continues into the next chunk) so that each hole
/// costs one fallocate.
struct Punches<'a> {
    file: &'a File,
    path: &'a Path,
    pending: Option<(u64, u64)>,
    /// End of file: a zero run ending there is punched up to the end of its
    /// block, or the partial last block would stay allocated.
    tail: u64,
    block: u64,
    /// Bytes of zero runs found (punched or pending).
    punched: u64,
}

impl Punches<'_> {
    /// Queues the gaps between the data `runs` of the `len` bytes at
    /// `offset` (its all-zero blocks).
    fn take(&mut self, offset: u64, len: usize, runs: &[(usize, usize)]) -> Result<(), Error> {
        let mut at = offset;
        for &(start, n) in runs.iter().chain([(len, 0)].iter()) {
            let run = offset + start as u64;
            self.add(at, run - at)?;
            self.punched += run - at;
            at = run + n as u64;
        }
        Ok(())
    }

    fn add(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        match &mut self.pending {
            Some((start, plen)) if *start + *plen == offset => *plen += len,
            _ => {
                self.flush()?;
                self.pending = Some((offset, len));
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        if let Some((offset, mut len)) = self.pending.take() {
            // Past the end only while the end has not moved: a file grown
            // meanwhile has new bytes there, which the punch would zero.
            let size_now = || self.file.metadata().map(|m| m.len()).ok();
            if offset + len == self.tail && size_now() == Some(self.tail) {
                len = (offset + len).div_ceil(self.block) * self.block - offset;
            }
            sys::punch_hole(self.file, offset, len)
                .at(self.path, &format!("punch hole at offset {offset}"))?;
        }
        Ok(())
    }
}

/// Fallocated but unwritten extents read as zeros and SEEK_DATA calls them
/// holes, so the pass above never reads them, yet they stay allocated.
/// They are punched as FIEMAP lists them: its SYNC flag first writes back
/// dirty pages, so data written into such an extent meanwhile has made it
/// written, not unwritten. (SEEK_DATA cannot be asked instead: once
/// readahead has cached an unwritten extent's pages it reports it as data.)
fn free_unwritten(file: &File, path: &Path, size: u64, block: u64) -> Result<(), Error> {
    let end = size.div_ceil(block) * block;
    // A batch at a time: a file of a million extents costs one batch.
    let mut map = sys::Fiemap::new(file, size);
    let mut batch = Vec::new();
    while let Some(true) = map.next_batch(&mut batch).at(path, "fiemap")? {
        for e in batch.iter().filter(|e| e.unwritten && e.logical < size) {
            let len = (e.logical + e.length).min(end) - e.logical;
            sys::punch_hole(file, e.logical, len)
                .at(path, &format!("punch hole at offset {}", e.logical))?;
        }
    }
    Ok(())
}
