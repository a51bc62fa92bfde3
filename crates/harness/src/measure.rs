//! What the harness checks about an image after each step: sizes and
//! allocation (`st_blocks * 512`), label, a read-only `fsck`, and the
//! extent list for the allocation map; and [`content_digest`], which tells
//! whether an image's bytes changed.

use std::fs::File;
use std::hash::{DefaultHasher, Hasher};
use std::os::unix::fs::FileExt;
use std::path::Path;

use allocmap::{ImageMap, MapExtent};
use anyhow::Context;
use copy_engine::Layout;
use serde::Serialize;
use testbed::FsKind;

/// How many lines of a failed `fsck` a one-line reason quotes.
const FSCK_SUMMARY_LINES: usize = 2;

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
    /// The first problems `e2fsck` named when it was not clean.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fsck_summary: String,
    /// Everything `e2fsck` printed when it was not clean: the report
    /// folder keeps it as a log (not in JSON: it can be thousands of lines).
    #[serde(skip)]
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
            fsck_summary: if fsck.clean {
                String::new()
            } else {
                fsck_summary(&fsck.output)
            },
            fsck_output: if fsck.clean {
                String::new()
            } else {
                fsck.output
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

    /// What is wrong with the image as one that should carry `label`: a
    /// wrong label, fsck errors (one short line each). `when` prefixes the
    /// image's name, like `"installed "`.
    pub fn label_and_fsck_problems(&self, label: &str, when: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.label.as_deref() != Some(label) {
            problems.push(format!(
                "{when}{} is labelled {:?}, not {label}",
                self.name,
                self.label.as_deref().unwrap_or("")
            ));
        }
        if !self.fsck_clean {
            problems.push(format!(
                "fsck -fn finds errors in {when}{}: {}",
                self.name, self.fsck_summary
            ));
        }
        problems
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

/// The first problems in `e2fsck -fn` output, on one line: the lines
/// after its pass headers and its opening line, which name what is wrong.
fn fsck_summary(output: &str) -> String {
    let problems: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Pass ") && !l.starts_with("e2fsck "))
        .take(FSCK_SUMMARY_LINES)
        .collect();
    problems.join(" / ")
}

/// A fingerprint of the bytes of the file at `path`, equal for two files
/// with equal bytes whatever their holes: holes and all-zero 4 KiB blocks
/// are hashed as the length of the zero run they form, other blocks as
/// their bytes. It uses the standard library's hasher: compare digests
/// from the same build, never store them.
pub fn content_digest(path: &Path) -> anyhow::Result<u64> {
    const BLOCK: u64 = 4096;
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let layout =
        Layout::from_file(&file, path).with_context(|| format!("cannot map {}", path.display()))?;
    let mut hasher = DefaultHasher::new();
    let mut zeros = 0u64;
    let mut cursor = 0u64;
    let mut buf = copy_engine::AlignedBuf::new(1 << 20);
    for extent in &layout.extents {
        // Whole 4 KiB blocks of the file around the extent; the parts of
        // them in holes read as zeros.
        let start = (extent.offset / BLOCK * BLOCK).max(cursor);
        let end = extent.end().next_multiple_of(BLOCK).min(layout.size);
        zeros += start - cursor;
        let mut at = start;
        while at < end {
            let len = (end - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..len], at)
                .with_context(|| format!("cannot read {} at byte {at}", path.display()))?;
            for block in buf[..len].chunks(BLOCK as usize) {
                if copy_engine::zero::is_zero(block) {
                    zeros += block.len() as u64;
                } else {
                    if zeros > 0 {
                        hasher.write_u64(zeros);
                        zeros = 0;
                    }
                    hasher.write(block);
                }
            }
            at += len as u64;
        }
        cursor = end.max(cursor);
    }
    zeros += layout.size.saturating_sub(cursor);
    hasher.write_u64(zeros);
    hasher.write_u64(layout.size);
    Ok(hasher.finish())
}

/// `du -h` style, as `du -h` prints it (rounded up).
pub fn du_h(bytes: u64) -> String {
    allocmap::human_bytes(bytes)
}
