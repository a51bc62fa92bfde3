//! SVG pictures of file allocation: where an image has data and where it has holes.
//!
//! The installer bug this project exists for is easiest to explain with a picture:
//! `active.img` is a 3 GiB sparse image with 1.7G allocated, and copying it with
//! `io.Copy` produces a `passive.img` with 3.1G allocated because every hole was
//! written out as zeros. [`render_svg`] draws each image as one horizontal bar along
//! its logical size, all on the same scale and stacked so that the same offset lines
//! up, with the allocated part coloured and the holes left light.
//!
//! The crate only draws: callers describe each image as an [`ImageMap`] (logical
//! size, `st_blocks * 512`, and the extent list they got from `SEEK_DATA`/`SEEK_HOLE`
//! or `FIEMAP`). It never touches the file system. [`xml`] is its element writer, also
//! used for the benchmark chart.
//!
//! ```
//! use allocmap::{render_svg, ExtentKind, ImageMap, MapExtent, MapOptions};
//!
//! let mib = 1 << 20;
//! let sparse = ImageMap {
//!     label: "active.img".to_string(),
//!     size: 4 * mib,
//!     allocated: mib,
//!     extents: vec![MapExtent { offset: 0, length: mib, kind: ExtentKind::Data }],
//! };
//! let svg = render_svg(&[sparse], &MapOptions::default());
//! assert!(svg.contains(r#"data-label="active.img""#));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bins;
mod from_layout;
pub use from_layout::map_extent;
mod svg;
pub mod xml;

pub use bins::{bin_extents, Bin};
/// Byte counts as `du -h` prints them (kept in copy-engine, the lowest crate).
pub use copy_engine::human_bytes;
pub use svg::render_svg;

/// What kind of allocation an extent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtentKind {
    /// Allocated and written: bytes that take space and hold contents.
    Data,
    /// Allocated but unwritten (preallocated with `fallocate`): takes space, reads as
    /// zeros (`FIEMAP_EXTENT_UNWRITTEN`).
    Unwritten,
    /// Allocated and shared with another file through a reflink
    /// (`FIEMAP_EXTENT_SHARED`): the space is counted once for both files.
    Shared,
}

/// One allocated extent of an image, in bytes relative to the start of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapExtent {
    /// Byte offset of the first byte of the extent.
    pub offset: u64,
    /// Length of the extent in bytes.
    pub length: u64,
    /// What kind of allocation this is.
    pub kind: ExtentKind,
}

impl MapExtent {
    /// The offset one past the last byte of the extent, saturating at `u64::MAX`.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.length)
    }
}

/// Everything needed to draw one image: its sizes and where its allocated bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageMap {
    /// Text shown beside the bar, e.g. `"passive.img (iocopy)"`.
    pub label: String,
    /// Logical size in bytes (`st_size`); the length of the bar.
    pub size: u64,
    /// Allocated bytes as the file system counts them (`st_blocks * 512`); the number
    /// printed and used for ratios. It may differ from the sum of `extents` (metadata
    /// blocks, block rounding, preallocation past the end of file).
    pub allocated: u64,
    /// Allocated extents, sorted by offset and non-overlapping. Parts beyond `size`
    /// are not drawn.
    pub extents: Vec<MapExtent>,
}

/// How to draw the picture.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapOptions {
    /// Width in pixels of the bar of the largest image; smaller images get
    /// proportionally shorter bars. Each pixel column is one bin of the file.
    /// Values below 1 are treated as 1.
    pub width_px: u32,
    /// Heading drawn above the bars, and the document's `<title>`.
    pub title: Option<String>,
    /// Index into the images of the one whose allocation counts as `×1.00`. `None`,
    /// an index out of range, or a reference with nothing allocated omits the ratio.
    pub reference: Option<usize>,
}

impl Default for MapOptions {
    /// 1000 pixels wide, no title, ratios relative to the first image.
    fn default() -> Self {
        MapOptions {
            width_px: 1000,
            title: None,
            reference: Some(0),
        }
    }
}
