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

use std::cell::OnceCell;
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

/// An attached loop device and the file behind it, as the kernel holds it.
struct Attached {
    /// `loop3`.
    name: String,
    /// `(major, minor)` of the backing file's filesystem, and its inode.
    backing: ((u32, u32), u64),
    read_only: bool,
}

/// The attached loop devices: one readdir of `/sys/block` (none when
/// sysfs cannot be read).
fn attached() -> Vec<Attached> {
    let Ok(entries) = fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
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
            let (backing, read_only) = match sys::loop_backing(&Path::new("/dev").join(&name)) {
                Ok(Some(b)) => ((b.dev, b.ino), b.read_only),
                Ok(None) => return None,
                Err(_) => {
                    let path = fs::read_to_string(sys_dir.join("loop/backing_file")).ok()?;
                    let backing = fs::metadata(path.trim_end_matches('\n')).ok()?;
                    let ro = fs::read_to_string(sys_dir.join("ro")).is_ok_and(|s| s.trim() == "1");
                    ((sys::dev_numbers(backing.dev()), backing.ino()), ro)
                }
            };
            Some(Attached {
                name,
                backing,
                read_only,
            })
        })
        .collect()
}

/// The devices of `attached` backed by the regular file `meta` describes,
/// with their mounts. The mount table is read only once a device matches
/// (into `mounts`, shared between the files a caller asks about): reading
/// it costs more than the whole 1 TiB sparse copy's syscalls (procfs hands
/// it out in small reads).
fn uses_of(
    attached: &[Attached],
    meta: &fs::Metadata,
    mounts: &OnceCell<Vec<mounts::Mount>>,
) -> Vec<LoopUse> {
    let file = (sys::dev_numbers(meta.dev()), meta.ino());
    let mut uses: Vec<LoopUse> = attached
        .iter()
        .filter(|a| a.backing == file)
        .map(|a| {
            let numbers = device_numbers(&Path::new("/sys/block").join(&a.name), &a.name);
            LoopUse {
                device: Path::new("/dev").join(&a.name),
                read_only: a.read_only,
                mounts: mounts
                    .get_or_init(mounts::mountinfo)
                    .iter()
                    .filter(|m| numbers.contains(&m.device))
                    .map(|m| (m.mount_point.clone(), m.read_write))
                    .collect(),
            }
        })
        .collect();
    uses.sort_by(|a, b| a.device.cmp(&b.device));
    uses
}

/// The attached loop devices whose backing file is the file at `path`
/// (none for anything but a regular file, or when sysfs cannot be read).
pub fn loop_uses(path: &Path) -> Vec<LoopUse> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => uses_of(&attached(), &meta, &OnceCell::new()),
        _ => Vec::new(),
    }
}

/// Checks both ends of a copy against one scan of the attached loop
/// devices. Refuses to copy from `src` (with its metadata) while it backs
/// a loop device mounted read-write: the filesystem's latest writes may be
/// in the device's page cache only. Refuses to write the destination `dst`
/// while it backs any attached loop device: in place the copy would write
/// under the live device, and replaced atomically the device would go on
/// showing the old, unlinked file.
pub fn check_copy(
    src: Option<(&Path, &fs::Metadata)>,
    dst: &Path,
    in_place: bool,
) -> Result<(), Error> {
    let src = src.filter(|(_, meta)| meta.is_file());
    let dst_meta = fs::metadata(dst).ok().filter(|m| m.is_file());
    if src.is_none() && dst_meta.is_none() {
        return Ok(());
    }
    let attached = attached();
    let mounts = OnceCell::new();
    if let Some((path, meta)) = src {
        if let Some(u) = uses_of(&attached, meta, &mounts)
            .iter()
            .find(|u| u.mounted_read_write())
        {
            return Err(u.refusal(
                path,
                "its latest writes may not be in the file yet: unmount it first",
                "--allow-attached",
            ));
        }
    }
    let why = if in_place {
        "an in-place copy would write under the live device: detach it first"
    } else {
        "the device would go on using the old file, not the copy: detach it first"
    };
    match dst_meta.and_then(|m| uses_of(&attached, &m, &mounts).into_iter().next()) {
        Some(u) => Err(u.refusal(dst, why, "--allow-attached")),
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
