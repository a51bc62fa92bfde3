use harness::install::{InstallOutcome, UpgradeOutcome};
use harness::{judge, CopierRun, ImageFacts, Verdict};

const GIB: u64 = 1 << 30;

fn image(name: &str, allocated: u64, label: &str) -> ImageFacts {
    ImageFacts {
        name: name.to_owned(),
        size: 3 * GIB,
        allocated,
        label: Some(label.to_owned()),
        fsck_clean: true,
        fsck_output: String::new(),
        extent_count: 1,
        extents: Vec::new(),
    }
}

/// A run whose passive.img allocates `passive` bytes next to a 1 GiB active.
fn run_with_passive(passive: u64) -> CopierRun {
    CopierRun {
        copier: "test".to_owned(),
        description: "a test copier".to_owned(),
        active: image("active.img", GIB, "COS_ACTIVE"),
        free_empty: 10 * GIB,
        install: InstallOutcome {
            copier: "test".to_owned(),
            free_before: 9 * GIB,
            free_after: 8 * GIB,
            copy_error: None,
            identical: true,
            first_difference: None,
            passive: Some(image("passive.img", passive, "COS_PASSIVE")),
            copy_seconds: 0.0,
        },
        upgrade: None,
        verdict: Verdict::default(),
    }
}

#[test]
fn passive_as_sparse_as_active_passes() {
    let verdict = judge(&run_with_passive(GIB), 1.01);
    assert!(verdict.passed, "{:?}", verdict.failures);
}

#[test]
fn passive_within_the_tolerance_passes_and_beyond_it_fails() {
    assert!(judge(&run_with_passive(GIB + GIB / 100), 1.01).passed);
    let verdict = judge(&run_with_passive(GIB + GIB / 50), 1.01);
    assert!(!verdict.passed);
    assert!(
        verdict.failures[0].contains("1.02x"),
        "{:?}",
        verdict.failures
    );
}

#[test]
fn differing_content_wrong_labels_and_fsck_errors_fail() {
    let mut run = run_with_passive(GIB);
    run.install.identical = false;
    run.install.first_difference = Some(1024);
    let passive = run.install.passive.as_mut().unwrap();
    passive.label = Some("COS_ACTIVE".to_owned());
    passive.fsck_clean = false;
    let verdict = judge(&run, 1.01);
    insta::assert_snapshot!(verdict.failures.join("\n"), @r#"
    passive.img differs from active.img at byte 1024
    installed passive.img is labelled "COS_ACTIVE", not COS_PASSIVE
    fsck -fn finds errors in installed passive.img:
    "#);
}

#[test]
fn a_failed_copy_fails() {
    let mut run = run_with_passive(GIB);
    run.install.passive = None;
    run.install.copy_error = Some("No space left on device".to_owned());
    let verdict = judge(&run, 1.01);
    assert_eq!(
        verdict.failures,
        ["the copy failed: No space left on device"]
    );
}

#[test]
fn an_upgrade_that_runs_out_of_space_fails() {
    let mut run = run_with_passive(GIB);
    run.upgrade = Some(UpgradeOutcome {
        tree_intact: Some(true),
        free_before: GIB,
        free_after_transition: 0,
        free_after: 0,
        transition: Some(image("transition.img", GIB, "COS_ACTIVE")),
        active: None,
        passive: None,
        out_of_space: vec!["COS_STATE free space reached 0 bytes".to_owned()],
    });
    let verdict = judge(&run, 1.01);
    assert_eq!(
        verdict.failures,
        ["the upgrade ran out of space on COS_STATE: COS_STATE free space reached 0 bytes"]
    );
}
