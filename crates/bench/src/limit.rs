//! The floor to compare against: reading the allocated bytes once and
//! writing them once, with nothing else (no temporary, no rename, no space
//! check, no zero scan, no fsync); and each half alone. A copy that reads
//! on one core while it writes on the other cannot beat the slower half,
//! which on ext4 is the write (the page-cache memcpy and delalloc
//! bookkeeping under the inode lock).
//!
//! These run as hidden subcommands of `sparsecp-bench` so that they are
//! timed exactly like the tools: as a child process, spawn to exit.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context};
use rustix::fs::SeekFrom;
use rustix::io::Errno;

/// Chunk for `copy_file_range` calls and reads.
const CHUNK: u64 = 8 << 20;

/// The `(offset, length)` data extents of `file` up to `size`, from
/// SEEK_DATA/SEEK_HOLE.
pub fn data_extents(file: &File, size: u64) -> anyhow::Result<Vec<(u64, u64)>> {
    let mut extents = Vec::new();
    let mut pos = 0;
    while pos < size {
        let start = match rustix::fs::seek(file, SeekFrom::Data(pos)) {
            Ok(start) => start,
            Err(Errno::NXIO) => break,
            Err(e) => return Err(e).context("SEEK_DATA failed"),
        };
        let end = rustix::fs::seek(file, SeekFrom::Hole(start))
            .context("SEEK_HOLE failed")?
            .min(size);
        if end > start {
            extents.push((start, end - start));
        }
        pos = end;
    }
    Ok(extents)
}

/// Opens `src`, and creates (or empties) `dst` with `src`'s size.
fn open_pair(src: &Path, dst: &Path) -> anyhow::Result<(File, u64, File)> {
    let input = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let size = input.metadata()?.len();
    let output = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .with_context(|| format!("cannot create {}", dst.display()))?;
    output.set_len(size)?;
    Ok((input, size, output))
}

/// Creates `dst` of `src`'s size and `copy_file_range`s the data extents
/// of `src` into it: one read and one write of the allocated bytes.
pub fn copy_extents(src: &Path, dst: &Path) -> anyhow::Result<()> {
    let (input, size, output) = open_pair(src, dst)?;
    let extents = data_extents(&input, size)?;
    offload_all(&input, &output, &extents, CHUNK)
        .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))
}

/// Copies `ranges` of `input` into `output` with copy-engine's
/// copy_file_range loop, `max_call` bytes at most per call; a range the
/// kernel declines (or a source that ends early) is an error here.
pub fn offload_all(
    input: &File,
    output: &File,
    ranges: &[(u64, u64)],
    max_call: u64,
) -> anyhow::Result<()> {
    use copy_engine::offload::{copy_ranges, OffloadError};
    match copy_ranges(
        input,
        output,
        ranges,
        max_call,
        &copy_engine::Cancel::new(),
        |_| {},
    ) {
        Ok(done) => match done.declined.first() {
            None => Ok(()),
            Some((at, _)) => bail!("copy_file_range declined or the source ended at {at}"),
        },
        Err(OffloadError::Failed { offset, source }) => {
            Err(source).with_context(|| format!("copy_file_range at {offset} failed"))
        }
        Err(OffloadError::Cancelled) => bail!("cancelled"),
    }
}

/// Reads the data extents of `src` once, discarding the bytes, on
/// `threads` threads taking its chunks in turn: the floor under any copy
/// (one thread), and under a dig, which reads on both cores and scans
/// what it read (two).
pub fn read_extents(src: &Path, threads: usize) -> anyhow::Result<u64> {
    let input = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let size = input.metadata()?.len();
    let _ = rustix::fs::fadvise(&input, 0, None, rustix::fs::Advice::Sequential);
    let chunks: Vec<(u64, usize)> = data_extents(&input, size)?
        .into_iter()
        .flat_map(|(offset, length)| {
            (offset..offset + length)
                .step_by(CHUNK as usize)
                .map(move |at| (at, (offset + length - at).min(CHUNK) as usize))
        })
        .collect();
    let threads = threads.max(1);
    let read_every = |first: usize| -> anyhow::Result<u64> {
        // Aligned like sparsecp's buffers: a misaligned one slows the
        // kernel's copy several times over (see copy_engine::buffer).
        let mut buf = copy_engine::AlignedBuf::new(CHUNK as usize);
        let mut total = 0;
        for &(at, want) in chunks.iter().skip(first).step_by(threads) {
            let mut done = 0;
            while done < want {
                let pos = at + done as u64;
                let n = input
                    .read_at(&mut buf[..want - done], pos)
                    .with_context(|| format!("read at {pos} failed"))?;
                if n == 0 {
                    bail!("{} ended early at {pos}", src.display());
                }
                done += n;
            }
            total += want as u64;
        }
        Ok(total)
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads)
            .map(|k| scope.spawn(move || read_every(k)))
            .collect();
        let mut total = read_every(0)?;
        for other in others {
            total += other.join().expect("a reader panicked")?;
        }
        Ok(total)
    })
}

/// Bytes per `pwrite` of [`write_extents`]: the chunk sparsecp's copy
/// writes, from one buffer that stays in cache.
const WRITE_CHUNK: usize = 128 << 10;

/// Writes as many bytes as the data extents of `src` hold, at the same
/// offsets, into a new `dst` of `src`'s size, all from one page-aligned
/// buffer of non-zero bytes: the write half of a copy with no read at all.
/// `src` is only asked where its extents are.
pub fn write_extents(src: &Path, dst: &Path) -> anyhow::Result<u64> {
    let (input, size, output) = open_pair(src, dst)?;
    let mut buf = copy_engine::AlignedBuf::new(WRITE_CHUNK);
    buf.fill(0xa5);
    let mut total = 0;
    for (offset, length) in data_extents(&input, size)? {
        let mut pos = offset;
        while pos < offset + length {
            let want = (offset + length - pos).min(WRITE_CHUNK as u64) as usize;
            output
                .write_all_at(&buf[..want], pos)
                .with_context(|| format!("write at {pos} failed"))?;
            pos += want as u64;
            total += want as u64;
        }
    }
    Ok(total)
}
