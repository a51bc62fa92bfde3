//! The upgrade at full scale on the default 8 GiB ext4 COS_STATE
//! (harvester-upgrade-8g, the v1.4 case): without a check, the upgrade
//! corrupts the new active.img next to a dense passive.img and fits next
//! to a sparse one; Harvester's dig-holes first makes both fit.

use harness::install::FULL_THRESHOLD;
use harness::{run_scenario, Copier, RunOptions, Scenario, Strategy, UpgradeVerdict};
use testbed::FsKind;

use crate::support::{log, matrix, redacted};

#[test]
fn harvester_upgrade_8g_dense_corrupts_sparse_fits_and_dig_passive_saves_both() {
    testbed::require!("tune2fs", "blkid", "fallocate");
    testbed::require_fs!(FsKind::Ext4);
    let scenario = Scenario::load("harvester-upgrade-8g").unwrap();
    let options = RunOptions {
        strategies: vec![Strategy::Elemental, Strategy::DigPassive],
        ..RunOptions::default()
    };
    let copiers = [Copier::Iocopy, Copier::Sparsecp];
    let report = run_scenario(&scenario, &copiers, &options, &mut log).unwrap();
    let dense = report.run("iocopy").unwrap();
    let sparse = report.run("sparsecp").unwrap();
    let dense_elemental = dense.upgrade("elemental").unwrap();
    let sparse_elemental = sparse.upgrade("elemental").unwrap();
    // The free space figures behind it: what transition.img takes lies
    // between what a dense and a sparse passive.img leave free, and the
    // dense run fills COS_STATE up.
    let needed = sparse_elemental.transition.as_ref().unwrap().allocated;
    assert!(
        dense_elemental.free_before() < needed && needed < sparse_elemental.free_before(),
        "dense leaves {}, sparse {}, transition.img takes {needed}",
        dense_elemental.free_before(),
        sparse_elemental.free_before()
    );
    let build = &dense_elemental.steps[0];
    assert_eq!(build.name, "build transition.img");
    assert!(build.free_after <= FULL_THRESHOLD, "{build:?}");
    // Digging the dense passive.img gives back what the sparse copy never
    // took: the upgrade then starts with as much free as after sparsecp.
    let dig = &dense.upgrade("dig-passive").unwrap().steps[0];
    assert!(dig.free_after > needed, "{dig:?}");
    // The estimate, against the real allocation of a full write.
    let error = sparse_elemental.estimate_error().unwrap();
    assert!(error.abs() < 0.01, "the estimate is off by {error}");
    assert_eq!(sparse_elemental.verdict, UpgradeVerdict::Upgraded);
    let _redacted = redacted();
    insta::assert_snapshot!(
        "harvester_upgrade_8g_ext4",
        harness::table::render_stable(&report)
    );
    insta::assert_snapshot!(matrix(&report), @r"
    iocopy: elemental CORRUPTED, dig-passive upgraded; gate FAIL
    sparsecp: elemental upgraded, dig-passive upgraded; gate pass
    ");
}
