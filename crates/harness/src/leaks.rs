//! Finding loop devices the tests and scenarios left attached.
//!
//! Ours are the ones backed by a file in the testbed's scratch directory
//! (COS_STATE and every testbed image) or by an image inside a COS_STATE
//! mount (`/tmp/cos-state-*/cOS/*.img`). Only the kernel's view in sysfs
//! is read; nothing is detached here.
//!
//! A device is *leaked* once the process that attached it is gone: scratch
//! images are named `<stem>-<pid>-<n>.img`, and an image inside a mount
//! belongs to whoever owns the device that mount is on. So a run can be
//! checked while other people's tests, still running, hold devices.
//!
//! [`reclaim_leaked`] then cleans up after a run that was killed (SIGKILL
//! skips every guard): it unmounts what is mounted from leaked devices,
//! innermost first, detaches them by path, and removes their images.

use std::path::{Path, PathBuf};

/// A loop device and the file behind it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttachedLoop {
    /// The device node, like `/dev/loop3`.
    pub device: PathBuf,
    /// Its backing file as the kernel reports it.
    pub backing: PathBuf,
}

/// Every attached loop device whose backing file is ours, sorted.
pub fn our_loop_devices() -> Vec<AttachedLoop> {
    let scratch = testbed::scratch_dir();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        let backing = PathBuf::from(backing.trim_end_matches('\n'));
        if is_ours(&backing, &scratch) {
            found.push(AttachedLoop {
                device: Path::new("/dev").join(name),
                backing,
            });
        }
    }
    found.sort();
    found
}

/// Whether a backing file belongs to the testbed or the harness.
fn is_ours(backing: &Path, scratch: &Path) -> bool {
    // The kernel appends " (deleted)" to files removed while attached.
    let text = backing.to_string_lossy();
    let text = text.strip_suffix(" (deleted)").unwrap_or(&text);
    Path::new(text).starts_with(scratch)
        || text.contains("/cos-state-")
        || text.contains("/testbed-")
}

/// The devices of [`our_loop_devices`] whose owner process has exited.
pub fn leaked_loop_devices() -> Vec<AttachedLoop> {
    our_loop_devices()
        .into_iter()
        .filter(|l| !owner_alive(&l.backing, 0))
        .collect()
}

/// Unmounts and detaches every leaked device (see [`leaked_loop_devices`])
/// and removes scratch images of dead owners; returns one line per action.
/// Only devices whose backing file is ours and whose owner has exited are
/// touched, each by its own path.
pub fn reclaim_leaked() -> Vec<String> {
    let mut done = Vec::new();
    // Images inside a leaked mount sit on devices of their own: each pass
    // frees the innermost layer, the next pass the one around it.
    for _pass in 0..4 {
        let leaked = leaked_loop_devices();
        let mut progress = false;
        for dev in &leaked {
            for target in mounts_of(&dev.device) {
                if run_ok("umount", &[target.as_os_str()]) {
                    done.push(format!(
                        "unmounted {} ({})",
                        target.display(),
                        dev.device.display()
                    ));
                    let _ = std::fs::remove_dir(&target); // an empty mount point of ours
                    progress = true;
                }
            }
            if mounts_of(&dev.device).is_empty()
                && run_ok("losetup", &["-d".as_ref(), dev.device.as_os_str()])
            {
                done.push(format!(
                    "detached {} ({})",
                    dev.device.display(),
                    dev.backing.display()
                ));
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    let attached: Vec<PathBuf> = our_loop_devices().into_iter().map(|l| l.backing).collect();
    if let Ok(entries) = std::fs::read_dir(testbed::scratch_dir()) {
        for path in entries.flatten().map(|e| e.path()) {
            let dead = pid_in_name(&path)
                .is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists());
            if dead && !attached.contains(&path) && std::fs::remove_file(&path).is_ok() {
                done.push(format!("removed {}", path.display()));
            }
        }
    }
    done
}

/// Mount points whose source is `device`, deepest first.
fn mounts_of(device: &Path) -> Vec<PathBuf> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut targets: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            let target = line.split_whitespace().nth(4)?;
            let source = line.split_once(" - ")?.1.split_whitespace().nth(1)?;
            (Path::new(source) == device).then(|| PathBuf::from(target))
        })
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.as_os_str().len()));
    targets
}

fn run_ok(program: &str, args: &[&std::ffi::OsStr]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the process that made `backing` (or the device it lives on)
/// is still running; unknown owners count as gone.
fn owner_alive(backing: &Path, depth: u32) -> bool {
    if let Some(pid) = pid_in_name(backing) {
        return Path::new("/proc").join(pid.to_string()).exists();
    }
    if depth > 2 {
        return false;
    }
    match device_under(backing).and_then(|device| backing_of(&device)) {
        Some(outer) => owner_alive(&outer, depth + 1),
        None => false,
    }
}

/// The `<pid>` of a file named `<stem>-<pid>-<n>.img`.
fn pid_in_name(path: &Path) -> Option<u32> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".img")?;
    let mut parts = stem.rsplit('-');
    parts.next()?.parse::<u64>().ok()?;
    parts.next()?.parse().ok()
}

/// The source device of the deepest mount containing `path`.
fn device_under(path: &Path) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo
        .lines()
        .filter_map(|line| {
            let target = line.split_whitespace().nth(4)?;
            let source = line.split_once(" - ")?.1.split_whitespace().nth(1)?;
            path.starts_with(target)
                .then(|| (target.len(), PathBuf::from(source)))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, source)| source)
}

/// The backing file of a loop device node, from sysfs.
fn backing_of(device: &Path) -> Option<PathBuf> {
    let name = device.strip_prefix("/dev").ok()?.to_str()?;
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_image_names_carry_their_owner_pid() {
        assert_eq!(
            pid_in_name(Path::new("/x/cos-state-4242-7.img")),
            Some(4242)
        );
        assert_eq!(pid_in_name(Path::new("/x/scratch-ext4-1-0.img")), Some(1));
        assert_eq!(pid_in_name(Path::new("/x/cOS/active.img")), None);
    }
}
