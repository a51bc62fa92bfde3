//! The tables a person reviews: per image, its logical size and allocation
//! as `du -h` prints them, the ratio to `active.img`, label and fsck; per
//! upgrade, COS_STATE free space and whether it fitted.
//!
//! [`render_stable`] shows only what is deterministic for a given scenario
//! (sizes rounded as `du -h` does, ratios to two decimals, no timings, no
//! paths, no free-space figures): that text is what the snapshot tests
//! store.

use std::fmt::Write;

use crate::install::FULL_THRESHOLD;
use crate::measure::{du_h, ImageFacts};
use crate::run::{CopierRun, ScenarioReport};

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
                .map(|c| format!("<{tag}>{}</{tag}>", escape_html(c)))
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

/// Text made safe to place between HTML tags or in a quoted attribute.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
        "gate",
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
    /// Only whether the upgrade fitted: free space on btrfs (and across
    /// kernels) varies by a few MiB between identical runs, so snapshots
    /// leave the figures out (tests check them numerically instead).
    Outcome,
}

/// COS_STATE during each copier's upgrade, and the outcome.
pub fn upgrade_table(report: &ScenarioReport, free_space: FreeSpace) -> Option<Table> {
    report.scenario.upgrade.as_ref()?;
    let mut table = match free_space {
        FreeSpace::Figures => Table::new(&[
            "copier",
            "free before",
            "free after transition.img",
            "free at end",
            "upgrade",
        ]),
        FreeSpace::Outcome => Table::new(&["copier", "upgrade"]),
    };
    for run in &report.runs {
        let Some(upgrade) = &run.upgrade else {
            continue;
        };
        let outcome = if upgrade.fits() {
            "fits"
        } else {
            "OUT OF SPACE"
        }
        .to_owned();
        table.rows.push(match free_space {
            FreeSpace::Figures => vec![
                run.copier.clone(),
                free(upgrade.free_before),
                free(upgrade.free_after_transition),
                free(upgrade.free_after),
                outcome,
            ],
            FreeSpace::Outcome => vec![run.copier.clone(), outcome],
        });
    }
    Some(table)
}

/// Images after each copier's upgrade: `transition.img` as written, then
/// the new `active.img` and `passive.img`; ratios to the installed active.
pub fn upgraded_images_table(report: &ScenarioReport) -> Option<Table> {
    report.scenario.upgrade.as_ref()?;
    let mut table = Table::new(&[
        "copier",
        "image",
        "logical",
        "allocated",
        "ratio",
        "label",
        "fsck",
    ]);
    for run in &report.runs {
        let Some(upgrade) = &run.upgrade else {
            continue;
        };
        for facts in [&upgrade.transition, &upgrade.active, &upgrade.passive]
            .into_iter()
            .flatten()
        {
            let mut row = image_row(&run.copier, facts, &run.active, "", "");
            row.truncate(7);
            table.rows.push(row);
        }
    }
    Some(table)
}

/// Everything a reviewer reads, as plain text: the headline and tables.
pub fn render_text(report: &ScenarioReport, free_space: FreeSpace) -> String {
    let mut out = format!(
        "{}\n\n{}",
        headline(report),
        install_table(report).to_text()
    );
    if let Some(table) = upgrade_table(report, free_space) {
        let _ = write!(out, "\n{}", table.to_text());
    }
    if let Some(table) = upgraded_images_table(report) {
        let _ = write!(out, "\n{}", table.to_text());
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

/// One-line summaries of why runs failed the gate.
pub fn failures(run: &CopierRun) -> String {
    run.verdict
        .failures
        .iter()
        .map(|f| format!("  - {f}\n"))
        .collect()
}
