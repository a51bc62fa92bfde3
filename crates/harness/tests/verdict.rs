//! The gate's rules on made-up measurements: the copy's tolerance,
//! content, labels and fsck; an upgrade's three verdicts.

use harness::estimate::Estimate;
use harness::install::InstallOutcome;
use harness::upgrade::{judge_upgrade, Step};
use harness::{judge, ImageFacts, UpgradeOutcome, UpgradeVerdict};

const GIB: u64 = 1 << 30;

fn image(name: &str, allocated: u64, label: &str) -> ImageFacts {
    ImageFacts {
        name: name.to_owned(),
        size: 3 * GIB,
        allocated,
        label: Some(label.to_owned()),
        fsck_clean: true,
        fsck_summary: String::new(),
        fsck_output: String::new(),
        extent_count: 1,
        extents: Vec::new(),
    }
}

fn active() -> ImageFacts {
    image("active.img", GIB, "COS_ACTIVE")
}

/// A copy whose passive.img allocates `passive` bytes.
fn copy_with_passive(passive: u64) -> InstallOutcome {
    InstallOutcome {
        copier: "test".to_owned(),
        free_before: 9 * GIB,
        free_after: 8 * GIB,
        df_after: None,
        copy_error: None,
        identical: true,
        first_difference: None,
        passive: Some(image("passive.img", passive, "COS_PASSIVE")),
        copy_seconds: 0.0,
    }
}

#[test]
fn passive_as_sparse_as_active_passes() {
    let verdict = judge(&active(), &copy_with_passive(GIB), 1.01);
    assert!(verdict.passed, "{:?}", verdict.failures);
}

#[test]
fn passive_within_the_tolerance_passes_and_beyond_it_fails() {
    assert!(judge(&active(), &copy_with_passive(GIB + GIB / 100), 1.01).passed);
    let verdict = judge(&active(), &copy_with_passive(GIB + GIB / 50), 1.01);
    assert!(!verdict.passed);
    assert!(
        verdict.failures[0].contains("1.02x"),
        "{:?}",
        verdict.failures
    );
}

#[test]
fn differing_content_wrong_labels_and_fsck_errors_fail() {
    let mut copy = copy_with_passive(GIB);
    copy.identical = false;
    copy.first_difference = Some(1024);
    let passive = copy.passive.as_mut().unwrap();
    passive.label = Some("COS_ACTIVE".to_owned());
    passive.fsck_clean = false;
    passive.fsck_summary = "Inode 12, i_blocks is 8, should be 0.  Fix? no".to_owned();
    let verdict = judge(&active(), &copy, 1.01);
    insta::assert_snapshot!(verdict.failures.join("\n"), @r#"
    passive.img differs from active.img at byte 1024
    installed passive.img is labelled "COS_ACTIVE", not COS_PASSIVE
    fsck -fn finds errors in installed passive.img: Inode 12, i_blocks is 8, should be 0.  Fix? no
    "#);
}

#[test]
fn a_failed_copy_fails_with_its_first_line() {
    let mut copy = copy_with_passive(GIB);
    copy.passive = None;
    copy.copy_error = Some("No space left on device\n(and more)".to_owned());
    let verdict = judge(&active(), &copy, 1.01);
    assert_eq!(
        verdict.failures,
        ["the copy failed: No space left on device"]
    );
}

#[test]
fn a_copier_that_left_no_passive_says_so_once() {
    let mut copy = copy_with_passive(GIB);
    copy.passive = None;
    copy.copy_error = Some("the copier exited 0 but left no passive.img".to_owned());
    let verdict = judge(&active(), &copy, 1.01);
    assert_eq!(
        verdict.failures,
        ["the copier exited 0 but left no passive.img"]
    );
}

/// An upgrade that wrote and rotated, with every check good.
fn upgraded() -> UpgradeOutcome {
    let transition = image("transition.img", 2 * GIB, "COS_ACTIVE");
    UpgradeOutcome {
        strategy: "elemental".to_owned(),
        description: "test".to_owned(),
        estimate: Estimate {
            needed: 2 * GIB,
            mkfs: GIB / 64,
            data: 2 * GIB - GIB / 32,
            tree_metadata: GIB / 64,
            block_size: 4096,
        },
        steps: vec![Step {
            name: "build transition.img".to_owned(),
            free_before: 5 * GIB,
            free_after: 3 * GIB,
            outcome: "written".to_owned(),
        }],
        refusal: None,
        fallback_kept: true,
        dug_passive: None,
        active: Some(transition.clone()),
        transition: Some(transition),
        passive: Some(image("passive.img", GIB, "COS_PASSIVE")),
        new_tree_intact: Some(true),
        old_tree_intact: Some(true),
        images_unchanged: None,
        problems: Vec::new(),
        verdict: UpgradeVerdict::Corrupted,
    }
}

#[test]
fn an_upgrade_whose_images_read_back_right_is_upgraded() {
    assert_eq!(judge_upgrade(&upgraded()), UpgradeVerdict::Upgraded);
    assert!(UpgradeVerdict::Upgraded.passes());
}

#[test]
fn zeroed_files_on_a_clean_fsck_are_corruption() {
    // #10687: the files read as NUL bytes while fsck saw nothing.
    let mut outcome = upgraded();
    outcome.new_tree_intact = Some(false);
    assert_eq!(judge_upgrade(&outcome), UpgradeVerdict::Corrupted);
    assert!(!UpgradeVerdict::Corrupted.passes());
    let mut outcome = upgraded();
    outcome.old_tree_intact = None;
    assert_eq!(judge_upgrade(&outcome), UpgradeVerdict::Corrupted);
}

#[test]
fn fsck_errors_or_any_problem_are_corruption() {
    let mut outcome = upgraded();
    outcome.active.as_mut().unwrap().fsck_clean = false;
    assert_eq!(judge_upgrade(&outcome), UpgradeVerdict::Corrupted);
    let mut outcome = upgraded();
    outcome
        .problems
        .push("COS_STATE ran out of space".to_owned());
    assert_eq!(judge_upgrade(&outcome), UpgradeVerdict::Corrupted);
}

#[test]
fn a_refusal_that_changed_nothing_is_refused_and_one_that_did_is_not() {
    let mut outcome = upgraded();
    outcome.refusal = Some("refused: not enough space".to_owned());
    outcome.transition = None;
    outcome.new_tree_intact = None;
    outcome.old_tree_intact = None;
    outcome.images_unchanged = Some(true);
    assert_eq!(judge_upgrade(&outcome), UpgradeVerdict::Refused);
    assert!(UpgradeVerdict::Refused.passes());
    outcome.images_unchanged = Some(false);
    assert_eq!(judge_upgrade(&outcome), UpgradeVerdict::Corrupted);
}

#[test]
fn the_estimate_error_is_measured_only_on_a_full_write() {
    let mut outcome = upgraded();
    outcome.verdict = judge_upgrade(&outcome);
    assert_eq!(outcome.estimate_error(), Some(0.0));
    let mut out_of_space = upgraded();
    out_of_space.new_tree_intact = Some(false);
    out_of_space.verdict = judge_upgrade(&out_of_space);
    assert_eq!(out_of_space.estimate_error(), None);
}
