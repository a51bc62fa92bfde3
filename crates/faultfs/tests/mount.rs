//! Mounting and unmounting.

use std::fs::File;
use std::time::{Duration, Instant};

use faultfs::{FaultFs, FaultSpec};

use crate::{can_mount, is_mount_point, Scratch, IMAGE_LEN};

#[test]
fn drop_unmounts() {
    if !can_mount("drop_unmounts") {
        return;
    }
    let scratch = Scratch::new();
    let fs = scratch.mount(vec![]);
    assert!(is_mount_point(&scratch.mountpoint()));
    assert_eq!(
        fs.file(),
        scratch.mountpoint().canonicalize().unwrap().join("image")
    );
    assert_eq!(std::fs::metadata(fs.file()).unwrap().len(), IMAGE_LEN);
    drop(fs);
    assert!(!is_mount_point(&scratch.mountpoint()));
}

#[test]
fn mounts_again_on_the_same_mountpoint() {
    if !can_mount("mounts_again_on_the_same_mountpoint") {
        return;
    }
    let scratch = Scratch::new();
    for _ in 0..3 {
        let fs = scratch.mount(vec![]);
        assert_eq!(std::fs::metadata(fs.file()).unwrap().len(), IMAGE_LEN);
    }
    assert!(!is_mount_point(&scratch.mountpoint()));
}

#[test]
fn drop_with_a_file_still_open_neither_hangs_nor_panics() {
    if !can_mount("drop_with_a_file_still_open_neither_hangs_nor_panics") {
        return;
    }
    let scratch = Scratch::new();
    let fs = scratch.mount(vec![]);
    let open = File::open(fs.file()).unwrap();
    let start = Instant::now();
    drop(fs);
    assert!(start.elapsed() < Duration::from_secs(30));
    // Detached lazily: gone from the namespace even while the file is open.
    assert!(!is_mount_point(&scratch.mountpoint()));
    drop(open);
}

#[test]
fn empty_eio_range_is_refused() {
    let scratch = Scratch::new();
    #[allow(clippy::reversed_empty_ranges)]
    for bad in [5..5, 9..3] {
        let spec = FaultSpec {
            eio_ranges: vec![0..1, bad.clone()],
        };
        let err = FaultFs::mount(&scratch.backing(), &scratch.mountpoint(), spec).unwrap_err();
        assert!(err.to_string().contains("empty"), "{bad:?}: {err:#}");
    }
}

#[test]
fn missing_backing_file_is_an_error_naming_it() {
    let scratch = Scratch::new();
    let missing = scratch.backing().with_file_name("missing.img");
    let err = FaultFs::mount(&missing, &scratch.mountpoint(), FaultSpec::default()).unwrap_err();
    assert!(format!("{err:#}").contains("missing.img"), "{err:#}");
}
