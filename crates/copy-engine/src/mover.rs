//! The data mover. Two shapes, by where the bytes go:
//!
//! - **Positional sparse writes** (a copy into a fresh regular file, the
//!   install's case): two workers, each reading a chunk into its own
//!   page-aligned buffer, zero-scanning it and `pwrite`ing its data runs,
//!   then taking the next chunk. The destination's inode lock orders the
//!   writes, so while one worker writes the other reads, and every write
//!   copies from a buffer still hot in the writing core's cache. This is
//!   the cheapest way found to keep ext4's write path (the page-cache
//!   memcpy plus per-block delalloc bookkeeping, all under that lock) busy
//!   without a gap: measured on the 3 GiB install image, warm, ten
//!   interleaved rounds: 0.79x `cp --sparse=auto` against 0.94x for the
//!   reader/writer ring below, whose writer also paid a thread wake-up per
//!   chunk and copied from the other core's cache.
//! - **Everything else** (dense writes, pipes and devices, `dig`): reader
//!   threads and a writer thread joined by a small ring of page-aligned
//!   buffers, so that reading and zero-scanning one chunk overlaps with
//!   writing the previous one. Dense and sequential writes need their
//!   chunks in order (one reader); a dig, whose writer only punches, reads
//!   with two.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use crate::buffer::AlignedBuf;
use crate::error::{Error, IoContext};
use crate::progress::{Cancel, Progress};
use crate::zero;

/// Bytes per chunk of a copy. A write's memcpy into the page cache must
/// find its source still in cache: in a sparse worker's own L2 (512 KiB
/// per core on the CI machine) between its read and its write, in the
/// ring's case the whole ring (`RING` chunks) while the other core reads
/// it. Measured there on the 3 GiB install image, warm, with the ring:
/// 1 MiB chunks took 1.6 s median, 512 KiB 1.8 s, 256 KiB and 128 KiB
/// 0.8-1.0 s, 64 KiB 1.1 s (more hand-offs); cp 1.1-1.3 s. Writing alone
/// from one buffer there: 1.6 GB took 0.72 s in 256 KiB writes, 0.80 s in
/// 128 KiB, 1.46 s in 512 KiB and 2.4 s in 1 MiB.
const COPY_CHUNK: usize = 128 << 10;
/// Bytes per chunk of a dig: nothing is written, so larger reads (fewer
/// syscalls) win: 0.50 s with 1 MiB against 0.6-0.8 s with 128 KiB on a
/// dense 3 GiB image.
const DIG_CHUNK: usize = 1 << 20;
/// Data ranges closer than this are read as one (see [`coalesce`]).
pub(crate) const MERGE_GAP: u64 = 64 << 10;

/// Merges `(offset, length)` ranges separated by at most `max_gap` bytes.
/// Only for moves whose zero scan (or dense write) treats the gap's zeros
/// exactly as the hole they come from: then thousands of small extents
/// share a chunk instead of costing a thread hand-off each.
pub(crate) fn coalesce(ranges: &[(u64, u64)], max_gap: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(start, len) in ranges {
        match out.last_mut() {
            Some((s, l)) if start <= *s + *l + max_gap => *l = (start + len).max(*s + *l) - *s,
            _ => out.push((start, len)),
        }
    }
    out
}

/// Buffers in the ring (peak memory is `RING` chunks: 512 KiB for a copy,
/// 4 MiB for a dig).
const RING: usize = 4;

/// The chunk size for a move in `mode`.
fn chunk_size(mode: WriteMode) -> usize {
    match mode {
        WriteMode::Punch => DIG_CHUNK,
        WriteMode::Sparse | WriteMode::Dense | WriteMode::Sequential => COPY_CHUNK,
    }
}

/// Where the bytes come from.
pub(crate) enum Source<'a> {
    /// A seekable file: read `ranges` (offset, length) with `pread`; the
    /// file must keep `size` bytes throughout.
    Ranges {
        file: &'a File,
        ranges: &'a [(u64, u64)],
        size: u64,
    },
    /// A pipe or similar: read front to back until end of file.
    Stream(&'a mut (dyn Read + Send)),
}

/// How bytes land in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// `pwrite` the data runs only; gaps stay holes (the destination is a
    /// fresh file whose size is set afterwards).
    Sparse,
    /// `pwrite` every byte, gaps as written zeros: fully allocated.
    Dense,
    /// `write` every byte in order: pipes, devices, `/dev/null`.
    Sequential,
    /// Write nothing; punch the all-zero blocks of the chunks out of the
    /// destination, which is the source itself (`dig`).
    Punch,
}

/// What the mover did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Moved {
    /// Bytes read from the source.
    pub read: u64,
    /// Bytes written to the destination (zeros included).
    pub written: u64,
    /// Bytes of all-zero blocks read but left as holes.
    pub zero_skipped: u64,
    /// End of the logical content (for streams, its length).
    pub end: u64,
    /// Whether every run written covered whole destination blocks (or
    /// ended at `end`), into a file that held only holes: then the
    /// destination's data is exactly the `written` bytes and its holes
    /// the rest, with no need to ask the filesystem. Only sparse moves
    /// say so.
    pub whole_blocks: bool,
}

/// Everything the mover needs besides the two ends.
pub(crate) struct Job<'a> {
    pub src_path: &'a Path,
    pub dst_path: &'a Path,
    /// Split chunks at this block size into zero and non-zero runs
    /// (`None`: every byte read is data).
    pub zero_block: Option<usize>,
    pub mode: WriteMode,
    /// The destination filesystem's block size.
    pub dst_block: u64,
    /// The source's size (`None` for streams): dense and sequential modes
    /// write zeros up to here after the last chunk; punch mode extends a
    /// zero tail to its block boundary.
    pub fill_to: Option<u64>,
    pub progress: &'a dyn Progress,
    pub cancel: &'a Cancel,
}

impl Job<'_> {
    /// The error of a move stopped by its cancel flag.
    fn interrupted(&self) -> Error {
        Error::Interrupted {
            path: self.dst_path.to_path_buf(),
        }
    }
}

/// A filled buffer on its way to the writer.
struct Chunk {
    buf: AlignedBuf,
    offset: u64,
    len: usize,
    /// Data runs within `buf[..len]`, relative to `offset`.
    runs: Vec<(usize, usize)>,
}

/// Reader threads for a move through the ring. Digging leaves its writer
/// nearly idle (a punch per zero run), so two readers share the pread and
/// the zero scan and keep both cores busy; a dense or sequential write
/// needs chunks in order, so it keeps one reader, as does a stream (a
/// sparse move reaches the ring only from a stream).
fn readers(mode: WriteMode) -> usize {
    match mode {
        WriteMode::Punch => 2,
        WriteMode::Sparse | WriteMode::Dense | WriteMode::Sequential => 1,
    }
}

/// Moves the data from `src` to `dst`: with two workers for sparse writes
/// from a seekable source, with the reader/writer ring otherwise.
pub(crate) fn move_data(src: Source<'_>, dst: &File, job: &Job<'_>) -> Result<Moved, Error> {
    match src {
        Source::Ranges { file, ranges, size } if job.mode == WriteMode::Sparse => {
            move_sparse(file, ranges, size, dst, job)
        }
        src => move_through_ring(src, dst, job),
    }
}

/// Workers of a sparse move: one per core of the CI machine. More only
/// queue on the destination's inode lock.
const WORKERS: usize = 2;

/// The sparse move: [`WORKERS`] threads share the chunk plan, and each
/// reads, scans and writes its own chunks (see the module docs). The first
/// failing worker stops the others; of several failures, the one at the
/// lowest offset is reported, so the error does not depend on timing.
fn move_sparse(
    file: &File,
    ranges: &[(u64, u64)],
    size: u64,
    dst: &File,
    job: &Job<'_>,
) -> Result<Moved, Error> {
    let pieces = Mutex::new(Pieces::new(ranges, COPY_CHUNK));
    let stop = AtomicBool::new(false);
    let results: Vec<Result<Moved, (u64, Error)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| s.spawn(|| sparse_worker(file, size, &pieces, dst, job, &stop)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("sparse worker panicked"))
            .collect()
    });
    let mut total = Moved {
        end: size,
        whole_blocks: true,
        ..Moved::default()
    };
    let mut first_error: Option<(u64, Error)> = None;
    for result in results {
        match result {
            Ok(m) => {
                total.read += m.read;
                total.written += m.written;
                total.zero_skipped += m.zero_skipped;
                total.whole_blocks &= m.whole_blocks;
            }
            Err((at, e)) => {
                if first_error.as_ref().is_none_or(|(first, _)| at < *first) {
                    first_error = Some((at, e));
                }
            }
        }
    }
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(total),
    }
}

/// One worker of [`move_sparse`]: takes chunks until none are left or
/// another worker failed. An error comes with the offset of its chunk.
fn sparse_worker(
    file: &File,
    size: u64,
    pieces: &Mutex<Pieces<'_>>,
    dst: &File,
    job: &Job<'_>,
    stop: &AtomicBool,
) -> Result<Moved, (u64, Error)> {
    let mut buf = AlignedBuf::new(COPY_CHUNK);
    let mut runs = Vec::new();
    let mut moved = Moved {
        whole_blocks: true,
        ..Moved::default()
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(moved);
        }
        let piece = pieces
            .lock()
            .expect("no worker panics holding the plan")
            .next();
        let Some((pos, len)) = piece else {
            return Ok(moved);
        };
        let step = sparse_step(file, size, &mut buf[..len], pos, &mut runs, dst, job);
        match step {
            Ok(data) => {
                moved.whole_blocks &= covers_whole_blocks(&runs, pos, size, job.dst_block);
                moved.read += len as u64;
                moved.written += data;
                moved.zero_skipped += len as u64 - data;
                job.progress.advance(len as u64);
            }
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err((pos, e));
            }
        }
    }
}

/// Whether each of `runs` (relative to `pos`) starts on a multiple of
/// `block` and ends on one or at `size`.
fn covers_whole_blocks(runs: &[(usize, usize)], pos: u64, size: u64, block: u64) -> bool {
    runs.iter().all(|&(start, len)| {
        let (start, end) = (pos + start as u64, pos + (start + len) as u64);
        start % block == 0 && (end % block == 0 || end == size)
    })
}

/// Reads the chunk at `pos` into `buf`, and writes its data runs (all of
/// it without a zero scan). Returns the bytes written.
fn sparse_step(
    file: &File,
    size: u64,
    buf: &mut [u8],
    pos: u64,
    runs: &mut Vec<(usize, usize)>,
    dst: &File,
    job: &Job<'_>,
) -> Result<u64, Error> {
    if job.cancel.is_cancelled() {
        return Err(job.interrupted());
    }
    match read_exact_at(file, buf, pos, size, job.src_path) {
        Err(_) if job.cancel.is_cancelled() => return Err(job.interrupted()),
        read => read?,
    };
    split_runs(buf, job.zero_block, runs);
    let mut written = 0;
    for &(start, len) in runs.iter() {
        let at = pos + start as u64;
        dst.write_all_at(&buf[start..start + len], at)
            .at(job.dst_path, &format!("write at offset {at}"))?;
        written += len as u64;
    }
    Ok(written)
}

/// Moves the data from `src` to `dst` with the reader/writer ring.
fn move_through_ring(src: Source<'_>, dst: &File, job: &Job<'_>) -> Result<Moved, Error> {
    let (full_tx, full_rx) = sync_channel::<Result<Chunk, Error>>(RING);
    let (empty_tx, empty_rx) = sync_channel::<Chunk>(RING);
    let chunk_len = chunk_size(job.mode);
    for _ in 0..RING {
        let chunk = Chunk {
            buf: AlignedBuf::new(chunk_len),
            offset: 0,
            len: 0,
            runs: Vec::new(),
        };
        empty_tx.send(chunk).expect("ring has room");
    }
    // Shared by the readers, so made outside the scope that joins them.
    let empty = Mutex::new(empty_rx);
    let mut plan = match src {
        Source::Ranges { file, ranges, size } => Plan::Ranges {
            file,
            size,
            pieces: Mutex::new(Pieces::new(ranges, chunk_len)),
        },
        Source::Stream(reader) => Plan::Stream(reader),
    };
    std::thread::scope(|s| {
        let empty = &empty;
        let spawned: Vec<_> = match &mut plan {
            Plan::Ranges { file, size, pieces } => {
                let (file, size, pieces) = (*file, *size, &*pieces);
                (0..readers(job.mode))
                    .map(|_| {
                        let full = full_tx.clone();
                        s.spawn(move || read_ranges(file, size, pieces, job, empty, full))
                    })
                    .collect()
            }
            Plan::Stream(reader) => {
                let full = full_tx.clone();
                let reader = &mut **reader;
                vec![s.spawn(move || read_stream(reader, job, empty, full))]
            }
        };
        // The writer's loop ends once every reader has dropped its sender.
        drop(full_tx);
        let written = write_side(dst, job, full_rx, empty_tx);
        let mut read = Moved::default();
        for reader in spawned {
            let r = reader.join().expect("reader thread panicked");
            read.read += r.read;
            read.end = read.end.max(r.end);
        }
        // A reader's error reaches the writer through the ring, so the
        // writer's result is the move's.
        let w = written?;
        Ok(Moved {
            read: read.read,
            written: w.written,
            zero_skipped: w.zero_skipped,
            end: read.end,
            whole_blocks: false,
        })
    })
}

/// What the readers share while they run.
enum Plan<'a> {
    Ranges {
        file: &'a File,
        size: u64,
        pieces: Mutex<Pieces<'a>>,
    },
    Stream(&'a mut (dyn Read + Send)),
}

/// Hands out the planned ranges in chunk-aligned pieces `(offset, len)`, in
/// file order, to however many readers share it. Pieces stay aligned to
/// the chunk size in the file so reads and writes stay aligned to every
/// block size.
struct Pieces<'a> {
    ranges: std::slice::Iter<'a, (u64, u64)>,
    current: Option<(u64, u64)>,
    chunk: u64,
}

impl<'a> Pieces<'a> {
    fn new(ranges: &'a [(u64, u64)], chunk: usize) -> Pieces<'a> {
        Pieces {
            ranges: ranges.iter(),
            current: None,
            chunk: chunk as u64,
        }
    }
}

impl Iterator for Pieces<'_> {
    type Item = (u64, usize);

    fn next(&mut self) -> Option<(u64, usize)> {
        loop {
            match self.current {
                Some((pos, end)) if pos < end => {
                    let want = ((pos / self.chunk + 1) * self.chunk).min(end) - pos;
                    self.current = Some((pos + want, end));
                    return Some((pos, want as usize));
                }
                _ => {
                    let &(start, len) = self.ranges.next()?;
                    self.current = Some((start, start + len));
                }
            }
        }
    }
}

/// Takes an empty buffer from the ring, fills it with `fill` and splits it
/// into data runs; `None` when the ring is closed (the writer stopped, with
/// its own error).
fn fill_chunk(
    job: &Job<'_>,
    empty: &Mutex<Receiver<Chunk>>,
    offset: u64,
    fill: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Result<Option<Chunk>, Error> {
    if job.cancel.is_cancelled() {
        return Err(job.interrupted());
    }
    let received = empty
        .lock()
        .expect("no reader panics holding the ring")
        .recv();
    let Ok(mut chunk) = received else {
        return Ok(None);
    };
    let len = match fill(&mut chunk.buf) {
        // A read given up because of the cancel is an interruption.
        Err(_) if job.cancel.is_cancelled() => return Err(job.interrupted()),
        filled => filled?,
    };
    chunk.offset = offset;
    chunk.len = len;
    split_runs(&chunk.buf[..len], job.zero_block, &mut chunk.runs);
    Ok(Some(chunk))
}

/// The data runs of `buf` into `runs`: its non-zero blocks of `zero_block`
/// bytes, or all of it without a zero scan.
fn split_runs(buf: &[u8], zero_block: Option<usize>, runs: &mut Vec<(usize, usize)>) {
    match zero_block {
        Some(block) => zero::data_runs(buf, block, runs),
        None => {
            runs.clear();
            runs.push((0, buf.len()));
        }
    }
}

/// One reader of a seekable source: takes pieces until none are left, the
/// writer stops, or a read fails (the error then goes to the writer).
fn read_ranges(
    file: &File,
    size: u64,
    pieces: &Mutex<Pieces<'_>>,
    job: &Job<'_>,
    empty: &Mutex<Receiver<Chunk>>,
    full: SyncSender<Result<Chunk, Error>>,
) -> Moved {
    let mut moved = Moved::default();
    loop {
        let piece = pieces
            .lock()
            .expect("no reader panics holding the plan")
            .next();
        let Some((pos, want)) = piece else {
            moved.end = size;
            return moved;
        };
        let fill = |buf: &mut [u8]| read_exact_at(file, &mut buf[..want], pos, size, job.src_path);
        if hand_over(fill_chunk(job, empty, pos, fill), &full, &mut moved).is_none() {
            return moved;
        }
    }
}

/// The reader of a pipe or similar: front to back until end of file.
fn read_stream(
    reader: &mut (dyn Read + Send),
    job: &Job<'_>,
    empty: &Mutex<Receiver<Chunk>>,
    full: SyncSender<Result<Chunk, Error>>,
) -> Moved {
    let mut moved = Moved::default();
    loop {
        let pos = moved.read;
        let fill = |buf: &mut [u8]| read_full(reader, buf, job.src_path, pos);
        match hand_over(fill_chunk(job, empty, pos, fill), &full, &mut moved) {
            None => return moved,
            Some(0) => {
                moved.end = moved.read;
                return moved;
            }
            Some(_) => {}
        }
    }
}

/// Passes what [`fill_chunk`] gave on to the writer and counts it: the
/// length handed over (0 at end of file, which is not sent), or `None`
/// when this reader must stop (the ring closed, the writer stopped, or a
/// read failed and its error was just sent).
fn hand_over(
    filled: Result<Option<Chunk>, Error>,
    full: &SyncSender<Result<Chunk, Error>>,
    moved: &mut Moved,
) -> Option<usize> {
    match filled {
        Ok(Some(chunk)) => {
            let len = chunk.len;
            moved.read += len as u64;
            if len > 0 {
                full.send(Ok(chunk)).ok()?;
            }
            Some(len)
        }
        Ok(None) => None,
        Err(e) => {
            let _ = full.send(Err(e));
            None
        }
    }
}

/// Reads exactly `buf.len()` bytes at `offset`; a source that ends early
/// changed size under us.
fn read_exact_at(
    file: &File,
    buf: &mut [u8],
    offset: u64,
    size: u64,
    path: &Path,
) -> Result<usize, Error> {
    let mut done = 0;
    while done < buf.len() {
        let at = offset + done as u64;
        match file.read_at(&mut buf[done..], at) {
            Ok(0) => {
                let after = file.metadata().map(|m| m.len()).unwrap_or(at);
                return Err(Error::SourceChanged {
                    path: path.to_path_buf(),
                    before: size,
                    after,
                });
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let bad = first_unreadable(file, at, buf.len() - done).unwrap_or(at);
                return Err(e).at(path, &format!("read at offset {bad}"));
            }
        }
    }
    Ok(done)
}

/// After a read of `len` bytes at `offset` failed, finds the first 512-byte
/// sector of it that fails on its own, so the error names where the bad
/// bytes are rather than where a 1 MiB read began.
fn first_unreadable(file: &File, offset: u64, len: usize) -> Option<u64> {
    const SECTOR: u64 = 512;
    let mut buf = [0u8; SECTOR as usize];
    let (mut at, end) = (offset, offset + len as u64);
    while at < end {
        let n = (SECTOR - at % SECTOR).min(end - at) as usize;
        match file.read_at(&mut buf[..n], at) {
            Ok(0) => return None,
            Ok(got) => at += got as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Some(at),
        }
    }
    None
}

/// Fills `buf` from a stream; returns less only at end of file.
fn read_full(reader: &mut dyn Read, buf: &mut [u8], path: &Path, pos: u64) -> Result<usize, Error> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).at(path, &format!("read at offset {}", pos + done as u64)),
        }
    }
    Ok(done)
}

fn write_side(
    dst: &File,
    job: &Job<'_>,
    full: Receiver<Result<Chunk, Error>>,
    empty: SyncSender<Chunk>,
) -> Result<Moved, Error> {
    let mut moved = Moved::default();
    let mut out = Out { dst, job, pos: 0 };
    let dense = matches!(job.mode, WriteMode::Dense | WriteMode::Sequential);
    let mut punch = Punches {
        file: dst,
        path: job.dst_path,
        pending: None,
        tail: job.fill_to,
        block: job.zero_block.unwrap_or(1) as u64,
    };
    for msg in full {
        let chunk = msg?;
        if job.mode == WriteMode::Punch {
            let mut at = chunk.offset;
            for &(start, len) in chunk.runs.iter().chain([(chunk.len, 0)].iter()) {
                let run = chunk.offset + start as u64;
                punch.add(at, run - at)?;
                moved.zero_skipped += run - at;
                at = run + len as u64;
            }
            job.progress.advance(chunk.len as u64);
            // The reader may be gone already (it finished): keep draining.
            let _ = empty.send(chunk);
            continue;
        }
        for &(start, len) in &chunk.runs {
            let at = chunk.offset + start as u64;
            if dense {
                out.zeros_to(at, &mut moved)?;
            }
            out.write(&chunk.buf[start..start + len], at)?;
            moved.written += len as u64;
        }
        let data: usize = chunk.runs.iter().map(|r| r.1).sum();
        if dense {
            out.zeros_to(chunk.offset + chunk.len as u64, &mut moved)?;
        } else {
            moved.zero_skipped += (chunk.len - data) as u64;
        }
        job.progress.advance(chunk.len as u64);
        // The reader may be gone already (it finished): keep draining.
        let _ = empty.send(chunk);
    }
    if dense {
        if let Some(end) = job.fill_to {
            out.zeros_to(end, &mut moved)?;
        }
    }
    punch.flush()?;
    Ok(moved)
}

/// Punches zero runs, merging adjacent ones (a zero run often continues
/// into the next chunk) so that each hole costs one fallocate.
struct Punches<'a> {
    file: &'a File,
    path: &'a Path,
    pending: Option<(u64, u64)>,
    /// End of file: a zero run ending there is punched up to the end of its
    /// block, or the partial last block would stay allocated.
    tail: Option<u64>,
    block: u64,
}

impl Punches<'_> {
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
            if Some(offset + len) == self.tail && size_now() == self.tail {
                len = (offset + len).div_ceil(self.block) * self.block - offset;
            }
            crate::sys::punch_hole(self.file, offset, len)
                .at(self.path, &format!("punch hole at offset {offset}"))?;
        }
        Ok(())
    }
}

/// The writer's cursor over the destination.
struct Out<'a> {
    dst: &'a File,
    job: &'a Job<'a>,
    /// Everything before `pos` has been written (dense and sequential modes).
    pos: u64,
}

impl Out<'_> {
    fn write(&mut self, buf: &[u8], offset: u64) -> Result<(), Error> {
        let path = self.job.dst_path;
        let res = match self.job.mode {
            WriteMode::Sequential => return self.write_sequential(buf, offset),
            WriteMode::Sparse | WriteMode::Dense | WriteMode::Punch => {
                self.dst.write_all_at(buf, offset)
            }
        };
        res.at(path, &format!("write at offset {offset}"))?;
        self.pos = offset + buf.len() as u64;
        Ok(())
    }

    /// Writes in order to a pipe or device. A FIFO is non-blocking (see
    /// `copy::open_special`): when its reader stops reading, wait for room
    /// in slices and look at the cancel flag between them, since a blocked
    /// write would ignore SIGINT (its handler restarts the write).
    fn write_sequential(&mut self, mut buf: &[u8], offset: u64) -> Result<(), Error> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        const SLICE: Timespec = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let path = self.job.dst_path;
        let mut at = offset;
        while !buf.is_empty() {
            match (&*self.dst).write(buf) {
                Ok(0) => {
                    return Err(std::io::Error::from(std::io::ErrorKind::WriteZero))
                        .at(path, &format!("write at offset {at}"))
                }
                Ok(n) => {
                    buf = &buf[n..];
                    at += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.job.cancel.is_cancelled() {
                        return Err(self.job.interrupted());
                    }
                    let mut fds = [PollFd::new(self.dst, PollFlags::OUT)];
                    match poll(&mut fds, Some(&SLICE)) {
                        Ok(_) | Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err(e.into()).at(path, "poll"),
                    }
                }
                Err(e) => return Err(e).at(path, &format!("write at offset {at}")),
            }
        }
        self.pos = at;
        Ok(())
    }

    /// Writes zeros from `pos` up to `target` (holes of the source that a
    /// dense or sequential destination must receive as bytes).
    fn zeros_to(&mut self, target: u64, moved: &mut Moved) -> Result<(), Error> {
        /// Aligned for the kernel's copy (see [`crate::buffer`]).
        #[repr(align(4096))]
        struct Zeros([u8; 1 << 16]);
        static ZEROS: Zeros = Zeros([0; 1 << 16]);
        while self.pos < target {
            let n = (target - self.pos).min(ZEROS.0.len() as u64) as usize;
            let at = self.pos;
            self.write(&ZEROS.0[..n], at)?;
            moved.written += n as u64;
            self.job.progress.advance(n as u64);
            if self.job.cancel.is_cancelled() {
                return Err(self.job.interrupted());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{coalesce, Pieces};

    #[test]
    fn pieces_split_ranges_at_chunk_boundaries_of_the_file() {
        let ranges = [(100, 300), (1000, 50), (2048, 0)];
        let pieces: Vec<_> = Pieces::new(&ranges, 256).collect();
        assert_eq!(pieces, vec![(100, 156), (256, 144), (1000, 24), (1024, 26)]);
    }

    #[test]
    fn coalesce_merges_ranges_with_small_gaps_only() {
        let r = [(0, 4096), (8192, 4096), (1 << 20, 10), (1 << 30, 5)];
        assert_eq!(
            coalesce(&r, 64 << 10),
            vec![(0, 12288), (1 << 20, 10), (1 << 30, 5)]
        );
        assert_eq!(coalesce(&r, 0), r.to_vec());
        assert_eq!(coalesce(&[], 1), vec![]);
    }
}
