//! The fault suite (issue #4): nothing lost, nothing hung, every failure
//! named. Each test states the figures it checks. Killing a copy needs a
//! process to kill and lives with the command line (sparsecp tests/killed.rs).

/// A source that grows, shrinks or loses data while it is copied or dug.
mod changing_source;
/// A block-device destination detached or shrunk mid-copy; progress onto a device.
mod device;
/// Files whose metadata misleads a naive copier: delayed allocation, mmap,
/// unwritten extents, sizes at boundaries, tmpfs, squashfs.
mod misleading;
/// Sources that fail reads with EIO at chosen offsets (faultfs).
mod read_errors;
/// ENOSPC on small ext4, xfs and btrfs, and the space preflight.
mod space;
