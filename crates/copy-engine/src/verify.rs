//! Verification: the destination has the source's content and allocates no
//! more than the stated promise; an image written onto a block device is
//! compared with what the device holds, read past its page cache.

use std::fs::File;
use std::io;
use std::iter::Peekable;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::buffer::AlignedBuf;
use crate::error::{Error, IoContext};
use crate::human::human_bytes as bytes;
use crate::layout::{self, DataExtents, Extent, Layout, SourceKind};
use crate::{blockdev, sys};

/// The verdict of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The reference file.
    pub source: PathBuf,
    /// The file checked against it.
    pub destination: PathBuf,
    /// Logical sizes.
    pub source_size: u64,
    /// Logical size of the destination.
    pub destination_size: u64,
    /// Whether every byte is equal (sizes included).
    pub identical: bool,
    /// The first offset where content differs.
    pub first_difference: Option<u64>,
    /// `st_blocks * 512` of the source.
    pub source_allocated: u64,
    /// `st_blocks * 512` of the destination.
    pub destination_allocated: u64,
    /// The most the destination may allocate.
    pub allocation_limit: u64,
    /// How the limit was derived.
    pub limit_rule: String,
    /// Both promises hold.
    pub ok: bool,
    /// The destination is a block device: its first `source_size` bytes
    /// were read past the page cache and compared (holes as zeros); it
    /// allocates nothing, so there is no allocation promise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub destination_is_device: bool,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let content = match (self.identical, self.first_difference) {
            (true, _) => "content identical".to_string(),
            (false, Some(at)) => format!("content differs at offset {at}"),
            (false, None) => "content differs".to_string(),
        };
        if self.destination_is_device {
            return write!(
                f,
                "{}: {}: {content} in the first {} (read with O_DIRECT; device of {})",
                self.destination.display(),
                if self.ok { "OK" } else { "FAILED" },
                bytes(self.source_size),
                bytes(self.destination_size),
            );
        }
        write!(
            f,
            "{}: {}: {content}; allocated {} vs source {} (limit {}, {})",
            self.destination.display(),
            if self.ok { "OK" } else { "FAILED" },
            bytes(self.destination_allocated),
            bytes(self.source_allocated),
            bytes(self.allocation_limit),
            self.limit_rule
        )
    }
}

/// Compares `dst` with `src`: content must be identical and
/// `allocated(dst) <= max_ratio * allocated(src)`, or by default
/// `allocated(src)` plus one filesystem block per source extent (block
/// alignment can cost up to that much).
pub fn verify(src: &Path, dst: &Path, max_ratio: Option<f64>) -> Result<VerifyReport, Error> {
    let fs = sys::open_read_nonblocking(src).at(src, "open")?;
    let fd = sys::open_read_nonblocking(dst).at(dst, "open")?;
    // Counted, not listed: the comparison walks both files' extents again
    // as it reads (constant memory for files of a million extents).
    let s = Layout::read(&fs, src, false, 0)?;
    let d = Layout::read(&fd, dst, false, 0)?;
    for l in [&s, &d] {
        if l.kind == SourceKind::Stream {
            return Err(Error::Unsupported {
                path: l.path.clone(),
                reason: "cannot verify a stream".into(),
            });
        }
    }
    if d.kind == SourceKind::BlockDevice && s.kind != SourceKind::BlockDevice {
        // An image on a device: the device is larger, and has no holes.
        let first_difference = first_device_difference(src, dst, s.size)?;
        return Ok(VerifyReport {
            source: src.into(),
            destination: dst.into(),
            source_size: s.size,
            destination_size: d.size,
            identical: first_difference.is_none(),
            first_difference,
            source_allocated: s.allocated,
            destination_allocated: 0,
            allocation_limit: 0,
            limit_rule: "none: a block device".into(),
            ok: first_difference.is_none(),
            destination_is_device: true,
        });
    }
    let (limit, rule) = match max_ratio {
        Some(r) => ((s.allocated as f64 * r) as u64, format!("{r} x source")),
        None => {
            let slack = s.block_size * s.extent_count();
            (
                s.allocated + slack,
                format!("source + one block per extent ({})", s.extent_count()),
            )
        }
    };
    let first_difference = first_difference((&fs, &s), (&fd, &d))?;
    let identical = first_difference.is_none();
    Ok(VerifyReport {
        source: src.into(),
        destination: dst.into(),
        source_size: s.size,
        destination_size: d.size,
        identical,
        first_difference,
        source_allocated: s.allocated,
        destination_allocated: d.allocated,
        allocation_limit: limit,
        limit_rule: rule,
        ok: identical && d.allocated <= limit,
        destination_is_device: false,
    })
}

/// The first differing offset. Ranges that are holes in both files read as
/// zeros in both and are skipped without reading.
fn first_difference(
    (fs, s): (&File, &Layout),
    (fd, d): (&File, &Layout),
) -> Result<Option<u64>, Error> {
    let size = s.size.min(d.size);
    let mut a = AlignedBuf::new(1 << 20);
    let mut b = AlignedBuf::new(1 << 20);
    let ranges = Union {
        a: layout::walk(fs, 0, size).peekable(),
        b: layout::walk(fd, 0, size).peekable(),
    };
    for range in ranges {
        let (start, end) = range.map_err(|(which, e)| {
            let path = if which { &s.path } else { &d.path };
            Error::Io {
                path: path.clone(),
                op: "seek data/hole".into(),
                source: e,
            }
        })?;
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(a.len() as u64) as usize;
            fs.read_exact_at(&mut a[..n], pos)
                .at(&s.path, &format!("read at offset {pos}"))?;
            fd.read_exact_at(&mut b[..n], pos)
                .at(&d.path, &format!("read at offset {pos}"))?;
            if a[..n] != b[..n] {
                let i = a[..n]
                    .iter()
                    .zip(&b[..n])
                    .position(|(x, y)| x != y)
                    .unwrap_or(0);
                return Ok(Some(pos + i as u64));
            }
            pos += n as u64;
        }
    }
    Ok((s.size != d.size).then_some(size))
}

/// Reads the first `len` bytes of the device `dev` past its page cache
/// (`O_DIRECT`, so what is compared is what the device holds) and returns
/// the first offset where they differ from `src`, whose holes read as
/// zeros; `Some(device size)` if the device is shorter.
fn first_device_difference(src: &Path, dev: &Path, len: u64) -> Result<Option<u64>, Error> {
    let s = File::open(src).at(src, "open")?;
    let d = sys::open_direct(dev).at(dev, "open (O_DIRECT)")?;
    let facts = blockdev::device_facts(&d, dev)?;
    let block = facts.logical_block as usize;
    let mut a = AlignedBuf::new(1 << 20);
    let mut b = AlignedBuf::new(1 << 20);
    let end = len.min(facts.size);
    let mut pos = 0;
    while pos < end {
        let n = (end - pos).min(a.len() as u64) as usize;
        s.read_exact_at(&mut a[..n], pos)
            .at(src, &format!("read at offset {pos}"))?;
        // O_DIRECT wants whole logical blocks; the device has them, its
        // size being a multiple of its block.
        let direct = n.next_multiple_of(block).min(b.len());
        d.read_exact_at(&mut b[..direct], pos)
            .at(dev, &format!("read at offset {pos}"))?;
        if a[..n] != b[..n] {
            let i = a[..n].iter().zip(&b[..n]).position(|(x, y)| x != y);
            return Ok(Some(pos + i.unwrap_or(0) as u64));
        }
        pos += n as u64;
    }
    Ok((facts.size < len).then_some(facts.size))
}

/// The merged data ranges `(start, end)` of two walks over files clipped
/// to the same size, in order; an error says whether it was `a`'s.
struct Union<'f> {
    a: Peekable<DataExtents<'f>>,
    b: Peekable<DataExtents<'f>>,
}

impl Union<'_> {
    /// The next extent of either walk, the lower one first.
    fn next_extent(&mut self) -> Option<Result<(u64, u64), (bool, io::Error)>> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (None, None) => return None,
            (Some(Err(_)), _) | (Some(_), None) => true,
            (_, Some(Err(_))) | (None, Some(_)) => false,
            (Some(Ok(x)), Some(Ok(y))) => x.offset <= y.offset,
        };
        let (walk, which) = if take_a {
            (&mut self.a, true)
        } else {
            (&mut self.b, false)
        };
        Some(match walk.next()? {
            Ok(e) => Ok((e.offset, e.end())),
            Err(e) => Err((which, e)),
        })
    }

    /// Whether the next extent of either walk starts by `end`.
    fn touches(&mut self, end: u64) -> bool {
        let starts_by =
            |p: Option<&io::Result<Extent>>| matches!(p, Some(Ok(e)) if e.offset <= end);
        starts_by(self.a.peek()) || starts_by(self.b.peek())
    }
}

impl Iterator for Union<'_> {
    type Item = Result<(u64, u64), (bool, io::Error)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (start, mut end) = match self.next_extent()? {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        while self.touches(end) {
            match self.next_extent()? {
                Ok((_, e)) => end = end.max(e),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok((start, end)))
    }
}
