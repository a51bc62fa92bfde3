//! Building an [`ImageMap`] from what copy-engine measured of a file: from
//! a [`Layout`]'s extent list, or from extents streamed one at a time (a
//! walk over a file of a million extents), binned as they come.

use copy_engine::Layout;

use crate::{ExtentKind, ImageMap, MapExtent};

/// A streamed map keeps up to this many extents as they are; past it, it
/// condenses them (see [`ImageMap::from_extents`]).
const EXACT: usize = 1 << 14;
/// Cells per pixel column of a condensed map: a cell's bytes are drawn at
/// its start, so a column can be off by at most one cell in sixteen, one
/// step of the map's sixteen-level columns.
const CELLS_PER_COLUMN: u64 = 16;

impl ImageMap {
    /// The map of a file as [`Layout::of`] read it. An extent both shared
    /// and unwritten is drawn as shared (it costs no new space either way).
    pub fn from_layout(layout: &Layout, label: impl Into<String>) -> ImageMap {
        ImageMap {
            label: label.into(),
            size: layout.size,
            allocated: layout.allocated,
            extents: layout.extents.iter().map(map_extent).collect(),
        }
    }

    /// The map of a file of `size` bytes, `allocated` of them charged,
    /// whose extents (sorted, non-overlapping) arrive one at a time, for a
    /// bar of at most `columns` pixels. Up to [`EXACT`] extents are kept as
    /// they are; past that the bar is cut into `16 x columns` cells and each
    /// extent's bytes are added to the cells it covers, so memory stays a
    /// few hundred KiB however many extents stream by. Each cell then
    /// becomes at most three extents (data, shared, unwritten) packed at
    /// its start: the shares within every cell are exact, only their place
    /// within a cell (a sixteenth of a column) is not. The first error of
    /// `extents` is returned.
    pub fn from_extents<E>(
        label: impl Into<String>,
        size: u64,
        allocated: u64,
        extents: impl IntoIterator<Item = Result<MapExtent, E>>,
        columns: u32,
    ) -> Result<ImageMap, E> {
        let mut exact = Vec::new();
        let mut cells: Option<Cells> = None;
        for e in extents {
            let e = e?;
            match &mut cells {
                Some(c) => c.add(&e),
                None if exact.len() < EXACT => exact.push(e),
                None => {
                    let mut c = Cells::new(size, u64::from(columns.max(1)) * CELLS_PER_COLUMN);
                    for kept in exact.drain(..).chain([e]) {
                        c.add(&kept);
                    }
                    cells = Some(c);
                }
            }
        }
        Ok(ImageMap {
            label: label.into(),
            size,
            allocated,
            extents: match cells {
                Some(c) => c.extents(),
                None => exact,
            },
        })
    }
}

/// How a copy-engine extent is drawn: an extent both shared and
/// unwritten as shared.
pub fn map_extent(e: &copy_engine::Extent) -> MapExtent {
    MapExtent {
        offset: e.offset,
        length: e.length,
        kind: match (e.shared, e.unwritten) {
            (true, _) => ExtentKind::Shared,
            (false, true) => ExtentKind::Unwritten,
            (false, false) => ExtentKind::Data,
        },
    }
}

/// Byte counts by kind in equal cells along a file.
struct Cells {
    size: u64,
    /// `[data, shared, unwritten]` bytes per cell.
    bytes: Vec<[u64; 3]>,
}

impl Cells {
    fn new(size: u64, cells: u64) -> Cells {
        let cells = cells.min(size).max(1);
        Cells {
            size,
            bytes: vec![[0; 3]; cells as usize],
        }
    }

    /// Where cell `i` starts (the last cell ends at `size`).
    fn start(&self, i: usize) -> u64 {
        (u128::from(self.size) * i as u128 / self.bytes.len() as u128) as u64
    }

    fn add(&mut self, e: &MapExtent) {
        let (start, end) = (e.offset, e.end().min(self.size));
        if start >= end {
            return;
        }
        let slot = match e.kind {
            ExtentKind::Data => 0,
            ExtentKind::Shared => 1,
            ExtentKind::Unwritten => 2,
        };
        let n = self.bytes.len();
        let mut i = (u128::from(start) * n as u128 / u128::from(self.size)) as usize;
        while i < n && self.start(i) < end {
            let overlap = end.min(self.start(i + 1)) - start.max(self.start(i));
            self.bytes[i][slot] += overlap;
            i += 1;
        }
    }

    /// Each cell's bytes as extents packed at its start, in drawing order.
    fn extents(&self) -> Vec<MapExtent> {
        let kinds = [ExtentKind::Data, ExtentKind::Shared, ExtentKind::Unwritten];
        let mut out = Vec::new();
        for (i, counts) in self.bytes.iter().enumerate() {
            let mut at = self.start(i);
            for (kind, &length) in kinds.iter().zip(counts) {
                if length > 0 {
                    out.push(MapExtent {
                        offset: at,
                        length,
                        kind: *kind,
                    });
                    at += length;
                }
            }
        }
        out
    }
}
