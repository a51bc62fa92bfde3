//! The choices a caller makes about a copy.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::progress::Cancel;

/// Which zeros become holes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SparseMode {
    /// Every hole of the source stays a hole; for a sparse source (or one
    /// that cannot report holes) runs of all-zero blocks become holes too.
    /// Never allocates more than `cp --sparse=auto`.
    #[default]
    Auto,
    /// Every all-zero filesystem block becomes a hole.
    Always,
    /// Fully allocated: every byte written, as io.Copy does.
    Never,
}

/// Whether to share extents with the source (FICLONE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReflinkMode {
    /// Share extents where the filesystem can (xfs, btrfs), else copy.
    #[default]
    Auto,
    /// Share extents or fail.
    Always,
    /// Always copy the data.
    Never,
}

/// What a copy onto a block device does with the source's holes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoleMode {
    /// Make every hole read as zeros on the device (the fastest way the
    /// device offers, see `crate::blockdev`).
    #[default]
    Zero,
    /// Leave the device's bytes under holes untouched (bmaptool's
    /// behaviour): right only for a device known to be blank; elsewhere
    /// its stale data shows where the image has holes.
    Skip,
}

macro_rules! keyword_enum {
    ($t:ty: $($v:ident = $s:literal),*) => {
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(<$t>::$v),)*
                    _ => Err(format!("expected one of: {}", [$($s),*].join(", "))),
                }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(<$t>::$v => $s,)* })
            }
        }
    };
}
keyword_enum!(SparseMode: Auto = "auto", Always = "always", Never = "never");
keyword_enum!(ReflinkMode: Auto = "auto", Always = "always", Never = "never");
keyword_enum!(HoleMode: Zero = "zero", Skip = "skip");

/// Everything that shapes one copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Which zeros become holes.
    pub sparse: SparseMode,
    /// Whether to share extents.
    pub reflink: ReflinkMode,
    /// Make the data and the rename durable before returning.
    pub fsync: bool,
    /// Skip the check that the destination filesystem has room.
    pub no_space_check: bool,
    /// Write into the existing destination file (truncate, then write)
    /// instead of replacing it atomically: needs no room for a second
    /// copy, but a failed or killed copy leaves the destination truncated
    /// or partly written. A destination that does not exist yet is still
    /// created through a temporary.
    pub in_place: bool,
    /// Copy from a source, or onto a destination, that backs an attached
    /// loop device (see [`crate::live`]) instead of refusing.
    pub allow_attached: bool,
    /// What a block-device destination gets where the source has holes.
    pub holes: HoleMode,
    /// Raised by the caller to stop early.
    pub cancel: Cancel,
}

impl CopyOptions {
    /// The options of a copy that keeps holes the way GNU cp does.
    pub fn auto() -> CopyOptions {
        CopyOptions::default()
    }

    /// The options of a copy that makes every zero block a hole.
    pub fn always() -> CopyOptions {
        CopyOptions {
            sparse: SparseMode::Always,
            ..CopyOptions::default()
        }
    }

    /// The options of a fully allocated copy (what io.Copy produces).
    pub fn dense() -> CopyOptions {
        CopyOptions {
            sparse: SparseMode::Never,
            reflink: ReflinkMode::Never,
            ..CopyOptions::default()
        }
    }
}
