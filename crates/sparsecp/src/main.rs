//! sparsecp: the command line over copy-engine. Parsing lives in `cli` (in
//! the library, so `cargo xtask dist` can render it), the progress bar in
//! `progress`, printing of reports here.

mod inspect;
mod progress;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use copy_engine::{
    Cancel, CancellableReader, CopyOptions, CopyReport, Error, ReflinkMode, SparseMode,
};

use progress::Bar;
use sparsecp::cli::{self, Cli, Command};

/// Exit status of an operation that failed (1 is a failed verify verdict,
/// 2 is clap's usage error).
const FAILED: u8 = 3;
/// Exit status after SIGINT/SIGTERM, as shells report a signal death.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Engine errors already carry path and cause in one line; only
            // other errors need their context chain spelled out.
            match e.downcast_ref::<Error>() {
                Some(engine) => eprintln!("sparsecp: {engine}"),
                None => eprintln!("sparsecp: {e:#}"),
            }
            let interrupted = e.downcast_ref::<Error>().is_some_and(Error::is_interrupted);
            ExitCode::from(if interrupted { INTERRUPTED } else { FAILED })
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let cancel = cancel_on_signals()?;
    match cli.command {
        Command::Copy(a) => {
            let opts = CopyOptions {
                sparse: a.sparse,
                reflink: a.reflink,
                fsync: a.fsync,
                no_space_check: a.no_space_check,
                in_place: a.in_place,
                allow_attached: a.allow_attached,
                holes: a.holes,
                cancel,
            };
            if a.allow_attached {
                warn_attached(&a.src, "copying from it anyway (--allow-attached): writes not yet in the file may be missing from the copy");
                warn_attached(&a.dst, "writing it anyway (--allow-attached)");
            }
            let bar = Bar::new(!a.output.quiet && !a.output.json);
            if a.bmap.is_some() {
                let conflict = match (a.sparse, a.reflink) {
                    (SparseMode::Auto, ReflinkMode::Always) => Some("--reflink always".to_string()),
                    (SparseMode::Auto, _) => None,
                    (sparse, _) => Some(format!("--sparse {sparse}")),
                };
                if let Some(option) = conflict {
                    anyhow::bail!(
                        "--bmap decides which blocks are data: it cannot be combined with {option}"
                    );
                }
            }
            let report = if let Some(bmap) = &a.bmap {
                copy_with_bmap(&a.src, bmap, &a.dst, &opts, &bar)?
            } else if a.src == Path::new("-") {
                // SIGINT must end a wait for input too (see CancellableReader).
                let mut stdin = CancellableReader::new(std::io::stdin(), opts.cancel.clone());
                copy_engine::copy_stream(&mut stdin, Path::new("-"), &a.dst, &opts, &bar)?
            } else {
                copy_engine::copy(&a.src, &a.dst, &opts, &bar)?
            };
            if let Some(d) = report.device.as_ref().filter(|d| d.holes_skipped > 0) {
                err(&format!(
                    "sparsecp: warning: {}: {} of holes skipped (--holes skip): the device's \
                     old data shows there unless it was blank",
                    report.destination.display(),
                    copy_engine::human_bytes(d.holes_skipped)
                ));
            }
            let written = report.destination_allocated.is_some() || report.device.is_some();
            let verdict = match a.verify && a.src != Path::new("-") && written {
                true => Some(copy_engine::verify(&a.src, &report.destination, None)?),
                false => None,
            };
            // The report never shares a stream with the copied bytes.
            let say = match is_standard_output(&a.dst) {
                true => err,
                false => out,
            };
            if a.output.json {
                let v = serde_json::json!({ "copy": report, "verify": verdict });
                say(&serde_json::to_string_pretty(&v)?);
            } else if !a.output.quiet {
                say(&report.to_string());
                if let Some(v) = &verdict {
                    say(&v.to_string());
                }
            }
            Ok(verdict_code(verdict.is_none_or(|v| v.ok)))
        }
        Command::Inspect(a) => inspect::run(&a, &cancel),
        Command::Dig(a) => {
            if a.force {
                warn_attached(&a.file, "digging it anyway (--force): a write through the device into a block being punched is lost");
            } else {
                copy_engine::live::check_dig(&a.file)?;
            }
            let bar = Bar::new(!a.output.quiet && !a.output.json);
            let report = copy_engine::dig(&a.file, &cancel, &bar)?;
            print_report(&report, a.output.json, a.output.quiet)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(a) => {
            if let Some(r) = a.max_ratio {
                anyhow::ensure!(
                    r.is_finite() && r > 0.0,
                    "--max-ratio must be a positive number, got {r}"
                );
            }
            let report = copy_engine::verify(&a.src, &a.dst, a.max_ratio)?;
            print_report(&report, a.output.json, false)?;
            Ok(verdict_code(report.ok))
        }
    }
}

/// Warns on stderr, for each attached loop device `path` backs, that an
/// override lets the operation go ahead (`what`).
fn warn_attached(path: &Path, what: &str) {
    for u in copy_engine::live::loop_uses(path) {
        err(&format!(
            "sparsecp: warning: {} backs {}; {what}",
            path.display(),
            u.describe()
        ));
    }
}

fn print_report<R: serde::Serialize + std::fmt::Display>(
    r: &R,
    json: bool,
    quiet: bool,
) -> Result<()> {
    if json {
        out(&serde_json::to_string_pretty(r)?);
    } else if !quiet {
        out(&r.to_string());
    }
    Ok(())
}

/// `copy --bmap`: from standard input for '-', else from the path.
fn copy_with_bmap(
    src: &Path,
    bmap: &Path,
    dst: &Path,
    opts: &CopyOptions,
    bar: &Bar,
) -> Result<CopyReport, Error> {
    if src == Path::new("-") {
        let mut stdin = CancellableReader::new(std::io::stdin(), opts.cancel.clone());
        copy_engine::copy_stream_with_bmap(&mut stdin, src, bmap, dst, opts, bar)
    } else {
        copy_engine::copy_with_bmap(src, bmap, dst, opts, bar)
    }
}

/// Prints a line to standard output; a reader that went away (`| head`)
/// is not an error worth a panic.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}").and_then(|_| stdout.flush());
}

/// Prints a line to standard error, for reports whose destination is
/// standard output.
fn err(text: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}").and_then(|_| stderr.flush());
}

/// Whether `path` is this process's standard output (`/dev/stdout`, or the
/// same pipe, terminal or file by device and inode).
fn is_standard_output(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(dst), Ok(stdout)) = (
        std::fs::metadata(path),
        std::fs::metadata("/proc/self/fd/1"),
    ) else {
        return false;
    };
    (dst.dev(), dst.ino(), dst.rdev()) == (stdout.dev(), stdout.ino(), stdout.rdev())
}

fn verdict_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// SIGINT and SIGTERM raise the engine's cancel flag, so a copy stops at
/// the next chunk and removes its temporary instead of dying mid-write.
fn cancel_on_signals() -> Result<Cancel> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag)).context("installing signal handler")?;
    }
    Ok(Cancel::from_flag(flag))
}
