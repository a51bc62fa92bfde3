//! A fault-injecting FUSE filesystem for tests.
//!
//! [`FaultFs::mount`] serves one read-only regular file, `image`, whose bytes
//! come from a backing file, except that any read touching a chosen byte
//! range fails with `EIO`, the way a disk with bad sectors does. It lets a
//! test check what a copy does when its source cannot be read, without a
//! broken disk or device-mapper.
//!
//! What a reader sees through the mount:
//! - the backing file's size and `st_blocks`, and its data and holes through
//!   `lseek(SEEK_DATA / SEEK_HOLE)`, passed on to the backing file;
//! - no page cache (`FOPEN_DIRECT_IO`): each `read(2)` reaches the
//!   filesystem, so a bad range fails every time it is read, and reads of
//!   good bytes never fail because readahead touched bad ones;
//! - a request fails whole when any byte it would return is bad. The kernel
//!   splits a large `read(2)` into requests of at most `max_pages` (1 MiB on
//!   Linux 6.18), so a read that starts in good bytes and runs into a bad
//!   range may come back short, and the next read, starting in the failing
//!   request, fails with `EIO`: like a disk.
//!
//! Mounting needs root or `fusermount3` (see [`fuse_available`]); the crate
//! links no libfuse.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod fs;
mod unmount;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Context};
use fuser::{BackgroundSession, Config, MountOption, SessionACL};

use crate::fs::{ImageFs, IMAGE_NAME};

/// Which reads of the served file fail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultSpec {
    /// Byte ranges of the file: a read request that would return any byte
    /// in one of them fails with `EIO` instead. Ranges may overlap; empty
    /// ones are refused by [`FaultFs::mount`].
    pub eio_ranges: Vec<Range<u64>>,
}

/// A mounted fault-injecting filesystem; dropping it unmounts it.
///
/// Drop unmounts and joins the thread serving the mount, so the mountpoint
/// is free again afterwards. It never panics and does not hang: if a file
/// under the mount is still open, it says so on stderr and detaches the
/// mount lazily (the open file is served until it is closed). Should the
/// process die without dropping it, `fusermount3`'s `auto_unmount` removes
/// the mount, when root has `fusermount3`.
pub struct FaultFs {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    reads_failed: Arc<AtomicU64>,
}

impl FaultFs {
    /// Mounts a filesystem at `mountpoint` (an existing, empty directory)
    /// whose file `image` reads as `backing`, except for `spec`'s ranges.
    ///
    /// Needs `/dev/fuse`, and root or `fusermount3` (see [`fuse_available`]).
    /// The backing file is opened once, now; later changes to its content
    /// show through.
    pub fn mount(backing: &Path, mountpoint: &Path, spec: FaultSpec) -> anyhow::Result<FaultFs> {
        for range in &spec.eio_ranges {
            ensure!(!range.is_empty(), "EIO range {range:?} is empty");
        }
        let file = File::open(backing)
            .with_context(|| format!("cannot open backing file {}", backing.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat backing file {}", backing.display()))?;
        ensure!(
            meta.is_file(),
            "backing file {} is not a regular file",
            backing.display()
        );
        let mountpoint = mountpoint
            .canonicalize()
            .with_context(|| format!("no mountpoint {}", mountpoint.display()))?;

        let reads_failed = Arc::new(AtomicU64::new(0));
        let fs = ImageFs::new(file, spec.eio_ranges, Arc::clone(&reads_failed));
        let session = fuser::spawn_mount(fs, &mountpoint, &mount_config())
            .with_context(|| format!("cannot mount faultfs on {}", mountpoint.display()))?;
        Ok(FaultFs {
            session: Some(session),
            mountpoint,
            reads_failed,
        })
    }

    /// Path of the served file, `<mountpoint>/image`.
    pub fn file(&self) -> PathBuf {
        self.mountpoint.join(IMAGE_NAME)
    }

    /// How many read requests have been answered with `EIO` so far.
    pub fn reads_failed(&self) -> u64 {
        self.reads_failed.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultFs")
            .field("mountpoint", &self.mountpoint)
            .field("reads_failed", &self.reads_failed())
            .finish_non_exhaustive()
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            unmount::unmount(&self.mountpoint, session);
        }
    }
}

fn mount_config() -> Config {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("faultfs".into()),
        MountOption::RO,
        MountOption::DefaultPermissions,
    ];
    // If the test process dies without unwinding (SIGKILL, abort, timeout),
    // nothing runs Drop and the mount would stay behind, dead ("Transport
    // endpoint is not connected"). auto_unmount has fusermount3 watch the
    // process and remove such a mount. It needs allow_other, which only root
    // may ask for unless /etc/fuse.conf says user_allow_other; fuser still
    // turns away requests from users other than root and the owner.
    if rustix::process::geteuid().is_root() && on_path("fusermount3") {
        config.mount_options.push(MountOption::AutoUnmount);
        config.acl = SessionACL::RootAndOwner;
    }
    config
}

/// Whether this process can mount a [`FaultFs`]: `None` if it can, else
/// why not, for a test to print as its reason to skip.
pub fn fuse_available() -> Option<String> {
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        return Some("/dev/fuse does not exist (fuse module not loaded?)".into());
    }
    if let Err(e) = OpenOptions::new().read(true).write(true).open(dev) {
        return Some(format!("cannot open /dev/fuse: {e}"));
    }
    if rustix::process::geteuid().is_root() || on_path("fusermount3") {
        None
    } else {
        Some("not root and no fusermount3 on PATH".into())
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
