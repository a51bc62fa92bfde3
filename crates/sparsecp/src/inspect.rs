//! `sparsecp inspect`: allocation and extents of files, as text or JSON.
//!
//! A file's layout is read counted, not listed ([`Layout::bounded`]): a VM
//! image of a million extents would otherwise cost 24 MB of list. What
//! lists every extent (`--extents`, `--json`, `--map`) walks the file again
//! and writes or bins each extent as it comes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use allocmap::{render_svg, ImageMap, MapOptions};
use anyhow::{Context, Result};
use copy_engine::bmap::BMAP_BLOCK_SIZE;
use copy_engine::layout::FlaggedExtents;
use copy_engine::{human_bytes as bytes, Bmap, Cancel, Extent, Layout};
use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::cli::InspectArgs;
use crate::progress::Bar;

/// How many extents the text output lists without `--extents`.
const SHOWN: usize = 10;

/// One file as `inspect --json` prints it.
#[derive(Serialize)]
struct Inspected<'a> {
    path: &'a std::path::Path,
    kind: copy_engine::SourceKind,
    size: u64,
    allocated: u64,
    block_size: u64,
    data_bytes: u64,
    hole_bytes: u64,
    extent_count: u64,
    unwritten_extents: u64,
    shared_extents: u64,
    extents: ExtentsOut<'a>,
}

/// Every extent of a file, serialized as it is walked.
struct ExtentsOut<'a>(&'a Layout);

#[derive(Serialize)]
struct ExtentOut {
    offset: u64,
    length: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unwritten: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    shared: bool,
}

impl Serialize for ExtentsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let mut failed = None;
        each_extent(self.0, &mut |e| {
            if failed.is_none() {
                let out = ExtentOut {
                    offset: e.offset,
                    length: e.length,
                    unwritten: e.unwritten,
                    shared: e.shared,
                };
                failed = seq.serialize_element(&out).err();
            }
        })
        .map_err(|e| S::Error::custom(format!("{e:#}")))?;
        if let Some(e) = failed {
            return Err(e);
        }
        seq.end()
    }
}

/// Calls `f` with every data extent of `l`, flagged: from its list when it
/// has them all, else from a new walk of the file.
fn each_extent(l: &Layout, f: &mut dyn FnMut(&Extent)) -> Result<()> {
    if l.complete() {
        l.extents.iter().for_each(f);
        return Ok(());
    }
    let file = File::open(&l.path).with_context(|| format!("{}: cannot open", l.path.display()))?;
    for e in FlaggedExtents::new(&file, l.size, true) {
        f(&e.with_context(|| format!("{}: cannot walk extents", l.path.display()))?);
    }
    Ok(())
}

pub fn run(a: &InspectArgs, cancel: &Cancel) -> Result<ExitCode> {
    if let Some(path) = &a.bmap {
        anyhow::ensure!(
            a.files.len() == 1,
            "--bmap writes the bmap of one file; {} were given",
            a.files.len()
        );
        let bar = Bar::new(!a.output.quiet && !a.output.json);
        let bmap = Bmap::create(&a.files[0], BMAP_BLOCK_SIZE, cancel, &bar)?;
        bmap.write(path)?;
        if !a.output.json && !a.output.quiet {
            crate::out(&format!(
                "{}: bmap of {}: {} ranges, {} of {} blocks of {} mapped",
                path.display(),
                a.files[0].display(),
                bmap.ranges.len(),
                bmap.mapped_blocks(),
                bmap.blocks_count(),
                bytes(bmap.block_size)
            ));
        }
    }
    let layouts = a
        .files
        .iter()
        .map(|f| Layout::bounded(f, SHOWN))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(svg) = &a.map {
        let opts = MapOptions {
            title: Some("Allocation map".into()),
            ..MapOptions::default()
        };
        let images = layouts
            .iter()
            .map(|l| image_map(l, opts.width_px))
            .collect::<Result<Vec<_>>>()?;
        std::fs::write(svg, render_svg(&images, &opts))
            .with_context(|| format!("{}: cannot write map", svg.display()))?;
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = if a.output.json {
        let all: Vec<Inspected> = layouts.iter().map(inspected).collect();
        if all.len() == 1 {
            serde_json::to_writer_pretty(&mut out, &all[0])
        } else {
            serde_json::to_writer_pretty(&mut out, &all)
        }
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(writeln!(out)?))
    } else {
        layouts
            .iter()
            .try_for_each(|l| render(l, a.extents, &mut out))
    };
    // A closed pipe (`| head`) is not an error of ours.
    match written.and_then(|()| Ok(out.flush()?)) {
        Err(e) if is_broken_pipe(&e) => {}
        other => other?,
    }
    Ok(ExitCode::SUCCESS)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// The map of one file, its extents binned as they are walked.
fn image_map(l: &Layout, columns: u32) -> Result<ImageMap> {
    let label = l
        .path
        .file_name()
        .unwrap_or(l.path.as_os_str())
        .to_string_lossy();
    if l.complete() {
        return Ok(ImageMap::from_layout(l, label));
    }
    let file = File::open(&l.path).with_context(|| format!("{}: cannot open", l.path.display()))?;
    let walk =
        FlaggedExtents::new(&file, l.size, true).map(|e| e.map(|e| allocmap::map_extent(&e)));
    ImageMap::from_extents(label, l.size, l.allocated, walk, columns)
        .with_context(|| format!("{}: cannot walk extents", l.path.display()))
}

fn inspected(l: &Layout) -> Inspected<'_> {
    Inspected {
        path: &l.path,
        kind: l.kind,
        size: l.size,
        allocated: l.allocated,
        block_size: l.block_size,
        data_bytes: l.data_bytes(),
        hole_bytes: l.hole_bytes(),
        extent_count: l.extent_count(),
        unwritten_extents: l.unwritten_extents(),
        shared_extents: l.shared_extents(),
        extents: ExtentsOut(l),
    }
}

/// Writes the text rendering of one file to `out`.
pub fn render(l: &Layout, all_extents: bool, out: &mut dyn Write) -> Result<()> {
    let pct = |n: u64| {
        if l.size == 0 {
            0.0
        } else {
            n as f64 * 100.0 / l.size as f64
        }
    };
    let count = l.extent_count();
    writeln!(out, "{}", l.path.display())?;
    writeln!(out, "  size       {} ({} bytes)", bytes(l.size), l.size)?;
    writeln!(
        out,
        "  allocated  {} ({} bytes, {:.1}% of size)",
        bytes(l.allocated),
        l.allocated,
        pct(l.allocated)
    )?;
    writeln!(
        out,
        "  data       {} in {} extents; holes {}",
        bytes(l.data_bytes()),
        count,
        bytes(l.hole_bytes())
    )?;
    if l.unwritten_extents() + l.shared_extents() > 0 {
        writeln!(
            out,
            "  flags      {} unwritten, {} shared",
            l.unwritten_extents(),
            l.shared_extents()
        )?;
    }
    if !l.kind.reports_holes() {
        writeln!(
            out,
            "  note       this source cannot report holes ({:?})",
            l.kind
        )?;
    }
    let line = |out: &mut dyn Write, e: &Extent| {
        let flags = match (e.unwritten, e.shared) {
            (true, true) => " unwritten,shared",
            (true, false) => " unwritten",
            (false, true) => " shared",
            _ => "",
        };
        writeln!(out, "    {:>15} +{:<15}{flags}", e.offset, e.length)
    };
    if all_extents {
        let mut failed = None;
        each_extent(l, &mut |e| {
            if failed.is_none() {
                failed = line(&mut *out, e).err();
            }
        })?;
        return failed.map_or(Ok(()), |e| Err(e.into()));
    }
    let shown = SHOWN.min(l.extents.len());
    for e in &l.extents[..shown] {
        line(out, e)?;
    }
    if (shown as u64) < count {
        writeln!(
            out,
            "    ... {} more (--extents lists all)",
            count - shown as u64
        )?;
    }
    Ok(())
}
