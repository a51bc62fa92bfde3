//! The data mover: a reader thread and a writer thread joined by a small
//! ring of buffers, so that reading and zero-scanning one chunk overlaps
//! with writing the previous one (the copy's two memcpys then run on the
//! machine's two cores instead of one after the other).
//!
//! The reader walks the planned data ranges of the source, reads them in
//! chunk-aligned pieces, and (when asked) splits each chunk into runs of
//! non-zero blocks. The writer turns those into `pwrite`s, leaving
//! everything else a hole, or writes every byte in order (dense copies and
//! non-seekable destinations).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::error::{Error, IoContext};
use crate::progress::{Cancel, Progress};
use crate::zero;

/// Bytes per chunk: large enough that syscalls cost nothing next to the
/// copying, small enough that the ring stays within a few MiB.
pub(crate) const CHUNK: usize = 1 << 20;
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

/// Buffers in the ring (peak memory is `RING * CHUNK`).
const RING: usize = 4;

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
}

/// Everything the mover needs besides the two ends.
pub(crate) struct Job<'a> {
    pub src_path: &'a Path,
    pub dst_path: &'a Path,
    /// Split chunks at this block size into zero and non-zero runs
    /// (`None`: every byte read is data).
    pub zero_block: Option<usize>,
    pub mode: WriteMode,
    /// The source's size (`None` for streams): dense and sequential modes
    /// write zeros up to here after the last chunk; punch mode extends a
    /// zero tail to its block boundary.
    pub fill_to: Option<u64>,
    pub progress: &'a dyn Progress,
    pub cancel: &'a Cancel,
}

/// A filled buffer on its way to the writer.
struct Chunk {
    buf: Vec<u8>,
    offset: u64,
    len: usize,
    /// Data runs within `buf[..len]`, relative to `offset`.
    runs: Vec<(usize, usize)>,
}

/// Moves the data from `src` to `dst` with the reader/writer pipeline.
pub(crate) fn move_data(src: Source<'_>, dst: &File, job: &Job<'_>) -> Result<Moved, Error> {
    let (full_tx, full_rx) = sync_channel::<Result<Chunk, Error>>(RING);
    let (empty_tx, empty_rx) = sync_channel::<Chunk>(RING);
    for _ in 0..RING {
        let chunk = Chunk {
            buf: vec![0; CHUNK],
            offset: 0,
            len: 0,
            runs: Vec::new(),
        };
        empty_tx.send(chunk).expect("ring has room");
    }
    std::thread::scope(|s| {
        let reader = s.spawn(move || read_side(src, job, empty_rx, full_tx));
        let written = write_side(dst, job, full_rx, empty_tx);
        let read = reader.join().expect("reader thread panicked");
        // The writer's error is the more telling one when both failed (the
        // reader then only saw the ring close).
        let (w, r) = (written?, read?);
        Ok(Moved {
            read: r.read,
            written: w.written,
            zero_skipped: w.zero_skipped,
            end: r.end,
        })
    })
}

fn read_side(
    src: Source<'_>,
    job: &Job<'_>,
    empty: Receiver<Chunk>,
    full: SyncSender<Result<Chunk, Error>>,
) -> Result<Moved, Error> {
    let mut moved = Moved::default();
    let mut next = |offset: u64, fill: &mut dyn FnMut(&mut [u8]) -> Result<usize, Error>| {
        if job.cancel.is_cancelled() {
            return Err(Error::Interrupted {
                path: job.dst_path.to_path_buf(),
            });
        }
        // A closed ring means the writer stopped (with its own error).
        let Ok(mut chunk) = empty.recv() else {
            return Ok(None);
        };
        let len = match fill(&mut chunk.buf) {
            // A read given up because of the cancel is an interruption.
            Err(_) if job.cancel.is_cancelled() => {
                return Err(Error::Interrupted {
                    path: job.dst_path.to_path_buf(),
                })
            }
            filled => filled?,
        };
        chunk.offset = offset;
        chunk.len = len;
        match job.zero_block {
            Some(block) => zero::data_runs(&chunk.buf[..len], block, &mut chunk.runs),
            None => {
                chunk.runs.clear();
                chunk.runs.push((0, len));
            }
        }
        moved.read += len as u64;
        Ok(Some(chunk))
    };
    let result = (|| -> Result<(), Error> {
        match src {
            Source::Ranges { file, ranges, size } => {
                for &(start, length) in ranges {
                    let end = start + length;
                    let mut pos = start;
                    while pos < end {
                        // Keep chunks aligned to CHUNK in the file so reads
                        // and writes stay aligned to every block size.
                        let want = ((pos / CHUNK as u64 + 1) * CHUNK as u64).min(end) - pos;
                        let mut fill = |buf: &mut [u8]| {
                            read_exact_at(file, &mut buf[..want as usize], pos, size, job.src_path)
                        };
                        let Some(chunk) = next(pos, &mut fill)? else {
                            return Ok(());
                        };
                        pos += want;
                        if full.send(Ok(chunk)).is_err() {
                            return Ok(());
                        }
                    }
                }
                moved.end = size;
            }
            Source::Stream(reader) => {
                let mut pos = 0u64;
                loop {
                    let mut fill = |buf: &mut [u8]| read_full(reader, buf, job.src_path, pos);
                    let Some(chunk) = next(pos, &mut fill)? else {
                        return Ok(());
                    };
                    let len = chunk.len;
                    pos += len as u64;
                    if len == 0 || full.send(Ok(chunk)).is_err() {
                        break;
                    }
                }
                moved.end = pos;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = full.send(Err(e));
    }
    Ok(moved)
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
                        return Err(Error::Interrupted {
                            path: path.to_path_buf(),
                        });
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
        static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
        while self.pos < target {
            let n = (target - self.pos).min(ZEROS.len() as u64) as usize;
            let at = self.pos;
            self.write(&ZEROS[..n], at)?;
            moved.written += n as u64;
            self.job.progress.advance(n as u64);
            if self.job.cancel.is_cancelled() {
                return Err(Error::Interrupted {
                    path: self.job.dst_path.to_path_buf(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::coalesce;

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
