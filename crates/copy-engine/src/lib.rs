//! copy-engine: copy files and block devices on Linux without losing their
//! holes, replace the destination atomically, and report allocation exactly.
//!
//! The pieces, in the order data flows through them:
//! - [`layout`]: where a file keeps its data (SEEK_DATA/SEEK_HOLE, FIEMAP),
//!   walked lazily; past [`layout::KEPT`] extents only counted, not listed,
//!   their merged ranges kept [`packed`] at a few bytes each.
//! - [`plan`]: decides a copy up front ([`CopyPlan`]: clone, offload,
//!   sparse workers, ring or sequential; ranges, space, holes), a pure
//!   function of the layout, the options and the destination's facts.
//! - [`copy()`]: gathers those facts, plans, checks space, runs the plan
//!   into a temporary and renames it over the destination; returns a
//!   [`CopyReport`] whose methods and worker shapes are the plan's.
//! - `blockdev`: onto a block device: exclusively, data at its offsets,
//!   holes zeroed (or skipped), flushed; and reading it back for verify.
//! - [`dig()`]: punches all-zero blocks out of a file in place.
//! - [`live`]: whether a file backs an attached loop device (a live image
//!   that copies, digs and in-place writes refuse).
//! - [`verify()`]: same content, and allocation within a promise.
//! - [`bmap`]: bmaptool's block maps: [`Bmap::create`], and
//!   [`copy_with_bmap`], a copy of a bmap's mapped ranges, checked.
//!
//! Syscalls live in one module (`sys`); `unsafe` only in its FIEMAP and LOOP_GET_STATUS64 wrappers.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod blockdev;
pub mod bmap;
pub mod buffer;
mod copy;
mod dest;
mod dig;
mod error;
mod execute;
mod human;
pub mod layout;
pub mod live;
mod mounts;
mod mover;
pub mod offload;
mod options;
pub mod packed;
pub mod plan;
mod progress;
mod report;
mod space;
mod stream;
mod sys;
mod verify;
pub mod zero;

pub use bmap::copy::{copy_stream_with_bmap, copy_with_bmap};
pub use bmap::{Bmap, BmapRange};
pub use buffer::AlignedBuf;
pub use copy::{copy, copy_stream};
pub use dest::remove_stale_temporaries;
pub use dig::dig;
pub use error::Error;
pub use human::human_bytes;
pub use layout::{Extent, Layout, SourceKind};
pub use options::{CopyOptions, HoleMode, ReflinkMode, SparseMode};
pub use plan::{CopyPlan, Destination, DeviceFacts, FsFacts, HoleMethod, Strategy};
pub use progress::{Cancel, NoProgress, Progress};
pub use report::{CopyReport, DeviceReport, DigReport, Method, Phase, PhaseReport, Shape};
pub use space::{OldDestination, SpaceAdvice};
pub use stream::CancellableReader;
pub use verify::{verify, VerifyReport};
