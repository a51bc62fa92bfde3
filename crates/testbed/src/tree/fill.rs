//! Writing file data fast: gigabytes in seconds.
//!
//! One 1 MiB random pool comes from ChaCha8 per tree; each 4 KiB block of
//! each file is a pool block chosen by a per-block key and xored with that
//! key, so every block differs from every other (a copy that puts a block
//! at the wrong offset changes the digest) while costing one xor per word.
//! A keyed block is all zeros only if the key equals 512 pool words at
//! once, so data blocks are never zero in practice.

use std::fs::{File, FileTimes, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::plan::PlannedFile;
use super::BLOCK;

const POOL: usize = 1 << 20;
const POOL_BLOCKS: u64 = POOL as u64 / BLOCK;
const CHUNK: usize = 1 << 20;
/// Generated files all carry mtimes from 2024-01-01 on, for reproducible
/// archives of the tree.
const EPOCH: u64 = 1_704_067_200;

pub(super) struct Filler {
    seed: u64,
    pool: Vec<u8>,
    chunk: Vec<u8>,
}

impl Filler {
    pub(super) fn new(seed: u64) -> Filler {
        let mut pool = vec![0u8; POOL];
        ChaCha8Rng::seed_from_u64(mix(seed, 0x706f_6f6c)).fill_bytes(&mut pool);
        Filler {
            seed,
            pool,
            chunk: vec![0u8; CHUNK],
        }
    }

    /// Creates `root/file.path` with its data, mode and mtime.
    pub(super) fn write(
        &mut self,
        root: &Path,
        file: &PlannedFile,
        index: u64,
    ) -> anyhow::Result<()> {
        let path = root.join(&file.path);
        let mode = if file.executable { 0o755 } else { 0o644 };
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let key = mix(self.seed, index + 1);
        let mut offset = 0;
        while offset < file.size {
            let len = (file.size - offset).min(CHUNK as u64) as usize;
            self.fill_chunk(key, offset, len, &file.zero_runs);
            out.write_all(&self.chunk[..len])
                .with_context(|| format!("cannot write {}", path.display()))?;
            offset += len as u64;
        }
        finish(&out, &path, mode, index)
    }

    /// Fills `chunk[..len]` with the bytes at `offset` of the file keyed
    /// `key`. `offset` is a multiple of `BLOCK`.
    fn fill_chunk(&mut self, key: u64, offset: u64, len: usize, zero_runs: &[(u64, u64)]) {
        for (i, block) in self.chunk[..len].chunks_mut(BLOCK as usize).enumerate() {
            let at = offset + i as u64 * BLOCK;
            if zero_runs
                .iter()
                .any(|&(start, run)| (start..start + run).contains(&at))
            {
                block.fill(0);
                continue;
            }
            let block_key = mix(key, at / BLOCK);
            let src = (block_key % POOL_BLOCKS * BLOCK) as usize;
            let pool = &self.pool[src..src + block.len()];
            let mut out_words = block.chunks_exact_mut(8);
            let mut in_words = pool.chunks_exact(8);
            for (out, word) in (&mut out_words).zip(&mut in_words) {
                let word = u64::from_ne_bytes(word.try_into().expect("8 bytes"));
                out.copy_from_slice(&(word ^ block_key).to_ne_bytes());
            }
            // A file's last block may end mid-word.
            let tail = out_words.into_remainder().iter_mut();
            for ((out, byte), k) in tail.zip(in_words.remainder()).zip(block_key.to_ne_bytes()) {
                *out = byte ^ k;
            }
        }
    }
}

/// Sets the mode exactly (whatever the umask) and a reproducible mtime.
fn finish(out: &File, path: &Path, mode: u32, index: u64) -> anyhow::Result<()> {
    out.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH + index * 61);
    out.set_times(FileTimes::new().set_modified(mtime))
        .with_context(|| format!("cannot set the mtime of {}", path.display()))?;
    Ok(())
}

/// SplitMix64 of `a` and `b`: a cheap, well-spread 64-bit key.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
