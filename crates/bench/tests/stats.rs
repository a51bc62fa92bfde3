//! Medians, ratios and the units people read.

use bench::stats::{human_rss, human_seconds, median, Ratio, Summary};

use crate::support::samples;

#[test]
fn median_of_odd_even_and_empty_sets() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(median(&[]), None);
}

#[test]
fn summary_keeps_range_and_largest_rss() {
    let mut runs = samples(&[1.0, 3.0, 2.0], 100);
    runs[1].max_rss_kib = 900;
    let s = Summary::of(&runs).unwrap();
    assert_eq!(
        (s.median, s.min, s.max, s.peak_rss_kib, s.runs),
        (2.0, 1.0, 3.0, 900, 3)
    );
    assert!(Summary::of(&[]).is_none());
}

#[test]
fn ratio_is_of_medians_and_pairs_rounds_in_order() {
    let ours = samples(&[1.0, 2.0, 3.0], 0);
    let theirs = samples(&[2.0, 2.0, 2.0], 0);
    let r = Ratio::between(("ours", &ours), ("theirs", &theirs)).unwrap();
    assert_eq!(r.of_medians, 1.0);
    assert_eq!((r.paired_min, r.paired_max), (0.5, 1.5));
    assert!(Ratio::between(("ours", &[]), ("theirs", &theirs)).is_none());
}

#[test]
fn durations_and_rss_read_naturally() {
    assert_eq!(human_seconds(0.000_85), "850 µs");
    assert_eq!(human_seconds(0.004_2), "4.20 ms");
    assert_eq!(human_seconds(0.123_4), "123.4 ms");
    assert_eq!(human_seconds(1.234), "1.23 s");
    assert_eq!(human_seconds(612.0), "612 s");
    assert_eq!(human_rss(7 * 1024 + 512), "7.5M");
}

#[test]
fn rounds_alternate_direction() {
    use bench::runner::round_order;
    assert_eq!(round_order(3, 1), [0, 1, 2]);
    assert_eq!(round_order(3, 2), [2, 1, 0]);
    assert_eq!(round_order(3, 3), [0, 1, 2]);
}
