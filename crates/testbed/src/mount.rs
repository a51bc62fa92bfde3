//! A mounted filesystem, unmounted on drop, and flushing one ([`syncfs`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rustix::io::Errno;
use sys_mount::{MountFlags, UnmountFlags};

use crate::loop_device::is_errno;
use crate::FsKind;

/// How long a busy filesystem gets to become idle before we detach it lazily.
const UNMOUNT_ATTEMPTS: u32 = 20;
const UNMOUNT_PAUSE: Duration = Duration::from_millis(50);

/// A filesystem mounted on a directory, unmounted when dropped.
///
/// If the filesystem stays busy (a file left open by the test), Drop waits
/// about a second, then detaches it lazily and logs that it did.
#[derive(Debug)]
pub struct Mount {
    target: PathBuf,
}

impl Mount {
    /// Mounts `device` (a block device, usually a [`crate::LoopDevice`]) on
    /// `target` as `fs`.
    ///
    /// `options` is a comma-separated `mount -o` list. Generic options
    /// (`ro`, `noatime`, `nosuid`, ...) become mount flags; the rest are
    /// passed to the filesystem, e.g. `Some("noatime,compress=zstd")`.
    // `Mount::mount` reads as the verb it performs; callers depend on the name.
    #[allow(clippy::self_named_constructors)]
    pub fn mount(
        device: &Path,
        target: &Path,
        fs: FsKind,
        options: Option<&str>,
    ) -> anyhow::Result<Mount> {
        let (flags, data) = split_options(options.unwrap_or(""));
        let mut builder = sys_mount::Mount::builder().fstype(fs.name()).flags(flags);
        if !data.is_empty() {
            builder = builder.data(&data);
        }
        builder.mount(device, target).with_context(|| {
            format!(
                "cannot mount {} ({fs}, options {:?}) on {}",
                device.display(),
                options.unwrap_or(""),
                target.display()
            )
        })?;
        Ok(Mount {
            target: target.to_owned(),
        })
    }

    /// The mount point.
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        for _ in 0..UNMOUNT_ATTEMPTS {
            match sys_mount::unmount(&self.target, UnmountFlags::empty()) {
                Ok(()) => return,
                Err(e) if is_errno(&e, Errno::BUSY) => std::thread::sleep(UNMOUNT_PAUSE),
                Err(e) => {
                    eprintln!("testbed: cannot unmount {}: {e}", self.target.display());
                    return;
                }
            }
        }
        match sys_mount::unmount(&self.target, UnmountFlags::DETACH) {
            Ok(()) => eprintln!(
                "testbed: {} stayed busy; detached it lazily, it unmounts when released",
                self.target.display()
            ),
            Err(e) => eprintln!(
                "testbed: cannot detach busy mount {}: {e}",
                self.target.display()
            ),
        }
    }
}

/// Flushes the filesystem that holds `dir` (`syncfs(2)` on it): the dirty
/// data and metadata of every file on it reach its device. On a
/// loop-mounted filesystem the flush also makes the loop driver write and
/// `fsync` its backing file, and write errors the loop device met (a full
/// filesystem under the image) surface here.
pub fn syncfs(dir: &Path) -> anyhow::Result<()> {
    let handle =
        std::fs::File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    rustix::fs::syncfs(&handle).with_context(|| format!("cannot sync {}", dir.display()))
}

/// Splits `mount -o` options into generic mount flags and the
/// filesystem-specific data string.
fn split_options(options: &str) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match option {
            "defaults" | "rw" => {}
            "ro" => flags |= MountFlags::RDONLY,
            "noatime" => flags |= MountFlags::NOATIME,
            "nodiratime" => flags |= MountFlags::NODIRATIME,
            "relatime" => flags |= MountFlags::RELATIME,
            "strictatime" => flags |= MountFlags::STRICTATIME,
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "sync" => flags |= MountFlags::SYNCHRONOUS,
            "dirsync" => flags |= MountFlags::DIRSYNC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_options_become_flags_and_the_rest_is_data() {
        let (flags, data) = split_options("ro, noatime,compress=zstd,defaults,discard");
        assert_eq!(flags, MountFlags::RDONLY | MountFlags::NOATIME);
        assert_eq!(data, "compress=zstd,discard");
        assert_eq!(split_options(""), (MountFlags::empty(), String::new()));
    }
}
