//! bench: `cargo xtask bench`, the benchmarks of issue #5.
//!
//! It times `sparsecp` against the tools an installer could use instead
//! (`cp`, `rsync`, `qemu-img convert`, Go's io.Copy with and without
//! `fallocate --dig-holes`) and against the floor of reading the allocated
//! bytes once and writing them once, on real filesystems on loop devices.
//! Each case runs a warm-up that checks every output byte for byte, then
//! interleaved rounds in three cache modes; the report gives medians,
//! ranges, ratios pair by pair, peak RSS, allocation, and the issue's
//! targets met or missed. Benchmarks are not tests: nothing here asserts a
//! timing.
//!
//! The pieces, in the order a run uses them:
//! - [`lab`] and [`fixtures`]: the ext4 scratch filesystem, `active.img`
//!   and the other inputs, made untimed.
//! - [`cases`]: the cases of the issue, as [`case::Case`]s.
//! - [`runner`] and [`child`]: warm-up, interleaved timed rounds, `wait4`.
//! - [`stats`], [`targets`], [`report`] and [`plot`]: what people read.
//! - [`limit`]: the read-once-write-once helpers, run as hidden
//!   subcommands so they are timed like every other tool.
//! - [`device`]: the block device `blockdev-dest` writes (against
//!   `bmaptool copy`, `dd conv=sparse`, `qemu-img convert -n`): refilled
//!   with random bytes before each run, flushed, judged for stale holes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod case;
pub mod cases;
pub mod child;
pub mod device;
pub mod fixtures;
pub mod lab;
pub mod limit;
pub mod peers;
pub mod plot;
pub mod report;
pub mod runner;
pub mod stats;
pub mod system;
pub mod targets;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::lab::{Lab, Tools};
use crate::report::Report;
use crate::system::Machine;

/// Image scale of `--quick`.
pub const QUICK_SCALE: f64 = 0.1;

/// A validated benchmark configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Timed runs per contender and mode.
    pub runs: usize,
    /// Image scale: 1.0, or [`QUICK_SCALE`].
    pub scale: f64,
    /// The cases to run, in their standard order.
    pub cases: Vec<&'static str>,
    /// Where the reports go.
    pub out: PathBuf,
    /// The sparsecp binary to measure.
    pub sparsecp: PathBuf,
}

impl Config {
    /// Checks the command line's choices: at least one run, known case
    /// names, a sparsecp binary that exists, root.
    pub fn new(
        runs: usize,
        quick: bool,
        cases: &[String],
        out: Option<PathBuf>,
        sparsecp: Option<PathBuf>,
    ) -> anyhow::Result<Config> {
        if runs == 0 {
            bail!("--runs must be at least 1");
        }
        for name in cases {
            if !cases::CASES.iter().any(|(known, _)| known == name) {
                let known: Vec<&str> = cases::CASES.iter().map(|(n, _)| *n).collect();
                bail!("no case {name:?}; known: {}", known.join(", "));
            }
        }
        let selected = cases::CASES
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| cases.is_empty() || cases.iter().any(|c| c == n))
            .collect();
        let sparsecp = match sparsecp {
            Some(path) => path,
            None => std::env::current_exe()
                .context("cannot find this executable")?
                .with_file_name("sparsecp"),
        };
        if !sparsecp.is_file() {
            bail!(
                "no sparsecp binary at {} (build it with `cargo build --release -p sparsecp` into the same target directory, or pass --sparsecp PATH)",
                sparsecp.display()
            );
        }
        if !system::is_root() {
            bail!("the benchmarks need root (loop devices, mounts, drop_caches)");
        }
        Ok(Config {
            runs,
            scale: if quick { QUICK_SCALE } else { 1.0 },
            cases: selected,
            out: out.unwrap_or_else(default_out),
            sparsecp: sparsecp.canonicalize()?,
        })
    }
}

/// `<workspace>/target/bench`.
pub fn default_out() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    workspace
        .canonicalize()
        .unwrap_or(workspace)
        .join("target/bench")
}

/// Runs the configured cases; stops early (keeping what it measured) when
/// `cancel` is raised.
pub fn run(config: &Config, cancel: &AtomicBool) -> anyhow::Result<Report> {
    let started = Instant::now();
    let load_before = system::load_average();
    let bench = std::env::current_exe().context("cannot find this executable")?;
    let go_iocopy = harness::go_programs::GO_IOCOPY
        .binary()
        .map_err(|e| format!("{e:#}"));
    let peers = peers::Peers::install(&peers::tools_dir());
    let mut versions: Vec<(&str, PathBuf)> = vec![
        ("sparsecp", config.sparsecp.clone()),
        ("cp", Tools::system("cp")),
        ("rsync", Tools::system("rsync")),
        ("qemu-img", Tools::system("qemu-img")),
        ("fallocate", Tools::system("fallocate")),
        ("go", Tools::system("go")),
        ("dd", Tools::system("dd")),
    ];
    versions.extend(peers.versions());
    let tools = Tools {
        sparsecp: config.sparsecp.clone(),
        bench,
        go_iocopy,
        peers,
    };
    let versions: Vec<(&str, &Path)> = versions.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let machine = Machine::describe(&versions);
    let mut lab = Lab::new(config.scale, tools);
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for &name in &config.cases {
        if cancel.load(Ordering::Relaxed) {
            failed.push((name.to_owned(), "interrupted".to_owned()));
            continue;
        }
        let outcome = cases::build(name, &mut lab)
            .and_then(|case| runner::run_case(&case, config.runs, &lab.tools.bench, cancel));
        match outcome {
            Ok(result) => results.push(result),
            Err(e) => {
                eprintln!("bench: case {name} not run: {e:#}");
                failed.push((name.to_owned(), format!("{e:#}")));
            }
        }
    }
    drop(lab);
    Ok(Report {
        runs: config.runs,
        scale: config.scale,
        wall_seconds: started.elapsed().as_secs_f64(),
        sparsecp: config.sparsecp.clone(),
        machine,
        revision: system::revision(),
        load: (load_before, system::load_average()),
        targets: targets::judge(&results, &config.sparsecp),
        cases: results,
        failed_cases: failed,
    })
}
