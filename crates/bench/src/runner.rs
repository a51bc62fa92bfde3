//! Running a case: one warm-up round that also checks every output, then
//! per mode `runs` interleaved rounds (ours, theirs, ours, theirs, ...), so
//! the disk's slow minutes hit every contender alike. Every other round
//! runs the contenders in reverse order (ours, theirs | theirs, ours | ...)
//! so that no tool always follows the same neighbour or sits first after
//! the round's progress line: a drift over a round then cancels out too.
//!
//! Around each timed run, untimed: recreate in-place inputs, read the
//! source into the page cache in warm modes (other work on the machine may
//! have evicted it), flush the filesystem so no earlier writeback
//! overlaps, drop caches in cold mode, and last touch and free as much
//! memory as the run may fill with page cache (see [`back_free_memory`]);
//! afterwards remove the output *before* the next flush, so unflushed
//! pages of a no-sync run are discarded instead of written.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::case::{Case, Contender, Mode, Role};
use crate::child;
use crate::device;
use crate::fixtures::refresh_dense;
use crate::stats::{human_seconds, Ratio, Sample, Summary};
use crate::system::{back_free_memory, drop_caches, input_data, warm_input, warm_programs};
use testbed::syncfs;

/// What the warm-up learned about one contender.
#[derive(Debug, Clone, Serialize)]
pub struct ToolResult {
    /// Its name.
    pub name: String,
    /// Ours, theirs or the limit.
    pub role: Role,
    /// The commands it ran.
    pub command: String,
    /// `st_blocks * 512` of its output after a flush.
    pub allocated: Option<u64>,
    /// Whether its output equals the reference.
    pub identical: Option<bool>,
    /// What sparsecp reported doing (`copy_file_range`, `ficlone`, ...).
    pub how: Option<String>,
    /// Onto a device: the output differs from the image only where the
    /// image reads as zeros (holes, or zero blocks a tool skipped), which
    /// kept the random bytes written before the run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale_holes: bool,
}

/// The runs of every contender in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeResult {
    /// The mode.
    pub mode: Mode,
    /// Per contender (same order as `CaseResult::tools`), per round.
    pub samples: Vec<Vec<Sample>>,
    /// Per contender; `None` if it failed in this mode.
    pub summaries: Vec<Option<Summary>>,
    /// The case's pairs compared.
    pub ratios: Vec<Ratio>,
}

/// Everything one case measured.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case name.
    pub name: String,
    /// What it measures.
    pub title: String,
    /// The input.
    pub fixture: String,
    /// The contenders.
    pub tools: Vec<ToolResult>,
    /// `(ours, theirs)` indexes into `tools`.
    pub pairs: Vec<(usize, usize)>,
    /// One entry per mode run.
    pub modes: Vec<ModeResult>,
    /// Contenders that did not run or stopped, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl CaseResult {
    /// The tool called `name`.
    pub fn tool(&self, name: &str) -> Option<usize> {
        self.tools.iter().position(|t| t.name == name)
    }

    /// The results of `mode`, if it ran.
    pub fn mode(&self, mode: Mode) -> Option<&ModeResult> {
        self.modes.iter().find(|m| m.mode == mode)
    }
}

/// Runs `case`: a checked warm-up, then `runs` rounds per mode.
///
/// Every tool starts through `spawner` (this binary; see [`child`]).
pub fn run_case(
    case: &Case,
    runs: usize,
    spawner: &Path,
    cancel: &AtomicBool,
) -> anyhow::Result<CaseResult> {
    let mut skipped = case.skipped.clone();
    let mut alive = vec![true; case.contenders.len()];
    let mut tools = Vec::new();
    eprintln!("== {}: {}", case.name, case.title);
    eprintln!("   input: {}", case.fixture);
    for (i, c) in case.contenders.iter().enumerate() {
        check_cancel(cancel)?;
        let (tool, failure) = warm_up(case, c, spawner);
        if let Some(reason) = failure {
            eprintln!("   {}: skipped: {reason}", c.name);
            skipped.push((c.name.clone(), reason));
            alive[i] = false;
        }
        tools.push(tool);
    }
    let input = input_data(&case.warm_inputs)?;
    let mut modes = Vec::new();
    for &mode in &case.modes {
        let mut samples = vec![Vec::new(); case.contenders.len()];
        for round in 1..=runs {
            let mut parts = Vec::new();
            for i in round_order(case.contenders.len(), round) {
                let c = &case.contenders[i];
                if !alive[i] {
                    continue;
                }
                check_cancel(cancel)?;
                match timed_run(case, c, mode, spawner, input) {
                    Ok(sample) => {
                        parts.push(format!("{} {}", c.name, human_seconds(sample.seconds)));
                        samples[i].push(sample);
                    }
                    Err(e) => {
                        check_cancel(cancel)?;
                        eprintln!("   {}: stopped: {e:#}", c.name);
                        skipped.push((
                            c.name.clone(),
                            format!("{} run failed: {e:#}", mode.label()),
                        ));
                        alive[i] = false;
                        samples[i].clear();
                    }
                }
            }
            eprintln!(
                "   {:<9} {round}/{runs}: {}",
                mode.label(),
                parts.join(" · ")
            );
        }
        let summaries = samples.iter().map(|s| Summary::of(s)).collect();
        let ratios = case
            .pairs
            .iter()
            .filter_map(|&(a, b)| {
                let ours = (case.contenders[a].name.as_str(), samples[a].as_slice());
                let theirs = (case.contenders[b].name.as_str(), samples[b].as_slice());
                Ratio::between(ours, theirs)
            })
            .collect();
        modes.push(ModeResult {
            mode,
            samples,
            summaries,
            ratios,
        });
    }
    Ok(CaseResult {
        name: case.name.to_owned(),
        title: case.title.clone(),
        fixture: case.fixture.clone(),
        tools,
        pairs: case.pairs.clone(),
        modes,
        skipped,
    })
}

/// The contender indexes of round `round` (1-based): in order on odd
/// rounds, reversed on even ones.
pub fn round_order(contenders: usize, round: usize) -> Vec<usize> {
    let order = 0..contenders;
    if round % 2 == 1 {
        order.collect()
    } else {
        order.rev().collect()
    }
}

fn check_cancel(cancel: &AtomicBool) -> anyhow::Result<()> {
    if cancel.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// One untimed-for-the-record run that checks the output and measures its
/// allocation; `Some(reason)` if the contender cannot take part.
fn warm_up(case: &Case, c: &Contender, spawner: &Path) -> (ToolResult, Option<String>) {
    let mut tool = ToolResult {
        name: c.name.clone(),
        role: c.role,
        command: c.command(),
        allocated: None,
        identical: None,
        how: None,
        stale_holes: false,
    };
    let checked = (|| -> anyhow::Result<()> {
        prepare(case, c, Mode::Warm)?;
        let mut stdout = String::new();
        for step in &c.steps {
            stdout = child::run(spawner, step)?.1;
        }
        if c.reports_json {
            tool.how = describe_report(&stdout);
        }
        if let Some(output) = &c.output {
            flush(case)?;
            let meta = std::fs::metadata(output)
                .with_context(|| format!("{} left no {}", c.name, output.display()))?;
            tool.allocated = meta.is_file().then_some(meta.blocks() * 512);
            if !c.same_content {
                return cleanup(c);
            }
            let verdict = copy_engine::verify(&case.reference, output, None)
                .with_context(|| format!("cannot compare {}", output.display()))?;
            tool.identical = Some(verdict.identical);
            if !verdict.identical && case.device.is_some() {
                tool.stale_holes = device::only_zeros_differ(&case.reference, output)?;
            }
            if tool.stale_holes {
                eprintln!(
                    "   NOTE: {} left stale data in holes of {}: differs from {} at offset {:?}",
                    c.name,
                    output.display(),
                    case.reference.display(),
                    verdict.first_difference
                );
            } else if !verdict.identical {
                eprintln!(
                    "   WARNING: {}'s output differs from {} at offset {:?}",
                    c.name,
                    case.reference.display(),
                    verdict.first_difference
                );
            }
        }
        cleanup(c)
    })();
    let failure = checked.err().map(|e| {
        let _ = cleanup(c);
        format!("{e:#}")
    });
    (tool, failure)
}

/// One timed run in `mode`, with its untimed preparation and cleanup.
fn timed_run(
    case: &Case,
    c: &Contender,
    mode: Mode,
    spawner: &Path,
    input: u64,
) -> anyhow::Result<Sample> {
    prepare(case, c, mode)?;
    back_free_memory(mode.page_cache_fill(input));
    let result = (|| {
        let mut sample = Sample {
            seconds: 0.0,
            max_rss_kib: 0,
        };
        for step in &c.steps {
            let (measured, _) = child::run(spawner, step)?;
            sample.seconds += measured.seconds;
            sample.max_rss_kib = sample.max_rss_kib.max(measured.max_rss_kib);
        }
        if mode.syncs() {
            let started = Instant::now();
            flush(case)?;
            sample.seconds += started.elapsed().as_secs_f64();
        }
        Ok(sample)
    })();
    cleanup(c)?;
    result
}

fn prepare(case: &Case, c: &Contender, mode: Mode) -> anyhow::Result<()> {
    if let (Some(master), Some(output)) = (&c.fresh_from, &c.output) {
        refresh_dense(master, output)?;
    }
    if let Some(dev) = &case.device {
        device::refill_random(dev)?;
    }
    if mode.cold() {
        syncfs(&case.sync_dir)?;
        drop_caches()?;
        warm_programs(c.steps.iter().map(|s| s.program.as_path()));
    } else {
        for input in &case.warm_inputs {
            warm_input(input)?;
        }
        syncfs(&case.sync_dir)?;
    }
    Ok(())
}

/// Flushes what the run wrote: the filesystem of `sync_dir`, and the
/// case's block device if it has one.
fn flush(case: &Case) -> anyhow::Result<()> {
    syncfs(&case.sync_dir)?;
    match &case.device {
        Some(dev) => device::flush(dev),
        None => Ok(()),
    }
}

fn cleanup(c: &Contender) -> anyhow::Result<()> {
    match &c.output {
        Some(output) => remove_if_present(output),
        None => Ok(()),
    }
}

/// Removes the output file; a device node (the output of a
/// `blockdev-dest` run) is never removed.
fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Ok(());
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Summarises sparsecp's `--json` output: the methods of a copy's phases
/// (and whether it reflinked), or what a dig punched.
pub fn describe_report(stdout: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(stdout).ok()?;
    if let Some(copy) = value.get("copy") {
        let methods: Vec<&str> = copy
            .get("phases")?
            .as_array()?
            .iter()
            .filter_map(|p| p.get("method")?.as_str())
            .collect();
        return Some(if methods.is_empty() {
            "nothing to move".to_owned()
        } else {
            methods.join(" + ")
        });
    }
    let punched = value.get("punched")?.as_u64()?;
    Some(format!("punched {}", copy_engine::human_bytes(punched)))
}
