//! The one `copy_file_range(2)` loop: copies `(offset, length)` ranges
//! between two files at the same offsets until done or until the kernel
//! declines, and hands back what it declined. The copy's offload strategy
//! uses it, and so does the benchmark's read-once-write-once floor.

use std::fs::File;
use std::io;

use crate::progress::Cancel;
use crate::sys::{self, RangeOutcome};

/// What [`copy_ranges`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offloaded {
    /// Bytes the kernel copied.
    pub copied: u64,
    /// The ranges still to copy, from where the kernel declined (empty
    /// when it copied everything).
    pub declined: Vec<(u64, u64)>,
}

/// Why [`copy_ranges`] stopped early.
#[derive(Debug)]
pub enum OffloadError {
    /// The cancel flag was raised.
    Cancelled,
    /// A call at `offset` failed with an error the kernel does not use to
    /// decline (see `sys::copy_range`).
    Failed {
        /// The source offset of the failing call.
        offset: u64,
        /// The OS error.
        source: io::Error,
    },
}

/// Copies `ranges` of `src` to the same offsets of `dst` with
/// copy_file_range, at most `max_call` bytes per call, calling `copied`
/// after each call with the bytes it moved. Stops at the first call the
/// kernel declines (`EXDEV`, `EOPNOTSUPP`, a 0 return, ...) and returns the
/// rest; checks `cancel` before every call.
pub fn copy_ranges(
    src: &File,
    dst: &File,
    ranges: &[(u64, u64)],
    max_call: u64,
    cancel: &Cancel,
    mut copied: impl FnMut(u64),
) -> Result<Offloaded, OffloadError> {
    let mut done = 0u64;
    for (i, &(start, len)) in ranges.iter().enumerate() {
        let end = start + len;
        let mut pos = start;
        while pos < end {
            if cancel.is_cancelled() {
                return Err(OffloadError::Cancelled);
            }
            let want = (end - pos).min(max_call) as usize;
            let outcome = sys::copy_range(src, pos, dst, pos, want).map_err(|source| {
                OffloadError::Failed {
                    offset: pos,
                    source,
                }
            })?;
            match outcome {
                RangeOutcome::Copied(n) => {
                    pos += n as u64;
                    done += n as u64;
                    copied(n as u64);
                }
                RangeOutcome::Unsupported => {
                    let mut declined = vec![(pos, end - pos)];
                    declined.extend_from_slice(&ranges[i + 1..]);
                    return Ok(Offloaded {
                        copied: done,
                        declined,
                    });
                }
            }
        }
    }
    Ok(Offloaded {
        copied: done,
        declined: Vec::new(),
    })
}
