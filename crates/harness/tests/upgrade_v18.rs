//! The v1.7 -> v1.8 upgrade (harvester-upgrade-v18-8g, #10687) at a
//! quarter of full size on ext4, under every strategy: transition.img
//! needs more than COS_STATE has free even next to a sparse passive.img.
//! Also what the gate says of a copier that leaves nothing behind.

use harness::upgrade::PREFLIGHT_ENV;
use harness::{run_scenario, Copier, RunOptions, Scenario, Strategy, UpgradeVerdict};
use testbed::FsKind;

use crate::support::{log, matrix, redacted};

fn v18(scale: f64) -> Scenario {
    Scenario::load("harvester-upgrade-v18-8g")
        .unwrap()
        .scaled(scale)
        .unwrap()
}

#[test]
fn v18_only_a_refusal_or_dropping_passive_avoids_corruption() {
    testbed::require!("tune2fs", "blkid", "fallocate");
    testbed::require_fs!(FsKind::Ext4);
    let scenario = v18(0.25);
    let mut strategies = Strategy::builtins();
    strategies.push(Strategy::External {
        command: "echo 'upgrade refused by policy' >&2; exit 3".to_owned(),
    });
    let options = RunOptions {
        strategies,
        ..RunOptions::default()
    };
    let copiers = [Copier::Iocopy, Copier::Sparsecp];
    let report = run_scenario(&scenario, &copiers, &options, &mut log).unwrap();
    for run in &report.runs {
        let refused = run.upgrade("preflight").unwrap();
        assert_eq!(refused.images_unchanged, Some(true));
        assert_eq!(refused.steps.len(), 1, "{:?}", refused.steps);
        let said = refused.refusal.as_deref().unwrap();
        assert!(said.contains("transition.img needs an estimated"), "{said}");
        let external = run.upgrade("external").unwrap();
        assert!(
            external
                .refusal
                .as_deref()
                .unwrap()
                .ends_with("upgrade refused by policy"),
            "{:?}",
            external.refusal
        );
        let dropped = run.upgrade("drop-passive").unwrap();
        assert!(!dropped.fallback_kept);
        let error = dropped.estimate_error().unwrap();
        assert!(error.abs() < 0.01, "the estimate is off by {error}");
        // Out of space although the images checked out at the start.
        let corrupted = run.upgrade("elemental").unwrap();
        assert!(
            corrupted
                .problems
                .iter()
                .any(|p| p.contains("does not hold the new tree")),
            "{:#?}",
            corrupted.problems
        );
    }
    let _redacted = redacted();
    insta::assert_snapshot!(
        "harvester_upgrade_v18_8g_ext4_scale_0_25",
        harness::table::render_stable(&report)
    );
    insta::assert_snapshot!(matrix(&report), @r"
    iocopy: elemental CORRUPTED, dig-passive CORRUPTED, preflight refused, drop-passive upgraded, external refused; gate FAIL
    sparsecp: elemental CORRUPTED, dig-passive CORRUPTED, preflight refused, drop-passive upgraded, external refused; gate FAIL
    ");
}

#[test]
fn a_preflight_command_gets_its_environment_and_one_that_never_refuses_lets_corruption_through() {
    testbed::require!("tune2fs", "blkid");
    testbed::require_fs!(FsKind::Ext4);
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    let names: Vec<&str> = PREFLIGHT_ENV.iter().map(|(name, _)| *name).collect();
    let command = format!(
        "for v in {}; do eval echo \"$v=\\${{$v}}\"; done > '{}'",
        names.join(" "),
        env_file.display()
    );
    let options = RunOptions {
        strategies: vec![Strategy::External { command }],
        ..RunOptions::default()
    };
    let scenario = v18(0.1);
    let report = run_scenario(&scenario, &[Copier::Sparsecp], &options, &mut log).unwrap();
    let run = report.run("sparsecp").unwrap();
    let upgrade = run.upgrade("external").unwrap();
    assert_eq!(upgrade.verdict, UpgradeVerdict::Corrupted);
    assert!(!run.passed());
    let seen = std::fs::read_to_string(&env_file).unwrap();
    let value = |name: &str| {
        seen.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing from {seen}"))
            .to_owned()
    };
    assert_eq!(
        value("UPGRADE_BYTES_NEEDED"),
        report.estimate.unwrap().needed.to_string()
    );
    assert_eq!(
        value("COS_STATE_BYTES_FREE"),
        upgrade.steps[0].free_before.to_string()
    );
    for name in [
        "COS_STATE_DIR",
        "TRANSITION_IMG",
        "ACTIVE_IMG",
        "PASSIVE_IMG",
    ] {
        assert!(
            std::path::Path::new(&value(name)).is_absolute(),
            "{name}: {seen}"
        );
    }
    assert!(value("TRANSITION_IMG").ends_with("/cOS/transition.img"));
}

#[test]
fn a_copier_that_exits_0_without_a_passive_img_is_told_so_once() {
    testbed::require!("tune2fs", "blkid");
    testbed::require_fs!(FsKind::Ext4);
    let lazy = Copier::external("lazy", "true {src} {dst}").unwrap();
    let report = run_scenario(&v18(0.1), &[lazy], &RunOptions::default(), &mut log).unwrap();
    let run = report.run("lazy").unwrap();
    assert!(run.upgrades.is_empty(), "no passive.img, so no upgrade");
    assert_eq!(
        run.failures(),
        ["the copier exited 0 but left no passive.img"]
    );
}
