//! The space preflight: whether the destination filesystem can hold what
//! the plan will allocate, counting the old destination the way the chosen
//! mode does, and, when it cannot, a refusal that says which way out
//! there is.
//!
//! An atomic replacement needs room for the new copy while the old
//! destination still holds its blocks; `cp` truncates first and needs
//! none. So a refused atomic copy that would fit once the old
//! destination's blocks were freed names `--in-place` (and `sparsecp dig`
//! when the old destination looks fully allocated with zero blocks that a
//! dig would give back); in place, the old blocks count as free.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use crate::error::Error;

/// Blocks of the old destination read to estimate its zero blocks: a
/// sample, not a scan (a dig of a 700 MiB image reads all of it; this
/// reads 1 MiB with 4 KiB blocks).
const SAMPLES: u64 = 256;

/// What the destination about to be replaced holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldDestination {
    /// Its allocation (`st_blocks * 512`), freed once it is replaced.
    pub allocated: u64,
    /// When it has no holes at all: an estimate of the bytes its all-zero
    /// blocks allocate, which `sparsecp dig` would give back (see
    /// [`OldDestination::measure`]). `None` when it has holes already or
    /// no zero block was sampled.
    pub zeros: Option<u64>,
}

impl OldDestination {
    /// Measures the regular file at `path`, the destination a copy would
    /// replace (`None` if there is none). Cheap by choice: the old
    /// destination counts as dense when it allocates at least its size
    /// rounded down to blocks (no holes, as io.Copy leaves an image), and
    /// its zero share is estimated from [`SAMPLES`] blocks spread evenly
    /// over it.
    pub fn measure(path: &Path, block: u64) -> Option<OldDestination> {
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let allocated = meta.blocks() * 512;
        let size = meta.len();
        let blocks = size / block;
        let dense = blocks > 0 && allocated >= blocks * block;
        let zeros = dense.then(|| zero_share(&file, blocks, block)).flatten();
        Some(OldDestination {
            allocated,
            zeros: zeros.map(|(zero, sampled)| allocated / sampled * zero),
        })
    }
}

/// Of `SAMPLES` blocks spread over the file's `blocks`, how many are all
/// zeros, and how many were read; `None` when none is.
fn zero_share(file: &File, blocks: u64, block: u64) -> Option<(u64, u64)> {
    let step = blocks.div_ceil(SAMPLES).max(1);
    let mut buf = vec![0u8; block as usize];
    let (mut zero, mut sampled) = (0, 0);
    for i in (0..blocks).step_by(step as usize) {
        if file.read_exact_at(&mut buf, i * block).is_err() {
            break;
        }
        sampled += 1;
        zero += u64::from(buf.iter().all(|&b| b == 0));
    }
    (zero > 0).then_some((zero, sampled))
}

/// Whether the copy fits, and the refusal if not: `needed` bytes, `free`
/// on the destination filesystem, `old` the destination being replaced,
/// `in_place` whether its blocks are freed before the copy writes.
pub(crate) fn check(
    path: &Path,
    needed: u64,
    free: u64,
    old: Option<OldDestination>,
    in_place: bool,
) -> Result<(), Error> {
    let old_allocated = old.map_or(0, |o| o.allocated);
    let usable = if in_place { free + old_allocated } else { free };
    if needed <= usable {
        return Ok(());
    }
    Err(Error::NoSpace {
        path: path.into(),
        needed,
        available: free,
        old_allocated,
        advice: if !in_place && needed <= free + old_allocated {
            SpaceAdvice::InPlace {
                dig: old
                    .and_then(|o| o.zeros)
                    .is_some_and(|z| z >= needed - free),
            }
        } else {
            SpaceAdvice::Short { in_place }
        },
    })
}

/// Which way out a space refusal names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceAdvice {
    /// The copy would fit if the old destination's blocks were freed:
    /// `--in-place`; and with `dig`, digging the old destination first
    /// may free enough for an atomic copy.
    InPlace {
        /// The old destination is fully allocated and zero blocks were
        /// sampled in it, about enough to make room.
        dig: bool,
    },
    /// It does not fit even in place (`in_place`: the old destination's
    /// blocks were counted as free already).
    Short {
        /// The copy was asked for `--in-place`.
        in_place: bool,
    },
}
