//! The mount table (`/proc/self/mountinfo`), for the refusals that name
//! where a device is mounted: a block-device destination (`blockdev`) and
//! a file backing a loop device (`live`).

use std::fs;
use std::path::PathBuf;

use crate::sys;

/// One mount: its device number, where, and whether it can write.
pub(crate) struct Mount {
    pub device: String,
    pub mount_point: PathBuf,
    pub read_write: bool,
}

/// The mounts of this process's namespace, from `/proc/self/mountinfo`
/// (`proc_pid_mountinfo(5)`): field 3 is `MAJOR:MINOR`, 5 the mount point
/// (octal escapes for space, tab, newline and backslash), 6 the per-mount
/// options; after ` - `, the third field holds the superblock's. A mount
/// writes only if both say `rw`. Four fields of one stable line format do
/// not warrant a procfs crate.
pub(crate) fn mountinfo() -> Vec<Mount> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let super_options = after.split(' ').nth(2)?;
            let rw = |opts: &str| opts.split(',').any(|o| o == "rw");
            Some(Mount {
                device: (*fields.get(2)?).to_owned(),
                mount_point: unescape(fields.get(4)?).into(),
                read_write: rw(fields.get(5)?) && rw(super_options),
            })
        })
        .collect()
}

/// Undoes the kernel's `\ooo` escapes in a mountinfo path.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = (bytes[i] == b'\\')
            .then(|| field.get(i + 1..i + 4))
            .flatten()
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match code {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the block device `rdev`, or the disk a partition `rdev` is on,
/// is mounted (the first such mount).
pub(crate) fn mount_point_of(rdev: u64) -> Option<PathBuf> {
    let (major, minor) = sys::dev_numbers(rdev);
    let want = format!("{major}:{minor}");
    mountinfo()
        .into_iter()
        .find(|m| m.device == want || disk_of(&m.device).as_deref() == Some(want.as_str()))
        .map(|m| m.mount_point)
}

/// The MAJ:MIN of the disk holding partition `dev`, if it is one.
fn disk_of(dev: &str) -> Option<String> {
    let sys = format!("/sys/dev/block/{dev}");
    fs::metadata(format!("{sys}/partition")).ok()?;
    Some(
        fs::read_to_string(format!("{sys}/../dev"))
            .ok()?
            .trim()
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/mnt/a\040b\134c"), r"/mnt/a b\c");
        assert_eq!(unescape(r"/plain"), "/plain");
    }
}
