//! Building an [`ImageMap`] from what copy-engine measured of a file.

use copy_engine::Layout;

use crate::{ExtentKind, ImageMap, MapExtent};

impl ImageMap {
    /// The map of a file as [`Layout::of`] read it. An extent both shared
    /// and unwritten is drawn as shared (it costs no new space either way).
    pub fn from_layout(layout: &Layout, label: impl Into<String>) -> ImageMap {
        let extents = layout
            .extents
            .iter()
            .map(|e| MapExtent {
                offset: e.offset,
                length: e.length,
                kind: match (e.shared, e.unwritten) {
                    (true, _) => ExtentKind::Shared,
                    (false, true) => ExtentKind::Unwritten,
                    (false, false) => ExtentKind::Data,
                },
            })
            .collect();
        ImageMap {
            label: label.into(),
            size: layout.size,
            allocated: layout.allocated,
            extents,
        }
    }
}
