//! Integration tests of the testbed: real loop devices, mounts and mkfs
//! (as root), and the tree generator.

mod common;

/// Backing files, loop devices, the scratch directory, parallel set-up.
mod devices;
/// `FsKind` names, parsing and serde; `skip_reason`.
mod kind;
/// mkfs with a fixed UUID, fsck of a fresh filesystem, labels.
mod mkfs;
/// `ScratchFs` for every kind: mounted while alive, gone after drop or panic.
mod scratch;
/// `generate_tree`: determinism, exact size, zero runs, speed; `copy_tree`.
mod tree;
