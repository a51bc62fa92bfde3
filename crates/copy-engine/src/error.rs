//! The engine's errors: each names the path it concerns and the cause, so a
//! command line can print it as one line.

use std::io;
use std::path::{Path, PathBuf};

use crate::human::human_bytes;
use crate::space::SpaceAdvice;

/// Everything that can make a copy, dig or verify fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A syscall on `path` failed while doing `op`.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the engine was doing ("read", "create temporary", ...).
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Source and destination are the same file (maybe through a link).
    #[error("{dst}: is the same file as {src}")]
    SameFile {
        /// The source path.
        src: PathBuf,
        /// The destination path.
        dst: PathBuf,
    },
    /// The source changed (its size, or its content: its change time moved)
    /// while it was being copied.
    #[error("{path}: source changed during the copy (size {before} bytes at start, {after} now); destination left untouched")]
    SourceChanged {
        /// The source path.
        path: PathBuf,
        /// Size when the copy started.
        before: u64,
        /// Size observed later.
        after: u64,
    },
    /// The destination filesystem cannot hold what the copy will allocate.
    #[error("{}", no_space(path, *needed, *available, *old_allocated, *advice))]
    NoSpace {
        /// The destination path.
        path: PathBuf,
        /// Bytes the copy will allocate.
        needed: u64,
        /// Bytes free for us on the destination filesystem.
        available: u64,
        /// Bytes the old destination allocates (0 if there is none).
        old_allocated: u64,
        /// Which way out the message names.
        advice: SpaceAdvice,
    },
    /// The path backs an attached loop device: copying from it may miss
    /// writes still in the device's page cache, digging or overwriting it
    /// races the device's own writes.
    #[error("{0}")]
    Attached(Box<crate::live::Refusal>),
    /// An `--in-place` copy failed after truncating the destination.
    #[error("{}", incomplete(path, cause))]
    Incomplete {
        /// The destination, now truncated or partly written.
        path: PathBuf,
        /// What stopped the copy.
        cause: Box<Error>,
    },
    /// Reflink was required but this filesystem pair cannot share extents.
    #[error("{path}: cannot reflink here ({source}); use --reflink auto to copy instead")]
    ReflinkUnsupported {
        /// The destination path.
        path: PathBuf,
        /// The errno FICLONE answered.
        #[source]
        source: io::Error,
    },
    /// The block device is mounted, or held open exclusively by another
    /// process or by the kernel (swap, RAID, device-mapper): nothing written.
    #[error("{path}: device is busy ({}); nothing was written", busy_detail(.mount_point.as_deref()))]
    DeviceBusy {
        /// The device.
        path: PathBuf,
        /// Where it is mounted, if it is.
        mount_point: Option<PathBuf>,
    },
    /// A copy onto a block device was cancelled (a signal) after writing
    /// began: unlike a file, a device has no old content to keep.
    #[error("{path}: interrupted; the device is partly written")]
    DeviceInterrupted {
        /// The device.
        path: PathBuf,
    },
    /// The block device cannot hold the image: nothing written.
    #[error("{path}: device too small: it holds {device_size} bytes, the image {source_path} has {image_size} bytes; nothing was written")]
    DeviceTooSmall {
        /// The device.
        path: PathBuf,
        /// Its size.
        device_size: u64,
        /// The image.
        source_path: PathBuf,
        /// The image's size.
        image_size: u64,
    },
    /// The operation does not apply to this kind of file.
    #[error("{path}: {reason}")]
    Unsupported {
        /// The file concerned.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A bmap file that cannot be used: malformed, an unsupported format
    /// version or checksum type, or its own checksum does not match.
    #[error("{path}: {reason}")]
    BadBmap {
        /// The bmap file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Bytes of the source that do not match their checksum in the bmap:
    /// the bmap was made for another image, or the source is damaged.
    #[error(
        "{src}: the SHA-256 of {range} (bytes {start}..{end}) does not match {bmap}; {outcome}"
    )]
    BmapMismatch {
        /// The source.
        src: PathBuf,
        /// The bmap file.
        bmap: PathBuf,
        /// The range: `block N` or `blocks FIRST-LAST`.
        range: String,
        /// Its first byte.
        start: u64,
        /// One past its last byte.
        end: u64,
        /// What became of the destination.
        outcome: String,
    },
    /// A source whose size is not the image size the bmap describes.
    #[error("{src}: {found} bytes, but {bmap} describes an image of {image_size} bytes; nothing written")]
    BmapSizeMismatch {
        /// The source.
        src: PathBuf,
        /// The bmap file.
        bmap: PathBuf,
        /// The source's size.
        found: u64,
        /// The image size in the bmap.
        image_size: u64,
    },
    /// A stream that ended before the image the bmap describes.
    #[error("{src}: ended after {found} bytes, but {bmap} describes an image of {image_size} bytes; {outcome}")]
    BmapSourceEnded {
        /// The source.
        src: PathBuf,
        /// The bmap file.
        bmap: PathBuf,
        /// Bytes the stream delivered.
        found: u64,
        /// The image size in the bmap.
        image_size: u64,
        /// What became of the destination.
        outcome: String,
    },
    /// The copy was cancelled (a signal); nothing was changed.
    #[error("{path}: interrupted; destination left untouched")]
    Interrupted {
        /// The destination path.
        path: PathBuf,
    },
}

impl Error {
    /// Whether the operation was cancelled by a signal (also when that
    /// left an in-place destination incomplete).
    pub fn is_interrupted(&self) -> bool {
        match self {
            Error::Interrupted { .. } | Error::DeviceInterrupted { .. } => true,
            Error::Incomplete { cause, .. } => cause.is_interrupted(),
            _ => false,
        }
    }

    /// The OS error behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Incomplete { cause, .. } => cause.raw_os_error(),
            Error::Io { source, .. } | Error::ReflinkUnsupported { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}

/// Why a device was busy, for [`Error::DeviceBusy`].
fn busy_detail(mount_point: Option<&Path>) -> String {
    match mount_point {
        Some(m) => format!("mounted on {}", m.display()),
        None => "held open exclusively by another process, or used as swap, \
                 RAID or device-mapper member"
            .into(),
    }
}

/// Attaches a path and an operation to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Turns an I/O error into [`Error::Io`] naming `path` and `op`.
    fn at(self, path: &Path, op: &str) -> Result<T, Error>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path, op: &str) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            op: op.to_string(),
            source,
        })
    }
}

/// The one line of a space refusal: the figures, then the way out.
fn no_space(path: &Path, needed: u64, free: u64, old: u64, advice: SpaceAdvice) -> String {
    let p = path.display();
    let (n, f, o) = (human_bytes(needed), human_bytes(free), human_bytes(old));
    match advice {
        SpaceAdvice::InPlace { dig } => format!(
            "{p}: not enough space to replace it atomically: the copy needs {n}, {f} are free and \
             the old destination holds {o} until it is replaced; use --in-place to write over it \
             (not atomic){}",
            if dig {
                format!(", or `sparsecp dig {p}` first (it has no holes, and zero blocks were sampled in it)")
            } else {
                String::new()
            }
        ),
        SpaceAdvice::Short { in_place: true } => format!(
            "{p}: not enough space even in place: the copy needs {n}, {f} are free plus {o} \
             the old destination holds: {} short (use --no-space-check to try anyway)",
            human_bytes(needed.saturating_sub(free + old))
        ),
        SpaceAdvice::Short { in_place: false } if old > 0 => format!(
            "{p}: not enough space: the copy needs {n}, {f} are free (and {o} more in place, \
             once the old destination is truncated): {} short even with --in-place \
             (use --no-space-check to try anyway)",
            human_bytes(needed.saturating_sub(free + old))
        ),
        SpaceAdvice::Short { in_place: false } => format!(
            "{p}: not enough space: the copy needs {n}, {f} are free: {} short \
             (use --no-space-check to try anyway)",
            human_bytes(needed - free)
        ),
    }
}

/// What stopped an in-place copy, and what it left.
fn incomplete(path: &Path, cause: &Error) -> String {
    let p = path.display();
    let left = format!("{p} is now incomplete (--in-place truncated it before writing)");
    match cause {
        Error::Interrupted { .. } => format!("{p}: interrupted; {left}"),
        Error::SourceChanged {
            path: src,
            before,
            after,
        } => format!(
            "{}: source changed during the copy (size {before} bytes at start, {after} now); {left}",
            src.display()
        ),
        cause => format!("{cause}; {left}"),
    }
}
