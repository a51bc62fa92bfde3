//! Issue 16, item 3: live images. An ext2 image loop-mounted read-write
//! with a file just written inside it: `copy` refuses it as a source and
//! `dig` refuses it, naming the loop device and its mount point, however
//! the image is reached (a bind mount of its directory, a new name);
//! `--allow-attached` and `--force` go ahead with a warning. A destination
//! that backs an attached loop device is refused too.

use std::io::Write;
use std::path::Path;

use testbed::{BackingFile, FsKind, ImageMount};

use crate::support::{code, one_error_line, s, sparsecp, stderr, BindMount, FAILED};

const MIB: u64 = 1 << 20;

/// An ext2 image in `dir`, mounted read-write, with `MiB` of data just
/// written in a file inside (not synced: still in the page cache).
fn live_image(dir: &Path) -> (BackingFile, ImageMount) {
    let image = BackingFile::create(&dir.join("img"), 64 * MIB).unwrap();
    testbed::mkfs(
        FsKind::Ext2,
        image.path(),
        "live",
        &testbed::uuid_from_seed(16),
    )
    .unwrap();
    let mount = ImageMount::mount(image.path(), FsKind::Ext2, None, "sparsecp-live-").unwrap();
    let mut f = std::fs::File::create(mount.path().join("new.bin")).unwrap();
    f.write_all(&vec![0x5a; 8 * MIB as usize]).unwrap();
    (image, mount)
}

#[test]
fn a_live_image_is_refused_by_copy_and_dig_by_any_path_unless_overridden() {
    testbed::require_fs!(FsKind::Ext2);
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let (image, mount) = live_image(dir.path());
    let device = s(mount.device()).to_owned();
    let mount_point = mount.path().canonicalize().unwrap();
    let mount_point = s(&mount_point).to_owned();
    let img = image.path();
    let copy = dir.path().join("img2");

    let o = sparsecp(&["copy", "-q", s(img), s(&copy)]);
    assert_eq!(code(&o), FAILED, "{}", stderr(&o));
    let line = one_error_line(
        &o,
        &[
            s(img),
            &device,
            &format!("mounted read-write on {mount_point}"),
            "--allow-attached",
        ],
    );
    eprintln!("copy refusal: {line}");
    assert!(!copy.exists(), "nothing written");

    let before = std::fs::metadata(img).unwrap().len();
    let o = sparsecp(&["dig", "-q", s(img)]);
    assert_eq!(code(&o), FAILED, "{}", stderr(&o));
    let line = one_error_line(&o, &[s(img), &device, &mount_point, "--force"]);
    eprintln!("dig refusal: {line}");
    assert_eq!(std::fs::metadata(img).unwrap().len(), before);

    // By another path: a bind mount of the image's directory...
    let other = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let _bind = BindMount::new(dir.path(), other.path(), false);
    let via_bind = other.path().join("img");
    let o = sparsecp(&["copy", "-q", s(&via_bind), s(&copy)]);
    assert_eq!(code(&o), FAILED);
    one_error_line(&o, &[s(&via_bind), &device, &mount_point]);
    let o = sparsecp(&["dig", "-q", s(&via_bind)]);
    assert_eq!(code(&o), FAILED);
    one_error_line(&o, &[&device, &mount_point]);
    // ... and a new name.
    let renamed = dir.path().join("renamed.img");
    std::fs::rename(img, &renamed).unwrap();
    let o = sparsecp(&["copy", "-q", s(&renamed), s(&copy)]);
    assert_eq!(code(&o), FAILED);
    one_error_line(&o, &[s(&renamed), &device, &mount_point]);
    let o = sparsecp(&["dig", "-q", s(&renamed)]);
    assert_eq!(code(&o), FAILED);
    one_error_line(&o, &[&device, &mount_point]);
    std::fs::rename(&renamed, img).unwrap();

    // As a destination: refused, in place or not.
    let other_src = dir.path().join("other");
    std::fs::write(&other_src, b"not an image").unwrap();
    for extra in [&[][..], &["--in-place"][..]] {
        let mut args = vec!["copy", "-q"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[s(&other_src), s(img)]);
        let o = sparsecp(&args);
        assert_eq!(code(&o), FAILED, "{extra:?}");
        let line = one_error_line(&o, &[s(img), &device, "detach it first"]);
        eprintln!("destination refusal {extra:?}: {line}");
    }

    // Overridden: a warning naming the device, then the copy.
    mount.sync().unwrap();
    let o = sparsecp(&["copy", "-q", "--allow-attached", s(img), s(&copy)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("warning") && stderr(&o).contains(&device));
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), before);
    let o = sparsecp(&["dig", "-q", "--force", s(img)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("warning") && stderr(&o).contains(&device));
}

#[test]
fn an_image_attached_but_not_mounted_copies_and_is_still_no_dig() {
    testbed::require_fs!(FsKind::Ext2);
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let image = BackingFile::create(&dir.path().join("img"), 64 * MIB).unwrap();
    testbed::mkfs(
        FsKind::Ext2,
        image.path(),
        "idle",
        &testbed::uuid_from_seed(17),
    )
    .unwrap();
    let device = testbed::LoopDevice::attach(image.path()).unwrap();
    let copy = dir.path().join("img2");
    let o = sparsecp(&["copy", "-q", s(image.path()), s(&copy)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = sparsecp(&["dig", "-q", s(image.path())]);
    assert_eq!(code(&o), FAILED);
    let line = one_error_line(&o, &[s(device.path()), "not mounted", "--force"]);
    eprintln!("dig refusal: {line}");
}
