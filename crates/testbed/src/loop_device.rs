//! A loop device attached to a file, detached on drop.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context};
use rustix::io::Errno;

/// How often to retry when another process grabs the free device between
/// `LOOP_CTL_GET_FREE` and `LOOP_SET_FD`.
const ATTACH_ATTEMPTS: u32 = 20;

/// A loop device over a backing file, detached when dropped.
///
/// The device is attached with autoclear, and we keep it open for our
/// lifetime: if the test process dies, the kernel detaches it on the last
/// close (or on the unmount, if it is still mounted). Drop only ever
/// detaches this device; it never touches devices that others own.
#[derive(Debug)]
pub struct LoopDevice {
    device: loopdev::LoopDevice,
    path: PathBuf,
    backing: PathBuf,
}

impl LoopDevice {
    /// Attaches the first free loop device to `file`, read-write.
    pub fn attach(file: &Path) -> anyhow::Result<LoopDevice> {
        let control = loopdev::LoopControl::open().context("cannot open /dev/loop-control")?;
        let mut last_error = None;
        for attempt in 0..ATTACH_ATTEMPTS {
            let device = control
                .next_free()
                .context("cannot find a free loop device")?;
            match device.with().autoclear(true).attach(file) {
                Ok(()) => {
                    let path = device
                        .path()
                        .ok_or_else(|| anyhow!("attached loop device has no path"))?;
                    return Ok(LoopDevice {
                        device,
                        path,
                        backing: file.to_owned(),
                    });
                }
                // Someone else attached it first: ask for another.
                Err(e) if is_errno(&e, Errno::BUSY) => {
                    last_error = Some(e);
                    std::thread::sleep(Duration::from_millis(5 * u64::from(attempt + 1)));
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot attach a loop device to {}", file.display())
                    })
                }
            }
        }
        Err(
            anyhow!(last_error.expect("at least one attempt")).context(format!(
                "cannot attach a loop device to {}: every free device was taken",
                file.display()
            )),
        )
    }

    /// The device node, like `/dev/loop3`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file this device shows.
    pub fn backing_file(&self) -> &Path {
        &self.backing
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // If the device is still open elsewhere (a lazily detached mount, a
        // straggling blkid) the kernel defers the detach to the last close,
        // so this succeeds; our own fd closes right after.
        match self.device.detach() {
            Ok(()) => {}
            // Already detached, e.g. by autoclear.
            Err(e) if is_errno(&e, Errno::NXIO) => {}
            Err(e) => eprintln!(
                "testbed: cannot detach {} (backing {}): {e}",
                self.path.display(),
                self.backing.display()
            ),
        }
    }
}

pub(crate) fn is_errno(e: &io::Error, errno: Errno) -> bool {
    e.raw_os_error() == Some(errno.raw_os_error())
}
