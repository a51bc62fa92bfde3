//! The block device a `blockdev-dest` run writes: refilled with random
//! bytes before every run (untimed), flushed as part of a synced run, and
//! judged afterwards on its first `size(image)` bytes, where a tool that
//! skips holes (bmaptool, `dd conv=sparse`) leaves the random bytes:
//! "stale data in holes", not a pass.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use copy_engine::{AlignedBuf, Layout};

/// Bytes per refill write: whole logical blocks, O_DIRECT-aligned.
const CHUNK: usize = 4 << 20;

/// Overwrites all of `device` with pseudo-random bytes (a new sequence
/// every call) past its page cache (`O_DIRECT`, which also drops cached
/// pages of the range), then flushes it. The device's size must be a
/// multiple of [`CHUNK`].
pub fn refill_random(device: &Path) -> anyhow::Result<()> {
    static ROUND: AtomicU64 = AtomicU64::new(1);
    let mut x = ROUND.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(device)
        .with_context(|| format!("cannot open {} to refill it", device.display()))?;
    let size = std::fs::File::open(device)
        .and_then(|mut f| std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)))
        .with_context(|| format!("cannot measure {}", device.display()))?;
    let mut buf = AlignedBuf::new(CHUNK);
    let mut pos = 0;
    while pos < size {
        // xorshift64: fast, and never a zero block.
        for word in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_ne_bytes());
        }
        let n = (size - pos).min(CHUNK as u64) as usize;
        file.write_all_at(&buf[..n], pos)
            .with_context(|| format!("cannot refill {} at {pos}", device.display()))?;
        pos += n as u64;
    }
    flush(device)
}

/// Makes what was written to `device` durable on it (`fsync` of the
/// device: its page cache, then a cache flush, which a loop device passes
/// to its backing file).
pub fn flush(device: &Path) -> anyhow::Result<()> {
    File::open(device)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {}", device.display()))
}

/// Whether `device` holds every data extent of `image` at its offset (its
/// holes not compared): a device that differs from the image only where
/// the image has holes kept stale data there.
pub fn data_matches(image: &Path, device: &Path) -> anyhow::Result<bool> {
    let layout = Layout::of(image)?;
    let (src, dev) = (File::open(image)?, File::open(device)?);
    let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    for extent in &layout.extents {
        let mut pos = extent.offset;
        while pos < extent.end() {
            let n = (extent.end() - pos).min(CHUNK as u64) as usize;
            src.read_exact_at(&mut a[..n], pos)?;
            dev.read_exact_at(&mut b[..n], pos)?;
            if a[..n] != b[..n] {
                return Ok(false);
            }
            pos += n as u64;
        }
    }
    Ok(true)
}
