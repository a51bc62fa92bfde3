//! Synthetic results shaped like a real run's, for the report tests.

use bench::case::{Mode, Role};
use bench::runner::{CaseResult, ModeResult, ToolResult};
use bench::stats::{Ratio, Sample, Summary};

/// Samples of the given seconds, each with `rss_kib` peak RSS.
pub fn samples(seconds: &[f64], rss_kib: u64) -> Vec<Sample> {
    seconds
        .iter()
        .map(|&s| Sample {
            seconds: s,
            max_rss_kib: rss_kib,
        })
        .collect()
}

/// A case with `tools` (name, role, seconds per round, allocation), the
/// first tool compared with every other, run in `modes`. A tool with no
/// seconds did not run.
pub fn case(name: &str, tools: &[(&str, Role, &[f64], Option<u64>)], modes: &[Mode]) -> CaseResult {
    let pairs: Vec<(usize, usize)> = (1..tools.len()).map(|i| (0, i)).collect();
    let modes = modes
        .iter()
        .map(|&mode| {
            let samples: Vec<Vec<Sample>> = tools
                .iter()
                .map(|(_, role, secs, _)| {
                    samples(secs, if *role == Role::Ours { 7000 } else { 2800 })
                })
                .collect();
            let ratios = pairs
                .iter()
                .filter_map(|&(a, b)| {
                    Ratio::between(
                        (tools[a].0, samples[a].as_slice()),
                        (tools[b].0, samples[b].as_slice()),
                    )
                })
                .collect();
            ModeResult {
                mode,
                summaries: samples.iter().map(|s| Summary::of(s)).collect(),
                samples,
                ratios,
            }
        })
        .collect();
    CaseResult {
        name: name.to_owned(),
        title: format!("{name} title"),
        fixture: "input.img, 3.0G logical, 1.7G allocated, 97 data extents".to_owned(),
        tools: tools
            .iter()
            .map(|(name, role, _, allocated)| ToolResult {
                name: (*name).to_owned(),
                role: *role,
                command: format!("{name} SRC DST"),
                allocated: *allocated,
                identical: allocated.map(|_| true),
                how: None,
                stale_holes: false,
            })
            .collect(),
        pairs,
        modes,
        skipped: Vec::new(),
    }
}
