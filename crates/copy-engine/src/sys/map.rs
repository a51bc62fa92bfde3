//! Read-only mappings of a file's pages, for the dig's zero scan: looking
//! at the page cache in place instead of copying it out with pread. On a
//! dense 3 GiB image the copy to user space was 69% of a dig's samples
//! (`_copy_to_iter`), the zero scan itself 5%.
//!
//! memmap2 does the mmap/munmap; mapping is `unsafe` because what is
//! mapped may change under the slice, and because reading a mapped page
//! that cannot be read (past a shrunk file's end, or an I/O error) raises
//! SIGBUS instead of returning an error. So every mapping is populated
//! first with MADV_POPULATE_READ (Linux 5.14), which reads the pages in and
//! returns those errors instead: a caller falls back to pread, which names
//! the bad offset. The rest (bytes changed, the file shrunk between the
//! populate and the scan) is already outside what a dig allows: it needs
//! the file to itself (a write into a block it has read as zeros would be
//! punched away), so only a dig maps its file.

use std::fs::File;
use std::io;
use std::ops::Deref;

use memmap2::{Advice, Mmap, MmapOptions};

/// The page size mappings start on.
const PAGE: u64 = 4096;

/// `len` bytes of a file at some offset, mapped read-only.
pub struct Mapped {
    map: Mmap,
    /// Where the asked-for bytes start in `map` (it starts on a page).
    skip: usize,
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map[self.skip..]
    }
}

/// Maps `len` bytes of `file` at `offset` read-only if all of them are in
/// the page cache (mincore), its page tables filled at once
/// (MADV_POPULATE_READ: one call instead of a fault per few pages). `None`
/// when some are not: pread's readahead runs ahead of a cold file, where
/// a fault reads in step with the scan, and a page this call does not read
/// cannot fail to read. An error when the pages cannot
/// be mapped (a file shorter than asked, a kernel before 5.14): the caller
/// reads those bytes with pread instead. The file must keep its size while
/// the mapping lives.
pub fn map_read(file: &File, offset: u64, len: usize) -> io::Result<Option<Mapped>> {
    let start = offset / PAGE * PAGE;
    let skip = (offset - start) as usize;
    // SAFETY: the mapping is read-only and lives no longer than `Mapped`,
    // which derefs only within it. Bytes changed by another writer meanwhile
    // are read as whatever they are at that moment (plain u8 loads, no
    // invariant rests on them); unreadable pages are caught by the populate
    // below before any read, and the dig that maps the file requires it to
    // itself, nothing shrinking it (see the module docs).
    let map = unsafe { MmapOptions::new().offset(start).len(skip + len).map(file)? };
    let mut resident = vec![0u8; map.len().div_ceil(PAGE as usize)];
    // SAFETY: `map` is a live mapping of `map.len()` bytes starting on a
    // page, and `resident` has one byte per page of it, as mincore writes.
    let rc = unsafe {
        libc::mincore(
            map.as_ptr() as *mut libc::c_void,
            map.len(),
            resident.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if resident.iter().any(|&r| r & 1 == 0) {
        return Ok(None);
    }
    map.advise(Advice::PopulateRead)?;
    Ok(Some(Mapped { map, skip }))
}
