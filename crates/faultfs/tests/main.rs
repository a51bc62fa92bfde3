//! Integration tests of faultfs. Those that mount need root and /dev/fuse;
//! without them they print `SKIP <test>: <reason>` and return.

mod mount; // mounting, unmounting on drop, refused specs
mod reads; // clean and EIO reads, large reads, stat, SEEK_DATA/SEEK_HOLE

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use faultfs::{FaultFs, FaultSpec};
use tempfile::TempDir;

const MIB: u64 = 1 << 20;

/// Size of the backing image: data in [0, 1 MiB) and [3 MiB, 4 MiB), a hole
/// between them.
const IMAGE_LEN: u64 = 4 * MIB;
const DATA: [std::ops::Range<u64>; 2] = [0..MIB, 3 * MIB..4 * MIB];

/// The byte the backing image holds at `offset` (zero in the hole).
fn byte_at(offset: u64) -> u8 {
    if DATA.iter().any(|d| d.contains(&offset)) {
        // Never zero, and not periodic in 4 KiB pages.
        (offset % 251) as u8 | 1
    } else {
        0
    }
}

fn expected(range: std::ops::Range<u64>) -> Vec<u8> {
    range.map(byte_at).collect()
}

/// A backing image and a mountpoint in one scratch directory.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("faultfs-test-")
            .tempdir()
            .expect("create scratch dir");
        let image = File::create(dir.path().join("backing.img")).expect("create backing");
        image.set_len(IMAGE_LEN).expect("size backing");
        for data in DATA {
            image
                .write_all_at(&expected(data.clone()), data.start)
                .expect("write backing");
        }
        image.sync_all().expect("sync backing");
        std::fs::create_dir(dir.path().join("mnt")).expect("create mountpoint");
        Scratch { dir }
    }

    fn backing(&self) -> std::path::PathBuf {
        self.dir.path().join("backing.img")
    }

    fn mountpoint(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }

    fn mount(&self, eio_ranges: Vec<std::ops::Range<u64>>) -> FaultFs {
        FaultFs::mount(
            &self.backing(),
            &self.mountpoint(),
            FaultSpec { eio_ranges },
        )
        .expect("mount faultfs")
    }
}

/// Whether `test` can mount here; if not, says why it skips.
fn can_mount(test: &str) -> bool {
    let reason = testbed::skip_reason(&[]).or_else(faultfs::fuse_available);
    if let Some(reason) = &reason {
        testbed::report_skip(test, reason);
    }
    reason.is_none()
}

/// Whether anything is mounted on `path` in this mount namespace.
fn is_mount_point(path: &Path) -> bool {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    testbed::mountinfo::mounts()
        .expect("read mountinfo")
        .iter()
        .any(|m| m.mount_point == path)
}
