//! Running one tool as a child process and measuring it: wall time from
//! spawn to exit, and its peak resident set size.
//!
//! Peak RSS needs care. A child's `ru_maxrss` also counts the memory image
//! it had *before* `exec`: Linux carries the old mm's high-water mark
//! across `exec`, and with `posix_spawn` (vfork) that old mm is the
//! parent's. Measured straight from the benchmark process, every tool
//! would inherit the benchmark's own peak (tens of MiB after building
//! fixtures). So each tool is started by a fresh, small *spawner*
//! (`sparsecp-bench __spawn`): it starts the tool, waits for it, and reads
//! `getrusage(RUSAGE_CHILDREN)`, which with exactly one child is that
//! child's peak. The spawner's own start-up RSS (about 2 MiB) is then the
//! floor of every figure. The spawner also does the timing, so its own
//! start-up is not counted either.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;

/// The first argument that turns `sparsecp-bench` into the spawner.
pub const SPAWN_ARG: &str = "__spawn";

/// One program invocation of a contender.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Step {
    /// A step running `program` with `args`.
    pub fn new(program: impl Into<PathBuf>, args: &[&str]) -> Step {
        Step {
            program: program.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// `program arg arg ...`, with the program's file name only, for reports.
    pub fn display(&self) -> String {
        let name = self
            .program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.program.display().to_string());
        std::iter::once(name)
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What one measured child did.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Wall time from just before the spawn to the reaping wait.
    pub seconds: f64,
    /// `ru_maxrss` of the child, in KiB.
    pub max_rss_kib: u64,
}

/// Runs `step` to completion through the spawner `bench` (this binary)
/// and measures it; fails with the tool's stderr unless it exits 0. Its
/// stdout is returned too (sparsecp's JSON report).
pub fn run(bench: &Path, step: &Step) -> anyhow::Result<(Measured, String)> {
    // Files, not pipes: read after the child is gone, a chatty child can
    // never block on a full pipe.
    let mut stdout = tempfile::tempfile().context("cannot create a file for stdout")?;
    let mut stderr = tempfile::tempfile().context("cannot create a file for stderr")?;
    let result = tempfile::NamedTempFile::new().context("cannot create a result file")?;
    let status = Command::new(bench)
        .arg(SPAWN_ARG)
        .arg(result.path())
        .arg(&step.program)
        .args(&step.args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(stdout.try_clone()?)
        .stderr(stderr.try_clone()?)
        .status()
        .with_context(|| format!("cannot start {}", step.display()))?;
    let text = std::fs::read_to_string(result.path()).unwrap_or_default();
    let Some((measured, code)) = parse_result(&text) else {
        bail!(
            "{} did not run ({status}): {}",
            step.display(),
            read_all(&mut stderr).trim()
        );
    };
    if code != "0" {
        bail!(
            "{} failed ({code}): {}",
            step.display(),
            read_all(&mut stderr).trim()
        );
    }
    Ok((measured, read_all(&mut stdout)))
}

fn read_all(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
    text
}

/// Parses the spawner's `SECONDS MAX_RSS_KIB STATUS` line.
fn parse_result(text: &str) -> Option<(Measured, String)> {
    let mut fields = text.split_whitespace();
    let seconds = fields.next()?.parse().ok()?;
    let max_rss_kib = fields.next()?.parse().ok()?;
    let status = fields.next()?.to_owned();
    Some((
        Measured {
            seconds,
            max_rss_kib,
        },
        status,
    ))
}

/// The spawner: `sparsecp-bench __spawn RESULT PROGRAM ARGS...`. Runs
/// PROGRAM with the inherited stdio and writes `SECONDS MAX_RSS_KIB
/// STATUS` to RESULT, STATUS being the exit code or `signal-N`.
///
/// It runs before anything else in `main` (no argument parsing, no
/// allocation to speak of) so its RSS stays small.
pub fn spawner(args: &[OsString]) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let [result, program, rest @ ..] = args else {
        eprintln!("usage: sparsecp-bench {SPAWN_ARG} RESULT PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    let started = Instant::now();
    let status = match Command::new(program).args(rest).status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("cannot run {}: {e}", program.to_string_lossy());
            return ExitCode::from(127);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    // One child, reaped: RUSAGE_CHILDREN's maxrss is its peak.
    let max_rss_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_or(0, |usage| u64::try_from(usage.max_rss()).unwrap_or(0));
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("signal-{signal}"),
        (None, None) => "unknown".to_owned(),
    };
    match std::fs::write(result, format!("{seconds:.9} {max_rss_kib} {code}\n")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write {}: {e}", result.to_string_lossy());
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawner_results_parse() {
        let (m, code) = parse_result("0.012500000 2048 0\n").unwrap();
        assert_eq!(
            (m.seconds, m.max_rss_kib, code.as_str()),
            (0.0125, 2048, "0")
        );
        assert_eq!(parse_result("0.5 100 signal-9").unwrap().1, "signal-9");
        assert!(parse_result("").is_none());
    }
}
