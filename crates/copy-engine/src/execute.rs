//! Running a [`CopyPlan`]: one short function per strategy, each only
//! moving bytes and recording what it did in the report. No decisions are
//! made here beyond the ones the kernel makes for us (FICLONE or
//! copy_file_range declining), and those were planned for as fallbacks.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use crate::dig;
use crate::error::{Error, IoContext};
use crate::layout::Layout;
use crate::mover::{self, sparse, Job, Moved, Reads, Source};
use crate::offload::{self, OffloadError};
use crate::options::CopyOptions;
use crate::plan::{
    self, CloneFallback, CopyPlan, Destination, Holes, Move, Mover, Strategy, WriteMode,
};
use crate::progress::Progress;
use crate::report::{CopyReport, Method, Phase, PhaseReport, Shape};
use crate::space::{self, OldDestination};
use crate::sys::{self, CloneOutcome};

/// The most one copy_file_range call is asked to move.
const OFFLOAD_CALL: u64 = 1 << 30;

/// Where the bytes come from.
pub(crate) enum Input<'a> {
    /// A regular file or block device, read at the plan's ranges.
    File(&'a File),
    /// A pipe or similar, read front to back.
    Stream(&'a mut (dyn Read + Send)),
}

/// The two ends of a copy and how to report on it.
pub(crate) struct Run<'a> {
    /// The source, for errors and reports.
    pub src_path: &'a Path,
    /// The source's layout as planned (a file's; unwalked when the plan
    /// clones first): a declined clone walks a copy of it.
    pub layout: Option<&'a Layout>,
    /// The destination the caller will see.
    pub target: &'a Path,
    /// The open destination: the temporary, or the target written in place.
    pub out: &'a File,
    /// Where `out` is.
    pub out_path: &'a Path,
    /// What the destination is (and its filesystem's facts).
    pub dest: &'a Destination,
    pub opts: &'a CopyOptions,
    pub progress: &'a dyn Progress,
}

/// How the report gets the destination's hole bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HoleCount {
    /// Known without asking the filesystem.
    Known(u64),
    /// A clone's: the source's holes, not counted ([`Holes::Shared`]).
    Shared,
    /// Measured with SEEK_DATA/SEEK_HOLE once the data is in.
    Measure,
}

/// What a run learnt that the plan could not know.
pub(crate) struct Outcome {
    /// The destination's hole bytes, when the run knows them without
    /// asking the filesystem (see [`Holes`]).
    pub holes: HoleCount,
    /// The end of the content copied (a stream's length).
    pub end: u64,
}

/// Runs `plan` from `input`.
pub(crate) fn execute(
    plan: &CopyPlan,
    input: Input<'_>,
    run: &Run<'_>,
    report: &mut CopyReport,
) -> Result<Outcome, Error> {
    match (&plan.strategy, input) {
        (Strategy::Clone { punch, fallback }, Input::File(src)) => {
            let Some(declined) = clone(src, *punch, plan.size, run, report)? else {
                return Ok(Outcome {
                    holes: match plan.holes {
                        Holes::Known(n) => HoleCount::Known(n),
                        Holes::Shared => HoleCount::Shared,
                        _ => HoleCount::Measure,
                    },
                    end: plan.size,
                });
            };
            match fallback {
                CloneFallback::Planned(fallback) => {
                    execute(fallback, Input::File(src), run, report)
                }
                CloneFallback::WalkThenPlan => {
                    let mut layout = run
                        .layout
                        .expect("a clone's plan comes with the source's layout")
                        .clone();
                    layout.walk_for_copy(src)?;
                    let fallback = plan::after_declined_clone(&layout, run.dest, run.opts);
                    execute(&fallback, Input::File(src), run, report)
                }
                CloneFallback::Fail => Err(Error::ReflinkUnsupported {
                    path: run.target.into(),
                    source: declined,
                }),
            }
        }
        (Strategy::Clone { .. }, Input::Stream(_)) => {
            unreachable!("a stream's plan never clones")
        }
        (Strategy::Offload { fallback }, input) => data(plan, true, fallback, input, run, report),
        (Strategy::Move(mv), input) => data(plan, false, mv, input, run, report),
    }
}

/// FICLONE, then (with `punch`) punching the clone's zero blocks. Returns
/// `None` when the filesystem shared the extents, or the errno with which
/// it declined (nothing was changed then).
fn clone(
    src: &File,
    punch: bool,
    size: u64,
    run: &Run<'_>,
    report: &mut CopyReport,
) -> Result<Option<std::io::Error>, Error> {
    let phase = Instant::now();
    if let CloneOutcome::Unsupported(errno) =
        sys::clone_file(run.out, src).at(run.target, "reflink")?
    {
        return Ok(Some(errno.into()));
    }
    report.reflinked = true;
    report.phases.push(phase_report(
        Phase::Clone,
        Method::Ficlone,
        Shape::Kernel,
        size,
        phase,
    ));
    if punch {
        let phase = Instant::now();
        let opts = run.opts;
        report.zeros_to_holes =
            dig::punch_zero_blocks(run.out, run.out_path, &opts.cancel, run.progress)?;
        report.phases.push(phase_report(
            Phase::Punch,
            Method::PunchHole,
            Shape::Ring,
            size,
            phase,
        ));
    }
    Ok(None)
}

/// Checks that the destination filesystem has the room the plan needs
/// while the old destination, if any, still holds its blocks. (An
/// in-place copy was checked before its destination was truncated.)
fn preflight(plan: &CopyPlan, run: &Run<'_>) -> Result<(), Error> {
    let (Some(needed), Destination::NewFile(facts)) = (plan.space_needed, run.dest) else {
        return Ok(());
    };
    if needed <= facts.free_bytes {
        return Ok(());
    }
    // Refused: measure what the old destination holds, to say whether
    // --in-place or a dig of it would make room.
    let old = OldDestination::measure(run.target, facts.block_size);
    space::check(run.target, needed, facts.free_bytes, old, false)
}

/// Moves the data: copy_file_range first when `offload`, then `mv` over
/// whatever is left.
fn data(
    plan: &CopyPlan,
    offload: bool,
    mv: &Move,
    input: Input<'_>,
    run: &Run<'_>,
    report: &mut CopyReport,
) -> Result<Outcome, Error> {
    preflight(plan, run)?;
    let new_file = run.dest.facts().is_some();
    if let (Input::File(src), true) = (&input, new_file) {
        run.out.set_len(plan.size).at(run.out_path, "set size")?;
        sys::advise_sequential(src);
    }
    run.progress.start("copy", plan.progress_total);
    let moved = move_data(plan, offload, mv, input, run, report);
    run.progress.finish();
    let (offloaded, moved) = moved?;
    let holes = match plan.holes {
        Holes::Known(n) => HoleCount::Known(n),
        Holes::Shared => HoleCount::Shared,
        Holes::Unwritten if offloaded == 0 => match moved {
            None => HoleCount::Known(plan.size),
            Some(m) if m.whole_blocks => HoleCount::Known(plan.size - m.written),
            Some(_) => HoleCount::Measure,
        },
        Holes::Unwritten | Holes::Measured | Holes::NotReported => HoleCount::Measure,
    };
    Ok(Outcome {
        holes,
        end: moved.map_or(plan.size, |m| m.end),
    })
}

/// The offload (if planned) and the mover; returns the bytes offloaded
/// and what the mover did, if it ran.
fn move_data(
    plan: &CopyPlan,
    offload: bool,
    mv: &Move,
    input: Input<'_>,
    run: &Run<'_>,
    report: &mut CopyReport,
) -> Result<(u64, Option<Moved>), Error> {
    let mut reads = Reads::of(&plan.ranges);
    let declined;
    let mut offloaded = 0;
    // Only listed ranges are planned for offload (see `plan::data_plan`).
    if let (true, Input::File(src), Reads::Listed(ranges)) = (offload, &input, reads) {
        let phase = Instant::now();
        let done =
            offload::copy_ranges(src, run.out, ranges, OFFLOAD_CALL, &run.opts.cancel, |n| {
                run.progress.advance(n)
            })
            .map_err(|e| match e {
                OffloadError::Cancelled => Error::Interrupted {
                    path: run.target.into(),
                },
                OffloadError::Failed { offset, source } => Error::Io {
                    path: run.src_path.into(),
                    op: format!("copy_file_range at offset {offset}"),
                    source,
                },
            })?;
        offloaded = done.copied;
        if done.copied > 0 {
            report.bytes_read += done.copied;
            report.bytes_written += done.copied;
            report.phases.push(phase_report(
                Phase::Data,
                Method::CopyFileRange,
                Shape::Kernel,
                done.copied,
                phase,
            ));
        }
        declined = done.declined;
        reads = Reads::Listed(&declined);
    }
    // A sparse write of nothing leaves the fresh file all holes; dense and
    // sequential writes still owe the source's zeros.
    let nothing = matches!(reads, Reads::Listed(r) if r.is_empty());
    if nothing && mv.write == WriteMode::Sparse && matches!(input, Input::File(_)) {
        return Ok((offloaded, None));
    }
    let block = run.dest.facts().map_or(1, |f| f.block_size);
    let fill_to = match &input {
        Input::File(_) => Some(plan.size),
        Input::Stream(_) => None,
    };
    let job = Job {
        src_path: run.src_path,
        dst_path: run.target,
        zero_block: mv.zero_block.map(|b| b as usize),
        dst_block: block,
        fill_to,
        progress: run.progress,
        cancel: &run.opts.cancel,
    };
    let phase = Instant::now();
    let moved = match (mv.mover, input) {
        (Mover::SparseWorkers, Input::File(file)) => {
            sparse::move_sparse(file, reads, plan.size, run.out, &job)?
        }
        (_, input) => {
            let source = match input {
                Input::File(file) => Source::Ranges {
                    file,
                    reads,
                    size: plan.size,
                },
                Input::Stream(reader) => Source::Stream(reader),
            };
            mover::write::move_through_ring(source, run.out, mv.write, &job)?
        }
    };
    report.bytes_read += moved.read;
    report.bytes_written += moved.written;
    report.zeros_to_holes += moved.zero_skipped;
    // A sequential write covers the whole source, holes included.
    let covered = match mv.write {
        WriteMode::Sequential => moved.end,
        WriteMode::Sparse | WriteMode::Dense => moved.read,
    };
    report.phases.push(phase_report(
        Phase::Data,
        mv.method,
        mv.mover.into(),
        covered,
        phase,
    ));
    Ok((offloaded, Some(moved)))
}

/// A phase that ran from `since` until now.
pub(crate) fn phase_report(
    phase: Phase,
    method: Method,
    shape: Shape,
    bytes: u64,
    since: Instant,
) -> PhaseReport {
    PhaseReport {
        phase,
        method,
        shape,
        bytes,
        seconds: since.elapsed().as_secs_f64(),
    }
}
