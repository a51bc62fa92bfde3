//! `sparsecp copy IMG /dev/loopN` (issue 16): real loop devices over files
//! of random bytes. What the device holds is read from its backing file
//! after sparsecp exits (sparsecp fsyncs the device, and the loop driver
//! writes into that file), past the device's page cache.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use testbed::{FsKind, LoopDevice, ScratchFs};

use crate::support::{code, one_error_line, s, sparse_file, sparsecp, stderr, stdout, FAILED};

const MIB: u64 = 1 << 20;
/// The image: data at 1 MiB and 9 MiB, a hole between, a hole that ends
/// at an odd size (not a multiple of 512) at the end. Data runs are whole
/// 4 KiB blocks, so the holes SEEK_HOLE reports are exactly the gaps.
const IMG_SIZE: u64 = 12 * MIB - 333;
const IMG_DATA: [(u64, u64); 3] = [(0, 4096), (MIB, 3 * MIB + 4096), (9 * MIB, 171 * 4096)];

/// A file of `size` pseudo-random bytes (xorshift: never a zero block).
fn random_file(path: &Path, size: u64, seed: u64) {
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A loop device over `dir/name` of `size` random bytes, and that file.
fn random_device(dir: &Path, name: &str, size: u64) -> LoopDevice {
    let backing = dir.join(name);
    random_file(&backing, size, size ^ 0x5eed);
    LoopDevice::attach(&backing).unwrap()
}

/// The image of the module docs, in `dir`.
fn image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("image.img");
    sparse_file(&img, IMG_SIZE, &IMG_DATA);
    img
}

#[test]
fn copy_onto_a_device_zeroes_its_holes_and_skip_leaves_stale_bytes() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let img = image(dir.path());
    let dev = random_device(dir.path(), "dev.img", 16 * MIB);
    let before = read(dev.backing_file());

    let o = sparsecp(&["copy", "--json", s(&img), s(dev.path())]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let device = &json["copy"]["device"];
    let data: u64 = IMG_DATA.iter().map(|r| r.1).sum();
    assert_eq!(device["hole_method"], "zero-range", "{json}");
    assert_eq!(device["holes_zeroed"], IMG_SIZE - data);
    assert_eq!(device["size"], 16 * MIB);
    let after = read(dev.backing_file());
    let n = IMG_SIZE as usize;
    assert!(after[..n] == read(&img)[..], "the device holds the image");
    assert!(after[n..] == before[n..], "past the image, nothing touched");

    // --holes skip over random bytes again: data lands, holes keep them.
    let dev = random_device(dir.path(), "dev2.img", 16 * MIB);
    let before = read(dev.backing_file());
    let o = sparsecp(&["copy", "--holes", "skip", s(&img), s(dev.path())]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("warning") && stderr(&o).contains("skipped"));
    let after = read(dev.backing_file());
    let source = read(&img);
    for (i, (&got, (&src, &old))) in after.iter().zip(source.iter().zip(&before)).enumerate() {
        let in_data = IMG_DATA
            .iter()
            .any(|&(o, l)| (o..o + l).contains(&(i as u64)));
        let want = if in_data { src } else { old };
        assert_eq!(
            got, want,
            "offset {i}: data from the image, stale bytes in holes"
        );
    }
}

#[test]
fn a_mounted_device_is_refused_and_left_unchanged() {
    testbed::require_fs!(FsKind::Ext4);
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let img = image(dir.path());
    // Read-only: ext4's lazy inode-table init would write on its own.
    let fs = ScratchFs::builder(FsKind::Ext4, 64 * MIB)
        .mount_options("ro")
        .create()
        .unwrap();
    let before = read(fs.device());
    let o = sparsecp(&["copy", s(&img), s(fs.device())]);
    assert_eq!(code(&o), FAILED);
    one_error_line(&o, &[s(fs.device()), "busy", "mounted on", s(fs.path())]);
    // From standard input too: written front to back, still held
    // exclusively.
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_sparsecp"))
        .args(["copy", "-", s(fs.device())])
        .stdin(std::fs::File::open(&img).unwrap())
        .output()
        .unwrap();
    assert_eq!(code(&piped), FAILED);
    one_error_line(&piped, &[s(fs.device()), "busy", "mounted on"]);
    assert!(
        read(fs.device()) == before,
        "device unchanged byte for byte"
    );
}

#[test]
fn a_device_held_open_exclusively_is_refused() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let img = image(dir.path());
    let dev = random_device(dir.path(), "dev.img", 16 * MIB);
    let before = read(dev.backing_file());
    let holder = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::EXCL.bits() as i32)
        .open(dev.path())
        .unwrap();
    let o = sparsecp(&["copy", s(&img), s(dev.path())]);
    assert_eq!(code(&o), FAILED);
    one_error_line(&o, &[s(dev.path()), "busy", "held open exclusively"]);
    drop(holder);
    assert!(read(dev.backing_file()) == before, "device unchanged");
}

#[test]
fn a_device_smaller_than_the_image_is_refused_before_any_write() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let img = image(dir.path());
    let dev = random_device(dir.path(), "dev.img", 8 * MIB);
    let before = read(dev.backing_file());
    let o = sparsecp(&["copy", s(&img), s(dev.path())]);
    assert_eq!(code(&o), FAILED);
    one_error_line(
        &o,
        &[
            s(dev.path()),
            "too small",
            &(8 * MIB).to_string(),
            &IMG_SIZE.to_string(),
        ],
    );
    assert!(read(dev.backing_file()) == before, "device unchanged");
}

#[test]
fn verify_reads_the_device_past_its_page_cache() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let img = image(dir.path());
    let dev = random_device(dir.path(), "dev.img", 16 * MIB);
    let o = sparsecp(&["copy", "--verify", s(&img), s(dev.path())]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("OK: content identical"),
        "{}",
        stdout(&o)
    );

    // Corrupt the device behind its page cache, in a hole and then in
    // data: a buffered read of the device would still see the old pages.
    for offset in [6 * MIB + 7, MIB + 4096] {
        let backing = OpenOptions::new()
            .write(true)
            .open(dev.backing_file())
            .unwrap();
        backing.write_all_at(&[0xA5], offset).unwrap();
        backing.sync_all().unwrap();
        let o = sparsecp(&["verify", s(&img), s(dev.path())]);
        assert_eq!(code(&o), 1, "{}", stdout(&o));
        assert!(
            stdout(&o).contains(&format!("differs at offset {offset}")),
            "{}",
            stdout(&o)
        );
        // Put it back for the next round.
        let good = read(&img)[offset as usize];
        backing.write_all_at(&[good], offset).unwrap();
        backing.sync_all().unwrap();
    }
}

#[test]
fn sparse_never_onto_a_device_writes_the_holes_as_zeros() {
    testbed::require!("losetup");
    let dir = tempfile::tempdir_in(testbed::scratch_dir()).unwrap();
    let img = image(dir.path());
    let dev = random_device(dir.path(), "dev.img", 16 * MIB);
    let o = sparsecp(&[
        "copy",
        "--json",
        "--sparse",
        "never",
        s(&img),
        s(dev.path()),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        json["copy"]["device"]["hole_method"], "write-zeros",
        "{json}"
    );
    let after = read(dev.backing_file());
    assert!(after[..IMG_SIZE as usize] == read(&img)[..]);
}
