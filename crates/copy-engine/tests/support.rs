//! Building files of known layout, and checking copies of them with means
//! independent of the engine (plain reads, lseek, stat, GNU cp).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use copy_engine::{CopyOptions, SparseMode};
use rustix::fs::{fallocate, seek, FallocateFlags, SeekFrom};

/// One piece of a layout.
#[derive(Debug, Clone, Copy)]
pub enum Piece {
    /// Pseudo-random bytes (never an all-zero block) written at an offset.
    Data(u64, u64),
    /// Zeros written (allocated, all-zero).
    Zeros(u64, u64),
    /// Allocated but unwritten (fallocate mode 0).
    Unwritten(u64, u64),
    /// Allocated past end of file (fallocate KEEP_SIZE).
    BeyondEof(u64, u64),
}

/// A file to build: its size and pieces, in order.
#[derive(Debug, Clone)]
pub struct Spec {
    pub size: u64,
    pub pieces: Vec<Piece>,
}

/// Writes `spec` to `path`.
pub fn build(path: &Path, spec: &Spec) {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    f.set_len(spec.size).unwrap();
    for &p in &spec.pieces {
        match p {
            Piece::Data(off, len) => write_pattern(&f, off, len, off ^ 0x9e37_79b9),
            Piece::Zeros(off, len) => write_chunks(&f, off, len, |_| 0),
            Piece::Unwritten(off, len) => fallocate(&f, FallocateFlags::empty(), off, len).unwrap(),
            Piece::BeyondEof(off, len) => {
                fallocate(&f, FallocateFlags::KEEP_SIZE, off, len).unwrap()
            }
        }
    }
}

fn write_pattern(f: &File, off: u64, len: u64, seed: u64) {
    let mut x = seed | 1;
    write_chunks(f, off, len, |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x as u8) | 1 // never zero: no accidental all-zero block
    });
}

fn write_chunks(f: &File, off: u64, len: u64, mut byte: impl FnMut(u64) -> u8) {
    let mut pos = off;
    let mut buf = vec![0u8; 1 << 20];
    while pos < off + len {
        let n = ((off + len - pos) as usize).min(buf.len());
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = byte(pos + i as u64);
        }
        f.write_all_at(&buf[..n], pos).unwrap();
        pos += n as u64;
    }
}

/// Data ranges by lseek, written here independently of the engine.
pub fn data_ranges(path: &Path) -> Vec<(u64, u64)> {
    let f = File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < size {
        let Ok(start) = seek(&f, SeekFrom::Data(pos)) else {
            break;
        };
        let end = seek(&f, SeekFrom::Hole(start)).unwrap().min(size);
        out.push((start, end));
        pos = end;
    }
    out
}

/// Holes: the complement of [`data_ranges`].
pub fn holes(path: &Path) -> Vec<(u64, u64)> {
    let size = std::fs::metadata(path).unwrap().len();
    let mut out = Vec::new();
    let mut pos = 0;
    for (s, e) in data_ranges(path) {
        if s > pos {
            out.push((pos, s));
        }
        pos = e;
    }
    if pos < size {
        out.push((pos, size));
    }
    out
}

/// `st_blocks * 512`.
pub fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// `st_blocks * 512` once the file is written back: delayed allocation
/// adds extent-tree blocks when the kernel writes the data out, at a time
/// that depends on how busy the machine is, so comparisons of two files'
/// allocation are fair only after both are synced.
pub fn settled_allocation(path: &Path) -> u64 {
    File::open(path).unwrap().sync_all().unwrap();
    allocated(path)
}

/// Asserts identical size and bytes. Files up to 1 GiB are read whole;
/// larger ones over the union of their data ranges (holes read as zeros
/// in both by definition).
pub fn assert_same_content(a: &Path, b: &Path) {
    let (sa, sb) = (
        std::fs::metadata(a).unwrap().len(),
        std::fs::metadata(b).unwrap().len(),
    );
    assert_eq!(sa, sb, "sizes of {} and {}", a.display(), b.display());
    let ranges = if sa <= 1 << 30 {
        vec![(0, sa)]
    } else {
        let mut r = data_ranges(a);
        r.extend(data_ranges(b));
        r.sort_unstable();
        r
    };
    let (fa, fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    for (start, end) in ranges {
        let mut pos = start;
        while pos < end {
            let n = ((end - pos) as usize).min(ba.len());
            fa.read_exact_at(&mut ba[..n], pos).unwrap();
            fb.read_exact_at(&mut bb[..n], pos).unwrap();
            if ba[..n] != bb[..n] {
                let i = ba[..n]
                    .iter()
                    .zip(&bb[..n])
                    .position(|(x, y)| x != y)
                    .unwrap();
                panic!(
                    "{} and {} differ at offset {}",
                    a.display(),
                    b.display(),
                    pos + i as u64
                );
            }
            pos += n as u64;
        }
    }
}

/// Asserts that every hole of `src` is a hole of `dst`.
pub fn assert_holes_kept(src: &Path, dst: &Path) {
    let data = data_ranges(dst);
    for (hs, he) in holes(src) {
        for &(ds, de) in &data {
            assert!(
                de <= hs || ds >= he,
                "hole {hs}..{he} of the source is data {ds}..{de} in {}",
                dst.display()
            );
        }
    }
}

/// The allocated all-zero blocks of `path` (at `block`), `(start, end)`.
fn allocated_zero_blocks(path: &Path, block: u64) -> Vec<(u64, u64)> {
    let f = File::open(path).unwrap();
    let mut buf = vec![0u8; block as usize];
    let mut zeros = Vec::new();
    for (s, e) in data_ranges(path) {
        let mut pos = s;
        while pos < e {
            let n = ((e - pos) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], pos).unwrap();
            if buf[..n].iter().all(|&b| b == 0) {
                zeros.push((pos, pos + n as u64));
            }
            pos += n as u64;
        }
    }
    zeros
}

/// Asserts that no allocated block of `path` is all zeros (at `block`).
pub fn assert_no_zero_blocks(path: &Path, block: u64) {
    if let Some((pos, _)) = allocated_zero_blocks(path, block).first() {
        panic!("{} has an allocated zero block at {pos}", path.display());
    }
}

/// Asserts that every allocated all-zero block of `copy` (at `block`) is
/// allocated in `src` too: the copy adds no allocated zeros of its own.
/// Weaker than [`assert_no_zero_blocks`] where the source itself allocates
/// zeros, which it may do without being asked: xfs on 6.1 and 6.12
/// allocates a whole 16 KiB folio for a store of a few bytes through a
/// shared mapping (docs/matrix/report.md). `src` is synced first, so its
/// allocation is the one written back.
pub fn assert_no_zero_blocks_beyond_source(copy: &Path, src: &Path, block: u64) {
    File::open(src).unwrap().sync_all().unwrap();
    let allocated = data_ranges(src);
    let in_source = |start: u64, end: u64| {
        // The ranges are sorted and disjoint: the last one starting at or
        // before `start` is the only one that can cover it.
        let i = allocated.partition_point(|&(s, _)| s <= start);
        i > 0 && allocated[i - 1].1 >= end
    };
    for (start, end) in allocated_zero_blocks(copy, block) {
        assert!(
            in_source(start, end),
            "{} has an allocated zero block at {start} where {} has a hole",
            copy.display(),
            src.display()
        );
    }
}

/// The allocation GNU cp's copy of `src` has with `--sparse=MODE`.
pub fn cp_allocation(src: &Path, mode: &str) -> u64 {
    let dst = src.with_extension(format!("cp-{mode}"));
    let st = Command::new("cp")
        .arg(format!("--sparse={mode}"))
        .arg(src)
        .arg(&dst)
        .status()
        .unwrap();
    assert!(st.success(), "cp --sparse={mode} failed");
    // Measured once written back, as our copies are (see `settled_allocation`).
    let a = settled_allocation(&dst);
    std::fs::remove_file(&dst).unwrap();
    a
}

/// Like [`cp_allocation`], with cp's copy made in `dir` (for a source on a
/// read-only filesystem).
pub fn cp_allocation_into(src: &Path, dir: &Path, mode: &str) -> u64 {
    let dst = dir.join(format!("cp-{mode}"));
    let st = Command::new("cp")
        .arg(format!("--sparse={mode}"))
        .arg(src)
        .arg(&dst)
        .status()
        .unwrap();
    assert!(st.success(), "cp --sparse={mode} failed");
    // Measured once written back, as our copies are (see `settled_allocation`).
    let a = settled_allocation(&dst);
    std::fs::remove_file(&dst).unwrap();
    a
}

/// Reads a whole file (small files only).
pub fn read_all(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    File::open(path).unwrap().read_to_end(&mut v).unwrap();
    v
}

/// Options for one sparse mode with defaults otherwise.
pub fn opts(mode: SparseMode) -> CopyOptions {
    CopyOptions {
        sparse: mode,
        ..CopyOptions::default()
    }
}

/// Fully allocated: data covers [0, size) rounded to blocks.
pub fn assert_fully_allocated(path: &Path) {
    let size = std::fs::metadata(path).unwrap().len();
    assert!(holes(path).is_empty(), "{} has holes", path.display());
    assert!(
        allocated(path) >= size,
        "{} allocates {} < size {size}",
        path.display(),
        allocated(path)
    );
}

/// The temporaries of ours (`.NAME.sparsecp-PID-N.tmp`) left in `dir`.
pub fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".sparsecp-"))
        .collect()
}

/// A [`copy_engine::Progress`] that runs `action` once, on the engine's
/// writer thread, as soon as `after` bytes have been reported: a change
/// made exactly mid-copy while the reader thread keeps reading ahead.
pub struct MidCopy<F: Fn() + Sync> {
    after: u64,
    done: std::sync::atomic::AtomicU64,
    fired: std::sync::atomic::AtomicBool,
    action: F,
}

impl<F: Fn() + Sync> MidCopy<F> {
    pub fn new(after: u64, action: F) -> Self {
        MidCopy {
            after,
            done: 0.into(),
            fired: false.into(),
            action,
        }
    }

    /// Whether the action ran.
    pub fn fired(&self) -> bool {
        self.fired.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl<F: Fn() + Sync> copy_engine::Progress for MidCopy<F> {
    fn advance(&self, bytes: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        let done = self.done.fetch_add(bytes, SeqCst) + bytes;
        if done >= self.after && !self.fired.swap(true, SeqCst) {
            (self.action)();
        }
    }
}

/// A filesystem mounted with mount(8) (tmpfs, squashfs, bind mounts, which
/// testbed's `ScratchFs` does not make), unmounted on drop even on panic.
/// Field order is drop order: the mount, then its loop device, if any.
pub struct ExtraMount {
    target: tempfile::TempDir,
    _device: Option<testbed::LoopDevice>,
}

impl ExtraMount {
    /// `mount -t FSTYPE -o OPTIONS SOURCE <new temporary directory>`;
    /// `device` is a loop device SOURCE lives on, detached after unmounting.
    pub fn new(
        fstype: &str,
        options: &str,
        source: &Path,
        device: Option<testbed::LoopDevice>,
    ) -> ExtraMount {
        let target = tempfile::Builder::new()
            .prefix(&format!("faults-{fstype}-"))
            .tempdir()
            .unwrap();
        let st = Command::new("mount")
            .args(["-t", fstype, "-o", options])
            .arg(source)
            .arg(target.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount -t {fstype} {}", source.display());
        ExtraMount {
            target,
            _device: device,
        }
    }

    pub fn path(&self) -> &Path {
        self.target.path()
    }
}

impl Drop for ExtraMount {
    fn drop(&mut self) {
        match Command::new("umount").arg(self.target.path()).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("cannot unmount {}: {other:?}", self.target.path().display()),
        }
    }
}
