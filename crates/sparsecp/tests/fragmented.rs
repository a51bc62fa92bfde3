//! Fragmented sources: a VM image after months of use holds 10^5 to 10^6
//! data extents, more than a layout lists (`copy_engine::layout::KEPT`),
//! so copy, verify, dig and inspect count them, then read the merged ranges
//! the count kept (packed, a few bytes each) or walk them again as they
//! go. Checked here on ext4 at 70,000 extents of 4 KiB between 4 KiB holes
//! (one merged range), then with 80,000 more between 64 KiB holes (80,001
//! ranges, kept packed; the device copy and the pipe, unmerged, walk):
//! content, holes and counts right, and peak memory (the child's maxrss,
//! from GNU time) within 16 MiB and not growing with the extents.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use testbed::{FsKind, ScratchFs, GIB, KIB, MIB};

use crate::support::{code, s, stderr, stdout};

/// The length of every data extent.
const BLOCK: u64 = 4 * KIB;
/// Extents of the first round: one every 2 blocks (merged into one range).
const DENSE: u64 = 70_000;
/// Every extent past [`DENSE`] is one block in 17: its 64 KiB hole is
/// more than the copy's merge gap (8 KiB), so each is a range of its own.
const SPREAD: u64 = 17;
/// The bound on peak memory at any extent count.
const RSS_BOUND: u64 = 16 * MIB;

/// Where data extent `i` starts.
fn offset(i: u64) -> u64 {
    if i < DENSE {
        i * 2 * BLOCK
    } else {
        DENSE * 2 * BLOCK + (i - DENSE) * SPREAD * BLOCK
    }
}

/// Writes data extents `from..to` into `path` and sets its size to end
/// with a hole after the last.
fn add_extents(path: &Path, from: u64, to: u64) {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .unwrap();
    let block: Vec<u8> = (0..BLOCK).map(|i| (i % 251) as u8 + 1).collect();
    for i in from..to {
        // Each block distinct, so a misplaced one is caught.
        let mut b = block.clone();
        b[..8].copy_from_slice(&i.to_le_bytes());
        f.write_all_at(&b, offset(i)).unwrap();
    }
    f.set_len(offset(to - 1) + 2 * BLOCK).unwrap();
    f.sync_all().unwrap();
}

/// Data extents `(count, bytes)` by SEEK_DATA/SEEK_HOLE, walked here.
fn data_extents(path: &Path) -> (u64, u64) {
    use rustix::fs::{seek, SeekFrom};
    let f = File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    let (mut count, mut bytes, mut pos) = (0, 0, 0);
    while pos < size {
        let Ok(start) = seek(&f, SeekFrom::Data(pos)) else {
            break;
        };
        let end = seek(&f, SeekFrom::Hole(start)).unwrap();
        count += 1;
        bytes += end - start;
        pos = end;
    }
    (count, bytes)
}

/// Whether two files hold the same bytes.
fn same_content(a: &Path, b: &Path) -> bool {
    let size = std::fs::metadata(a).unwrap().len();
    size == std::fs::metadata(b).unwrap().len() && same_prefix(a, b, size)
}

/// Whether the first `size` bytes of `a` and `b` (a file or device) match.
fn same_prefix(a: &Path, b: &Path, size: u64) -> bool {
    let (a, b) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(MIB) as usize;
        a.read_exact_at(&mut x[..n], pos).unwrap();
        b.read_exact_at(&mut y[..n], pos).unwrap();
        if x[..n] != y[..n] {
            return false;
        }
        pos += n as u64;
    }
    true
}

/// Whether `sparsecp copy SRC /dev/stdout` into a pipe gives SRC's bytes.
fn piped_copy_matches(src: &Path) -> bool {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sparsecp"))
        .args(["copy", s(src), "/dev/stdout"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut pipe = child.stdout.take().unwrap();
    let file = File::open(src).unwrap();
    let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let (mut pos, mut same) = (0u64, true);
    loop {
        let n = pipe.read(&mut x).unwrap();
        if n == 0 {
            break;
        }
        let got = file.read_at(&mut y[..n], pos).unwrap();
        same &= got == n && x[..n] == y[..n];
        pos += n as u64;
    }
    same &= child.wait().unwrap().success();
    same && pos == file.metadata().unwrap().len()
}

/// Runs `sparsecp ARGS` under GNU time; returns its output and peak RSS
/// in bytes.
fn measured(dir: &Path, args: &[&str]) -> (std::process::Output, u64) {
    let rss_file = dir.join("maxrss");
    let out = Command::new("time")
        .args([
            "-f",
            "%M",
            "-o",
            s(&rss_file),
            env!("CARGO_BIN_EXE_sparsecp"),
        ])
        .args(args)
        .output()
        .unwrap();
    let kib: u64 = std::fs::read_to_string(&rss_file)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (out, kib * KIB)
}

/// Copies, verifies, digs and inspects `src` (of `extents` extents);
/// checks every answer and returns each command's peak RSS.
fn round(dir: &Path, src: &Path, extents: u64) -> Vec<(&'static str, u64)> {
    let dst = dir.join("dst.img");
    let _ = std::fs::remove_file(&dst);
    let mut rss = Vec::new();

    let (out, peak) = measured(dir, &["copy", s(src), s(&dst)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    rss.push(("copy", peak));
    assert!(same_content(src, &dst), "copy differs at {extents} extents");
    assert_eq!(data_extents(&dst), (extents, extents * BLOCK), "holes kept");

    // Into a pipe: every extent walked unmerged, holes written as zeros.
    assert!(
        piped_copy_matches(src),
        "piped copy differs at {extents} extents"
    );

    let (out, peak) = measured(dir, &["verify", s(src), s(&dst)]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(&format!("one block per extent ({extents})")));
    rss.push(("verify", peak));

    let (out, peak) = measured(dir, &["dig", s(&dst)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    rss.push(("dig", peak));
    assert!(same_content(src, &dst), "dig changed content");
    assert_eq!(
        data_extents(&dst),
        (extents, extents * BLOCK),
        "dig kept data"
    );

    let (out, peak) = measured(dir, &["inspect", "--json", s(src)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    rss.push(("inspect --json", peak));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["extent_count"], extents);
    assert_eq!(v["data_bytes"], extents * BLOCK);
    let listed = v["extents"].as_array().unwrap();
    assert_eq!(listed.len() as u64, extents);
    assert_eq!(listed[1]["offset"], 2 * BLOCK);
    assert_eq!(listed[listed.len() - 1]["offset"], offset(extents - 1));

    let svg = dir.join("map.svg");
    let (out, peak) = measured(dir, &["inspect", "--map", s(&svg), s(src)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    rss.push(("inspect --map", peak));
    let text = stdout(&out);
    assert!(text.contains(&format!("in {extents} extents")), "{text}");
    assert!(
        text.contains(&format!("... {} more", extents - 10)),
        "{text}"
    );
    // The map has data columns (binned as the extents streamed).
    assert!(std::fs::read_to_string(&svg)
        .unwrap()
        .contains("class=\"data\""));
    rss
}

/// Onto a loop device full of 0xA5 bytes: past `KEPT` extents the device
/// copy walks the data and fills the holes between them from a second
/// walk; every byte of the device up to the image's size must be the
/// image's.
fn onto_a_device(dir: &Path, src: &Path) {
    let size = std::fs::metadata(src).unwrap().len();
    let backing = dir.join("device.img");
    let f = File::create(&backing).unwrap();
    let stale = vec![0xA5u8; MIB as usize];
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(MIB) as usize;
        f.write_all_at(&stale[..n], pos).unwrap();
        pos += n as u64;
    }
    drop(f);
    let device = testbed::LoopDevice::attach(&backing).unwrap();
    let out = crate::support::sparsecp(&["copy", s(src), s(device.path())]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        same_prefix(src, device.path(), size),
        "the device differs from the image"
    );
    drop(device);
    std::fs::remove_file(&backing).unwrap();
}

#[test]
fn many_extents_copy_verify_dig_and_inspect_in_bounded_memory() {
    testbed::require!("time");
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 2 * GIB).unwrap();
    let dir = fs.path();
    let src = dir.join("fragmented.img");
    let (small, large) = (DENSE, 150_000);
    add_extents(&src, 0, small);
    let before = round(dir, &src, small);
    onto_a_device(dir, &src);
    add_extents(&src, small, large);
    let after = round(dir, &src, large);
    for ((cmd, a), (_, b)) in before.iter().zip(&after) {
        eprintln!("{cmd}: peak RSS {a} bytes at {small} extents, {b} at {large}");
        assert!(*b <= RSS_BOUND, "{cmd}: {b} bytes at {large} extents");
        // Listing 80,000 more extents would take 24 bytes each (1.9 MB),
        // their ranges 16 more; a walk takes nothing more. What may grow is
        // the bounded list of merged ranges a counted layout keeps, packed
        // (`layout::MERGED_KEPT`): the second round's 80,001 ranges take
        // 5 bytes each (a 60 KiB gap, a 4 KiB length), 400 KB. And once,
        // not with the count: a copy's two sparse workers fill their 2 MiB
        // batch buffers with small extents (the first round's merge into
        // one range, read a chunk at a time).
        let batches = if *cmd == "copy" { 4 * MIB } else { 0 };
        assert!(
            *b < a + 2 * MIB + batches,
            "{cmd}: peak RSS grew from {a} to {b} bytes with the extent count"
        );
    }
}
