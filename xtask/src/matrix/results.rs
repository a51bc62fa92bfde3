//! Reading a row's results back (one `NAME.log`, `.rc` and `.secs` per
//! step in the kernel's out folder) and rendering the report: kernel x
//! copier x verdict, test counts per kernel, and every cell that differs
//! between kernels.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The whole matrix.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// The gate's scenario.
    pub scenario: String,
    /// The gate's scale.
    pub scale: f64,
    /// `PROPTEST_CASES` of the test runs.
    pub proptest_cases: u32,
    /// One row per kernel, in the order run.
    pub rows: Vec<KernelRow>,
}

/// One kernel's results.
#[derive(Debug, Serialize, Deserialize)]
pub struct KernelRow {
    /// As asked (`6.1`, `host`).
    pub label: String,
    /// `uname -r` in the guest (or on the host).
    pub release: String,
    /// How it ran (QEMU and the accelerator, or natively).
    pub how: String,
    /// Wall time of the row, boot included.
    pub seconds: u64,
    /// Why the row has no results, when it has none.
    pub problem: Option<String>,
    /// Test binaries.
    pub suites: Vec<Suite>,
    /// Gate runs, one per copier.
    pub gates: Vec<Gate>,
}

/// One test binary's counts.
#[derive(Debug, Serialize, Deserialize)]
pub struct Suite {
    /// `copy-engine` or `sparsecp`.
    pub package: String,
    /// Passed and not skipped.
    pub passed: u32,
    /// Failed.
    pub failed: u32,
    /// Printed `SKIP` (they pass in libtest's count) or ignored.
    pub skipped: u32,
    /// The failed tests' names.
    pub failed_tests: Vec<String>,
    /// The skipped tests and why (`name: reason`).
    pub skipped_tests: Vec<String>,
    /// The binary's exit status (`None`: it did not run to the end).
    pub exit: Option<i32>,
    /// Tests still running when the step timeout killed the binary.
    #[serde(default)]
    pub unfinished_tests: Vec<String>,
    /// Seconds it took.
    pub seconds: Option<u64>,
}

/// One gate run.
#[derive(Debug, Serialize, Deserialize)]
pub struct Gate {
    /// The builtin copier.
    pub copier: String,
    /// `passed`, `FAILED`, `error` (could not run) or `not run`.
    pub verdict: String,
    /// Why it failed, from its output.
    pub detail: String,
    /// Seconds it took.
    pub seconds: Option<u64>,
}

fn read_trim(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

impl KernelRow {
    /// A row whose guest never produced results.
    pub fn failed(label: &str, problem: &str) -> KernelRow {
        KernelRow {
            label: label.into(),
            release: "?".into(),
            how: "-".into(),
            seconds: 0,
            problem: Some(problem.into()),
            suites: Vec::new(),
            gates: Vec::new(),
        }
    }

    /// Reads the steps' results from `out`.
    pub fn collect(label: &str, how: &str, out: &Path, steps: &[String]) -> KernelRow {
        let mut row = KernelRow::failed(label, "");
        row.problem = None;
        row.how = how.into();
        row.release = read_trim(&out.join("uname")).unwrap_or_else(|| "?".into());
        for step in steps {
            let mut log =
                std::fs::read_to_string(out.join(format!("{step}.log"))).unwrap_or_default();
            // stdout first, then stderr: libtest's lines stay whole.
            log.push_str(
                &std::fs::read_to_string(out.join(format!("{step}.err"))).unwrap_or_default(),
            );
            let exit = read_trim(&out.join(format!("{step}.rc"))).and_then(|s| s.parse().ok());
            let seconds = read_trim(&out.join(format!("{step}.secs"))).and_then(|s| s.parse().ok());
            if let Some(package) = step.strip_prefix("tests-") {
                row.suites.push(Suite::parse(package, &log, exit, seconds));
            } else if let Some(copier) = step.strip_prefix("gate-") {
                row.gates.push(Gate::parse(copier, &log, exit, seconds));
            }
        }
        row
    }
}

impl Suite {
    fn parse(package: &str, log: &str, exit: Option<i32>, seconds: Option<u64>) -> Suite {
        let mut passed = 0;
        let mut failed = 0;
        let mut ignored = 0;
        let mut failed_tests = Vec::new();
        let mut skips: BTreeMap<String, (String, u32)> = BTreeMap::new();
        for line in log.lines() {
            if let Some(rest) = line.strip_prefix("test result: ") {
                for part in rest.split(['.', ';']) {
                    let mut words = part.split_whitespace();
                    let (Some(n), Some(what)) = (words.next(), words.next()) else {
                        continue;
                    };
                    let Ok(n) = n.parse::<u32>() else { continue };
                    match what {
                        "passed" => passed += n,
                        "failed" => failed += n,
                        "ignored" => ignored += n,
                        _ => {}
                    }
                }
            } else if let Some(name) = line
                .strip_prefix("test ")
                .and_then(|l| l.strip_suffix(" ... FAILED"))
            {
                failed_tests.push(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("SKIP ") {
                // One line per skipped case (an rstest case, a filesystem).
                if let Some((name, reason)) = rest.split_once(": ") {
                    let entry = skips
                        .entry(name.to_owned())
                        .or_insert_with(|| (reason.to_owned(), 0));
                    entry.1 += 1;
                }
            }
        }
        // A binary killed by the step timeout prints no summary: count
        // its finished tests one by one.
        if !log.contains("test result: ") {
            for line in log.lines().filter(|l| l.starts_with("test ")) {
                if line.ends_with(" ... ok") {
                    passed += 1;
                } else if line.ends_with(" ... FAILED") {
                    failed += 1;
                } else if line.ends_with(" ... ignored") {
                    ignored += 1;
                }
            }
        }
        let running: BTreeSet<String> = log
            .lines()
            .filter_map(|l| l.strip_prefix("test "))
            .filter_map(|l| l.strip_suffix(" has been running for over 60 seconds"))
            .filter(|name| {
                !log.lines()
                    .any(|l| l.starts_with(&format!("test {name} ... ")))
            })
            .map(str::to_owned)
            .collect();
        let skipped = skips.values().map(|(_, n)| n).sum::<u32>().min(passed);
        Suite {
            package: package.into(),
            passed: passed.saturating_sub(skipped),
            failed,
            skipped: skipped + ignored,
            failed_tests,
            skipped_tests: skips
                .into_iter()
                .map(|(name, (reason, n))| match n {
                    1 => format!("{name}: {reason}"),
                    _ => format!("{name}: {reason} ({n} cases)"),
                })
                .collect(),
            exit,
            unfinished_tests: match exit {
                Some(124) | Some(137) => running.into_iter().collect(),
                _ => Vec::new(),
            },
            seconds,
        }
    }
}

impl Gate {
    fn parse(copier: &str, log: &str, exit: Option<i32>, seconds: Option<u64>) -> Gate {
        let verdict = match exit {
            Some(0) => "passed",
            Some(1) => "FAILED",
            Some(124) | Some(137) => "timed out",
            Some(_) => "error",
            None => "not run",
        };
        let detail = match exit {
            Some(0) | None => String::new(),
            Some(_) => {
                let from_failure: Vec<&str> = log
                    .lines()
                    .skip_while(|l| !l.starts_with("gate FAILED") && !l.starts_with("error"))
                    .collect();
                let lines = match from_failure.is_empty() {
                    true => log.lines().rev().take(3).collect::<Vec<_>>(),
                    false => from_failure,
                };
                lines
                    .join(" ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        Gate {
            copier: copier.into(),
            verdict: verdict.into(),
            detail,
            seconds,
        }
    }
}

impl Report {
    /// An empty report.
    pub fn new(scenario: &str, scale: f64, proptest_cases: u32) -> Report {
        Report {
            scenario: scenario.into(),
            scale,
            proptest_cases,
            rows: Vec::new(),
        }
    }

    /// Reads `report.json` from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Report> {
        let json = dir.join("report.json");
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("cannot read {}", json.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a matrix report", json.display()))
    }

    /// Writes `report.md` and `report.json` in `dir` with exactly these rows.
    pub fn write_replacing(&self, dir: &Path) -> anyhow::Result<()> {
        let md = dir.join("report.md");
        std::fs::write(&md, self.render_markdown())
            .with_context(|| format!("cannot write {}", md.display()))?;
        let json = dir.join("report.json");
        let text = serde_json::to_string_pretty(self).context("cannot serialise the report")?;
        std::fs::write(&json, text + "\n")
            .with_context(|| format!("cannot write {}", json.display()))
    }

    /// Writes `report.md` and `report.json` in `dir`, keeping the rows of
    /// other kernels that an earlier run of the same scenario, scale and
    /// test settings left in `report.json` (so kernels can run one at a
    /// time, or in parallel, and still make one table).
    pub fn write(&mut self, dir: &Path) -> anyhow::Result<()> {
        let json = dir.join("report.json");
        if let Some(old) = std::fs::read_to_string(&json)
            .ok()
            .and_then(|text| serde_json::from_str::<Report>(&text).ok())
        {
            if old.scenario == self.scenario
                && old.scale == self.scale
                && old.proptest_cases == self.proptest_cases
            {
                for row in old.rows {
                    if !self.rows.iter().any(|r| r.label == row.label) {
                        self.rows.push(row);
                    }
                }
            }
        }
        self.rows
            .sort_by_key(|r| (r.label == "host", r.label.clone()));
        self.write_replacing(dir)
    }

    fn column(row: &KernelRow) -> String {
        format!("{} ({})", row.label, row.release)
    }

    /// The report as markdown.
    pub fn render_markdown(&self) -> String {
        let mut s = String::from("# Kernel matrix (`cargo xtask matrix`)\n\n");
        s.push_str(&format!(
            "Gate: scenario `{}` at scale {}, every builtin copier. Tests: the \
             integration tests of copy-engine and sparsecp (loop devices), \
             `PROPTEST_CASES={}`.\n\n",
            self.scenario, self.scale, self.proptest_cases
        ));
        s.push_str("| kernel | release | how it ran | time |\n|---|---|---|---|\n");
        for row in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} s |\n",
                row.label, row.release, row.how, row.seconds
            ));
        }
        let copiers: BTreeSet<&str> = self
            .rows
            .iter()
            .flat_map(|r| r.gates.iter().map(|g| g.copier.as_str()))
            .collect();
        if !copiers.is_empty() {
            s.push_str("\n## Gate verdicts (copier x kernel)\n\n| copier |");
            for row in &self.rows {
                s.push_str(&format!(" {} |", Self::column(row)));
            }
            s.push_str("\n|---|");
            s.push_str(&"---|".repeat(self.rows.len()));
            s.push('\n');
            for copier in &copiers {
                s.push_str(&format!("| {copier} |"));
                for row in &self.rows {
                    let cell = row
                        .gates
                        .iter()
                        .find(|g| g.copier == *copier)
                        .map(|g| match g.seconds {
                            Some(t) => format!("{} ({t} s)", g.verdict),
                            None => g.verdict.clone(),
                        })
                        .unwrap_or_else(|| "-".into());
                    s.push_str(&format!(" {cell} |"));
                }
                s.push('\n');
            }
        }
        let packages: BTreeSet<&str> = self
            .rows
            .iter()
            .flat_map(|r| r.suites.iter().map(|t| t.package.as_str()))
            .collect();
        if !packages.is_empty() {
            s.push_str("\n## Tests (passed / failed / skipped)\n\n| kernel |");
            for p in &packages {
                s.push_str(&format!(" {p} |"));
            }
            s.push_str("\n|---|");
            s.push_str(&"---|".repeat(packages.len()));
            s.push('\n');
            for row in &self.rows {
                s.push_str(&format!("| {} |", Self::column(row)));
                for p in &packages {
                    let cell = row
                        .suites
                        .iter()
                        .find(|t| t.package == *p)
                        .map(|t| {
                            let end = match t.exit {
                                Some(124) | Some(137) => " (timed out)".into(),
                                Some(_) => String::new(),
                                None => " (did not finish)".into(),
                            };
                            let time = t.seconds.map(|x| format!(", {x} s")).unwrap_or_default();
                            format!("{} / {} / {}{time}{end}", t.passed, t.failed, t.skipped)
                        })
                        .unwrap_or_else(|| "-".into());
                    s.push_str(&format!(" {cell} |"));
                }
                s.push('\n');
            }
        }
        s.push_str(&self.render_differences());
        s
    }

    /// Tests that fail or skip on some kernels only, gate verdicts that
    /// differ, failure details and rows that did not run.
    fn render_differences(&self) -> String {
        let mut s = String::from("\n## What differs between kernels\n\n");
        let mut any = false;
        let mut outcomes: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for row in self.rows.iter().filter(|r| r.problem.is_none()) {
            for t in &row.suites {
                for name in &t.failed_tests {
                    outcomes
                        .entry(format!("{}: {name}", t.package))
                        .or_default()
                        .insert(row.label.clone(), "FAILED".into());
                }
                for skip in &t.skipped_tests {
                    let (name, reason) = skip.split_once(": ").unwrap_or((skip, ""));
                    outcomes
                        .entry(format!("{}: {name}", t.package))
                        .or_default()
                        .insert(row.label.clone(), format!("skipped ({reason})"));
                }
            }
            for g in &row.gates {
                outcomes
                    .entry(format!("gate {}", g.copier))
                    .or_default()
                    .insert(row.label.clone(), g.verdict.clone());
            }
        }
        let ran: Vec<&KernelRow> = self.rows.iter().filter(|r| r.problem.is_none()).collect();
        for (what, by_kernel) in &outcomes {
            let cells: Vec<String> = ran
                .iter()
                .map(|r| {
                    by_kernel.get(&r.label).cloned().unwrap_or_else(|| {
                        match what.starts_with("gate ") {
                            true => "-".into(),
                            false => "passed".into(),
                        }
                    })
                })
                .collect();
            if cells.iter().collect::<BTreeSet<_>>().len() > 1 {
                any = true;
                let list: Vec<String> = ran
                    .iter()
                    .zip(&cells)
                    .map(|(r, c)| format!("{}: {c}", r.label))
                    .collect();
                s.push_str(&format!("- `{what}`: {}\n", list.join("; ")));
            }
        }
        if !any {
            s.push_str("- no test or verdict differs between the kernels that ran\n");
        }
        for row in &self.rows {
            if let Some(problem) = &row.problem {
                s.push_str(&format!("- {} did not run: {problem}\n", row.label));
            }
            for g in row.gates.iter().filter(|g| !g.detail.is_empty()) {
                s.push_str(&format!(
                    "- {}: gate {} {}: {}\n",
                    row.label, g.copier, g.verdict, g.detail
                ));
            }
            for t in &row.suites {
                for name in &t.failed_tests {
                    s.push_str(&format!(
                        "- {}: {} test failed: `{name}`\n",
                        row.label, t.package
                    ));
                }
                for name in &t.unfinished_tests {
                    s.push_str(&format!(
                        "- {}: {} test still running when the step timed out: `{name}`\n",
                        row.label, t.package
                    ));
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_binary_is_counted_from_its_summary_minus_its_skips() {
        let log = "test a ... ok\ntest b ... FAILED\ntest c ... ok\n\
                   test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured\n\
                   SKIP main::c: needs root\n";
        let suite = Suite::parse("copy-engine", log, Some(101), Some(3));
        assert_eq!(
            (suite.passed, suite.failed, suite.skipped),
            (1, 1, 1),
            "{suite:?}"
        );
        assert_eq!(suite.failed_tests, ["b"]);
        assert_eq!(suite.skipped_tests, ["main::c: needs root"]);
    }

    #[test]
    fn a_timed_out_binary_is_counted_test_by_test_and_names_the_stuck_test() {
        let log = "test a ... ok\ntest slow has been running for over 60 seconds\n\
                   test b ... FAILED\n";
        let suite = Suite::parse("copy-engine", log, Some(124), Some(840));
        assert_eq!((suite.passed, suite.failed), (1, 1));
        assert_eq!(suite.unfinished_tests, ["slow"]);
    }

    #[test]
    fn gate_exit_statuses_become_verdicts() {
        let verdict = |rc| Gate::parse("cp", "", rc, None).verdict;
        assert_eq!(verdict(Some(0)), "passed");
        assert_eq!(verdict(Some(1)), "FAILED");
        assert_eq!(verdict(Some(2)), "error");
        assert_eq!(verdict(Some(124)), "timed out");
        assert_eq!(verdict(None), "not run");
    }
}
