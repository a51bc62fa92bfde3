//! The markdown report, the judged targets and the chart, from synthetic
//! results.

use bench::case::{Mode, Role};
use bench::report::{markdown, minutes, Report};
use bench::system::Machine;
use bench::targets::judge;

use crate::support::case;

fn install() -> bench::runner::CaseResult {
    case(
        "install",
        &[
            ("sparsecp auto", Role::Ours, &[1.0, 1.1, 0.9], Some(1000)),
            (
                "cp --sparse=auto",
                Role::Theirs,
                &[2.0, 2.0, 2.0],
                Some(1000),
            ),
            (
                "limit: read+write once",
                Role::Limit,
                &[0.8, 0.9, 0.95],
                Some(1200),
            ),
            ("rsync --sparse", Role::Theirs, &[], None),
            ("xcp", Role::Theirs, &[1.5, 1.5, 1.5], Some(1000)),
            // The fastest that keeps holes.
            (
                "cp --sparse=always",
                Role::Theirs,
                &[1.4, 1.4, 1.4],
                Some(1000),
            ),
            // Faster, but writes the holes out: not a peer to beat.
            ("Go io.Copy", Role::Theirs, &[0.5, 0.5, 0.5], Some(3000)),
        ],
        &Mode::ALL,
    )
}

fn report() -> Report {
    Report {
        runs: 3,
        scale: 1.0,
        wall_seconds: 843.0,
        sparsecp: "/target/release/sparsecp".into(),
        machine: Machine {
            kernel: "6.1".into(),
            cpus: 2,
            memory: 24 << 30,
            cpu_model: "test CPU".into(),
            tools: vec![("cp".into(), "cp (GNU coreutils) 9.1".into())],
        },
        revision: "abc1234".into(),
        load: ("0.10 0.20 0.30".into(), "1.00 0.50 0.40".into()),
        targets: judge(&[install()], std::path::Path::new("/nonexistent/sparsecp")),
        cases: vec![install()],
        failed_cases: vec![("reflink-xfs".into(), "needs mkfs.xfs".into())],
    }
}

#[test]
fn targets_are_met_missed_or_not_measured() {
    let verdicts = judge(&[install()], std::path::Path::new("/nonexistent/sparsecp"));
    let find = |start: &str| {
        verdicts
            .iter()
            .find(|v| v.target.starts_with(start))
            .unwrap_or_else(|| panic!("no target {start:?}"))
    };
    // 1.0 s against 2.0 s: 0.5x meets "<= 0.8x".
    let warm = find("install copy auto, warm");
    assert_eq!(warm.met, Some(true), "{warm:?}");
    assert!(warm.measured.starts_with("0.50x"), "{}", warm.measured);
    // 1.0 s against the 0.9 s limit: 1.11x misses "<= 1.1x".
    let limit = find("install copy auto, cold with sync: <= 1.1x");
    assert_eq!(limit.met, Some(false), "{limit:?}");
    assert_eq!(find("install copy auto: allocation").met, Some(true));
    // Cases that did not run are not measured, never met.
    assert_eq!(find("dig").met, None);
    assert_eq!(find("peak RSS").met, Some(true));
    // The best peer keeps holes: cp --sparse=always's 1.4 s, not io.Copy's
    // 0.5 s.
    let best = find("install copy auto, warm (no sync): <= 0.8x the best peer");
    assert_eq!(best.met, Some(true), "{best:?}");
    assert!(
        best.measured.ends_with("against cp --sparse=always"),
        "{}",
        best.measured
    );
    assert_eq!(find("sparsecp binary").met, None);
}

#[test]
fn markdown_has_targets_times_ratios_and_skips() {
    let md = markdown(&report());
    assert!(md.contains("## Targets"), "{md}");
    assert!(
        md.contains("| install copy auto, warm (no sync): <= 0.8x cp --sparse=auto | 0.50x"),
        "{md}"
    );
    assert!(
        md.contains("| sparsecp auto | 1.00 s (900.0 ms–1.10 s) |"),
        "{md}"
    );
    assert!(
        md.contains("| sparsecp auto / cp --sparse=auto | 0.50× (0.45–0.55) |"),
        "{md}"
    );
    assert!(
        md.contains("| rsync --sparse | - | - | - | - | - | - |"),
        "{md}"
    );
    assert!(
        md.contains("## reflink-xfs\n\nNot run: needs mkfs.xfs"),
        "{md}"
    );
    assert!(md.contains("took 14 min 03 s"), "{md}");
}

#[test]
fn chart_is_well_formed_and_labels_every_tool_and_ratio() {
    let svg = bench::plot::render(&[install()], "test run");
    let mut reader = quick_xml::Reader::from_str(&svg);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML: {e}\n{svg}"),
        }
    }
    for text in [
        "install · warm",
        "install · cold+sync",
        "cp --sparse=auto",
        "sparsecp auto 0.50×",
        "did not run",
    ] {
        assert!(svg.contains(text), "{text:?} missing from the chart");
    }
}

#[test]
fn ticks_are_round_and_cover_the_largest_time() {
    for max in [0.0042, 0.9, 1.0, 7.3, 61.0] {
        let (step, ticks) = bench::plot::nice_ticks(max);
        assert!(step * ticks as f64 >= max, "{max}: {step} x {ticks}");
        assert!((2..=8).contains(&ticks), "{max}: {ticks} ticks");
        let mantissa = step / 10f64.powf(step.log10().floor());
        assert!(
            [1.0, 2.0, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9),
            "{step}"
        );
    }
    assert_eq!(minutes(42.4), "42 s");
}
