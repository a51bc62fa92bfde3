//! Atomic replacement of the destination, and its one exception: writing
//! over it in place (`--in-place`, [`open_overwrite`]).
//!
//! The copy is written to a temporary file in the destination's directory
//! and renamed over the destination only once it is complete, so a failed,
//! interrupted or killed copy never leaves a partial destination: the old
//! one stays byte for byte. Temporaries are named
//! `.NAME.sparsecp-PID-N.tmp`; a temporary whose PID is no longer running
//! was left by a killed copy of ours and is removed by the next copy to the
//! same destination. Nothing else is ever removed.
//!
//! In place, the destination's own inode is truncated (once the space
//! check has passed) and written: no room for a second copy is needed,
//! but nothing is atomic either. A failed or killed copy leaves the
//! destination truncated or partly written, and no temporary.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, IoContext};
use crate::plan::{CloneFallback, CopyPlan, Strategy};
use crate::space::{self, OldDestination};
use crate::sys;

const TAG: &str = ".sparsecp-";
const SUFFIX: &str = ".tmp";

/// A temporary file that becomes the destination on [`TempFile::commit`]
/// and disappears if dropped before that.
#[derive(Debug)]
pub struct TempFile {
    file: File,
    path: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates the temporary for `target` in its directory, with `mode`
    /// permission bits (the umask applies, as for any new file).
    pub fn create(target: &Path, mode: u32) -> Result<TempFile, Error> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = parent_of(target);
        let name = target.file_name().unwrap_or(OsStr::new("copy"));
        let pid = std::process::id();
        loop {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(temp_name(name, pid, n));
            let opened = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path);
            match opened {
                Ok(file) => {
                    return Ok(TempFile {
                        file,
                        path,
                        target: target.to_path_buf(),
                        committed: false,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).at(&dir, "create temporary file"),
            }
        }
    }

    /// The open temporary.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the temporary is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the temporary the destination: optionally fsyncs it, renames it
    /// over the target, and with `durable` fsyncs the directory so that the
    /// rename survives a crash.
    pub fn commit(mut self, durable: bool) -> Result<(), Error> {
        if durable {
            self.file.sync_all().at(&self.target, "fsync")?;
        }
        fs::rename(&self.path, &self.target).at(&self.target, "replace destination")?;
        self.committed = true;
        if durable {
            let dir = parent_of(&self.target);
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .at(&dir, "fsync directory")?;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = fs::remove_file(&self.path) {
                eprintln!(
                    "sparsecp: could not remove temporary {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

fn temp_name(name: &OsStr, pid: u32, n: u64) -> OsString {
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!("{TAG}{pid}-{n}{SUFFIX}"));
    s
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes temporaries for `target` left by copies of ours that were killed
/// (their PID no longer runs). Returns the paths removed.
pub fn remove_stale_temporaries(target: &Path) -> Vec<PathBuf> {
    let dir = parent_of(target);
    let Some(name) = target.file_name() else {
        return Vec::new();
    };
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(name.as_bytes());
    prefix.extend_from_slice(TAG.as_bytes());
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.as_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let Some(rest) = rest.strip_suffix(SUFFIX.as_bytes()) else {
            continue;
        };
        let Some(pid) = std::str::from_utf8(rest)
            .ok()
            .and_then(|r| r.split_once('-'))
            .filter(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty())
            .and_then(|(p, _)| p.parse::<i32>().ok())
        else {
            continue;
        };
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_file && !sys::process_alive(pid) && fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// The permission bits and owner a replacement should carry: those of the
/// destination it replaces, else the source's permission bits.
pub(crate) fn inherited_mode(existing: Option<&fs::Metadata>, src: &fs::Metadata) -> u32 {
    existing.map_or(src.permissions().mode(), |m| m.permissions().mode()) & 0o7777
}

/// Gives the temporary the owner and exact mode of the destination it will
/// replace (only root can chown; others keep their own ownership).
pub(crate) fn adopt_owner(temp: &TempFile, existing: &fs::Metadata) -> Result<(), Error> {
    if sys::is_root() {
        sys::chown(temp.file(), existing.uid(), existing.gid())
            .at(temp.path(), "chown temporary")?;
    }
    temp.file()
        .set_permissions(fs::Permissions::from_mode(
            existing.permissions().mode() & 0o7777,
        ))
        .at(temp.path(), "chmod temporary")
}

/// Opens the existing regular destination `target` to be written in place
/// (`--in-place`). Nothing is truncated yet: that waits for the space
/// check ([`truncate_for_overwrite`]).
pub(crate) fn open_overwrite(target: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(target)
        .at(target, "open for writing in place")
}

/// Checks that the in-place copy `plan` fits (the old content's `old`
/// bytes count as free), then truncates `file` to nothing: from here on a
/// failure leaves the destination incomplete. A clone needs no space, but
/// it can only be tried on the truncated file, so the space its fallback
/// would need is checked first.
pub(crate) fn truncate_for_overwrite(
    file: &File,
    target: &Path,
    plan: &CopyPlan,
    old: Option<OldDestination>,
) -> Result<(), Error> {
    let needed = match &plan.strategy {
        Strategy::Clone {
            fallback: CloneFallback::Planned(f),
            ..
        } => f.space_needed,
        Strategy::Clone { .. } => None,
        _ => plan.space_needed,
    };
    let (free, _) = sys::fs_space(file).at(target, "statvfs")?;
    if let Some(needed) = needed {
        space::check(target, needed, free, old, true)?;
    }
    file.set_len(0).at(target, "truncate")
}
