//! A block-device destination that goes away mid-copy (issue 16).
//!
//! `losetup -d` on a loop device someone holds open does not detach it:
//! the kernel (`loop_clr_fd`, checked on 6.18) only sets autoclear and
//! detaches on the last close. So a detach mid-copy cannot fail the copy;
//! the first test pins that down (the copy completes into the backing
//! file, the device is gone after the last close, nothing leaks). A device
//! that really shrinks under the copy (its backing file truncated and the
//! capacity re-read, `losetup -c`) does fail writes: the second test wants
//! one error line naming the device, and no panic. The shrink runs inside
//! a data worker's progress call, which the data phase waits for, so at
//! the latest the hole phase meets the shrunk device (seen: "write zeros
//! at offset 8388608: No space left on device", after ZERO_RANGE past the
//! end was declined).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use copy_engine::{copy, CopyOptions, Progress};

use crate::support::{self, MidCopy, Piece::Data, Spec};

const MIB: u64 = 1 << 20;

/// A 48 MiB image with data at 0, 16 and 40 MiB and holes between.
fn image(path: &Path) {
    support::build(
        path,
        &Spec {
            size: 48 * MIB,
            pieces: vec![
                Data(0, 8 * MIB),
                Data(16 * MIB, 8 * MIB),
                Data(40 * MIB, 8 * MIB),
            ],
        },
    );
}

/// A loop device over `dir/name` of `size` bytes of 0xEE.
fn device(dir: &Path, name: &str, size: u64) -> testbed::LoopDevice {
    let backing = dir.join(name);
    std::fs::write(&backing, vec![0xEE; size as usize]).unwrap();
    testbed::LoopDevice::attach(&backing).unwrap()
}

fn losetup(args: &[&str]) {
    let st = Command::new("losetup").args(args).status().unwrap();
    assert!(st.success(), "losetup {args:?}");
}

/// Counts what the copy reports, to check progress covers the image.
#[derive(Default)]
struct Counted {
    total: AtomicU64,
    done: AtomicU64,
}

impl Progress for Counted {
    fn start(&self, _what: &str, total: u64) {
        self.total.store(total, Ordering::SeqCst);
    }
    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::SeqCst);
    }
}

#[test]
fn a_loop_device_detached_mid_copy_is_detached_only_after_the_copy() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let img = dir.path().join("image.img");
    image(&img);
    let dev = device(dir.path(), "dev.img", 64 * MIB);
    let path = dev.path().to_path_buf();
    let mid = MidCopy::new(MIB, || losetup(&["-d", path.to_str().unwrap()]));
    let report = copy(&img, dev.path(), &CopyOptions::default(), &mid).unwrap();
    assert!(mid.fired(), "detached mid-copy");
    assert_eq!(report.device.as_ref().unwrap().holes_zeroed, 24 * MIB);
    let backing = dev.backing_file().to_path_buf();
    let held = std::fs::read(&backing).unwrap();
    assert!(held[..48 * MIB as usize] == std::fs::read(&img).unwrap()[..]);
    assert!(held[48 * MIB as usize..].iter().all(|&b| b == 0xEE));
    drop(dev);
    let still: Vec<_> = testbed::leaks::our_loop_devices()
        .into_iter()
        .filter(|l| l.backing == backing)
        .collect();
    assert!(still.is_empty(), "detached once closed: {still:?}");
}

#[test]
fn a_device_that_shrinks_mid_copy_fails_with_one_line() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let img = dir.path().join("image.img");
    image(&img);
    let dev = device(dir.path(), "dev.img", 64 * MIB);
    let (path, backing) = (dev.path().to_path_buf(), dev.backing_file().to_path_buf());
    let mid = MidCopy::new(MIB, || {
        std::fs::File::options()
            .write(true)
            .open(&backing)
            .unwrap()
            .set_len(4 * MIB)
            .unwrap();
        losetup(&["-c", path.to_str().unwrap()]);
    });
    let err = copy(&img, dev.path(), &CopyOptions::default(), &mid).unwrap_err();
    assert!(mid.fired());
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.starts_with(path.to_str().unwrap()),
        "names the device: {line}"
    );
}

#[test]
fn progress_onto_a_device_counts_data_and_holes() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let img = dir.path().join("image.img");
    image(&img);
    let dev = device(dir.path(), "dev.img", 64 * MIB);
    let counted = Counted::default();
    copy(&img, dev.path(), &CopyOptions::default(), &counted).unwrap();
    assert_eq!(counted.total.load(Ordering::SeqCst), 48 * MIB);
    assert_eq!(counted.done.load(Ordering::SeqCst), 48 * MIB);
}
