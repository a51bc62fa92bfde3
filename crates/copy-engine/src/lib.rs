//! copy-engine: copy files and block devices on Linux without losing their
//! holes, replace the destination atomically, and report allocation exactly.
//!
//! The pieces, in the order data flows through them:
//! - [`layout`]: where a file keeps its data (SEEK_DATA/SEEK_HOLE, FIEMAP).
//! - [`copy()`]: plans a copy (reflink, copy_file_range or the read/write
//!   workers), checks space, writes a temporary and renames it over the
//!   destination; returns a [`CopyReport`].
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
pub mod layout;
mod mover;
mod options;
mod progress;
mod report;
mod stream;
#[allow(unsafe_code)]
mod sys;
mod verify;
pub mod zero;

pub use buffer::AlignedBuf;
pub use copy::{copy, copy_stream};
pub use dest::remove_stale_temporaries;
pub use dig::dig;
pub use error::Error;
pub use layout::{Extent, Layout, SourceKind};
pub use options::{CopyOptions, ReflinkMode, SparseMode};
pub use progress::{Cancel, NoProgress, Progress};
pub use report::{bytes, CopyReport, DigReport, Method, Phase, PhaseReport};
pub use stream::CancellableReader;
pub use verify::{verify, VerifyReport};
