//! Issue #3's upgrade at full scale: on the default 8 GiB COS_STATE,
//! writing `transition.img` runs out of space next to a dense passive.img
//! and fits next to a sparse one.

use harness::install::FULL_THRESHOLD;
use harness::{run_scenario, Copier, Scenario};
use testbed::FsKind;

use crate::support::{log, redacted, verdicts};

#[test]
fn upgrade_runs_out_of_space_with_dense_passive_and_fits_with_sparse() {
    testbed::require!("tune2fs", "blkid");
    testbed::require_fs!(FsKind::Ext4);
    let scenario = Scenario::load("harvester-upgrade-8g").unwrap();
    let report = run_scenario(
        &scenario,
        &[Copier::Iocopy, Copier::Sparsecp],
        1.01,
        &mut log,
    )
    .unwrap();
    let dense = report.run("iocopy").unwrap().upgrade.as_ref().unwrap();
    let sparse = report.run("sparsecp").unwrap().upgrade.as_ref().unwrap();
    assert!(!dense.fits(), "the upgrade fitted next to a dense passive");
    assert!(sparse.fits(), "{:#?}", sparse.out_of_space);
    // The free space figures behind it: what transition.img takes lies
    // between what a dense and a sparse passive.img leave free, and the
    // dense run fills COS_STATE up.
    let needed = sparse.transition.as_ref().unwrap().allocated;
    assert!(
        dense.free_before < needed && needed < sparse.free_before,
        "dense leaves {}, sparse {}, transition.img takes {needed}",
        dense.free_before,
        sparse.free_before
    );
    assert!(dense.free_after_transition <= FULL_THRESHOLD);
    assert!(sparse.free_after_transition > FULL_THRESHOLD);
    let _redacted = redacted();
    insta::assert_snapshot!(
        "harvester_upgrade_8g_ext4",
        harness::table::render_stable(&report)
    );
    insta::assert_snapshot!(verdicts(&report), @r"
    iocopy: FAIL
    sparsecp: pass
    ");
}
