//! The reader/writer ring: a reader thread fills page-aligned buffers from
//! the source (and splits them into data runs), one consumer on the
//! calling thread takes them in turn, so reading and zero-scanning one
//! chunk overlaps with writing the previous one. Chunks arrive in file
//! order, which dense and sequential writes need, and go back to the
//! reader through a second channel, so peak memory is `RING` chunks.
//!
//! The ring does not know what its consumer does with a chunk; a copy's
//! consumer (`super::write`) writes it.

use std::fs::File;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::{read_exact_at, read_full, split_runs, Job, Pieces, Source};
use crate::buffer::AlignedBuf;
use crate::error::Error;

/// Buffers in the ring (peak memory is `RING` chunks: 512 KiB for a copy).
const RING: usize = 4;

/// A filled buffer on its way to the consumer.
pub(crate) struct Chunk {
    pub buf: AlignedBuf,
    /// Where `buf` starts in the source.
    pub offset: u64,
    /// Bytes of `buf` filled.
    pub len: usize,
    /// Data runs within `buf[..len]`, relative to `offset`.
    pub runs: Vec<(usize, usize)>,
}

/// What the reader of a ring did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReadSide {
    /// Bytes read from the source.
    pub read: u64,
    /// End of the source's content (for streams, its length).
    pub end: u64,
}

/// Runs a reader thread over `src` in chunks of `chunk_len` bytes, and
/// gives every chunk to `consume` on this thread. The first error, the
/// reader's or the consumer's, ends the move and is returned.
pub(crate) fn run(
    src: Source<'_>,
    chunk_len: usize,
    job: &Job<'_>,
    consume: &mut dyn FnMut(&Chunk) -> Result<(), Error>,
) -> Result<ReadSide, Error> {
    let (full_tx, full_rx) = sync_channel::<Result<Chunk, Error>>(RING);
    let (empty_tx, empty_rx) = sync_channel::<Chunk>(RING);
    for _ in 0..RING {
        let chunk = Chunk {
            buf: AlignedBuf::new(chunk_len),
            offset: 0,
            len: 0,
            runs: Vec::new(),
        };
        empty_tx.send(chunk).expect("ring has room");
    }
    std::thread::scope(|s| {
        let reader = s.spawn(move || match src {
            Source::Ranges { file, reads, size } => {
                let pieces = Pieces::new(file, reads, size, chunk_len, job.src_path);
                read_ranges(file, size, pieces, job, empty_rx, full_tx)
            }
            Source::Stream(reader) => read_stream(reader, job, empty_rx, full_tx),
        });
        // The consumer's loop ends once the reader has dropped its sender.
        let consumed = drain(full_rx, empty_tx, consume);
        let read = reader.join().expect("reader thread panicked");
        // A reader's error reaches the consumer through the ring, so the
        // consumer's result is the move's.
        consumed.map(|()| read)
    })
}

/// The consumer's side: takes chunks until the reader is done or
/// something failed. Returning drops both channel ends, which stops the
/// reader.
fn drain(
    full: Receiver<Result<Chunk, Error>>,
    empty: SyncSender<Chunk>,
    consume: &mut dyn FnMut(&Chunk) -> Result<(), Error>,
) -> Result<(), Error> {
    for msg in full {
        let chunk = msg?;
        consume(&chunk)?;
        // The reader may be gone already (it finished): keep draining.
        let _ = empty.send(chunk);
    }
    Ok(())
}

/// Takes an empty buffer from the ring, fills it with `fill` and splits it
/// into data runs; `None` when the ring is closed (the consumer stopped,
/// with its own error).
fn fill_chunk(
    job: &Job<'_>,
    empty: &Receiver<Chunk>,
    offset: u64,
    fill: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Result<Option<Chunk>, Error> {
    if job.cancel.is_cancelled() {
        return Err(job.interrupted());
    }
    let Ok(mut chunk) = empty.recv() else {
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

/// The reader of a seekable source: takes pieces until none are left, the
/// consumer stops, or a read fails (the error then goes to the consumer).
fn read_ranges(
    file: &File,
    size: u64,
    mut pieces: Pieces<'_>,
    job: &Job<'_>,
    empty: Receiver<Chunk>,
    full: SyncSender<Result<Chunk, Error>>,
) -> ReadSide {
    let mut read = ReadSide::default();
    loop {
        let (pos, want) = match pieces.next() {
            None => {
                read.end = size;
                return read;
            }
            Some(Ok(piece)) => piece,
            Some(Err(e)) => {
                let _ = full.send(Err(e));
                return read;
            }
        };
        let fill = |buf: &mut [u8]| read_exact_at(file, &mut buf[..want], pos, size, job.src_path);
        if hand_over(fill_chunk(job, &empty, pos, fill), &full, &mut read).is_none() {
            return read;
        }
    }
}

/// The reader of a pipe or similar: front to back until end of file.
fn read_stream(
    reader: &mut (dyn Read + Send),
    job: &Job<'_>,
    empty: Receiver<Chunk>,
    full: SyncSender<Result<Chunk, Error>>,
) -> ReadSide {
    let mut read = ReadSide::default();
    loop {
        let pos = read.read;
        let fill = |buf: &mut [u8]| read_full(reader, buf, job.src_path, pos);
        match hand_over(fill_chunk(job, &empty, pos, fill), &full, &mut read) {
            None => return read,
            Some(0) => {
                read.end = read.read;
                return read;
            }
            Some(_) => {}
        }
    }
}

/// Passes what [`fill_chunk`] gave on to the consumer and counts it: the
/// length handed over (0 at end of file, which is not sent), or `None`
/// when this reader must stop (the ring closed, the consumer stopped, or
/// a read failed and its error was just sent).
fn hand_over(
    filled: Result<Option<Chunk>, Error>,
    full: &SyncSender<Result<Chunk, Error>>,
    read: &mut ReadSide,
) -> Option<usize> {
    match filled {
        Ok(Some(chunk)) => {
            let len = chunk.len;
            read.read += len as u64;
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
