//! Live images: whether a file backs an attached loop device, and where
//! that device is mounted. A copy of such a file may lack writes still in
//! the device's page cache; a dig, or an in-place copy, races the writes
//! the device makes.
//!
//! The file is matched by device and inode, never by name: a path can be
//! bind-mounted, renamed or reached through a symlink. For each loop
//! device in `/sys/block`, LOOP_GET_STATUS64 (`sys::loop_backing`) gives
//! the backing file's device and inode as the kernel holds them. Where the
//! device node cannot be opened (not root, no `/dev` node), sysfs stands
//! in: `/sys/block/loopN/loop/backing_file` is a `d_path` taken when read,
//! so it follows renames, and a stat of it gives device and inode (unless
//! the path lies outside our mount namespace, or the file was deleted:
//! `... (deleted)`, which cannot be the file we were given a path to).
//! Mounts come from `/proc/self/mountinfo`, matched by the device number
//! of the loop device or of one of its partitions.

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::mounts;
use crate::sys;

/// A loop device whose backing file is the file asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopUse {
    /// The device node, like `/dev/loop3`.
    pub device: PathBuf,
    /// Attached read-only (`/sys/block/loopN/ro`).
    pub read_only: bool,
    /// Where it or a partition of it is mounted, each with whether that
    /// mount is read-write.
    pub mounts: Vec<(PathBuf, bool)>,
}

impl LoopUse {
    /// Whether some mount of the device can write to it.
    pub fn mounted_read_write(&self) -> bool {
        self.mounts.iter().any(|&(_, rw)| rw)
    }

    /// The mount to name: a read-write one first.
    fn mount(&self) -> Option<&(PathBuf, bool)> {
        self.mounts
            .iter()
            .find(|(_, rw)| *rw)
            .or(self.mounts.first())
    }

    /// `/dev/loop3, mounted read-write on /mnt`, for warnings.
    pub fn describe(&self) -> String {
        match self.mount() {
            Some((m, rw)) => format!(
                "{}, mounted {} on {}",
                self.device.display(),
                if *rw { "read-write" } else { "read-only" },
                m.display()
            ),
            None => format!("{}, not mounted", self.device.display()),
        }
    }

    /// The refusal of an operation on `path` because of this device.
    fn refusal(&self, path: &Path, why: &'static str, flag: &'static str) -> Error {
        Error::Attached(Box::new(Refusal {
            path: path.into(),
            device: self.clone(),
            why,
            flag,
        }))
    }
}

/// Why an operation on a live image was refused ([`Error::Attached`]).
#[derive(Debug)]
pub struct Refusal {
    /// The file concerned.
    pub path: PathBuf,
    /// The loop device it backs, and its mounts.
    pub device: LoopUse,
    /// Why that matters for this operation.
    pub why: &'static str,
    /// The option that overrides the refusal.
    pub flag: &'static str,
}

impl fmt::Display for Refusal {
    /// `PATH: backs /dev/loop3, mounted read-write on /mnt; WHY (FLAG to go
    /// ahead anyway)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: backs {}; {} ({} to go ahead anyway)",
            self.path.display(),
            self.device.describe(),
            self.why,
            self.flag
        )
    }
}

/// The attached loop devices whose backing file is the file at `path`
/// (none for anything but a regular file, or when sysfs cannot be read).
pub fn loop_uses(path: &Path) -> Vec<LoopUse> {
    let Ok(meta) = fs::metadata(path) else {
        return Vec::new();
    };
    if !meta.is_file() {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    // The mount table only once a device matches: reading it costs more
    // than the whole 1 TiB sparse copy's syscalls (procfs hands it out in
    // small reads).
    let mounts = std::cell::OnceCell::new();
    let mut uses: Vec<LoopUse> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !name.starts_with("loop") {
                return None;
            }
            let sys_dir = Path::new("/sys/block").join(&name);
            // Only an attached loop device has `loop/` in sysfs: one stat
            // instead of opening every idle device node (a machine keeps
            // dozens), which cost a copy about a millisecond.
            if !sys_dir.join("loop").exists() {
                return None;
            }
            let device = Path::new("/dev").join(&name);
            let (dev, ino, read_only) = match sys::loop_backing(&device) {
                Ok(Some(b)) => (b.dev, b.ino, b.read_only),
                Ok(None) => return None,
                Err(_) => {
                    let path = fs::read_to_string(sys_dir.join("loop/backing_file")).ok()?;
                    let backing = fs::metadata(path.trim_end_matches('\n')).ok()?;
                    let ro = fs::read_to_string(sys_dir.join("ro")).is_ok_and(|s| s.trim() == "1");
                    (sys::dev_numbers(backing.dev()), backing.ino(), ro)
                }
            };
            if (dev, ino) != (sys::dev_numbers(meta.dev()), meta.ino()) {
                return None;
            }
            let numbers = device_numbers(&sys_dir, &name);
            Some(LoopUse {
                device,
                read_only,
                mounts: mounts
                    .get_or_init(mounts::mountinfo)
                    .iter()
                    .filter(|m| numbers.contains(&m.device))
                    .map(|m| (m.mount_point.clone(), m.read_write))
                    .collect(),
            })
        })
        .collect();
    uses.sort_by(|a, b| a.device.cmp(&b.device));
    uses
}

/// Refuses to copy from `path` while it backs a loop device mounted
/// read-write: the filesystem's latest writes may be in the device's page
/// cache only.
pub fn check_source(path: &Path) -> Result<(), Error> {
    match loop_uses(path).iter().find(|u| u.mounted_read_write()) {
        Some(u) => Err(u.refusal(
            path,
            "its latest writes may not be in the file yet: unmount it first",
            "--allow-attached",
        )),
        None => Ok(()),
    }
}

/// Refuses to write the destination `path` while it backs an attached
/// loop device: in place the copy would write under the live device, and
/// replaced atomically the device would go on showing the old, unlinked
/// file.
pub fn check_destination(path: &Path, in_place: bool) -> Result<(), Error> {
    let why = if in_place {
        "an in-place copy would write under the live device: detach it first"
    } else {
        "the device would go on using the old file, not the copy: detach it first"
    };
    match loop_uses(path).first() {
        Some(u) => Err(u.refusal(path, why, "--allow-attached")),
        None => Ok(()),
    }
}

/// Refuses to dig `path` while it backs an attached loop device: a write
/// through the device into a block the dig has just read as zeros would
/// be punched away.
pub fn check_dig(path: &Path) -> Result<(), Error> {
    match loop_uses(path).first() {
        Some(u) => Err(u.refusal(
            path,
            "a write through the device into a block being punched would be lost: detach it first",
            "--force",
        )),
        None => Ok(()),
    }
}

/// The device numbers (`MAJOR:MINOR`) of `/sys/block/NAME` and its
/// partitions (`NAMEp1`, ... with their own, extended, numbers).
fn device_numbers(sys: &Path, name: &str) -> Vec<String> {
    let mut numbers: Vec<String> = fs::read_to_string(sys.join("dev"))
        .ok()
        .map(|s| s.trim().to_owned())
        .into_iter()
        .collect();
    if let Ok(entries) = fs::read_dir(sys) {
        for entry in entries.flatten() {
            let part = entry.file_name();
            if part.to_string_lossy().starts_with(name) {
                if let Ok(dev) = fs::read_to_string(entry.path().join("dev")) {
                    numbers.push(dev.trim().to_owned());
                }
            }
        }
    }
    numbers
}
