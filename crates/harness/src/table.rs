//! The tables a person reviews: per image, its logical size and allocation
//! as `du -h` prints them, the ratio to `active.img`, label and fsck; for
//! upgrades, the verdict of each copier under each strategy, COS_STATE's
//! free space around every step, and the images left behind.
//!
//! [`render_stable`] shows only what is deterministic for a given scenario
//! (sizes rounded as `du -h` does, ratios to two decimals, no timings, no
//! paths, no free-space figures): that text is what the snapshot tests
//! store.

use std::fmt::Write;

use quick_xml::escape::escape;

use crate::install::FULL_THRESHOLD;
use crate::measure::{du_h, ImageFacts};
use crate::run::{CopierRun, ScenarioReport};
use crate::upgrade::UpgradeVerdict;

/// Rows of cells under a header, printable as aligned text or Markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// One entry per row, as many cells as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Columns padded to their widest cell, two spaces apart.
    pub fn to_text(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| row[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, &w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// An HTML `<table>` (cells escaped).
    pub fn to_html(&self) -> String {
        let row = |cells: &[String], tag: &str| {
            let cells: String = cells
                .iter()
                .map(|c| format!("<{tag}>{}</{tag}>", escape(c)))
                .collect();
            format!("<tr>{cells}</tr>\n")
        };
        let body: String = self.rows.iter().map(|r| row(r, "td")).collect();
        format!("<table>\n{}{body}</table>\n", row(&self.header, "th"))
    }

    /// A GitHub-flavoured Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(self.header.len()));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

/// The headline of a report: scenario, filesystem, scale and sizes.
pub fn headline(report: &ScenarioReport) -> String {
    let s = &report.scenario;
    let mut line = format!(
        "{} on {} (scale {}): COS_STATE {} {}, active.img {} ext2 with {} of files",
        s.name,
        s.state.fs,
        s.scale,
        du_h(s.state.size()),
        s.state.fs,
        du_h(s.install.size()),
        du_h(report.tree.bytes),
    );
    if let Some(upgrade) = &s.upgrade {
        let _ = write!(
            line,
            "; upgrade: transition.img {} with {} of files",
            du_h(upgrade.size()),
            du_h(upgrade.tree_bytes)
        );
    }
    line
}

/// Images after the install: `active.img` once, then each copier's
/// `passive.img`.
pub fn install_table(report: &ScenarioReport) -> Table {
    let mut table = Table::new(&[
        "copier",
        "image",
        "logical",
        "allocated",
        "ratio",
        "label",
        "fsck",
        "content",
        "copy",
    ]);
    let Some(first) = report.runs.first() else {
        return table;
    };
    table.rows.push(image_row(
        "(installer)",
        &first.active,
        &first.active,
        "-",
        "-",
    ));
    for run in &report.runs {
        let gate = if run.verdict.passed { "pass" } else { "FAIL" };
        match &run.install.passive {
            Some(passive) => {
                let content = if run.install.identical {
                    "identical"
                } else {
                    "DIFFERS"
                };
                table
                    .rows
                    .push(image_row(&run.copier, passive, &run.active, content, gate));
            }
            None => {
                let mut row = vec!["-".to_owned(); table.header.len()];
                row[0] = run.copier.clone();
                row[1] = "passive.img".to_owned();
                row[7] = "copy failed".to_owned();
                row[8] = gate.to_owned();
                table.rows.push(row);
            }
        }
    }
    table
}

/// How much of the COS_STATE free space to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeSpace {
    /// Free space before and after each step, as `du -h` would print it.
    Figures,
    /// Only the steps and verdicts: free space on btrfs (and across
    /// kernels) varies by a few MiB between identical runs, so snapshots
    /// leave the figures out (tests check them numerically instead).
    Outcome,
}

/// The verdict of each copier (rows) under each strategy (columns), and
/// the gate's verdict on the row.
pub fn upgrade_matrix(report: &ScenarioReport) -> Option<Table> {
    report.scenario.upgrade.as_ref()?;
    let mut header = vec!["copier"];
    header.extend(report.strategies.iter().map(String::as_str));
    header.push("gate");
    let mut table = Table::new(&header);
    for run in &report.runs {
        let mut row = vec![run.copier.clone()];
        for strategy in &report.strategies {
            row.push(match run.upgrade(strategy) {
                Some(upgrade) => upgrade.verdict.to_string(),
                None => "not run".to_owned(),
            });
        }
        row.push(if run.passed() { "pass" } else { "FAIL" }.to_owned());
        table.rows.push(row);
    }
    Some(table)
}

/// Every step of every upgrade: with [`FreeSpace::Figures`], COS_STATE's
/// free space before and after it and what came of it.
pub fn upgrade_steps_table(report: &ScenarioReport, free_space: FreeSpace) -> Option<Table> {
    report.scenario.upgrade.as_ref()?;
    let mut table = match free_space {
        FreeSpace::Figures => Table::new(&[
            "copier",
            "strategy",
            "step",
            "free before",
            "free after",
            "outcome",
        ]),
        FreeSpace::Outcome => Table::new(&["copier", "strategy", "steps", "verdict"]),
    };
    for run in &report.runs {
        for upgrade in &run.upgrades {
            match free_space {
                FreeSpace::Figures => {
                    for step in &upgrade.steps {
                        table.rows.push(vec![
                            run.copier.clone(),
                            upgrade.strategy.clone(),
                            step.name.clone(),
                            free(step.free_before),
                            free(step.free_after),
                            step.outcome.clone(),
                        ]);
                    }
                }
                FreeSpace::Outcome => {
                    let steps: Vec<&str> = upgrade.steps.iter().map(|s| s.name.as_str()).collect();
                    table.rows.push(vec![
                        run.copier.clone(),
                        upgrade.strategy.clone(),
                        steps.join(", "),
                        upgrade.verdict.to_string(),
                    ]);
                }
            }
        }
    }
    Some(table)
}

/// Images after each upgrade: `transition.img` as written, then
/// `active.img` and `passive.img` at the end; ratios to the installed
/// active. With [`FreeSpace::Outcome`], a corrupted upgrade's
/// transition.img shows `partial` instead of its size and `-` for fsck:
/// how much got written before COS_STATE filled up varies by a few
/// blocks, and with it whether fsck notices (the tree check always does).
pub fn upgraded_images_table(report: &ScenarioReport, free_space: FreeSpace) -> Option<Table> {
    report.scenario.upgrade.as_ref()?;
    let mut table = Table::new(&[
        "copier",
        "strategy",
        "image",
        "logical",
        "allocated",
        "ratio",
        "label",
        "fsck",
    ]);
    for run in &report.runs {
        for upgrade in &run.upgrades {
            let partial =
                free_space == FreeSpace::Outcome && upgrade.verdict == UpgradeVerdict::Corrupted;
            let written = [&upgrade.transition, &upgrade.active];
            for (i, facts) in written
                .into_iter()
                .chain([&upgrade.passive])
                .enumerate()
                .filter_map(|(i, f)| Some((i, f.as_ref()?)))
            {
                let mut row = image_row(&run.copier, facts, &run.active, "", "");
                row.truncate(7);
                if partial && i < 2 && upgrade.refusal.is_none() {
                    row[3] = "partial".to_owned();
                    row[4] = "-".to_owned();
                    row[6] = "-".to_owned();
                }
                row.insert(1, upgrade.strategy.clone());
                table.rows.push(row);
            }
        }
    }
    Some(table)
}

/// What transition.img was estimated to take, against what it took where
/// it was written in full.
pub fn estimate_table(report: &ScenarioReport) -> Option<Table> {
    let estimate = report.estimate.as_ref()?;
    let mut table = Table::new(&["copier", "strategy", "estimate", "allocated", "error"]);
    for run in &report.runs {
        for upgrade in &run.upgrades {
            let Some(error) = upgrade.estimate_error() else {
                continue;
            };
            let allocated = upgrade.transition.as_ref().map_or(0, |t| t.allocated);
            table.rows.push(vec![
                run.copier.clone(),
                upgrade.strategy.clone(),
                format!("{} bytes", estimate.needed),
                format!("{allocated} bytes"),
                format!("{:+.2}%", error * 100.0),
            ]);
        }
    }
    Some(table)
}

/// The estimate in one line.
pub fn estimate_line(report: &ScenarioReport) -> Option<String> {
    let e = report.estimate.as_ref()?;
    Some(format!(
        "transition.img is estimated to allocate {} (mkfs.ext2 {}, file data {}, tree metadata {}); \
         preflight wants {}% more free",
        du_h(e.needed),
        du_h(e.mkfs),
        du_h(e.data),
        du_h(e.tree_metadata),
        crate::estimate::HEADROOM_PERCENT
    ))
}

/// Everything a reviewer reads, as plain text: the headline and tables.
pub fn render_text(report: &ScenarioReport, free_space: FreeSpace) -> String {
    let mut out = format!(
        "{}\n\n{}",
        headline(report),
        install_table(report).to_text()
    );
    if let Some(line) = estimate_line(report) {
        let _ = write!(out, "\n{line}\n");
    }
    for table in [
        upgrade_matrix(report),
        upgrade_steps_table(report, free_space),
        upgraded_images_table(report, free_space),
    ]
    .into_iter()
    .flatten()
    {
        let _ = write!(out, "\n{}", table.to_text());
    }
    if free_space == FreeSpace::Figures {
        if let Some(table) = estimate_table(report).filter(|t| !t.rows.is_empty()) {
            let _ = write!(out, "\n{}", table.to_text());
        }
    }
    out
}

/// The text the snapshot tests store: [`render_text`] without the free
/// space figures, which are not reproducible to the MiB.
pub fn render_stable(report: &ScenarioReport) -> String {
    render_text(report, FreeSpace::Outcome)
}

fn image_row(
    copier: &str,
    facts: &ImageFacts,
    active: &ImageFacts,
    content: &str,
    gate: &str,
) -> Vec<String> {
    vec![
        copier.to_owned(),
        facts.name.clone(),
        du_h(facts.size),
        du_h(facts.allocated),
        format!("{:.2}", facts.ratio_to(active)),
        facts.label.clone().unwrap_or_else(|| "-".to_owned()),
        if facts.fsck_clean { "clean" } else { "ERRORS" }.to_owned(),
        content.to_owned(),
        gate.to_owned(),
    ]
}

/// Free space as `du -h` would print it, or `full` once it ran out.
fn free(bytes: u64) -> String {
    if bytes <= FULL_THRESHOLD {
        "full".to_owned()
    } else {
        du_h(bytes)
    }
}

/// One line per reason a run fails the gate.
pub fn failures(run: &CopierRun) -> String {
    run.failures()
        .iter()
        .map(|f| format!("  - {f}\n"))
        .collect()
}
