//! What the harness checks about an image after each step: sizes and
//! allocation (`st_blocks * 512`), label, a read-only `fsck`, and the
//! extent list for the allocation map.

use std::path::Path;

use allocmap::{ImageMap, MapExtent};
use anyhow::Context;
use copy_engine::Layout;
use serde::Serialize;
use testbed::FsKind;

/// The facts about one image file at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct ImageFacts {
    /// File name, like `passive.img`.
    pub name: String,
    /// Logical size (`st_size`).
    pub size: u64,
    /// Allocated bytes (`st_blocks * 512`), what `du` counts.
    pub allocated: u64,
    /// Filesystem label inside the image, if any.
    pub label: Option<String>,
    /// `e2fsck -fn` found nothing.
    pub fsck_clean: bool,
    /// What `e2fsck` said when it was not clean (trimmed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fsck_output: String,
    /// Number of extents (data, unwritten or shared).
    pub extent_count: usize,
    /// The extents, for the allocation map (not in JSON: there are many).
    #[serde(skip)]
    pub extents: Vec<MapExtent>,
}

impl ImageFacts {
    /// Measures the unmounted ext2 image at `path`.
    pub fn measure(path: &Path) -> anyhow::Result<ImageFacts> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let layout = Layout::of(path).with_context(|| format!("cannot map {}", path.display()))?;
        let label = testbed::read_label(path)?;
        let fsck = testbed::fsck_clean(FsKind::Ext2, path)?;
        let extents = ImageMap::from_layout(&layout, String::new()).extents;
        Ok(ImageFacts {
            name,
            size: layout.size,
            allocated: layout.allocated,
            label,
            fsck_clean: fsck.clean,
            fsck_output: if fsck.clean {
                String::new()
            } else {
                tail(&fsck.output, 12)
            },
            extent_count: extents.len(),
            extents,
        })
    }

    /// The same facts under another name (after `mv`).
    pub fn renamed(mut self, name: &str) -> ImageFacts {
        self.name = name.to_owned();
        self
    }

    /// Allocation relative to `reference` (1.0 = the same).
    pub fn ratio_to(&self, reference: &ImageFacts) -> f64 {
        if reference.allocated == 0 {
            return 0.0;
        }
        self.allocated as f64 / reference.allocated as f64
    }

    /// The bar of this image in an allocation map, labelled `label`.
    pub fn map(&self, label: impl Into<String>) -> ImageMap {
        ImageMap {
            label: label.into(),
            size: self.size,
            allocated: self.allocated,
            extents: self.extents.clone(),
        }
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `du -h` style, as `du -h` prints it (rounded up).
pub fn du_h(bytes: u64) -> String {
    allocmap::human_bytes(bytes)
}
