//! The kernel's view of mounts and loop devices: `/proc/self/mountinfo`
//! and the loop devices' backing files in sysfs. Everything in the
//! workspace that asks "what is mounted where" or "which file is behind
//! this loop device" asks here.
//!
//! The mountinfo parser is our own rather than the `procfs` crate's: we
//! need four fields of one line format (`proc_pid_mountinfo(5)`), and
//! `procfs` would bring its own rustix, bitflags and hex and a model of
//! all of `/proc` for them. The format is stable kernel ABI; the parser
//! below follows the man page, including the octal escapes (`\040` for a
//! space) the kernel writes in paths.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (field 5).
    pub mount_point: PathBuf,
    /// Per-mount options such as `ro,noatime` (field 6).
    pub mount_options: String,
    /// The filesystem type, like `ext4` (first field after ` - `).
    pub fs_type: String,
    /// What is mounted: a device such as `/dev/loop3`, or a name like
    /// `tmpfs` (second field after ` - `).
    pub source: PathBuf,
}

/// Every mount of this process's mount namespace, in the kernel's order
/// (parents before the mounts on top of them).
pub fn mounts() -> anyhow::Result<Vec<MountEntry>> {
    const MOUNTINFO: &str = "/proc/self/mountinfo";
    let text =
        std::fs::read_to_string(MOUNTINFO).with_context(|| format!("cannot read {MOUNTINFO}"))?;
    Ok(parse_mountinfo(&text))
}

/// The entries of a mountinfo text; malformed lines are left out.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
    let (before, after) = line.split_once(" - ")?;
    let mut fields = before.split(' ');
    let mount_point = fields.nth(4)?;
    let mount_options = fields.next()?;
    let mut after = after.split(' ');
    let fs_type = after.next()?;
    let source = after.next()?;
    Some(MountEntry {
        mount_point: unescape(mount_point).into(),
        mount_options: mount_options.to_owned(),
        fs_type: fs_type.to_owned(),
        source: unescape(source).into(),
    })
}

/// Undoes the kernel's `\ooo` escapes of space, tab, newline and backslash.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 4)
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The mount points whose source is `device`, deepest first (the order to
/// unmount them in).
pub fn mount_points_of(device: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut targets: Vec<PathBuf> = mounts()?
        .into_iter()
        .filter(|m| m.source == device)
        .map(|m| m.mount_point)
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.as_os_str().len()));
    Ok(targets)
}

/// The mount that holds `path`: the one with the longest mount point that
/// `path` lies under (lexically; `path` should be absolute and canonical).
pub fn mount_containing(path: &Path) -> anyhow::Result<Option<MountEntry>> {
    Ok(mounts()?
        .into_iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len()))
}

/// The backing file of a loop device node like `/dev/loop3`, as the
/// kernel reports it in sysfs (with ` (deleted)` appended if the file was
/// removed while attached); `None` for anything else or a free device.
pub fn loop_backing_file(device: &Path) -> Option<PathBuf> {
    let name = device.strip_prefix("/dev").ok()?.to_str()?;
    if !name.starts_with("loop") || name.contains('/') {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

/// Every attached loop device with its backing file, sorted by device.
pub fn attached_loop_devices() -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let device = Path::new("/dev").join(entry.file_name());
            let backing = loop_backing_file(&device)?;
            Some((device, backing))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_mount_point_options_type_and_source() {
        let text = "\
36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
40 36 7:3 / /tmp/with\\040space ro,relatime shared:7 master:2 - ext4 /dev/loop3 rw
not a mountinfo line
";
        let entries = parse_mountinfo(text);
        assert_eq!(
            entries,
            [
                MountEntry {
                    mount_point: "/mnt2".into(),
                    mount_options: "rw,noatime".into(),
                    fs_type: "ext3".into(),
                    source: "/dev/root".into(),
                },
                MountEntry {
                    mount_point: "/tmp/with space".into(),
                    mount_options: "ro,relatime".into(),
                    fs_type: "ext4".into(),
                    source: "/dev/loop3".into(),
                },
            ]
        );
    }

    #[test]
    fn unescape_leaves_stray_backslashes() {
        assert_eq!(unescape(r"a\134b\011c\x"), "a\\b\tc\\x");
    }

    #[test]
    fn only_loop_devices_have_backing_files() {
        assert_eq!(loop_backing_file(Path::new("/dev/sda")), None);
        assert_eq!(loop_backing_file(Path::new("/dev/loop/../sda")), None);
        assert_eq!(loop_backing_file(Path::new("loop0")), None);
    }

    #[test]
    fn this_process_sees_its_root_mount() {
        let mounts = mounts().unwrap();
        assert!(mounts.iter().any(|m| m.mount_point == Path::new("/")));
    }
}
