//! `sparsecp inspect`: allocation and extents of files, as text or JSON.

use std::fmt::Write as _;
use std::process::ExitCode;

use allocmap::{render_svg, ImageMap, MapOptions};
use anyhow::{Context, Result};
use copy_engine::bmap::BMAP_BLOCK_SIZE;
use copy_engine::{human_bytes as bytes, Bmap, Cancel, Layout};
use serde::Serialize;

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
    extent_count: usize,
    unwritten_extents: usize,
    shared_extents: usize,
    extents: Vec<ExtentOut>,
}

#[derive(Serialize)]
struct ExtentOut {
    offset: u64,
    length: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unwritten: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    shared: bool,
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
        .map(|f| Layout::of(f))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(svg) = &a.map {
        let images: Vec<ImageMap> = layouts
            .iter()
            .map(|l| {
                ImageMap::from_layout(
                    l,
                    l.path
                        .file_name()
                        .unwrap_or(l.path.as_os_str())
                        .to_string_lossy(),
                )
            })
            .collect();
        let opts = MapOptions {
            title: Some("Allocation map".into()),
            ..MapOptions::default()
        };
        std::fs::write(svg, render_svg(&images, &opts))
            .with_context(|| format!("{}: cannot write map", svg.display()))?;
    }
    if a.output.json {
        let out: Vec<Inspected> = layouts.iter().map(inspected).collect();
        let text = if out.len() == 1 {
            serde_json::to_string_pretty(&out[0])?
        } else {
            serde_json::to_string_pretty(&out)?
        };
        crate::out(&text);
    } else {
        for l in &layouts {
            crate::out(render(l, a.extents).trim_end());
        }
    }
    Ok(ExitCode::SUCCESS)
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
        extent_count: l.extents.len(),
        unwritten_extents: l.unwritten_extents(),
        shared_extents: l.shared_extents(),
        extents: l
            .extents
            .iter()
            .map(|e| ExtentOut {
                offset: e.offset,
                length: e.length,
                unwritten: e.unwritten,
                shared: e.shared,
            })
            .collect(),
    }
}

/// The text rendering of one file.
pub fn render(l: &Layout, all_extents: bool) -> String {
    let mut s = String::new();
    let pct = |n: u64| {
        if l.size == 0 {
            0.0
        } else {
            n as f64 * 100.0 / l.size as f64
        }
    };
    let _ = writeln!(s, "{}", l.path.display());
    let _ = writeln!(s, "  size       {} ({} bytes)", bytes(l.size), l.size);
    let _ = writeln!(
        s,
        "  allocated  {} ({} bytes, {:.1}% of size)",
        bytes(l.allocated),
        l.allocated,
        pct(l.allocated)
    );
    let _ = writeln!(
        s,
        "  data       {} in {} extents; holes {}",
        bytes(l.data_bytes()),
        l.extents.len(),
        bytes(l.hole_bytes())
    );
    if l.unwritten_extents() + l.shared_extents() > 0 {
        let _ = writeln!(
            s,
            "  flags      {} unwritten, {} shared",
            l.unwritten_extents(),
            l.shared_extents()
        );
    }
    if !l.kind.reports_holes() {
        let _ = writeln!(
            s,
            "  note       this source cannot report holes ({:?})",
            l.kind
        );
    }
    let shown = if all_extents {
        l.extents.len()
    } else {
        SHOWN.min(l.extents.len())
    };
    for e in &l.extents[..shown] {
        let flags = match (e.unwritten, e.shared) {
            (true, true) => " unwritten,shared",
            (true, false) => " unwritten",
            (false, true) => " shared",
            _ => "",
        };
        let _ = writeln!(s, "    {:>15} +{:<15}{flags}", e.offset, e.length);
    }
    if shown < l.extents.len() {
        let _ = writeln!(
            s,
            "    ... {} more (--extents lists all)",
            l.extents.len() - shown
        );
    }
    s
}
