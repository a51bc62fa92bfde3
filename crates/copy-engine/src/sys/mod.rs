//! The syscalls the engine stands on, each wrapped so that the errnos the
//! engine *expects* come back as typed outcomes rather than errors.
//!
//! Everything here is Linux-specific, and every syscall the engine makes
//! beyond std's plain file I/O goes through here: the rest of the crate
//! names no `rustix` or `libc` item. Only [`Fiemap`] and [`loop_backing`]
//! need `unsafe` (rustix has no FIEMAP nor LOOP_GET_STATUS64 wrapper); each
//! lives in its own small module, the only places `unsafe_code` is allowed,
//! with a `SAFETY` comment on each block.

#[allow(unsafe_code)]
mod fiemap;
#[allow(unsafe_code)]
mod loop_status;
mod wait;

pub use fiemap::{Fiemap, FiemapExtent};
pub use loop_status::loop_backing;
pub use wait::{open_fifo_for_writing, read_waiting, write_waiting, WaitError};

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{Access, Advice, FallocateFlags, SeekFrom};
use rustix::io::Errno;

/// Opens `path` for reading without blocking in open(2): a FIFO with no
/// writer would otherwise wait there, out of SIGINT's reach. Reads of a
/// FIFO opened so wait in poll instead (see [`read_waiting`]).
pub fn open_read_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Whether the calling process may write `path` (`access(W_OK)`).
pub fn check_writable(path: &Path) -> io::Result<()> {
    rustix::fs::access(path, Access::WRITE_OK).map_err(Into::into)
}

/// Whether we run as root (only root may give a file another owner).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Gives `file` this owner and group (`fchown`).
pub fn chown(file: &File, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::fchown(file, Some(uid), Some(gid))
}

/// The `EOPNOTSUPP` error, for a reflink refused before any syscall (a
/// stream has no extents to share).
pub fn not_supported() -> io::Error {
    io::Error::from_raw_os_error(libc::EOPNOTSUPP)
}

/// What FICLONE said about sharing the source's extents with the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneOutcome {
    /// The destination now shares every extent of the source.
    Cloned,
    /// This filesystem pair cannot share extents (`EOPNOTSUPP`, `EXDEV`,
    /// `EINVAL`, `ENOTTY`, `EBADF` for non-regular files): copy instead.
    Unsupported(Errno),
}

/// Clones `src` into `dst` with FICLONE.
///
/// `EIO`, `ENOSPC`, `EDQUOT` and anything else unexpected are real errors:
/// the caller must not quietly fall back to a copy after them, because the
/// filesystem is telling us something is wrong.
pub fn clone_file(dst: &File, src: &File) -> io::Result<CloneOutcome> {
    match rustix::fs::ioctl_ficlone(dst, src) {
        Ok(()) => Ok(CloneOutcome::Cloned),
        Err(e @ (Errno::OPNOTSUPP | Errno::XDEV | Errno::INVAL | Errno::NOTTY | Errno::BADF)) => {
            Ok(CloneOutcome::Unsupported(e))
        }
        Err(e) => Err(e.into()),
    }
}

/// The offset of the first data byte at or after `offset`, or `None` when
/// the rest of the file is a hole (`ENXIO`).
pub fn seek_data(file: &File, offset: u64) -> io::Result<Option<u64>> {
    match rustix::fs::seek(file, SeekFrom::Data(offset)) {
        Ok(pos) => Ok(Some(pos)),
        Err(Errno::NXIO) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The offset of the first hole at or after `offset` (end of file counts as
/// a hole), or `None` when `offset` is at or past end of file (`ENXIO`).
pub fn seek_hole(file: &File, offset: u64) -> io::Result<Option<u64>> {
    match rustix::fs::seek(file, SeekFrom::Hole(offset)) {
        Ok(pos) => Ok(Some(pos)),
        Err(Errno::NXIO) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether SEEK_DATA/SEEK_HOLE answer on this file at all (`EINVAL` means
/// the filesystem or file type does not implement them).
pub fn seeks_holes(file: &File) -> bool {
    !matches!(
        rustix::fs::seek(file, SeekFrom::Hole(0)),
        Err(Errno::INVAL | Errno::SPIPE | Errno::OPNOTSUPP)
    )
}

/// What one `copy_file_range` call achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// This many bytes moved (never 0).
    Copied(usize),
    /// The kernel copied nothing (a 0 return before end of file: some
    /// filesystems do this for special files) or refused the pair
    /// (`EXDEV`, `ENOSYS`, `EPERM`, `EOPNOTSUPP`, `EINVAL`): copy by hand.
    Unsupported,
}

/// One `copy_file_range(2)` call between explicit offsets.
pub fn copy_range(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: usize,
) -> io::Result<RangeOutcome> {
    let (mut i, mut o) = (src_off, dst_off);
    match rustix::fs::copy_file_range(src, Some(&mut i), dst, Some(&mut o), len) {
        Ok(0) => Ok(RangeOutcome::Unsupported),
        Ok(n) => Ok(RangeOutcome::Copied(n)),
        Err(Errno::XDEV | Errno::NOSYS | Errno::PERM | Errno::OPNOTSUPP | Errno::INVAL) => {
            Ok(RangeOutcome::Unsupported)
        }
        Err(e) => Err(e.into()),
    }
}

/// Deallocates `[offset, offset + len)` without changing the file size
/// (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`); the range then reads as zeros.
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    rustix::fs::fallocate(
        file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        offset,
        len,
    )
    .map_err(Into::into)
}

/// Hints that `file` will be read once, front to back. Advice is only
/// advice: failures are ignored.
pub fn advise_sequential(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, Advice::Sequential);
}

/// Bytes available to unprivileged users on the filesystem holding `file`
/// (`f_bavail * f_frsize`) and its fundamental block size.
pub fn fs_space(file: &File) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstatvfs(file)?;
    Ok((
        st.f_bavail.saturating_mul(st.f_frsize),
        st.f_frsize.max(512),
    ))
}

/// The filesystem type magic (`f_type` of fstatfs) of the filesystem holding `file`.
pub fn fs_magic(file: &File) -> io::Result<i64> {
    Ok(rustix::fs::fstatfs(file)?.f_type as i64)
}

/// Filesystem magics the engine cares about (from `linux/magic.h`).
pub mod magic {
    /// ext2, ext3 and ext4 share one magic.
    pub const EXT4: i64 = 0xEF53;
    /// procfs: regular files that report size 0 but have content.
    pub const PROC: i64 = 0x9fa0;
    /// sysfs: same as procfs.
    pub const SYSFS: i64 = 0x6265_6572;
    /// tmpfs.
    pub const TMPFS: i64 = 0x0102_1994;
}

/// Whether a process with this pid exists (used to tell our own stale
/// temporaries, left by a killed run, from those of a copy still running).
pub fn process_alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        Some(p) => !matches!(rustix::process::test_kill_process(p), Err(Errno::SRCH)),
        None => false,
    }
}

/// Opens the block device `path` for writing, exclusively (`O_EXCL`
/// without `O_CREAT`: the kernel claims the device for us, and answers
/// `EBUSY` while it is mounted, used as swap or by RAID or device-mapper,
/// or claimed by another `O_EXCL` opener). While we hold it, none of
/// those can start.
pub fn open_device_exclusive(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
}

/// Opens `path` for reading past the page cache (`O_DIRECT`): reads need
/// buffers, offsets and lengths aligned to the device's logical block.
pub fn open_direct(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

/// The major and minor numbers of a device number (`st_rdev`).
pub fn dev_numbers(rdev: u64) -> (u32, u32) {
    (rustix::fs::major(rdev), rustix::fs::minor(rdev))
}

/// What `fallocate(ZERO_RANGE)` on a block device said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroOutcome {
    /// The range now reads as zeros.
    Zeroed,
    /// The device or kernel cannot (`EOPNOTSUPP`, `ENOSYS`, `ENOTTY`,
    /// `ENODEV`, `EINVAL`): write zeros instead.
    Declined,
}

/// Makes `[offset, offset + len)` of a block device read as zeros with
/// `fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)`. The kernel
/// drops the range from the device's page cache and runs
/// `blkdev_issue_zeroout`, which BLKZEROOUT also runs: zeros guaranteed.
/// Both ends must sit on the device's logical block size.
pub fn zero_range(file: &File, offset: u64, len: u64) -> io::Result<ZeroOutcome> {
    match rustix::fs::fallocate(
        file,
        FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
        offset,
        len,
    ) {
        Ok(()) => Ok(ZeroOutcome::Zeroed),
        Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::NOTTY | Errno::NODEV | Errno::INVAL) => {
            Ok(ZeroOutcome::Declined)
        }
        Err(e) => Err(e.into()),
    }
}
