//! A seeded, synthetic operating-system tree to copy onto images, and the
//! means to measure, fingerprint and copy a tree.
//!
//! [`generate_tree`] writes many small files (configuration, docs, scripts),
//! a body of medium ones (libraries, binaries) and a few large ones (initrd,
//! databases, firmware), with some block-aligned runs of zeros inside files
//! and the usual symlinks. The same [`TreeSpec`] always gives the same
//! names, sizes and bytes. File data is random-looking and never contains
//! an all-zero block outside the deliberate zero runs, so zero-block
//! detection sees exactly the runs.

mod fill;
mod plan;
mod walk;

use std::path::Path;

use anyhow::Context;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use walk::{copy_tree, tree_digest, tree_stats};

/// The granularity of zero runs and of zero detection in [`TreeStats`].
pub const BLOCK: u64 = 4096;

/// What tree to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeSpec {
    /// Seeds every choice: names, sizes, zero runs and data.
    pub seed: u64,
    /// Sum of regular file sizes, hit exactly.
    pub total_bytes: u64,
    /// Number of small (1-64 KiB) files; fewer if they would take more than
    /// half of `total_bytes`.
    pub small_files: usize,
    /// Fraction (0.0-1.0) of `total_bytes` to be block-aligned runs of zeros
    /// inside files of 64 KiB and more (as far as those files allow).
    pub zero_run_share: f64,
}

impl TreeSpec {
    /// A tree shaped like an installed Linux system of `total_bytes`: small
    /// files take about 8% of the bytes, large files about 40%, libraries
    /// and binaries the rest; 5% of the bytes are zero runs. Seed 0.
    pub fn os_like(total_bytes: u64) -> TreeSpec {
        // Small files average about 15 KiB.
        let small_files = (total_bytes * 8 / 100 / (15 * crate::KIB)).clamp(8, 50_000);
        TreeSpec {
            seed: 0,
            total_bytes,
            small_files: small_files as usize,
            zero_run_share: 0.05,
        }
    }
}

/// What a tree holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TreeStats {
    /// Regular files.
    pub files: usize,
    /// Directories, not counting the root.
    pub dirs: usize,
    /// Symbolic links.
    pub symlinks: usize,
    /// Sum of regular file sizes.
    pub bytes: u64,
    /// Bytes of regular files in all-zero 4 KiB blocks (aligned to the start
    /// of the file; a partial last block counts if it is all zeros). Holes
    /// read as zeros, so they count too.
    pub zero_bytes: u64,
}

/// What a tree from [`generate_tree`] will hold, without writing it: what
/// a tool that sizes an image for a tree (an upgrade's free-space check)
/// learns by walking the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeListing {
    /// Every directory, relative to the root, parents before children.
    pub dirs: Vec<std::path::PathBuf>,
    /// Every regular file and its size.
    pub files: Vec<(std::path::PathBuf, u64)>,
    /// Every symlink and its target.
    pub symlinks: Vec<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Lists the tree `spec` describes: the same paths and sizes that
/// [`generate_tree`] writes.
pub fn tree_listing(spec: &TreeSpec) -> TreeListing {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let plan = plan::Plan::new(spec, &mut rng);
    TreeListing {
        dirs: plan.dirs.into_iter().collect(),
        files: plan.files.into_iter().map(|f| (f.path, f.size)).collect(),
        symlinks: plan.symlinks,
    }
}

/// Writes the tree described by `spec` under `root` (created if missing)
/// and returns what it wrote.
///
/// `root` need not be empty (a fresh filesystem has `lost+found`), but the
/// generated paths must not exist yet.
pub fn generate_tree(root: &Path, spec: &TreeSpec) -> anyhow::Result<TreeStats> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let plan = plan::Plan::new(spec, &mut rng);
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    for dir in &plan.dirs {
        let path = root.join(dir);
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    let mut filler = fill::Filler::new(spec.seed);
    let mut stats = TreeStats {
        dirs: plan.dirs.len(),
        ..TreeStats::default()
    };
    for (index, file) in plan.files.iter().enumerate() {
        filler.write(root, file, index as u64)?;
        stats.files += 1;
        stats.bytes += file.size;
        stats.zero_bytes += file.zero_runs.iter().map(|(_, len)| len).sum::<u64>();
    }
    for (link, target) in &plan.symlinks {
        let path = root.join(link);
        std::os::unix::fs::symlink(target, &path)
            .with_context(|| format!("cannot create symlink {}", path.display()))?;
        stats.symlinks += 1;
    }
    Ok(stats)
}
