//! The lazy walks over a file's data extents: SEEK_DATA/SEEK_HOLE one
//! extent at a time ([`walk`]), and beside it FIEMAP one batch at a time
//! for the unwritten and shared flags ([`FlaggedExtents`]). Memory stays
//! the same however many extents the file has.

use std::fs::File;
use std::io;

use super::Extent;
use crate::sys;

/// The data extents of `file` in `[from, size)`, found one SEEK_DATA and
/// one SEEK_HOLE at a time as the iterator is advanced; the first extent
/// is clipped to start at `from`.
pub fn walk(file: &File, from: u64, size: u64) -> DataExtents<'_> {
    DataExtents {
        file,
        pos: from,
        size,
    }
}

/// The lazy SEEK_DATA/SEEK_HOLE walk of [`walk`]: constant memory however
/// many extents the file has.
#[derive(Debug)]
pub struct DataExtents<'f> {
    file: &'f File,
    /// Where the next SEEK_DATA starts (`size`: done).
    pos: u64,
    size: u64,
}

impl Iterator for DataExtents<'_> {
    type Item = io::Result<Extent>;

    fn next(&mut self) -> Option<io::Result<Extent>> {
        if self.pos >= self.size {
            return None;
        }
        let found = (|| {
            let Some(start) = sys::seek_data(self.file, self.pos)? else {
                return Ok(None);
            };
            if start >= self.size {
                return Ok(None);
            }
            let end = sys::seek_hole(self.file, start)?
                .unwrap_or(self.size)
                .min(self.size);
            // A file shrinking under us can make the answers disagree; stop
            // here and let the copy's size check report it.
            Ok((end > start).then_some((start, end)))
        })();
        match found {
            Ok(Some((start, end))) => {
                self.pos = end;
                Some(Ok(Extent {
                    offset: start,
                    length: end - start,
                    unwritten: false,
                    shared: false,
                }))
            }
            Ok(None) => {
                self.pos = self.size;
                None
            }
            Err(e) => {
                self.pos = self.size;
                Some(Err(e))
            }
        }
    }
}

/// The data extents of a file with FIEMAP's unwritten and shared flags
/// marked (when asked for and the filesystem has FIEMAP): the SEEK walk and
/// a FIEMAP walk in batches, side by side, both in offset order.
pub struct FlaggedExtents<'f> {
    extents: DataExtents<'f>,
    /// `None` once FIEMAP is done, unsupported or not asked for.
    map: Option<sys::Fiemap<'f>>,
    /// FIEMAP extents not yet passed: those ending after the last extent
    /// marked, in order (one batch at most, plus what carries over).
    pending: std::collections::VecDeque<sys::FiemapExtent>,
    batch: Vec<sys::FiemapExtent>,
}

impl<'f> FlaggedExtents<'f> {
    /// The extents of `file` in `[0, size)`, flagged if `flags`.
    pub fn new(file: &'f File, size: u64, flags: bool) -> FlaggedExtents<'f> {
        FlaggedExtents {
            extents: walk(file, 0, size),
            map: flags.then(|| sys::Fiemap::new(file, size)),
            pending: Default::default(),
            batch: Vec::new(),
        }
    }

    /// Marks `e` from the FIEMAP extents that overlap it.
    fn mark(&mut self, e: &mut Extent) -> io::Result<()> {
        loop {
            while self
                .pending
                .front()
                .is_some_and(|m| m.logical + m.length <= e.offset)
            {
                self.pending.pop_front();
            }
            // Enough of the map is at hand once it reaches past `e`.
            let covered = self
                .pending
                .back()
                .is_some_and(|m| m.logical + m.length >= e.end());
            if covered {
                break;
            }
            let Some(map) = &mut self.map else { break };
            match map.next_batch(&mut self.batch)? {
                Some(true) => self.pending.extend(self.batch.drain(..)),
                Some(false) | None => {
                    self.map = None;
                    break;
                }
            }
        }
        let end = e.end();
        for m in self.pending.iter().take_while(|m| m.logical < end) {
            e.unwritten |= m.unwritten;
            e.shared |= m.shared;
        }
        Ok(())
    }
}

impl Iterator for FlaggedExtents<'_> {
    type Item = io::Result<Extent>;

    fn next(&mut self) -> Option<io::Result<Extent>> {
        let mut e = match self.extents.next()? {
            Ok(e) => e,
            Err(err) => return Some(Err(err)),
        };
        if self.map.is_some() || !self.pending.is_empty() {
            if let Err(err) = self.mark(&mut e) {
                return Some(Err(err));
            }
        }
        Some(Ok(e))
    }
}
