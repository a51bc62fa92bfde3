//! Integration tests of copy-engine on real filesystems (loop-mounted ext4,
//! xfs and btrfs made by the tests; they skip with a printed reason without
//! root or the mkfs tools).

mod support;

/// The fault suite (issue #4): out of space, read errors, changing sources, misleading files.
mod faults;

/// bmap files: parse, validate, write, create, and the plan of a bmap (no root).
mod bmap;
/// Every named layout, every sparse mode, every filesystem: content, holes, allocation.
mod layouts;
/// Plans for a table of layouts x options x filesystem facts (insta snapshots; no root).
mod plans;
/// Random layouts at 4 KiB +-1 boundaries (proptest), every mode and dig.
mod properties;
/// FICLONE on xfs and btrfs (also into an --in-place destination), and its refusal on ext4.
mod reflink;
/// Atomic replacement: destinations survive failures, temporaries never stay.
mod replace;
