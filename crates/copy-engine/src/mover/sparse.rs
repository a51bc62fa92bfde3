//! The sparse workers: positional sparse writes from a seekable source
//! into a fresh regular file (the install's case).
//!
//! Two workers, each reading a chunk into its own page-aligned buffer,
//! zero-scanning it and `pwrite`ing its data runs, then taking the next
//! chunk. The destination's inode lock orders the writes, so while one
//! worker writes the other reads, and every write copies from a buffer
//! still hot in the writing core's cache. This is the cheapest way found
//! to keep ext4's write path (the page-cache memcpy plus per-block delalloc
//! bookkeeping, all under that lock) busy without a gap: measured on the
//! 3 GiB install image, warm, ten interleaved rounds: 0.79x `cp
//! --sparse=auto` against 0.94x for the reader/writer ring, whose writer
//! also paid a thread wake-up per chunk and copied from the other core's
//! cache.
//!
//! A fragmented source's pieces are a few KiB each: a worker then reads a
//! batch of them and writes it in one turn (see [`BATCH`]), so the lock is
//! not handed over at every write.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::{read_piece, run_workers, split_runs, Job, Moved, Pieces, Reads, COPY_CHUNK};
use crate::buffer::AlignedBuf;
use crate::error::{Error, IoContext};

/// Workers of a sparse move: one per core of the CI machine. More only
/// queue on the destination's inode lock.
pub(crate) const WORKERS: usize = 2;

/// Moves of at most this many bytes run on the calling thread: a second
/// worker overlaps one chunk's read with another's write, which needs
/// several chunks to pay for spawning and joining a thread (tens of
/// microseconds each, more when the other core is busy). The 1 TiB case
/// (three 64 KiB extents) took 1.3x cp's time with two workers.
const INLINE_MOVE: u64 = 8 * COPY_CHUNK as u64;

/// Bytes of small pieces a worker reads (and zero-scans) before writing
/// them all in one turn; see [`worker`]. Measured warm on ext4, 10^5
/// extents of 4-8 KiB between random 4-128 KiB holes, 9 rounds each
/// alternated with batches of one chunk (128 KiB) written without a turn,
/// which took 0.90x the time of piece-by-piece workers: 1 MiB took 0.90x
/// their time, 2 MiB 0.87x, 4 MiB 0.87x, 8 MiB 0.85x; 2 MiB without the
/// turn 1.00x (the workers' writes interleave again). Piece by piece, 38%
/// of the copy's samples were the two workers spinning on the
/// destination's inode lock (`rwsem_spin_on_owner`). Writing the same
/// bytes alone, from one cached buffer, took 0.76x: the floor.
const BATCH: usize = 2 << 20;

/// Data runs per chunk from which a worker batches whole chunks too: a
/// source of small extents merged into long ranges (4 KiB of data every
/// 8 KiB) is read in whole chunks, each of which its zero scan splits into
/// a write of a few KiB per extent, so the workers' writes interleave as
/// a fragmented source's pieces did before [`BATCH`]. Measured warm on
/// ext4, 15 alternated pairs: 20,000 such extents took 0.90x the time of
/// one-chunk batches (0.84x `cp`'s); an ext2 image of 18 large extents,
/// whose chunks split into one run each, 1.00x (its batches stay one
/// chunk).
const SPLIT_CHUNK: usize = 4;

/// The sparse move of `reads` of `file` (which keeps `size` bytes) into
/// `dst`: [`WORKERS`] threads share the chunk plan, and each reads, scans
/// and writes its own chunks. The first failing worker stops the others
/// (see [`run_workers`]).
pub(crate) fn move_sparse(
    file: &File,
    reads: Reads<'_>,
    size: u64,
    dst: &File,
    job: &Job<'_>,
) -> Result<Moved, Error> {
    // A walked or packed source is large by construction (past
    // `layout::KEPT` extents); only listed ranges can be small.
    let small = match reads {
        Reads::Listed(ranges) => ranges.iter().map(|&(_, len)| len).sum::<u64>() <= INLINE_MOVE,
        Reads::Packed(_) | Reads::Walk { .. } => false,
    };
    let pieces = Mutex::new(Pieces::new(file, reads, size, COPY_CHUNK, job.src_path));
    let turn = Mutex::new(());
    if small {
        let stop = AtomicBool::new(false);
        let moved = worker(file, size, &pieces, dst, job, &stop, &turn).map_err(|(_, e)| e)?;
        return Ok(Moved { end: size, ..moved });
    }
    let moved = run_workers(WORKERS, |stop| {
        worker(file, size, &pieces, dst, job, stop, &turn)
    })?;
    let mut total = Moved {
        end: size,
        whole_blocks: true,
        ..Moved::default()
    };
    for m in moved {
        total.read += m.read;
        total.written += m.written;
        total.zero_skipped += m.zero_skipped;
        total.whole_blocks &= m.whole_blocks;
    }
    Ok(total)
}

/// One worker of [`move_sparse`]: takes batches of pieces until none are
/// left or another worker failed. An error comes with the offset of its
/// piece.
///
/// A batch is one piece, or as many small pieces (a fragmented source's
/// extents of a few KiB) as fit in [`BATCH`] bytes: all are read and
/// zero-scanned, then all written while the worker holds `turn`, so the
/// destination's inode lock passes between the workers once a batch
/// instead of at every write of a few KiB. Whole chunks are batched too
/// while the worker's last batch split into [`SPLIT_CHUNK`] data runs a
/// piece or more.
fn worker(
    file: &File,
    size: u64,
    pieces: &Mutex<Pieces<'_>>,
    dst: &File,
    job: &Job<'_>,
    stop: &AtomicBool,
    turn: &Mutex<()>,
) -> Result<Moved, (u64, Error)> {
    // Pages are touched only as far as batches fill them: one chunk for a
    // source of large extents.
    let mut buf = AlignedBuf::new(BATCH);
    let mut scan = Vec::new();
    // Data runs of the whole batch, `(offset in buf, length)`.
    let mut runs = Vec::new();
    // `(pos, len, end of its runs in runs)` of every piece of the batch,
    // which lie one after another in `buf`.
    let mut batch: Vec<(u64, usize, usize)> = Vec::new();
    let mut split = false;
    let mut moved = Moved {
        whole_blocks: true,
        ..Moved::default()
    };
    let fail = |at: u64, e: Error| {
        stop.store(true, Ordering::Relaxed);
        (at, e)
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(moved);
        }
        batch.clear();
        {
            let mut pieces = pieces.lock().expect("no worker panics holding the plan");
            let mut room = BATCH;
            // Every piece fits an empty buffer; a whole chunk is a batch
            // of its own unless the last batch was split.
            while let Some(piece) = pieces.next_within(room) {
                // Offsets below a walk's failure were all handed out already.
                let (pos, len) = piece.map_err(|e| fail(u64::MAX, e))?;
                batch.push((pos, len, 0));
                room -= len;
                if len == COPY_CHUNK && !split {
                    break;
                }
            }
        }
        if batch.is_empty() {
            return Ok(moved);
        }
        runs.clear();
        let mut at = 0;
        for (pos, len, runs_end) in &mut batch {
            let (pos, len) = (*pos, *len);
            let piece = &mut buf[at..at + len];
            read_piece(file, size, piece, pos, job).map_err(|e| fail(pos, e))?;
            split_runs(piece, job.zero_block, &mut scan);
            moved.whole_blocks &= covers_whole_blocks(&scan, pos, size, job.dst_block);
            runs.extend(scan.iter().map(|&(start, n)| (at + start, n)));
            *runs_end = runs.len();
            at += len;
        }
        split = runs.len() >= SPLIT_CHUNK * batch.len();
        let _turn =
            (batch.len() > 1).then(|| turn.lock().expect("no worker panics holding the turn"));
        let (mut first, mut at) = (0, 0);
        for &(pos, len, end) in &batch {
            let mut data = 0;
            for &(start, n) in &runs[first..end] {
                let off = pos + (start - at) as u64;
                dst.write_all_at(&buf[start..start + n], off)
                    .at(job.dst_path, &format!("write at offset {off}"))
                    .map_err(|e| fail(pos, e))?;
                data += n as u64;
            }
            first = end;
            at += len;
            moved.read += len as u64;
            moved.written += data;
            moved.zero_skipped += len as u64 - data;
            job.progress.advance(len as u64);
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
