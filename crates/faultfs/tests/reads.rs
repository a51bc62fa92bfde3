//! What a reader sees through the mount.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};

use rustix::fs::SeekFrom;

use crate::{can_mount, expected, Scratch, IMAGE_LEN, MIB};

/// A bad 4 KiB in the second data extent.
const BAD: std::ops::Range<u64> = 3 * MIB + 4096..3 * MIB + 8192;

#[test]
fn clean_reads_return_the_backing_bytes() {
    if !can_mount("clean_reads_return_the_backing_bytes") {
        return;
    }
    let scratch = Scratch::new();
    let fs = scratch.mount(vec![BAD]);
    let image = File::open(fs.file()).unwrap();
    for range in [
        0..4096,
        1000..MIB + 5000,
        2 * MIB..3 * MIB + 4096,
        BAD.end..IMAGE_LEN,
    ] {
        let mut buf = vec![0xee; (range.end - range.start) as usize];
        image.read_exact_at(&mut buf, range.start).unwrap();
        assert!(buf == expected(range.clone()), "bytes differ in {range:?}");
    }
    assert_eq!(fs.reads_failed(), 0);
}

#[test]
fn reads_overlapping_a_bad_range_fail_with_eio_every_time() {
    if !can_mount("reads_overlapping_a_bad_range_fail_with_eio_every_time") {
        return;
    }
    let scratch = Scratch::new();
    let fs = scratch.mount(vec![BAD]);
    let image = File::open(fs.file()).unwrap();
    let mut buf = vec![0; 4096];
    for (attempt, offset) in [BAD.start - 1, BAD.start + 10, BAD.end - 1, BAD.start + 10]
        .into_iter()
        .enumerate()
    {
        let err = image.read_at(&mut buf, offset).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "read at {offset}");
        // No page cache: each read, even a repeated one, reaches faultfs.
        assert_eq!(fs.reads_failed(), attempt as u64 + 1);
    }
}

#[test]
fn read_to_end_stops_with_eio_at_the_bad_range() {
    if !can_mount("read_to_end_stops_with_eio_at_the_bad_range") {
        return;
    }
    let scratch = Scratch::new();
    let fs = scratch.mount(vec![BAD]);
    let mut data = Vec::new();
    let err = File::open(fs.file())
        .unwrap()
        .read_to_end(&mut data)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    // Everything before the request that failed came through intact.
    assert!(data.len() as u64 <= BAD.start);
    assert!(data == expected(0..data.len() as u64));
    assert!(fs.reads_failed() >= 1);
}

#[test]
fn large_reads_work() {
    if !can_mount("large_reads_work") {
        return;
    }
    let scratch = Scratch::new();
    let fs = scratch.mount(vec![]);
    let image = File::open(fs.file()).unwrap();
    let mut buf = vec![0; (IMAGE_LEN) as usize];
    // One read(2) of the whole image; the kernel may split it, but it must
    // not come back short.
    let n = image.read_at(&mut buf, 0).unwrap();
    assert!(n >= 128 * 1024, "read(2) of 4 MiB returned {n} bytes");
    image.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf == expected(0..IMAGE_LEN));
}

#[test]
fn stat_reports_the_backing_size_and_blocks() {
    if !can_mount("stat_reports_the_backing_size_and_blocks") {
        return;
    }
    let scratch = Scratch::new();
    let fs = scratch.mount(vec![]);
    let backing = std::fs::metadata(scratch.backing()).unwrap();
    let served = std::fs::metadata(fs.file()).unwrap();
    assert!(served.is_file());
    assert_eq!(served.len(), IMAGE_LEN);
    assert_eq!(served.blocks(), backing.blocks());
    assert!(served.blocks() * 512 < IMAGE_LEN, "backing is not sparse");
    assert!(served.permissions().readonly());
}

#[test]
fn seek_data_and_hole_see_the_backing_holes() {
    if !can_mount("seek_data_and_hole_see_the_backing_holes") {
        return;
    }
    let scratch = Scratch::new();
    let fs = scratch.mount(vec![BAD]);
    let image = File::open(fs.file()).unwrap();
    let seek = |pos| rustix::fs::seek(&image, pos);
    assert_eq!(seek(SeekFrom::Data(0)), Ok(0));
    assert_eq!(seek(SeekFrom::Hole(0)), Ok(MIB));
    assert_eq!(seek(SeekFrom::Data(MIB)), Ok(3 * MIB));
    assert_eq!(seek(SeekFrom::Hole(3 * MIB)), Ok(IMAGE_LEN));
    assert_eq!(
        seek(SeekFrom::Data(IMAGE_LEN)),
        Err(rustix::io::Errno::NXIO)
    );
}

#[test]
fn writes_are_refused() {
    if !can_mount("writes_are_refused") {
        return;
    }
    let scratch = Scratch::new();
    let fs = scratch.mount(vec![]);
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(fs.file())
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
}
