//! Measuring, fingerprinting and copying whole directory trees.
//!
//! Walks never follow symlinks and visit entries in byte order of their
//! names. A `lost+found` directory directly under the root is skipped: it
//! is furniture of a fresh ext filesystem, not part of any tree we put there.

use std::fs::{File, Metadata};
use std::hash::{DefaultHasher, Hasher};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use rustix::fs::SeekFrom;
use rustix::io::Errno;

use super::{TreeStats, BLOCK};
use crate::tools::{command, run_tool};

/// Counts what the tree under `root` holds, reading file data to find zero
/// blocks (holes are skipped via `SEEK_HOLE`, and count as zeros).
///
/// For a tree from [`super::generate_tree`] this equals the stats it
/// returned, so it checks a copy against the original cheaply.
pub fn tree_stats(root: &Path) -> anyhow::Result<TreeStats> {
    let mut stats = TreeStats::default();
    let mut buf = vec![0u8; 1 << 20];
    walk(root, root, &mut |_, path, meta| {
        let kind = meta.file_type();
        if kind.is_dir() {
            stats.dirs += 1;
        } else if kind.is_symlink() {
            stats.symlinks += 1;
        } else if kind.is_file() {
            stats.files += 1;
            stats.bytes += meta.len();
            stats.zero_bytes += zero_bytes(path, meta.len(), &mut buf)?;
        }
        Ok(())
    })?;
    Ok(stats)
}

/// A fingerprint of the tree under `root`: names, types, permission bits,
/// symlink targets and file contents (not owners or times). Holes hash
/// like the zeros they read as.
///
/// It uses the standard library's hasher, which may change between Rust
/// releases: compare digests made by the same build, never store them.
pub fn tree_digest(root: &Path) -> anyhow::Result<u64> {
    let mut hasher = DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    walk(root, root, &mut |relative, path, meta| {
        hasher.write(relative.as_os_str().as_bytes());
        hasher.write_u8(0);
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(path)
                .with_context(|| format!("cannot read link {}", path.display()))?;
            hasher.write_u8(b'l');
            hasher.write(target.as_os_str().as_bytes());
        } else {
            hasher.write_u8(if kind.is_dir() { b'd' } else { b'f' });
            hasher.write_u32(meta.permissions().mode() & 0o7777);
        }
        if kind.is_file() {
            hasher.write_u64(meta.len());
            let mut file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            loop {
                let n = file
                    .read(&mut buf)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if n == 0 {
                    break;
                }
                hasher.write(&buf[..n]);
            }
        }
        Ok(())
    })?;
    Ok(hasher.finish())
}

/// Copies the tree `src` into `dst` (created if missing) preserving modes,
/// times, links and holes (`cp -a`, or `rsync -a` without cp), and returns
/// the stats of the copy.
///
/// For tests that want a real directory tree (say, a root filesystem on
/// the host) instead of a generated one.
pub fn copy_tree(src: &Path, dst: &Path) -> anyhow::Result<TreeStats> {
    if !src.is_dir() {
        bail!("{} is not a directory", src.display());
    }
    std::fs::create_dir_all(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    // "src/." copies the contents of src, not src itself.
    let mut cmd = match command("cp") {
        Ok(mut cp) => {
            cp.arg("-a").arg("--").arg(src.join(".")).arg(dst);
            cp
        }
        Err(_) => {
            let mut rsync = command("rsync")?;
            let mut from = src.as_os_str().to_owned();
            from.push("/");
            rsync.arg("-a").arg("--").arg(from).arg(dst);
            rsync
        }
    };
    run_tool(&mut cmd)
        .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
    tree_stats(dst)
}

type Visit<'a> = dyn FnMut(&Path, &Path, &Metadata) -> anyhow::Result<()> + 'a;

/// Calls `visit(relative, path, metadata)` for every entry under `dir`,
/// parents before children, siblings in byte order of their names.
fn walk(root: &Path, dir: &Path, visit: &mut Visit<'_>) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot stat {}", path.display()))?;
        let relative = path.strip_prefix(root).expect("walk stays under root");
        if meta.is_dir() && relative == Path::new("lost+found") {
            continue;
        }
        visit(relative, &path, &meta)?;
        if meta.is_dir() {
            walk(root, &path, visit)?;
        }
    }
    Ok(())
}

/// Bytes of `path` in all-zero `BLOCK`s (a partial last block counts if all
/// zeros). Only the blocks touching data extents are read.
fn zero_bytes(path: &Path, size: u64, buf: &mut [u8]) -> anyhow::Result<u64> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut zeros = 0;
    let mut covered = 0;
    for (start, end) in data_blocks(&file, size)
        .with_context(|| format!("cannot map the data of {}", path.display()))?
    {
        covered += end - start;
        let mut at = start;
        while at < end {
            let len = (end - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..len], at)
                .with_context(|| format!("cannot read {}", path.display()))?;
            zeros += buf[..len]
                .chunks(BLOCK as usize)
                .filter(|block| block.iter().all(|&b| b == 0))
                .map(|block| block.len() as u64)
                .sum::<u64>();
            at += len as u64;
        }
    }
    // Whatever no data extent touches is hole, and reads as zeros.
    Ok(zeros + (size - covered))
}

/// The data extents of `file`, widened to whole `BLOCK`s (clipped at
/// `size`) and merged; sorted, disjoint `(start, end)` pairs.
fn data_blocks(file: &File, size: u64) -> std::io::Result<Vec<(u64, u64)>> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut at = 0;
    while at < size {
        let start = match rustix::fs::seek(file, SeekFrom::Data(at)) {
            Ok(start) => start,
            // No data after `at`.
            Err(Errno::NXIO) => break,
            // No SEEK_DATA here: treat everything as data.
            Err(Errno::INVAL) => return Ok(vec![(0, size)]),
            Err(e) => return Err(e.into()),
        };
        let end = rustix::fs::seek(file, SeekFrom::Hole(start))?.min(size);
        let (lo, hi) = (start / BLOCK * BLOCK, end.div_ceil(BLOCK) * BLOCK);
        let hi = hi.min(size);
        match ranges.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => ranges.push((lo, hi)),
        }
        at = end;
    }
    Ok(ranges)
}
