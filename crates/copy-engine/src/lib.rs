//! copy-engine: copy files and block devices on Linux without losing their
//! holes, replace the destination atomically, and report allocation exactly.
//!
//! The pieces, in the order data flows through them:
//! - [`layout`]: where a file keeps its data (SEEK_DATA/SEEK_HOLE, FIEMAP),
//!   walked lazily; past [`layout::KEPT`] extents only counted, not listed.
//! - [`plan`]: decides a copy up front ([`CopyPlan`]: clone, offload,
//!   sparse workers, ring or sequential; ranges, space, holes), a pure
//!   function of the layout, the options and the destination's facts.
//! - [`copy()`]: gathers those facts, plans, checks space, runs the plan
//!   into a temporary and renames it over the destination; returns a
//!   [`CopyReport`] whose methods and worker shapes are the plan's.
//! - [`dig()`]: punches all-zero blocks out of a file in place.
//! - [`verify()`]: same content, and allocation within a promise.
//!
//! Syscalls live in one module (`sys`); `unsafe` only in its FIEMAP wrapper.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod buffer;
mod copy;
mod dest;
mod dig;
mod error;
mod execute;
mod human;
pub mod layout;
mod mover;
pub mod offload;
mod options;
pub mod plan;
mod progress;
mod report;
mod stream;
mod sys;
mod verify;
pub mod zero;

pub use buffer::AlignedBuf;
pub use copy::{copy, copy_stream};
pub use dest::remove_stale_temporaries;
pub use dig::dig;
pub use error::Error;
pub use human::human_bytes;
pub use layout::{Extent, Layout, SourceKind};
pub use options::{CopyOptions, ReflinkMode, SparseMode};
pub use plan::{CopyPlan, Destination, FsFacts, Strategy};
pub use progress::{Cancel, NoProgress, Progress};
pub use report::{CopyReport, DigReport, Method, Phase, PhaseReport, Shape};
pub use stream::CancellableReader;
pub use verify::{verify, VerifyReport};
