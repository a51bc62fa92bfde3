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
    let mut x = ROUND
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        | 1;
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

/// Whether `device` differs from `image` only where the image reads as
/// zeros (its holes, and for `dd conv=sparse` its zero blocks too): the
/// device then kept stale data there instead of zeros.
pub fn only_zeros_differ(image: &Path, device: &Path) -> anyhow::Result<bool> {
    let size = Layout::of(image)?.size;
    let (src, dev) = (File::open(image)?, File::open(device)?);
    let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(CHUNK as u64) as usize;
        src.read_exact_at(&mut a[..n], pos)?;
        dev.read_exact_at(&mut b[..n], pos)?;
        if a[..n].iter().zip(&b[..n]).any(|(&x, &y)| x != y && x != 0) {
            return Ok(false);
        }
        pos += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_bytes_count_only_where_the_image_reads_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let (image, device) = (dir.path().join("image"), dir.path().join("device"));
        let mut content = vec![7u8; 3 * CHUNK];
        content[CHUNK..2 * CHUNK].fill(0);
        std::fs::write(&image, &content).unwrap();
        // Junk in the zero run, and a longer device: stale, not wrong.
        let mut held = content.clone();
        held[CHUNK + 10] = 0xAA;
        held.extend_from_slice(&[0xBB; 4096]);
        std::fs::write(&device, &held).unwrap();
        assert!(only_zeros_differ(&image, &device).unwrap());
        // A changed data byte is a wrong copy.
        held[5] = 8;
        std::fs::write(&device, &held).unwrap();
        assert!(!only_zeros_differ(&image, &device).unwrap());
    }
}
