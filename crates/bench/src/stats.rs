//! Medians, ranges and ratios of timed samples.

use serde::Serialize;

/// One timed run of one contender.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Wall time of the run (tool plus, in sync modes, the flush).
    pub seconds: f64,
    /// Largest `ru_maxrss` of the run's processes, in KiB.
    pub max_rss_kib: u64,
}

/// The runs of one contender in one mode, condensed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Median wall time.
    pub median: f64,
    /// Fastest run.
    pub min: f64,
    /// Slowest run.
    pub max: f64,
    /// Largest peak RSS of any run, in KiB.
    pub peak_rss_kib: u64,
    /// How many runs.
    pub runs: usize,
}

impl Summary {
    /// Condenses `samples`; `None` if there are none.
    pub fn of(samples: &[Sample]) -> Option<Summary> {
        let seconds: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
        Some(Summary {
            median: median(&seconds)?,
            min: seconds.iter().copied().fold(f64::INFINITY, f64::min),
            max: seconds.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            peak_rss_kib: samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0),
            runs: samples.len(),
        })
    }
}

/// The median (mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// Ours against theirs in one mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    /// Our contender's name.
    pub ours: String,
    /// Their contender's name.
    pub theirs: String,
    /// median(ours) / median(theirs): below 1 means we are faster.
    pub of_medians: f64,
    /// The smallest and largest ours/theirs of the same round: how far the
    /// noise moves the comparison.
    pub paired_min: f64,
    /// See `paired_min`.
    pub paired_max: f64,
}

impl Ratio {
    /// Compares two contenders' runs, round by round (`ours[i]` ran next
    /// to `theirs[i]`).
    pub fn between(ours: (&str, &[Sample]), theirs: (&str, &[Sample])) -> Option<Ratio> {
        let (a, b) = (Summary::of(ours.1)?, Summary::of(theirs.1)?);
        let paired: Vec<f64> = ours
            .1
            .iter()
            .zip(theirs.1)
            .map(|(x, y)| x.seconds / y.seconds)
            .collect();
        Some(Ratio {
            ours: ours.0.to_owned(),
            theirs: theirs.0.to_owned(),
            of_medians: a.median / b.median,
            paired_min: paired.iter().copied().fold(f64::INFINITY, f64::min),
            paired_max: paired.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// A duration for people: `850 µs`, `4.2 ms`, `12.3 ms`, `1.23 s`, `45.1 s`.
pub fn human_seconds(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.0} µs", seconds * 1e6)
    } else if seconds < 0.01 {
        format!("{:.2} ms", seconds * 1e3)
    } else if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else if seconds < 100.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{seconds:.0} s")
    }
}

/// A peak RSS in KiB, in the workspace's one byte style
/// (`copy_engine::human_bytes`, like `du -h`): `3.2M`.
pub fn human_rss(kib: u64) -> String {
    copy_engine::human_bytes(kib * 1024)
}
