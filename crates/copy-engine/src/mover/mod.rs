//! The data movers: user-space loops that read a source and write its
//! bytes, one per worker shape. Policy (which mover, which ranges, zero
//! scan or not) is decided by the plan (`crate::plan`); a mover only moves.
//!
//! - [`sparse`]: positional sparse writes into a fresh regular file (the
//!   install's case): two workers, each reading, zero-scanning and writing
//!   its own chunks.
//! - [`ring`]: a reader thread and one consumer joined by a small ring of
//!   page-aligned buffers; its consumer ([`write`]) writes dense or
//!   sequential bytes (and sparse ones from a stream).
//!
//! This module holds what they share (and `dig` shares too): the job, the
//! chunk plan, reading, and running workers side by side.

pub(crate) mod ring;
pub(crate) mod sparse;
pub(crate) mod write;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::error::{Error, IoContext};
use crate::layout::{self, DataExtents};
use crate::packed::PackedRanges;
pub(crate) use crate::plan::WriteMode;
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
pub(crate) const COPY_CHUNK: usize = 128 << 10;
/// Data ranges closer than this are read as one (see [`coalesce`]). A gap
/// read costs the kernel a zeroed page-cache page per 4 KiB (and leaves it
/// cached); a separate range costs a read and a write call. Measured warm
/// on ext4, alternated with cp, 3 rounds: 10^5 extents of 4-8 KiB between
/// random 4-128 KiB holes took 0.74 s with 64 KiB (1.7 GB of gaps read),
/// 0.59 s with 16 KiB, 0.57-0.60 s with 8 KiB, 0.60-0.85 s with 4 KiB,
/// cp 0.50-0.56 s; 4 KiB extents every 8 KiB took the same with any of
/// them (its 4 KiB gaps merge), 0.38-0.44 s, cp 0.38-0.42 s.
pub(crate) const MERGE_GAP: u64 = 8 << 10;

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

/// Which ranges of a seekable source are read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reads<'a> {
    /// These `(offset, length)` ranges.
    Listed(&'a [(u64, u64)]),
    /// These, packed.
    Packed(&'a PackedRanges),
    /// Every data extent of the file, walked with SEEK_DATA/SEEK_HOLE as
    /// the readers need them; extents closer than `merge_gap` are read as
    /// one range, as [`coalesce`] merges listed ones.
    Walk { merge_gap: Option<u64> },
}

impl<'a> Reads<'a> {
    /// The plan's ranges.
    pub(crate) fn of(ranges: &'a crate::plan::Ranges) -> Reads<'a> {
        match ranges {
            crate::plan::Ranges::Listed(r) => Reads::Listed(r),
            crate::plan::Ranges::Packed(r) => Reads::Packed(r),
            crate::plan::Ranges::Walk { merge_gap, .. } => Reads::Walk {
                merge_gap: *merge_gap,
            },
        }
    }
}

/// Where the bytes come from.
pub(crate) enum Source<'a> {
    /// A seekable file: read `reads` with `pread`; the file must keep
    /// `size` bytes throughout.
    Ranges {
        file: &'a File,
        reads: Reads<'a>,
        size: u64,
    },
    /// A pipe or similar: read front to back until end of file.
    Stream(&'a mut (dyn Read + Send)),
}

/// What a mover did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Moved {
    /// Bytes read from the source.
    pub read: u64,
    /// Bytes written to the destination (zeros included).
    pub written: u64,
    /// Bytes of all-zero blocks read but left as holes (or punched).
    pub zero_skipped: u64,
    /// End of the logical content (for streams, its length).
    pub end: u64,
    /// Whether every run written covered whole destination blocks (or
    /// ended at `end`), into a file that held only holes: then the
    /// destination's data is exactly the `written` bytes and its holes
    /// the rest, with no need to ask the filesystem. Only sparse workers
    /// say so.
    pub whole_blocks: bool,
}

/// Everything a mover needs besides the two ends.
pub(crate) struct Job<'a> {
    pub src_path: &'a Path,
    pub dst_path: &'a Path,
    /// Split chunks at this block size into zero and non-zero runs
    /// (`None`: every byte read is data).
    pub zero_block: Option<usize>,
    /// The destination filesystem's block size.
    pub dst_block: u64,
    /// The source's size (`None` for streams and digs): dense and
    /// sequential writes write zeros up to here after the last chunk.
    pub fill_to: Option<u64>,
    pub progress: &'a dyn Progress,
    pub cancel: &'a Cancel,
}

impl Job<'_> {
    /// The error of a move stopped by its cancel flag.
    pub(crate) fn interrupted(&self) -> Error {
        Error::Interrupted {
            path: self.dst_path.to_path_buf(),
        }
    }
}

/// The ranges of a [`Reads`] one at a time, `(start, end)`.
enum RangeIter<'a> {
    Listed(std::slice::Iter<'a, (u64, u64)>),
    Packed(crate::packed::Iter<'a>),
    Walk {
        extents: DataExtents<'a>,
        merge_gap: Option<u64>,
        /// The range being grown by merging, not yet handed out.
        held: Option<(u64, u64)>,
    },
}

impl Iterator for RangeIter<'_> {
    type Item = std::io::Result<(u64, u64)>;

    fn next(&mut self) -> Option<std::io::Result<(u64, u64)>> {
        match self {
            RangeIter::Listed(it) => it.next().map(|&(start, len)| Ok((start, start + len))),
            RangeIter::Packed(it) => it.next().map(|(start, len)| Ok((start, start + len))),
            RangeIter::Walk {
                extents,
                merge_gap,
                held,
            } => loop {
                let e = match extents.next() {
                    None => return held.take().map(Ok),
                    Some(Err(err)) => return Some(Err(err)),
                    Some(Ok(e)) => e,
                };
                match (held.as_mut(), *merge_gap) {
                    (Some((_, end)), Some(gap)) if e.offset <= *end + gap => {
                        *end = e.end().max(*end);
                    }
                    (Some(_), _) => return held.replace((e.offset, e.end())).map(Ok),
                    (None, _) => *held = Some((e.offset, e.end())),
                }
            },
        }
    }
}

/// Hands out the planned ranges in chunk-aligned pieces `(offset, len)`, in
/// file order, to however many readers share it. Pieces stay aligned to
/// the chunk size in the file so reads and writes stay aligned to every
/// block size. A walked source's extents are found as pieces are taken, so
/// memory stays the same however many it has.
pub(crate) struct Pieces<'a> {
    ranges: RangeIter<'a>,
    /// The range being cut, `(next, end)`.
    current: Option<(u64, u64)>,
    chunk: u64,
    path: &'a Path,
}

impl<'a> Pieces<'a> {
    /// The pieces of `reads` of `file` (of `size` bytes, at `path`).
    pub(crate) fn new(
        file: &'a File,
        reads: Reads<'a>,
        size: u64,
        chunk: usize,
        path: &'a Path,
    ) -> Pieces<'a> {
        let ranges = match reads {
            Reads::Listed(r) => RangeIter::Listed(r.iter()),
            Reads::Packed(r) => RangeIter::Packed(r.iter()),
            Reads::Walk { merge_gap } => RangeIter::Walk {
                extents: layout::walk(file, 0, size),
                merge_gap,
                held: None,
            },
        };
        Pieces {
            ranges,
            current: None,
            chunk: chunk as u64,
            path,
        }
    }
}

impl Pieces<'_> {
    /// The next piece if it is at most `room` bytes long; else `None`, and
    /// the piece stays next.
    pub(crate) fn next_within(&mut self, room: usize) -> Option<Result<(u64, usize), Error>> {
        loop {
            match self.current {
                Some((pos, end)) if pos < end => {
                    let want = ((pos / self.chunk + 1) * self.chunk).min(end) - pos;
                    if want > room as u64 {
                        return None;
                    }
                    self.current = Some((pos + want, end));
                    return Some(Ok((pos, want as usize)));
                }
                _ => match self.ranges.next()? {
                    Ok(range) => self.current = Some(range),
                    Err(e) => return Some(Err(e).at(self.path, "seek data/hole")),
                },
            }
        }
    }
}

impl Iterator for Pieces<'_> {
    type Item = Result<(u64, usize), Error>;

    fn next(&mut self) -> Option<Result<(u64, usize), Error>> {
        self.next_within(usize::MAX)
    }
}

/// Runs `work` on `n` threads at once and gathers what each returned.
/// Every worker gets the same stop flag: a failing worker sets it and the
/// others stop at their next piece. A failure comes with the offset it
/// happened at; of several, the one at the lowest offset is returned, so
/// the error does not depend on timing.
pub(crate) fn run_workers<T: Send>(
    n: usize,
    work: impl Fn(&AtomicBool) -> Result<T, (u64, Error)> + Sync,
) -> Result<Vec<T>, Error> {
    let stop = AtomicBool::new(false);
    let results: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..n).map(|_| s.spawn(|| work(&stop))).collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker thread panicked"))
            .collect()
    });
    let mut done = Vec::with_capacity(n);
    let mut first_error: Option<(u64, Error)> = None;
    for result in results {
        match result {
            Ok(t) => done.push(t),
            Err((at, e)) => {
                if first_error.as_ref().is_none_or(|(first, _)| at < *first) {
                    first_error = Some((at, e));
                }
            }
        }
    }
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(done),
    }
}

/// The data runs of `buf` into `runs`: its non-zero blocks of `zero_block`
/// bytes, or all of it without a zero scan.
pub(crate) fn split_runs(buf: &[u8], zero_block: Option<usize>, runs: &mut Vec<(usize, usize)>) {
    match zero_block {
        Some(block) => zero::data_runs(buf, block, runs),
        None => {
            runs.clear();
            runs.push((0, buf.len()));
        }
    }
}

/// Reads exactly `buf.len()` bytes at `offset`; a source that ends early
/// changed size under us.
pub(crate) fn read_exact_at(
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

/// Reads the piece at `pos` into `buf` (all of it); a read given up
/// because of the cancel is an interruption.
pub(crate) fn read_piece(
    file: &File,
    size: u64,
    buf: &mut [u8],
    pos: u64,
    job: &Job<'_>,
) -> Result<(), Error> {
    if job.cancel.is_cancelled() {
        return Err(job.interrupted());
    }
    match read_exact_at(file, buf, pos, size, job.src_path) {
        Err(_) if job.cancel.is_cancelled() => Err(job.interrupted()),
        read => read.map(drop),
    }
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
pub(crate) fn read_full(
    reader: &mut dyn Read,
    buf: &mut [u8],
    path: &Path,
    pos: u64,
) -> Result<usize, Error> {
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

#[cfg(test)]
mod tests {
    use super::{coalesce, Pieces, Reads};

    #[test]
    fn pieces_split_ranges_at_chunk_boundaries_of_the_file() {
        let ranges = [(100, 300), (1000, 50), (2048, 0)];
        let file = std::fs::File::open("/dev/null").unwrap();
        let path = std::path::Path::new("/dev/null");
        let pieces: Vec<_> = Pieces::new(&file, Reads::Listed(&ranges), 0, 256, path)
            .map(Result::unwrap)
            .collect();
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
