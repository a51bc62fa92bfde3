//! The FUSE side: a root directory holding one read-only file, `image`,
//! whose reads come from the backing file unless they touch a bad range.

use std::ffi::OsStr;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyLseek, ReplyOpen, Request,
};
use rustix::fs::SeekFrom;

/// Name of the only file in the filesystem.
pub(crate) const IMAGE_NAME: &str = "image";

const IMAGE_INO: INodeNo = INodeNo(2);

/// Attributes are never cached: every `stat` asks again, so `st_blocks`
/// always follows the backing file.
const TTL: Duration = Duration::ZERO;

/// The filesystem served by the background session.
pub(crate) struct ImageFs {
    backing: File,
    eio_ranges: Vec<Range<u64>>,
    reads_failed: Arc<AtomicU64>,
}

impl ImageFs {
    pub(crate) fn new(
        backing: File,
        eio_ranges: Vec<Range<u64>>,
        reads_failed: Arc<AtomicU64>,
    ) -> ImageFs {
        ImageFs {
            backing,
            eio_ranges,
            reads_failed,
        }
    }

    fn attr(&self, ino: INodeNo) -> Result<FileAttr, Errno> {
        let meta = self.backing.metadata().map_err(Errno::from)?;
        let time = |t: std::io::Result<SystemTime>| t.unwrap_or(UNIX_EPOCH);
        let mut attr = FileAttr {
            ino: IMAGE_INO,
            size: meta.len(),
            // Reported as the backing file has it, so callers that compare
            // st_blocks with st_size see the same sparseness.
            blocks: meta.blocks(),
            atime: time(meta.accessed()),
            mtime: time(meta.modified()),
            ctime: unix_time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: FileType::RegularFile,
            perm: 0o444,
            nlink: 1,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: 0,
            blksize: u32::try_from(meta.blksize()).unwrap_or(4096),
            flags: 0,
        };
        if ino == INodeNo::ROOT {
            attr.ino = INodeNo::ROOT;
            attr.size = 0;
            attr.blocks = 0;
            attr.kind = FileType::Directory;
            attr.perm = 0o555;
            attr.nlink = 2;
        } else if ino != IMAGE_INO {
            return Err(Errno::ENOENT);
        }
        Ok(attr)
    }

    /// Whether any byte of `bytes` lies in a range chosen to fail.
    fn is_bad(&self, bytes: &Range<u64>) -> bool {
        !bytes.is_empty()
            && self
                .eio_ranges
                .iter()
                .any(|bad| bad.start < bytes.end && bytes.start < bad.end)
    }

    /// Reads up to `size` bytes at `offset`, short only at end of file.
    fn read_backing(&self, offset: u64, size: u32) -> std::io::Result<Vec<u8>> {
        let len = self.backing.metadata()?.len();
        let want = len.saturating_sub(offset).min(u64::from(size));
        let mut buf = vec![0; usize::try_from(want).unwrap_or(usize::MAX)];
        let mut filled = 0;
        while filled < buf.len() {
            match self
                .backing
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

impl Filesystem for ImageFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent != INodeNo::ROOT || name != IMAGE_NAME {
            return reply.error(Errno::ENOENT);
        }
        match self.attr(IMAGE_INO) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino != IMAGE_INO {
            return reply.error(Errno::EISDIR);
        }
        // Direct I/O keeps the page cache out of the way: every read(2)
        // reaches `read` below, so a re-read of a bad range fails again
        // instead of being served from cache, and readahead cannot turn a
        // read of good bytes into a failure of the bad ones next to it.
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if ino != IMAGE_INO {
            return reply.error(Errno::EISDIR);
        }
        match self.read_backing(offset, size) {
            Ok(data) if self.is_bad(&(offset..offset + data.len() as u64)) => {
                self.reads_failed.fetch_add(1, Ordering::Relaxed);
                reply.error(Errno::EIO);
            }
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino != INodeNo::ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let entries = [
            (INodeNo::ROOT, FileType::Directory, "."),
            (INodeNo::ROOT, FileType::Directory, ".."),
            (IMAGE_INO, FileType::RegularFile, IMAGE_NAME),
        ];
        // Each entry's offset is the one to resume after it.
        for (next, (ino, kind, name)) in (1u64..).zip(entries).skip_while(|(n, _)| *n <= offset) {
            if reply.add(ino, next, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        // The kernel answers SEEK_SET/CUR/END itself and only asks about
        // SEEK_DATA/SEEK_HOLE; those go to the backing file so a sparse-aware
        // reader sees its holes through the mount.
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(Errno::EINVAL);
        };
        let pos = match whence {
            libc::SEEK_DATA => SeekFrom::Data(offset),
            libc::SEEK_HOLE => SeekFrom::Hole(offset),
            _ => return reply.error(Errno::EINVAL),
        };
        if ino != IMAGE_INO {
            return reply.error(Errno::EINVAL);
        }
        match rustix::fs::seek(&self.backing, pos) {
            Ok(found) => match i64::try_from(found) {
                Ok(found) => reply.offset(found),
                Err(_) => reply.error(Errno::EOVERFLOW),
            },
            Err(e) => reply.error(Errno::from_i32(e.raw_os_error())),
        }
    }
}

/// `st_ctime` has no `SystemTime` accessor in std; times before 1970 are
/// clamped to it, which no test cares about.
fn unix_time(secs: i64, nsecs: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    let nsecs = u32::try_from(nsecs).unwrap_or(0);
    UNIX_EPOCH + Duration::new(secs, nsecs)
}
