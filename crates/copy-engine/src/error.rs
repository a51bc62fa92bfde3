//! The engine's errors: each names the path it concerns and the cause, so a
//! command line can print it as one line.

use std::io;
use std::path::{Path, PathBuf};

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
    #[error("{path}: not enough space: the copy needs {needed} bytes, {available} bytes are available (use --no-space-check to try anyway)")]
    NoSpace {
        /// The destination path.
        path: PathBuf,
        /// Bytes the copy will allocate.
        needed: u64,
        /// Bytes free for us on the destination filesystem.
        available: u64,
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
    /// The copy was cancelled (a signal); nothing was changed.
    #[error("{path}: interrupted; destination left untouched")]
    Interrupted {
        /// The destination path.
        path: PathBuf,
    },
}

impl Error {
    /// The OS error behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
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
