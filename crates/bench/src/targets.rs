//! The targets of issue #5, judged from one run's results. Every ratio is
//! a ratio of medians measured in the same run.

use serde::Serialize;

use crate::case::{Mode, Role};
use crate::runner::CaseResult;
use crate::stats::{human_rss, human_seconds};

/// One target and what this run says about it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The target as the issue states it.
    pub target: String,
    /// What was measured, e.g. `0.72x (1.10 s vs 1.53 s)`.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measured.
    pub met: Option<bool>,
}

impl Verdict {
    fn missing(target: &str, why: &str) -> Verdict {
        Verdict {
            target: target.to_owned(),
            measured: format!("not measured ({why})"),
            met: None,
        }
    }
}

/// Judges every target against `results` (and the size of the measured
/// `sparsecp` binary).
pub fn judge(results: &[CaseResult], sparsecp: &std::path::Path) -> Vec<Verdict> {
    let case = |name: &str| results.iter().find(|c| c.name == name);
    let mut verdicts = vec![
        ratio_target(
            case("install"),
            Mode::Warm,
            "sparsecp auto",
            "cp --sparse=auto",
            0.8,
            "install copy auto, warm (no sync): <= 0.8x cp --sparse=auto",
        ),
        ratio_target(
            case("install"),
            Mode::ColdSync,
            "sparsecp auto",
            "cp --sparse=auto",
            1.0,
            "install copy auto, cold with sync: <= 1.0x cp --sparse=auto",
        ),
        best_peer_target(
            case("install"),
            Mode::Warm,
            0.8,
            "install copy auto, warm (no sync): <= 0.8x the best peer",
        ),
        best_peer_target(
            case("install"),
            Mode::ColdSync,
            1.0,
            "install copy auto, cold with sync: <= 1.0x the best peer",
        ),
        ratio_target(
            case("install"),
            Mode::ColdSync,
            "sparsecp auto",
            "limit: read+write once",
            1.1,
            "install copy auto, cold with sync: <= 1.1x the read-once-write-once limit",
        ),
        allocation_target(
            case("install"),
            "sparsecp auto",
            "cp --sparse=auto",
            "install copy auto: allocation <= cp --sparse=auto's",
        ),
        allocation_target(
            case("install"),
            "sparsecp always",
            "cp --sparse=always",
            "install copy always: allocation <= cp --sparse=always's",
        ),
        ratio_target(
            case("install"),
            Mode::Warm,
            "sparsecp always",
            "cp --sparse=always",
            0.8,
            "install copy always, warm (no sync): <= 0.8x cp --sparse=always",
        ),
        ratio_target(
            case("blockdev-dest"),
            Mode::WarmSync,
            "sparsecp",
            "bmaptool copy",
            0.8,
            "image onto a block device, warm with sync: <= 0.8x bmaptool copy",
        ),
        ratio_target(
            case("dig"),
            Mode::Warm,
            "sparsecp dig",
            "fallocate --dig-holes",
            0.5,
            "dig, warm (no sync): <= 0.5x fallocate --dig-holes",
        ),
        time_target(
            case("sparse-1tib"),
            Mode::Warm,
            "sparsecp auto",
            0.010,
            "1 TiB sparse file, warm (no sync): < 10 ms",
        ),
        ratio_target(
            case("sparse-1tib"),
            Mode::Warm,
            "sparsecp auto",
            "cp --sparse=auto",
            1.0,
            "1 TiB sparse file, warm (no sync): <= 1.0x cp --sparse=auto",
        ),
        ratio_target(
            case("extents-20k"),
            Mode::Warm,
            "sparsecp auto",
            "cp --sparse=auto",
            1.0,
            "20,000 extents, warm (no sync): <= 1.0x cp --sparse=auto",
        ),
        ratio_target(
            case("extents-100k"),
            Mode::Warm,
            "sparsecp auto",
            "cp --sparse=auto",
            1.0,
            "100,000 extents, warm (no sync): <= 1.0x cp --sparse=auto",
        ),
        ratio_target(
            case("extents-1m"),
            Mode::Warm,
            "sparsecp auto",
            "cp --sparse=auto",
            1.0,
            "1,000,000 extents, warm (no sync): <= 1.0x cp --sparse=auto",
        ),
        ratio_target(
            case("extents-1m-random"),
            Mode::Warm,
            "sparsecp auto",
            "cp --sparse=auto",
            1.0,
            "1,000,000 random extents, warm (no sync): <= 1.0x cp --sparse=auto",
        ),
    ];
    for name in ["extents-1m", "extents-1m-random"] {
        verdicts.push(case_rss_target(
            case(name),
            &format!("{name}: peak RSS of sparsecp copy, verify, dig and inspect --map <= 16 MiB"),
        ));
    }
    verdicts.push(rss_target(results));
    verdicts.push(size_target(sparsecp));
    for (name, fs) in [("reflink-xfs", "xfs"), ("reflink-btrfs", "btrfs")] {
        verdicts.push(time_target(
            case(name),
            Mode::Warm,
            "sparsecp auto",
            0.050,
            &format!("reflink copy on {fs}, warm (no sync): < 50 ms"),
        ));
        verdicts.push(ratio_target(
            case(name),
            Mode::Warm,
            "sparsecp auto",
            "cp --reflink=auto",
            1.0,
            &format!("reflink copy on {fs}, warm (no sync): <= 1.0x cp --reflink=auto"),
        ));
    }
    verdicts
}

/// sparsecp auto against the fastest peer (a `Theirs` tool with the same
/// output, allocating no more than sparsecp: a peer that writes holes out
/// does another job) of `case` in `mode`.
fn best_peer_target(case: Option<&CaseResult>, mode: Mode, limit: f64, target: &str) -> Verdict {
    let ours = "sparsecp auto";
    let Some(case) = case else {
        return Verdict::missing(target, "case not run");
    };
    let Some((m, i)) = case.mode(mode).zip(case.tool(ours)) else {
        return Verdict::missing(target, "sparsecp did not run");
    };
    let our_allocation = case.tools[i].allocated.unwrap_or(u64::MAX);
    let best = case
        .tools
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.role == Role::Theirs
                && t.identical == Some(true)
                && t.allocated.is_some_and(|a| a <= our_allocation)
        })
        .filter_map(|(j, t)| m.summaries[j].map(|s| (t.name.as_str(), s.median)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let Some((peer, theirs)) = best else {
        return Verdict::missing(target, "no peer kept holes with the same output");
    };
    // From the medians, not from a pair: the fastest peer need not be one
    // sparsecp auto is paired with (cp --sparse=always is sparsecp
    // always's).
    let Some(ours_median) = m.summaries[i].map(|s| s.median) else {
        return Verdict::missing(target, "sparsecp did not run");
    };
    let ratio = ours_median / theirs;
    Verdict {
        target: target.to_owned(),
        measured: format!(
            "{ratio:.2}x ({} vs {}) against {peer}",
            human_seconds(ours_median),
            human_seconds(theirs)
        ),
        met: Some(ratio <= limit),
    }
}

fn ratio_target(
    case: Option<&CaseResult>,
    mode: Mode,
    ours: &str,
    theirs: &str,
    limit: f64,
    target: &str,
) -> Verdict {
    let Some(case) = case else {
        return Verdict::missing(target, "case not run");
    };
    let found = case.mode(mode).and_then(|m| {
        m.ratios
            .iter()
            .find(|r| r.ours == ours && r.theirs == theirs)
            .map(|r| (m, r))
    });
    let Some((m, ratio)) = found else {
        return Verdict::missing(target, "a contender did not run");
    };
    let median = |name: &str| {
        case.tool(name)
            .and_then(|i| m.summaries[i])
            .map_or_else(|| "-".to_owned(), |s| human_seconds(s.median))
    };
    Verdict {
        target: target.to_owned(),
        measured: format!(
            "{:.2}x ({} vs {})",
            ratio.of_medians,
            median(ours),
            median(theirs)
        ),
        met: Some(ratio.of_medians <= limit),
    }
}

fn time_target(
    case: Option<&CaseResult>,
    mode: Mode,
    tool: &str,
    limit: f64,
    target: &str,
) -> Verdict {
    let Some(case) = case else {
        return Verdict::missing(target, "case not run");
    };
    let Some(summary) = case
        .mode(mode)
        .zip(case.tool(tool))
        .and_then(|(m, i)| m.summaries[i])
    else {
        return Verdict::missing(target, "sparsecp did not run");
    };
    Verdict {
        target: target.to_owned(),
        measured: format!(
            "{} median ({}–{})",
            human_seconds(summary.median),
            human_seconds(summary.min),
            human_seconds(summary.max)
        ),
        met: Some(summary.median < limit),
    }
}

fn allocation_target(case: Option<&CaseResult>, ours: &str, theirs: &str, target: &str) -> Verdict {
    let Some(case) = case else {
        return Verdict::missing(target, "case not run");
    };
    let allocated = |name: &str| case.tool(name).and_then(|i| case.tools[i].allocated);
    let (Some(a), Some(b)) = (allocated(ours), allocated(theirs)) else {
        return Verdict::missing(target, "a contender did not run");
    };
    Verdict {
        target: target.to_owned(),
        measured: format!("{:.4}x ({} vs {} bytes)", a as f64 / b as f64, a, b),
        met: Some(a <= b),
    }
}

/// The measured binary, as it ships (`cargo xtask bench` measures the
/// `dist` profile's stripped build).
fn size_target(sparsecp: &std::path::Path) -> Verdict {
    let target = "sparsecp binary (stripped, as shipped) <= 3 MB";
    match std::fs::metadata(sparsecp) {
        Ok(m) => Verdict {
            target: target.to_owned(),
            measured: format!(
                "{} ({} bytes, {})",
                copy_engine::human_bytes(m.len()),
                m.len(),
                sparsecp.display()
            ),
            met: Some(m.len() <= 3_000_000),
        },
        Err(e) => Verdict::missing(target, &format!("cannot stat {}: {e}", sparsecp.display())),
    }
}

/// Peak RSS of every sparsecp run of one case.
fn case_rss_target(case: Option<&CaseResult>, target: &str) -> Verdict {
    match case {
        None => Verdict::missing(target, "case not run"),
        Some(case) => peak_rss(std::slice::from_ref(case), target),
    }
}

/// Peak RSS of every sparsecp run in every case and mode.
fn rss_target(results: &[CaseResult]) -> Verdict {
    peak_rss(
        results,
        "peak RSS of sparsecp <= 16 MiB (every case and mode)",
    )
}

/// The largest peak RSS of sparsecp's runs in `results`, against 16 MiB.
fn peak_rss(results: &[CaseResult], target: &str) -> Verdict {
    let mut peak: Option<(u64, String)> = None;
    for case in results {
        for m in &case.modes {
            for (i, tool) in case.tools.iter().enumerate() {
                if tool.role != Role::Ours {
                    continue;
                }
                if let Some(s) = m.summaries[i] {
                    if peak.as_ref().is_none_or(|(kib, _)| s.peak_rss_kib > *kib) {
                        peak = Some((
                            s.peak_rss_kib,
                            format!("{} / {} / {}", case.name, tool.name, m.mode.label()),
                        ));
                    }
                }
            }
        }
    }
    match peak {
        None => Verdict::missing(target, "sparsecp did not run"),
        Some((kib, where_)) => Verdict {
            target: target.to_owned(),
            measured: format!("{} at most ({where_})", human_rss(kib)),
            met: Some(kib <= 16 * 1024),
        },
    }
}
