//! The report folder of a run: `report.md` and `report.html` for people
//! (tables, timings, an overview map, one allocation map per copier and
//! per upgrade, linked relatively), `report.json` for tools, the maps as
//! SVG files drawn by `allocmap`, and under `logs/` the full story of each
//! upgrade (steps, problems, everything fsck said).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use allocmap::{render_svg, MapOptions};
use anyhow::Context;
use quick_xml::escape::escape;

use crate::measure::du_h;
use crate::run::{CopierRun, ScenarioReport};
use crate::table::{self, Table};
use crate::upgrade::UpgradeOutcome;

/// Writes `report.md`, `report.html`, `report.json`, `overview.svg` and
/// `<copier>.svg` files into `dir`
/// (created, and emptied of earlier files of these kinds); returns the
/// path of `report.md`.
pub fn write_report(report: &ScenarioReport, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    remove_old_reports(dir)?;
    remove_old_reports(&dir.join("logs"))?;
    let mut doc = Doc::default();
    doc.title(&report.scenario.name);
    doc.para(&report.scenario.description);
    doc.para(&table::headline(report));
    doc.table("Images after the install", &table::install_table(report));
    if let Some(svg) = overview_svg(report) {
        write(&dir.join("overview.svg"), svg)?;
        doc.image("overview.svg", "active.img and every copier's passive.img");
    }
    if let Some(line) = table::estimate_line(report) {
        doc.para(&line);
    }
    if let Some(matrix) = table::upgrade_matrix(report) {
        doc.table("Upgrade verdicts", &matrix);
        doc.para(
            "upgraded: it fit and every image reads back right; refused: the strategy said no \
             and nothing changed; CORRUPTED: anything else. The gate fails a copier whose copy \
             wastes space or whose upgrade comes out corrupted.",
        );
    }
    if let Some(steps) = table::upgrade_steps_table(report, table::FreeSpace::Figures) {
        doc.table("COS_STATE around each upgrade step", &steps);
    }
    if let Some(images) = table::upgraded_images_table(report, table::FreeSpace::Figures) {
        doc.table("Images after the upgrades", &images);
        doc.para("Ratios are to the installed active.img.");
    }
    if let Some(errors) = table::estimate_table(report).filter(|t| !t.rows.is_empty()) {
        doc.table(
            "The estimate against what transition.img allocated",
            &errors,
        );
    }
    doc.heading(2, "Copiers");
    for run in &report.runs {
        let svg_name = format!("{}.svg", file_stem(&run.copier));
        write(
            &dir.join(&svg_name),
            render_svg(&run_maps(run), &map_options(report, run)),
        )?;
        let verdict = if run.passed() { "pass" } else { "FAIL" };
        doc.heading(3, &format!("{} ({verdict})", run.copier));
        doc.para(&run.description);
        doc.bullets(&copier_facts(run));
        doc.image(&svg_name, &format!("allocation map for {}", run.copier));
        for upgrade in &run.upgrades {
            let stem = format!(
                "{}-{}",
                file_stem(&run.copier),
                file_stem(&upgrade.strategy)
            );
            write(
                &dir.join(format!("{stem}.svg")),
                render_svg(
                    &upgrade_maps(run, upgrade),
                    &MapOptions {
                        title: Some(format!(
                            "{} on {}: {} + {} ({})",
                            report.scenario.name,
                            report.scenario.state.fs,
                            run.copier,
                            upgrade.strategy,
                            upgrade.verdict
                        )),
                        ..MapOptions::default()
                    },
                ),
            )?;
            let log = format!("logs/{stem}.log");
            write(&dir.join(&log), upgrade_log(run, upgrade))?;
            doc.heading(
                4,
                &format!("{} + {}: {}", run.copier, upgrade.strategy, upgrade.verdict),
            );
            doc.bullets(&upgrade_facts(upgrade, &log));
            doc.image(
                &format!("{stem}.svg"),
                &format!(
                    "images after each step: {} + {}",
                    run.copier, upgrade.strategy
                ),
            );
        }
    }
    write(&dir.join("report.md"), doc.md)?;
    write(
        &dir.join("report.html"),
        format!("{HTML_HEAD}{}</body></html>\n", doc.html),
    )?;
    let json = serde_json::to_string_pretty(report).context("cannot serialise the report")?;
    write(&dir.join("report.json"), json + "\n")?;
    Ok(dir.join("report.md"))
}

const HTML_HEAD: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sparsecp scenario report</title>\n\
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
th{background:#f3f3f3}img{max-width:100%;margin:0.5em 0 1.5em}</style></head><body>\n";

/// The same document written as Markdown and as HTML side by side.
#[derive(Default)]
struct Doc {
    md: String,
    html: String,
}

impl Doc {
    fn title(&mut self, text: &str) {
        self.heading(1, text);
    }

    fn heading(&mut self, level: usize, text: &str) {
        let _ = writeln!(self.md, "{} {text}\n", "#".repeat(level));
        let _ = writeln!(self.html, "<h{level}>{}</h{level}>", escape(text));
    }

    fn para(&mut self, text: &str) {
        let _ = writeln!(self.md, "{text}\n");
        let _ = writeln!(self.html, "<p>{}</p>", escape(text));
    }

    fn table(&mut self, heading: &str, table: &Table) {
        self.heading(2, heading);
        let _ = writeln!(self.md, "{}", table.to_markdown());
        self.html.push_str(&table.to_html());
    }

    fn bullets(&mut self, items: &[String]) {
        self.html.push_str("<ul>\n");
        for item in items {
            let _ = writeln!(self.md, "- {item}");
            let _ = writeln!(self.html, "<li>{}</li>", escape(item));
        }
        self.md.push('\n');
        self.html.push_str("</ul>\n");
    }

    fn image(&mut self, src: &str, alt: &str) {
        let _ = writeln!(self.md, "![{alt}]({src})\n");
        let _ = writeln!(
            self.html,
            "<img src=\"{}\" alt=\"{}\">",
            escape(src),
            escape(alt)
        );
    }
}

fn write(path: &Path, text: String) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// What happened to a copier's images, one fact per line.
fn copier_facts(run: &CopierRun) -> Vec<String> {
    let install = &run.install;
    let mut facts = vec![format!(
        "copy took {:.1} s; COS_STATE free {} before, {} after (empty: {})",
        install.copy_seconds,
        du_h(install.free_before),
        du_h(install.free_after),
        du_h(run.free_empty)
    )];
    if let Some(df) = &install.df_after {
        facts.push(format!("df of COS_STATE after the copy: {df}"));
    }
    for failure in &run.verdict.failures {
        facts.push(format!("gate: {}", failure.lines().next().unwrap_or("")));
    }
    facts
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

/// The bars of a copier's map: `active.img` and its `passive.img`.
fn run_maps(run: &CopierRun) -> Vec<allocmap::ImageMap> {
    let mut maps = vec![run.active.map("active.img (installed)")];
    if let Some(passive) = &run.install.passive {
        maps.push(passive.map(format!("passive.img ({})", run.copier)));
    }
    maps
}

/// The images after each step of an upgrade, on one scale.
fn upgrade_maps(run: &CopierRun, upgrade: &UpgradeOutcome) -> Vec<allocmap::ImageMap> {
    let mut maps = run_maps(run);
    let steps = [
        (&upgrade.dug_passive, "passive.img after dig-holes"),
        (&upgrade.transition, "transition.img as written"),
        (&upgrade.active, "active.img at the end"),
        (&upgrade.passive, "passive.img at the end"),
    ];
    for (facts, label) in steps {
        if let Some(facts) = facts {
            maps.push(facts.map(label));
        }
    }
    maps
}

/// What happened in one upgrade, one fact per line.
fn upgrade_facts(upgrade: &UpgradeOutcome, log: &str) -> Vec<String> {
    let mut facts = vec![upgrade.description.clone()];
    for step in &upgrade.steps {
        facts.push(format!(
            "{}: COS_STATE free {} before, {} after: {}",
            step.name,
            du_h(step.free_before),
            du_h(step.free_after),
            step.outcome
        ));
    }
    if !upgrade.fallback_kept {
        facts.push("the node had no fallback image (passive.img) during the upgrade".to_owned());
    }
    if let Some(error) = upgrade.estimate_error() {
        facts.push(format!(
            "estimate {} bytes, off by {:+.2}% from what transition.img allocated",
            upgrade.estimate.needed,
            error * 100.0
        ));
    }
    facts.extend(upgrade.problems.iter().map(|p| format!("problem: {p}")));
    facts.push(format!("full log: {log}"));
    facts
}

/// The full story of an upgrade, for `logs/`: steps, problems, and all
/// that fsck said about each image that was not clean.
fn upgrade_log(run: &CopierRun, upgrade: &UpgradeOutcome) -> String {
    let mut out = format!(
        "copier: {} ({})\nstrategy: {} ({})\nverdict: {}\n\nsteps:\n",
        run.copier, run.description, upgrade.strategy, upgrade.description, upgrade.verdict
    );
    for step in &upgrade.steps {
        let _ = writeln!(
            out,
            "  {}: free {} -> {} bytes: {}",
            step.name, step.free_before, step.free_after, step.outcome
        );
    }
    if let Some(refusal) = &upgrade.refusal {
        let _ = writeln!(out, "\nrefusal: {refusal}");
    }
    let _ = writeln!(out, "\nproblems:");
    for problem in &upgrade.problems {
        let _ = writeln!(out, "  - {problem}");
    }
    let images = [
        &upgrade.dug_passive,
        &upgrade.transition,
        &upgrade.active,
        &upgrade.passive,
    ];
    for facts in images.into_iter().flatten().filter(|f| !f.fsck_clean) {
        let _ = write!(out, "\ne2fsck -fn {}:\n{}\n", facts.name, facts.fsck_output);
    }
    out
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
            .is_some_and(|e| e == "svg" || e == "md" || e == "html" || e == "json" || e == "log");
        if ours && path.is_file() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}
