//! The report folder of a run: `report.md` for people (tables, timings and
//! one allocation map per copier, linked relatively), `report.json` for
//! tools, and the maps as SVG files drawn by `allocmap`.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use allocmap::{render_svg, MapOptions};
use anyhow::Context;

use crate::measure::du_h;
use crate::run::{CopierRun, ScenarioReport};
use crate::table;

/// `<workspace>/target/<kind>/<scenario>-<fs>`, where `kind` is
/// `scenario` or `gate`.
pub fn default_dir(kind: &str, report: &ScenarioReport) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(kind)
        .join(report.scenario.tag())
}

/// Writes `report.md`, `report.json` and `<copier>.svg` files into `dir`
/// (created, and emptied of earlier files of these kinds); returns the
/// path of `report.md`.
pub fn write_report(report: &ScenarioReport, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    remove_old_reports(dir)?;
    let mut md = format!("# {}\n\n", report.scenario.name);
    let _ = writeln!(md, "{}\n", report.scenario.description);
    let _ = writeln!(md, "{}\n", table::headline(report));
    md.push_str("## Images after the install\n\n");
    md.push_str(&table::install_table(report).to_markdown());
    if let Some(svg) = overview_svg(report) {
        std::fs::write(dir.join("overview.svg"), svg)
            .with_context(|| format!("cannot write {}", dir.join("overview.svg").display()))?;
        md.push_str(
            "
![active.img and every copier's passive.img](overview.svg)
",
        );
    }
    if let Some(upgrade) = table::upgrade_table(report, table::FreeSpace::Figures) {
        md.push_str("\n## COS_STATE during the upgrade\n\n");
        md.push_str(&upgrade.to_markdown());
    }
    if let Some(images) = table::upgraded_images_table(report) {
        md.push_str("\n## Images after the upgrade\n\n");
        md.push_str("Ratios are to the installed active.img.\n\n");
        md.push_str(&images.to_markdown());
    }
    md.push_str("\n## Copiers\n\n");
    for run in &report.runs {
        let svg_name = format!("{}.svg", file_stem(&run.copier));
        let svg = render_svg(&run_maps(run), &map_options(report, run));
        let svg_path = dir.join(&svg_name);
        std::fs::write(&svg_path, svg)
            .with_context(|| format!("cannot write {}", svg_path.display()))?;
        copier_section(&mut md, run, &svg_name);
    }
    let md_path = dir.join("report.md");
    std::fs::write(&md_path, md).with_context(|| format!("cannot write {}", md_path.display()))?;
    let json_path = dir.join("report.json");
    let json = serde_json::to_string_pretty(report).context("cannot serialise the report")?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    Ok(md_path)
}

fn copier_section(md: &mut String, run: &CopierRun, svg_name: &str) {
    let verdict = if run.verdict.passed { "pass" } else { "FAIL" };
    let _ = writeln!(md, "### {} ({verdict})\n", run.copier);
    let _ = writeln!(md, "{}\n", run.description);
    let install = &run.install;
    let _ = writeln!(
        md,
        "- copy took {:.1} s; COS_STATE free {} before, {} after (empty: {})",
        install.copy_seconds,
        du_h(install.free_before),
        du_h(install.free_after),
        du_h(run.free_empty)
    );
    if let Some(upgrade) = &run.upgrade {
        let _ = writeln!(
            md,
            "- upgrade: COS_STATE free {} before, {} after writing transition.img, {} at the end: {}",
            du_h(upgrade.free_before),
            du_h(upgrade.free_after_transition),
            du_h(upgrade.free_after),
            if upgrade.fits() { "fits" } else { "**out of space**" }
        );
    }
    for failure in &run.verdict.failures {
        let first = failure.lines().next().unwrap_or("");
        let _ = writeln!(md, "- gate: {first}");
    }
    let _ = writeln!(md, "\n![allocation map for {}]({svg_name})\n", run.copier);
}

/// One picture of active.img above every copier's passive.img, on the same
/// scale, so the filled holes of an io.Copy show at a glance.
fn overview_svg(report: &ScenarioReport) -> Option<String> {
    let first = report.runs.first()?;
    let mut maps = vec![first.active.map("active.img (installed)")];
    for run in &report.runs {
        if let Some(passive) = &run.install.passive {
            maps.push(passive.map(format!("passive.img ({})", run.copier)));
        }
    }
    let title = format!(
        "{} on {}: active.img and passive.img by copier",
        report.scenario.name, report.scenario.state.fs
    );
    Some(render_svg(
        &maps,
        &MapOptions {
            title: Some(title),
            ..MapOptions::default()
        },
    ))
}

/// The bars of a copier's map: `active.img`, `passive.img`, and for
/// upgrades `transition.img` as it was written.
fn run_maps(run: &CopierRun) -> Vec<allocmap::ImageMap> {
    let mut maps = vec![run.active.map("active.img (installed)")];
    if let Some(passive) = &run.install.passive {
        maps.push(passive.map(format!("passive.img ({})", run.copier)));
    }
    if let Some(transition) = run.upgrade.as_ref().and_then(|u| u.transition.as_ref()) {
        maps.push(transition.map("transition.img (upgrade)"));
    }
    maps
}

fn map_options(report: &ScenarioReport, run: &CopierRun) -> MapOptions {
    MapOptions {
        title: Some(format!(
            "{} on {}: {}",
            report.scenario.name, report.scenario.state.fs, run.copier
        )),
        ..MapOptions::default()
    }
}

/// A file-name-safe form of a copier name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Removes report files of an earlier run, so that no stale map remains.
fn remove_old_reports(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let ours = path
            .extension()
            .is_some_and(|e| e == "svg" || e == "md" || e == "json");
        if ours && path.is_file() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}
