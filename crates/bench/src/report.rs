//! The report of a run: the JSON of everything measured, and the markdown
//! (also printed) a person reads: targets first, then one section per case
//! with times per mode, ratios pair by pair, peak RSS and allocation.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::case::Mode;
use crate::runner::CaseResult;
use crate::stats::{human_rss, human_seconds, Summary};
use crate::system::Machine;
use crate::targets::Verdict;

/// Everything one `sparsecp-bench` invocation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Timed runs per contender and mode.
    pub runs: usize,
    /// Image scale (1.0 full, 0.1 for `--quick`).
    pub scale: f64,
    /// Wall time of the whole benchmark, set-up included.
    pub wall_seconds: f64,
    /// The sparsecp binary measured.
    pub sparsecp: PathBuf,
    /// Machine and tool versions.
    pub machine: Machine,
    /// `git describe --always --dirty` of the workspace.
    pub revision: String,
    /// Load averages (1, 5, 15 min) when the run started and ended.
    pub load: (String, String),
    /// The targets judged.
    pub targets: Vec<Verdict>,
    /// Per case.
    pub cases: Vec<CaseResult>,
    /// Cases that could not be set up, with the reason.
    pub failed_cases: Vec<(String, String)>,
}

/// Writes `report.json`, `report.md` and `bench.svg` (and `bench.png` if
/// `rsvg-convert` is installed) into `dir`; returns the markdown.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(dir.join("report.json"), json + "\n")?;
    let markdown = markdown(report);
    std::fs::write(dir.join("report.md"), &markdown)?;
    let svg_path = dir.join("bench.svg");
    std::fs::write(
        &svg_path,
        crate::plot::render(&report.cases, &subtitle(report)),
    )?;
    if let Some(rsvg) = testbed::find_tool("rsvg-convert") {
        let mut convert = std::process::Command::new(rsvg);
        convert.arg("-o").arg(dir.join("bench.png")).arg(&svg_path);
        if let Err(e) = testbed::run_tool(&mut convert) {
            eprintln!("bench: no bench.png (bench.svg is there): {e:#}");
        }
    }
    Ok(markdown)
}

fn subtitle(report: &Report) -> String {
    format!(
        "{} · {} per tool and mode after a warm-up, interleaved · kernel {}, {} CPUs",
        scale_text(report.scale),
        runs_text(report.runs),
        report.machine.kernel,
        report.machine.cpus
    )
}

fn runs_text(runs: usize) -> String {
    match runs {
        1 => "1 timed run".to_owned(),
        n => format!("{n} timed runs"),
    }
}

fn scale_text(scale: f64) -> String {
    if scale == 1.0 {
        "full scale".to_owned()
    } else {
        format!("images scaled to {scale}")
    }
}

/// The markdown report.
pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let _ = writeln!(md, "# sparsecp benchmarks\n");
    let _ = writeln!(
        md,
        "{}; {} per tool and mode after one warm-up, interleaved round by round; the whole benchmark took {}.\n",
        scale_text(report.scale),
        runs_text(report.runs),
        minutes(report.wall_seconds)
    );
    let _ = writeln!(
        md,
        "Machine: kernel {}, {} CPUs ({}), {:.1} GiB RAM; load average {} at the start, {} at the end. sparsecp: `{}` (workspace at {}).\n",
        m.kernel,
        m.cpus,
        m.cpu_model,
        m.memory as f64 / (1u64 << 30) as f64,
        report.load.0,
        report.load.1,
        report.sparsecp.display(),
        report.revision
    );
    for (tool, version) in &m.tools {
        let _ = writeln!(md, "- {tool}: {version}");
    }
    md.push_str(concat!(
        "\nModes: **warm** = source in the page cache (read again, untimed, before each run), no flush (the tool's own time); ",
        "**warm+sync** = the same plus `syncfs` of the written filesystem, timed; ",
        "**cold+sync** = `sync; echo 3 > /proc/sys/vm/drop_caches` before each run ",
        "(the tools' executables re-read untimed), then flushed like warm+sync. ",
        "Last before every timed run, untimed, the runner touches and frees as much memory as the run may fill with page cache, ",
        "so that on a VM with free page reporting (this one) the run's page cache lands on memory the host still backs, as on bare metal, ",
        "instead of every tool paying host faults alike (0.2-0.3 s per 1.6 GB here). ",
        "Times are wall times from spawn to exit (plus the flush), median (min–max). ",
        "Ratios are median(ours) / median(theirs) from the same run, below 1 = sparsecp faster; ",
        "in brackets the range of the per-round ratios (each round runs every tool once, in turn, every other round in reverse order). ",
        "Peak RSS is the tool's `ru_maxrss` (via a small spawner process, whose ~2.6 MiB is the floor of every figure), the largest of all runs.\n\n"
    ));
    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(md, "| target | measured | met |\n|---|---|---|");
    for v in &report.targets {
        let met = match v.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(md, "| {} | {} | {met} |", v.target, v.measured);
    }
    for case in &report.cases {
        case_section(&mut md, case);
    }
    for (name, reason) in &report.failed_cases {
        let _ = writeln!(md, "\n## {name}\n\nNot run: {reason}");
    }
    md
}

fn case_section(md: &mut String, case: &CaseResult) {
    let _ = writeln!(
        md,
        "\n## {} — {}\n\nInput: {}.\n",
        case.name, case.title, case.fixture
    );
    let modes: Vec<Mode> = case.modes.iter().map(|m| m.mode).collect();
    let _ = write!(md, "| tool |");
    for mode in &modes {
        let _ = write!(md, " {} |", mode.label());
    }
    let _ = writeln!(md, " peak RSS | allocated | output |");
    let _ = writeln!(md, "|---|{}---|---|---|", "---|".repeat(modes.len()));
    // A tool that writes zeros out (Go io.Copy) or misses zero runs shows
    // by how much it allocates over the best.
    let least = case.tools.iter().filter_map(|t| t.allocated).min();
    for (i, tool) in case.tools.iter().enumerate() {
        let _ = write!(md, "| {} |", tool.name);
        let mut peak = None;
        for m in &case.modes {
            match m.summaries[i] {
                Some(s) => {
                    let _ = write!(md, " {} |", timing(&s));
                    peak = peak.max(Some(s.peak_rss_kib));
                }
                None => md.push_str(" - |"),
            }
        }
        let allocated = tool
            .allocated
            .map_or_else(|| "-".to_owned(), copy_engine::human_bytes);
        let mut output = match tool.identical {
            Some(false) if tool.stale_holes => "**stale data in holes**".to_owned(),
            Some(true) => "identical".to_owned(),
            Some(false) => "**differs**".to_owned(),
            None => "-".to_owned(),
        };
        if let (Some(a), Some(least)) = (tool.allocated, least) {
            let over = a as f64 / least.max(1) as f64 - 1.0;
            if over > 0.01 {
                let _ = write!(
                    output,
                    "; allocates {:.0}% more than the least",
                    over * 100.0
                );
            }
        }
        if let Some(how) = &tool.how {
            let _ = write!(output, "; {how}");
        }
        let _ = writeln!(
            md,
            " {} | {allocated} | {output} |",
            peak.map_or_else(|| "-".to_owned(), human_rss)
        );
    }
    if !case.pairs.is_empty() {
        let _ = write!(md, "\n| ours / theirs |");
        for mode in &modes {
            let _ = write!(md, " {} |", mode.label());
        }
        let _ = writeln!(md, "\n|---|{}", "---|".repeat(modes.len()));
        for &(a, b) in &case.pairs {
            let (ours, theirs) = (&case.tools[a].name, &case.tools[b].name);
            let _ = write!(md, "| {ours} / {theirs} |");
            for m in &case.modes {
                match m
                    .ratios
                    .iter()
                    .find(|r| &r.ours == ours && &r.theirs == theirs)
                {
                    Some(r) => {
                        let _ = write!(
                            md,
                            " {:.2}× ({:.2}–{:.2}) |",
                            r.of_medians, r.paired_min, r.paired_max
                        );
                    }
                    None => md.push_str(" - |"),
                }
            }
            md.push('\n');
        }
    }
    if !case.skipped.is_empty() {
        md.push('\n');
        for (name, reason) in &case.skipped {
            let _ = writeln!(md, "- {name} skipped: {reason}");
        }
    }
    md.push('\n');
    let _ = writeln!(md, "<details><summary>commands</summary>\n");
    for tool in &case.tools {
        let _ = writeln!(md, "- {}: `{}`", tool.name, tool.command);
    }
    let _ = writeln!(md, "\n</details>");
}

fn timing(s: &Summary) -> String {
    format!(
        "{} ({}–{})",
        human_seconds(s.median),
        human_seconds(s.min),
        human_seconds(s.max)
    )
}

/// `14 min 03 s`, or `42 s`.
pub fn minutes(seconds: f64) -> String {
    let total = seconds.round() as u64;
    if total < 60 {
        format!("{total} s")
    } else {
        format!("{} min {:02} s", total / 60, total % 60)
    }
}
