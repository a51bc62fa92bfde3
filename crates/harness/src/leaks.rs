//! Finding loop devices the tests and scenarios left attached.
//!
//! Ours are the ones backed by a file in the testbed's scratch directory
//! (COS_STATE and every testbed image) or by an image inside a COS_STATE
//! mount (`/tmp/cos-state-*/cOS/*.img`). Only the kernel's view in sysfs
//! is read; nothing is detached here.

use std::path::{Path, PathBuf};

/// A loop device and the file behind it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttachedLoop {
    /// The device node, like `/dev/loop3`.
    pub device: PathBuf,
    /// Its backing file as the kernel reports it.
    pub backing: PathBuf,
}

/// Every attached loop device whose backing file is ours, sorted.
pub fn our_loop_devices() -> Vec<AttachedLoop> {
    let scratch = testbed::scratch_dir();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        let backing = PathBuf::from(backing.trim_end_matches('\n'));
        if is_ours(&backing, &scratch) {
            found.push(AttachedLoop {
                device: Path::new("/dev").join(name),
                backing,
            });
        }
    }
    found.sort();
    found
}

/// Whether a backing file belongs to the testbed or the harness.
fn is_ours(backing: &Path, scratch: &Path) -> bool {
    // The kernel appends " (deleted)" to files removed while attached.
    let text = backing.to_string_lossy();
    let text = text.strip_suffix(" (deleted)").unwrap_or(&text);
    Path::new(text).starts_with(scratch)
        || text.contains("/cos-state-")
        || text.contains("/testbed-")
}
