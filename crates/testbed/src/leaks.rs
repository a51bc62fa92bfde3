//! Finding loop devices the tests and scenarios left attached, and
//! reclaiming them after a killed run.
//!
//! Ours are the ones backed by a file in the testbed's scratch directory
//! (every [`crate::ScratchFs`] image, the harness's COS_STATE included) or
//! by an image inside a mount point the testbed made (`/tmp/testbed-*`,
//! `/tmp/cos-state-*/cOS/*.img`). Finding them reads only the kernel's view
//! ([`crate::mountinfo`]).
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
use std::process::Command;

use crate::mountinfo::{
    attached_loop_devices, loop_backing_file, mount_containing, mount_points_of,
};
use crate::{run_tool, scratch_dir};

/// Prefixes of the mount points the testbed makes in the temporary
/// directory: [`crate::ScratchFs`]'s default and the harness's COS_STATE.
/// An image inside one of them is ours.
pub(crate) const OUR_MOUNT_PREFIXES: [&str; 2] = ["testbed-", "cos-state-"];

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
    let scratch = scratch_dir();
    attached_loop_devices()
        .into_iter()
        .filter(|(_, backing)| is_ours(backing, &scratch))
        .map(|(device, backing)| AttachedLoop { device, backing })
        .collect()
}

/// Whether a backing file belongs to the testbed or the harness: an image
/// in the scratch directory, or an image inside a mount point the testbed
/// made (see [`crate::ScratchFsBuilder::mount_prefix`]).
fn is_ours(backing: &Path, scratch: &Path) -> bool {
    // The kernel appends " (deleted)" to files removed while attached.
    let text = backing.to_string_lossy();
    let text = text.strip_suffix(" (deleted)").unwrap_or(&text);
    Path::new(text).starts_with(scratch)
        || OUR_MOUNT_PREFIXES
            .iter()
            .any(|prefix| text.contains(&format!("/{prefix}")))
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
            for target in mount_points_of(&dev.device).unwrap_or_default() {
                if run_ok(Command::new("umount").arg(&target)) {
                    done.push(format!(
                        "unmounted {} ({})",
                        target.display(),
                        dev.device.display()
                    ));
                    let _ = std::fs::remove_dir(&target); // an empty mount point of ours
                    progress = true;
                }
            }
            if mount_points_of(&dev.device).is_ok_and(|m| m.is_empty())
                && run_ok(Command::new("losetup").arg("-d").arg(&dev.device))
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
    if let Ok(entries) = std::fs::read_dir(scratch_dir()) {
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

/// Runs an unmount or detach; a failure is left for the next pass or run.
fn run_ok(cmd: &mut Command) -> bool {
    run_tool(cmd).is_ok()
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
    let device = mount_containing(backing).ok().flatten().map(|m| m.source);
    match device.and_then(|device| loop_backing_file(&device)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_are_scratch_images_and_images_in_our_mount_points() {
        let scratch = Path::new("/var/scratch");
        for backing in [
            "/var/scratch/cos-state-12-0.img",
            "/var/scratch/scratch-ext4-12-3.img (deleted)",
            "/tmp/cos-state-Ab12/cOS/active.img",
            "/tmp/testbed-ext4-xyz/active.img",
        ] {
            assert!(is_ours(Path::new(backing), scratch), "{backing}");
        }
        for backing in ["/var/lib/images/vm.img", "/var/scratchpad/x-1-0.img"] {
            assert!(!is_ours(Path::new(backing), scratch), "{backing}");
        }
    }

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
