//! Helpers shared by the tests: asking the system what is still attached
//! or mounted.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testbed::mountinfo::MountEntry;

/// Lines of `losetup -a` that mention `file`.
pub fn loop_devices_backed_by(file: &Path) -> Vec<String> {
    let out = Command::new("losetup")
        .arg("-a")
        .output()
        .expect("losetup runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.contains(&*file.to_string_lossy()))
        .map(str::to_owned)
        .collect()
}

/// The mounts whose mount point is `target`.
pub fn mounts_on(target: &Path) -> Vec<MountEntry> {
    testbed::mountinfo::mounts()
        .expect("mountinfo readable")
        .into_iter()
        .filter(|m| m.mount_point == target)
        .collect()
}

/// Asserts that nothing of a dropped ScratchFs is left: no mount on its
/// mount point, no loop device over its image, no image, no mount point.
///
/// The loop device is torn down on its last close, which may trail the
/// drop by a moment, so this polls for up to five seconds.
pub fn assert_released(mountpoint: &Path, image: &Path) {
    assert_eq!(mounts_on(mountpoint), [], "still mounted");
    assert_detached(image);
    assert!(!image.exists(), "image {} left behind", image.display());
    assert!(
        !mountpoint.exists(),
        "mount point {} left behind",
        mountpoint.display()
    );
}

/// Asserts that no loop device shows `image`, polling for up to five
/// seconds: a device still open elsewhere (udev's probe right after the
/// attach) is detached on its last close, a moment after our drop.
pub fn assert_detached(image: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let attached = loop_devices_backed_by(image);
        if attached.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "loop device still attached: {attached:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
