//! Real filesystems on loop devices, for tests that copy disk images.
//!
//! The copy engine, the fault tests and the installer scenarios all need the
//! same few things: a sparse backing file on a disk-backed directory, a loop
//! device over it, a reproducible `mkfs`, a mount, and a tree of files that
//! looks like an operating system. Each lives in a guard whose `Drop` undoes
//! it without panicking, so a failing test does not leave loop devices or
//! mounts behind; [`ScratchFs`] composes them in the right drop order.
//!
//! Tests that need root or a missing tool skip with a printed reason through
//! [`require!`], never silently.
//!
//! Set `KEEP_IMAGES=1` to keep backing files for inspection, and
//! `SPARSECP_SCRATCH=<dir>` to choose where they are created.
//!
//! ```no_run
//! use testbed::{generate_tree, tree_stats, FsKind, ScratchFs, TreeSpec, MIB};
//!
//! # fn main() -> anyhow::Result<()> {
//! testbed::require_fs!(FsKind::Xfs => Ok(()));
//! let fs = ScratchFs::new(FsKind::Xfs, 300 * MIB)?;
//! let written = generate_tree(&fs.path().join("root"), &TreeSpec::os_like(64 * MIB))?;
//! assert_eq!(tree_stats(&fs.path().join("root"))?, written);
//! let verdict = fs.unmount_and_check()?;
//! assert!(verdict.clean, "{}", verdict.output);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backing;
mod fs_tools;
mod kind;
mod loop_device;
mod mount;
mod scratch;
mod tools;
pub mod tree;

pub use backing::{fresh_image_path, scratch_dir, BackingFile};
pub use fs_tools::{
    fsck_clean, mkfs, read_label, read_uuid, set_ext_label, uuid_from_seed, FsckVerdict,
};
pub use kind::{FsKind, ParseFsKindError};
pub use loop_device::LoopDevice;
pub use mount::Mount;
pub use scratch::ScratchFs;
pub use tools::{find_tool, fs_available, skip_reason};
pub use tree::{
    copy_tree, generate_tree, tree_digest, tree_listing, tree_stats, TreeListing, TreeSpec,
    TreeStats,
};

/// Size units, to keep test sizes readable (`300 * MIB`).
pub const KIB: u64 = 1 << 10;
/// One mebibyte.
pub const MIB: u64 = 1 << 20;
/// One gibibyte.
pub const GIB: u64 = 1 << 30;

/// Skips the current test, with a printed reason, unless we run as root and
/// every named tool is installed.
///
/// ```no_run
/// #[test]
/// fn xfs_image_mounts() {
///     testbed::require!("mkfs.xfs", "xfs_repair");
///     // ... runs only as root with both tools installed
/// }
///
/// #[test]
/// fn fallible_test() -> anyhow::Result<()> {
///     testbed::require!("losetup" => Ok(()));
///     Ok(())
/// }
/// ```
///
/// It `return`s from the enclosing function: `()` by default, or the value
/// after `=>`. The reason goes to stderr past the test harness's capture
/// (see [`report_skip`]), so skips show in a plain `cargo test`.
#[macro_export]
macro_rules! require {
    ($($tool:expr),* => $skipped:expr) => {
        if let ::std::option::Option::Some(reason) = $crate::skip_reason(&[$($tool),*]) {
            fn here() {}
            $crate::report_skip(&$crate::__test_name(::std::any::type_name_of_val(&here)), &reason);
            return $skipped;
        }
    };
    ($($tool:expr),* $(,)?) => {
        $crate::require!($($tool),* => ())
    };
}

/// Skips the current test, with a printed reason, unless a filesystem of
/// this kind can be made, checked and mounted here (root, tools, kernel
/// support). Like [`require!`], `=> value` sets what the test returns.
#[macro_export]
macro_rules! require_fs {
    ($kind:expr => $skipped:expr) => {
        if let ::std::option::Option::Some(reason) = $crate::fs_skip_reason($kind) {
            fn here() {}
            $crate::report_skip(&$crate::__test_name(::std::any::type_name_of_val(&here)), &reason);
            return $skipped;
        }
    };
    ($kind:expr) => {
        $crate::require_fs!($kind => ())
    };
}

pub use tools::{__test_name, fs_skip_reason, report_skip};
