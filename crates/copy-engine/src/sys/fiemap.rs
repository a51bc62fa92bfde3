//! FS_IOC_FIEMAP: the physical extent map, used only for the flags SEEK_DATA
//! cannot tell (unwritten, shared). rustix has no wrapper for this ioctl, so
//! this module declares the kernel's structs and issues it through libc.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B; // _IOWR('f', 11, struct fiemap)
const FIEMAP_FLAG_SYNC: u32 = 0x1;
const FIEMAP_EXTENT_LAST: u32 = 0x1;
const FIEMAP_EXTENT_UNWRITTEN: u32 = 0x800;
const FIEMAP_EXTENT_SHARED: u32 = 0x2000;
/// Extents fetched per ioctl call.
const BATCH: usize = 512;

/// `struct fiemap_extent` from `linux/fiemap.h`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

/// `struct fiemap` followed by room for [`BATCH`] extents.
#[repr(C)]
struct Request {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [RawExtent; BATCH],
}

/// One extent as FIEMAP reports it (logical offsets only: physical block
/// numbers are never shown to users).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiemapExtent {
    /// Offset in the file.
    pub logical: u64,
    /// Length in bytes.
    pub length: u64,
    /// Allocated but never written: reads as zeros.
    pub unwritten: bool,
    /// Shared with another file (reflink or snapshot).
    pub shared: bool,
}

/// A walk over the FIEMAP extents of a file, [`BATCH`] at a time, so that a
/// file of a million extents costs one batch of memory, not a million.
pub struct Fiemap<'f> {
    file: &'f File,
    req: Box<Request>,
    /// Where the next call starts.
    start: u64,
    len: u64,
    done: bool,
}

impl<'f> Fiemap<'f> {
    /// A walk over the extents of `file` in `[0, len)`.
    pub fn new(file: &'f File, len: u64) -> Fiemap<'f> {
        Fiemap {
            file,
            req: Box::new(Request {
                start: 0,
                length: 0,
                flags: 0,
                mapped_extents: 0,
                extent_count: 0,
                reserved: 0,
                extents: [RawExtent::default(); BATCH],
            }),
            start: 0,
            len,
            done: false,
        }
    }

    /// Replaces `out` with the next batch of extents: `Some(true)` when it
    /// holds some, `Some(false)` at the end, `None` when the filesystem does
    /// not implement FIEMAP.
    pub fn next_batch(&mut self, out: &mut Vec<FiemapExtent>) -> io::Result<Option<bool>> {
        out.clear();
        if self.done || self.start >= self.len {
            return Ok(Some(false));
        }
        let req = &mut self.req;
        req.start = self.start;
        req.length = self.len - self.start;
        req.flags = FIEMAP_FLAG_SYNC;
        req.mapped_extents = 0;
        req.extent_count = BATCH as u32;
        // SAFETY: `req` is a live, exclusively borrowed `struct fiemap` with
        // `extent_count` trailing extent slots, exactly the layout the kernel
        // writes for FS_IOC_FIEMAP; the fd is open for the whole call.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                FS_IOC_FIEMAP,
                &mut **req as *mut Request,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EOPNOTSUPP | libc::ENOTTY | libc::EINVAL) => Ok(None),
                _ => Err(err),
            };
        }
        let n = req.mapped_extents as usize;
        if n == 0 {
            self.done = true;
            return Ok(Some(false));
        }
        for e in &req.extents[..n] {
            out.push(FiemapExtent {
                logical: e.logical,
                length: e.length,
                unwritten: e.flags & FIEMAP_EXTENT_UNWRITTEN != 0,
                shared: e.flags & FIEMAP_EXTENT_SHARED != 0,
            });
            self.done |= e.flags & FIEMAP_EXTENT_LAST != 0;
        }
        let tail = &req.extents[n - 1];
        self.start = tail.logical + tail.length;
        Ok(Some(true))
    }
}
