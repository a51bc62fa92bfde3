//! Digging: punching every all-zero block of a file out in place, so a
//! fully allocated image (an io.Copy'd `passive.img`) gives its zeros back
//! to the filesystem. The content never changes; only allocation does.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use crate::error::{Error, IoContext};
use crate::layout::{Layout, SourceKind};
use crate::mover::{self, Job, Source, WriteMode};
use crate::progress::{Cancel, Progress};
use crate::report::DigReport;
use crate::sys;

/// Punches every all-zero filesystem block of the file at `path` out
/// (`PUNCH_HOLE | KEEP_SIZE`) and reports the allocation given back.
pub fn dig(path: &Path, cancel: &Cancel, progress: &dyn Progress) -> Result<DigReport, Error> {
    let started = Instant::now();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path, "open for writing")?;
    let meta = file.metadata().at(path, "stat")?;
    if !meta.is_file() {
        return Err(Error::Unsupported {
            path: path.into(),
            reason: "dig needs a regular file".into(),
        });
    }
    let before = meta.blocks() * 512;
    let punched = punch_zero_blocks(&file, path, cancel, progress)?;
    let meta = file.metadata().at(path, "stat")?;
    Ok(DigReport {
        path: path.into(),
        size: meta.len(),
        allocated_before: before,
        allocated_after: meta.blocks() * 512,
        punched,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Punches the all-zero blocks of an open, writable regular file; returns
/// the bytes punched. Holes are skipped (SEEK_DATA), so a sparse file costs
/// only its data.
pub(crate) fn punch_zero_blocks(
    file: &File,
    path: &Path,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Result<u64, Error> {
    let layout = Layout::from_file(file, path)?;
    if layout.kind != SourceKind::Regular {
        return Err(Error::Unsupported {
            path: path.into(),
            reason: "this filesystem cannot report or punch holes".into(),
        });
    }
    let (_, block) = sys::fs_space(file).at(path, "statvfs")?;
    let extents: Vec<(u64, u64)> = layout
        .extents
        .iter()
        .map(|e| (e.offset, e.length))
        .collect();
    // Small holes between extents read as zeros; punching them again is a
    // no-op, and far cheaper than a hand-off per small extent.
    let ranges = mover::coalesce(&extents, mover::MERGE_GAP);
    let job = Job {
        src_path: path,
        dst_path: path,
        zero_block: Some(block as usize),
        dst_block: block,
        mode: WriteMode::Punch,
        fill_to: Some(layout.size),
        progress,
        cancel,
    };
    sys::advise_sequential(file);
    progress.start("dig", layout.data_bytes());
    let moved = mover::move_data(
        Source::Ranges {
            file,
            ranges: &ranges,
            size: layout.size,
        },
        file,
        &job,
    );
    progress.finish();
    let punched = moved?.zero_skipped;
    free_unwritten(file, path, layout.size)?;
    Ok(punched)
}

/// Fallocated but unwritten extents read as zeros and SEEK_DATA calls them
/// holes, so the pass above never reads them, yet they stay allocated.
/// They are punched as FIEMAP lists them: its SYNC flag first writes back
/// dirty pages, so data written into such an extent meanwhile has made it
/// written, not unwritten. (SEEK_DATA cannot be asked instead: once
/// readahead has cached an unwritten extent's pages it reports it as data.)
fn free_unwritten(file: &File, path: &Path, size: u64) -> Result<(), Error> {
    let Some(map) = sys::fiemap(file, size).at(path, "fiemap")? else {
        return Ok(());
    };
    let (_, block) = sys::fs_space(file).at(path, "statvfs")?;
    let end = size.div_ceil(block) * block;
    for e in map.iter().filter(|e| e.unwritten && e.logical < size) {
        let len = (e.logical + e.length).min(end) - e.logical;
        sys::punch_hole(file, e.logical, len)
            .at(path, &format!("punch hole at offset {}", e.logical))?;
    }
    Ok(())
}
