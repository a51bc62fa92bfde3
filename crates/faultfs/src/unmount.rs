//! Taking a mount down from `Drop`: never panicking, never hanging.
//!
//! fuser's own unmount is not enough here. With `auto_unmount` it only
//! closes its socket to `fusermount3`, which then unmounts only a dead
//! filesystem, and this one is still serving: the join would wait forever.
//! So the mount is taken down first, then the session thread is joined.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fuser::BackgroundSession;
use rustix::io::Errno;
use rustix::mount::UnmountFlags;

/// How long to wait for the session thread once the mount is gone.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Unmounts `mountpoint` and ends `session`, reporting trouble on stderr.
pub(crate) fn unmount(mountpoint: &Path, session: BackgroundSession) {
    let shown = mountpoint.display();
    match rustix::mount::unmount(mountpoint, UnmountFlags::empty()) {
        // EINVAL: no longer a mount point; someone unmounted it already.
        Ok(()) | Err(Errno::INVAL) => join(mountpoint, session),
        Err(Errno::BUSY) => {
            // A file under the mount is still open. Detach it from the tree
            // now; the session keeps serving that file until it is closed,
            // then its thread ends by itself, so do not wait for it.
            eprintln!("faultfs: {shown} is busy (a file under it is open?); detaching it lazily");
            if let Err(e) = rustix::mount::unmount(mountpoint, UnmountFlags::DETACH) {
                eprintln!("faultfs: lazy unmount of {shown} failed: {e}");
            }
        }
        // Not root: the setuid helper may unmount what we mounted with it.
        Err(Errno::PERM) => match fusermount_unmount(mountpoint) {
            Ok(()) => join(mountpoint, session),
            Err(e) => eprintln!("faultfs: cannot unmount {shown}: {e}"),
        },
        Err(e) => eprintln!("faultfs: cannot unmount {shown}: {e}"),
    }
}

/// Joins the session thread, which ends once the kernel drops the
/// connection; gives up after [`JOIN_TIMEOUT`] rather than hang.
fn join(mountpoint: &Path, session: BackgroundSession) {
    let shown = mountpoint.display();
    let (done, finished) = mpsc::channel();
    let joiner = std::thread::Builder::new()
        .name("faultfs-join".into())
        .spawn(move || {
            let _ = done.send(session.umount_and_join());
        });
    if let Err(e) = joiner {
        eprintln!("faultfs: cannot wait for the session of {shown}: {e}");
        return;
    }
    match finished.recv_timeout(JOIN_TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("faultfs: session of {shown} ended with an error: {e}"),
        Err(_) => eprintln!("faultfs: session of {shown} still running after {JOIN_TIMEOUT:?}"),
    }
}

fn fusermount_unmount(mountpoint: &Path) -> std::io::Result<()> {
    let status = Command::new("fusermount3")
        .args(["-u", "-z", "-q", "--"])
        .arg(mountpoint)
        .stdin(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("fusermount3 -u: {status}")))
    }
}
