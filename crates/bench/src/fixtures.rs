//! The files the cases copy, made outside every timed part: the Harvester
//! `active.img` (the harness's `harvester-install` scenario, built the
//! installer's way), its dense twin, a 1 TiB file with three small
//! extents, a file of 20,000 small extents, and the fragmented VM images
//! of 10^5 and 10^6 extents ([`build_extents`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use anyhow::{bail, Context};
use harness::image::build_image;
use harness::install::ACTIVE_LABEL;
use harness::{Scenario, DEFAULT_SCENARIO};
use serde::Serialize;
use testbed::{GIB, KIB, MIB};

use crate::limit::data_extents;

/// Logical size of the huge sparse file.
pub const HUGE_SIZE: u64 = 1 << 40;
/// Data extents of the fragmented file, each [`FRAGMENT`] long with a hole
/// of the same length after it.
pub const FRAGMENTS: u64 = 20_000;
/// Length of each fragment and of each hole between them.
pub const FRAGMENT: u64 = 4 * KIB;

/// Size and allocation of a fixture, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct FileFacts {
    /// Logical size in bytes.
    pub size: u64,
    /// `st_blocks * 512`.
    pub allocated: u64,
    /// Data extents as SEEK_DATA/SEEK_HOLE report them.
    pub extents: usize,
}

impl FileFacts {
    /// Measures `path`.
    pub fn of(path: &Path) -> anyhow::Result<FileFacts> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let meta = file.metadata()?;
        Ok(FileFacts {
            size: meta.len(),
            allocated: meta.blocks() * 512,
            extents: data_extents(&file, meta.len())?.len(),
        })
    }

    /// "3.0G logical, 1.7G allocated, 12 data extents" (sizes as `du -h`).
    pub fn describe(&self) -> String {
        format!(
            "{} logical, {} allocated, {} data extent{}",
            copy_engine::human_bytes(self.size),
            copy_engine::human_bytes(self.allocated),
            self.extents,
            if self.extents == 1 { "" } else { "s" }
        )
    }
}

/// Builds `active.img` at `path` with the harness's installer replay for
/// the `harvester-install` scenario (3072 MiB ext2, about 1.7G allocated),
/// `scale` times the full size: truncate, `mkfs.ext2 -L COS_ACTIVE`, loop
/// device, mount, write the seeded OS tree, flush, unmount. Returns the
/// scenario name and the image's facts.
pub fn build_active_image(path: &Path, scale: f64) -> anyhow::Result<(String, FileFacts)> {
    let mut scenario = Scenario::load(DEFAULT_SCENARIO)?;
    if scale != 1.0 {
        scenario = scenario.scaled(scale)?;
    }
    let built = build_image(path, &scenario.install, ACTIVE_LABEL)?;
    if let Some(error) = built.flush_error {
        bail!("flushing {} failed: {error}", path.display());
    }
    Ok((scenario.name, FileFacts::of(path)?))
}

/// Writes every byte of `src` into a new `dst`, zeros included: the dense
/// `passive.img` io.Copy leaves behind.
pub fn dense_copy(src: &Path, dst: &Path) -> anyhow::Result<()> {
    let mut input = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let mut output =
        File::create(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n])?;
    }
    output.sync_all()?;
    Ok(())
}

/// Replaces `dst` with a copy of the dense `master` by `copy_file_range`
/// (ext4 cannot share extents, so the kernel writes every block).
pub fn refresh_dense(master: &Path, dst: &Path) -> anyhow::Result<()> {
    let input = File::open(master).with_context(|| format!("cannot open {}", master.display()))?;
    let output = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .with_context(|| format!("cannot create {}", dst.display()))?;
    let size = input.metadata()?.len();
    crate::limit::offload_all(&input, &output, &[(0, size)], GIB)
        .with_context(|| format!("cannot copy {} to {}", master.display(), dst.display()))?;
    let allocated = output.metadata()?.blocks() * 512;
    if allocated < size {
        bail!(
            "{} is not dense: {allocated} of {size} bytes allocated",
            dst.display()
        );
    }
    Ok(())
}

/// A 1 TiB file holding three 64 KiB extents: at the start, in the
/// middle, and at the end.
pub fn build_huge_sparse(path: &Path) -> anyhow::Result<FileFacts> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.set_len(HUGE_SIZE)?;
    let chunk = 64 * KIB;
    for (i, offset) in [0, HUGE_SIZE / 2, HUGE_SIZE - chunk]
        .into_iter()
        .enumerate()
    {
        file.write_all_at(&pattern(chunk as usize, i as u64), offset)?;
    }
    file.sync_all()?;
    FileFacts::of(path)
}

/// A file of [`FRAGMENTS`] data extents of 4 KiB, each followed by a 4 KiB
/// hole: the worst case for per-extent overhead.
pub fn build_fragmented(path: &Path) -> anyhow::Result<FileFacts> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.set_len(FRAGMENTS * 2 * FRAGMENT)?;
    let data = pattern((FRAGMENTS * FRAGMENT) as usize, 7);
    for (i, block) in data.chunks(FRAGMENT as usize).enumerate() {
        file.write_all_at(block, i as u64 * 2 * FRAGMENT)?;
    }
    file.sync_all()?;
    let facts = FileFacts::of(path)?;
    if facts.extents as u64 != FRAGMENTS {
        bail!(
            "{} has {} data extents, wanted {FRAGMENTS}",
            path.display(),
            facts.extents
        );
    }
    Ok(facts)
}

/// How the data extents of [`build_extents`] are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentPattern {
    /// 4 KiB of data every 8 KiB.
    Stride,
    /// 4 or 8 KiB of data, then a hole of 4 to 128 KiB (one in 16 within
    /// the copy's 8 KiB merge gap), from a seeded generator.
    Random,
}

impl ExtentPattern {
    /// The pattern in words, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            ExtentPattern::Stride => "4 KiB every 8 KiB",
            ExtentPattern::Random => "4-8 KiB between seeded random 4-128 KiB holes",
        }
    }
}

/// A file of `count` data extents laid out as `layout` says, made quickly:
/// one `pwrite` per extent from one buffer of non-zero bytes, one `fsync`.
/// Checked by walking SEEK_DATA/SEEK_HOLE: ext4 merges nothing here, since
/// every extent has a hole on both sides.
pub fn build_extents(path: &Path, count: u64, layout: ExtentPattern) -> anyhow::Result<FileFacts> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let data = pattern(2 * FRAGMENT as usize, 11);
    // xorshift64, seeded: the same file every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut pos = 0;
    for _ in 0..count {
        let (blocks, hole) = match layout {
            ExtentPattern::Stride => (1, 1),
            ExtentPattern::Random => (1 + next(2), 1 + next(32)),
        };
        let len = blocks * FRAGMENT;
        file.write_all_at(&data[..len as usize], pos)
            .with_context(|| format!("cannot write {}", path.display()))?;
        pos += len + hole * FRAGMENT;
    }
    file.set_len(pos)?;
    file.sync_all()?;
    let facts = FileFacts::of(path)?;
    if facts.extents as u64 != count {
        bail!(
            "{} has {} data extents, wanted {count}",
            path.display(),
            facts.extents
        );
    }
    Ok(facts)
}

/// `len` bytes that never hold an all-zero 4 KiB block (an xorshift
/// stream seeded by `seed`), so no copier may turn them into a hole.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&(state | 1).to_le_bytes());
    }
    out.truncate(len);
    out
}
