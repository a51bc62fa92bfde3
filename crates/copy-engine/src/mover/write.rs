//! The ring's consumer for a copy: writes each chunk's data runs into the
//! destination as the [`WriteMode`] says. Dense and sequential writes also
//! write the zeros between runs (holes of the source, zero blocks of a
//! stream) and up to the source's end; sequential writes go through
//! `sys::write_waiting`, which waits for room on a FIFO in poll.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::ring::{self, Chunk};
use super::{Job, Moved, Source, WriteMode, COPY_CHUNK};
use crate::error::{Error, IoContext};
use crate::sys::{self, WaitError};

/// Copies `src` into `dst` through the ring (its one reader hands the
/// chunks over in order, as the writes need them).
pub(crate) fn move_through_ring(
    src: Source<'_>,
    dst: &File,
    mode: WriteMode,
    job: &Job<'_>,
) -> Result<Moved, Error> {
    let mut out = Writer {
        dst,
        job,
        mode,
        pos: 0,
        moved: Moved::default(),
    };
    let read = ring::run(src, COPY_CHUNK, job, &mut |chunk| out.take(chunk))?;
    if out.dense() {
        if let Some(end) = job.fill_to {
            out.zeros_to(end)?;
        }
    }
    Ok(Moved {
        read: read.read,
        end: read.end,
        whole_blocks: false,
        ..out.moved
    })
}

/// The writer's cursor over the destination.
struct Writer<'a> {
    dst: &'a File,
    job: &'a Job<'a>,
    mode: WriteMode,
    /// Everything before `pos` has been written (dense and sequential modes).
    pos: u64,
    moved: Moved,
}

impl Writer<'_> {
    /// Whether every byte is written, zeros included.
    fn dense(&self) -> bool {
        matches!(self.mode, WriteMode::Dense | WriteMode::Sequential)
    }

    /// Writes one chunk's data runs (and, dense, the zeros around them).
    fn take(&mut self, chunk: &Chunk) -> Result<(), Error> {
        for &(start, len) in &chunk.runs {
            let at = chunk.offset + start as u64;
            if self.dense() {
                self.zeros_to(at)?;
            }
            self.write(&chunk.buf[start..start + len], at)?;
            self.moved.written += len as u64;
        }
        let data: usize = chunk.runs.iter().map(|r| r.1).sum();
        if self.dense() {
            self.zeros_to(chunk.offset + chunk.len as u64)?;
        } else {
            self.moved.zero_skipped += (chunk.len - data) as u64;
        }
        self.job.progress.advance(chunk.len as u64);
        Ok(())
    }

    fn write(&mut self, buf: &[u8], offset: u64) -> Result<(), Error> {
        let path = self.job.dst_path;
        match self.mode {
            // A FIFO is non-blocking (see `sys::open_fifo_for_writing`):
            // the wait for room watches the cancel flag.
            WriteMode::Sequential => {
                match sys::write_waiting(self.dst, buf, offset, self.job.cancel) {
                    Ok(()) => {}
                    Err(WaitError::Cancelled) => return Err(self.job.interrupted()),
                    Err(WaitError::Failed { op, err }) => return Err(err).at(path, &op),
                }
            }
            WriteMode::Sparse | WriteMode::Dense => self
                .dst
                .write_all_at(buf, offset)
                .at(path, &format!("write at offset {offset}"))?,
        }
        self.pos = offset + buf.len() as u64;
        Ok(())
    }

    /// Writes zeros from `pos` up to `target` (holes of the source that a
    /// dense or sequential destination must receive as bytes).
    fn zeros_to(&mut self, target: u64) -> Result<(), Error> {
        /// Aligned for the kernel's copy (see [`crate::buffer`]).
        #[repr(align(4096))]
        struct Zeros([u8; 1 << 16]);
        static ZEROS: Zeros = Zeros([0; 1 << 16]);
        while self.pos < target {
            let n = (target - self.pos).min(ZEROS.0.len() as u64) as usize;
            let at = self.pos;
            self.write(&ZEROS.0[..n], at)?;
            self.moved.written += n as u64;
            self.job.progress.advance(n as u64);
            if self.job.cancel.is_cancelled() {
                return Err(self.job.interrupted());
            }
        }
        Ok(())
    }
}
