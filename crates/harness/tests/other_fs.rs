//! The scenarios with COS_STATE on xfs and btrfs at scale 0.1. Both share
//! extents, so `cp` and copy_file_range (go-iocopy) may reflink instead of
//! writing: the tables show what each copier does there. The upgrade runs
//! under the elemental and dig-passive strategies.

use harness::{run_scenario, Copier, RunOptions, Scenario, Strategy};
use testbed::FsKind;

use crate::support::{log, redacted};

const SCALE: f64 = 0.1;

fn table(name: &str, fs: FsKind, copiers: &[Copier]) -> String {
    let scenario = Scenario::load(name)
        .unwrap()
        .with_state_fs(fs)
        .unwrap()
        .scaled(SCALE)
        .unwrap();
    let options = RunOptions {
        strategies: vec![Strategy::Elemental, Strategy::DigPassive],
        ..RunOptions::default()
    };
    let report = run_scenario(&scenario, copiers, &options, &mut log).unwrap();
    harness::table::render_stable(&report)
}

#[test]
fn harvester_install_on_xfs() {
    testbed::require!("go", "cp", "fallocate", "tune2fs", "blkid");
    testbed::require_fs!(FsKind::Xfs);
    let text = table("harvester-install", FsKind::Xfs, &Copier::builtins());
    let _redacted = redacted();
    insta::assert_snapshot!("harvester_install_xfs_scale_0_1", text);
}

#[test]
fn harvester_install_on_btrfs() {
    testbed::require!("go", "cp", "fallocate", "tune2fs", "blkid");
    testbed::require_fs!(FsKind::Btrfs);
    let text = table("harvester-install", FsKind::Btrfs, &Copier::builtins());
    let _redacted = redacted();
    insta::assert_snapshot!("harvester_install_btrfs_scale_0_1", text);
}

#[test]
fn harvester_upgrade_on_xfs() {
    testbed::require!("tune2fs", "blkid");
    testbed::require_fs!(FsKind::Xfs);
    let copiers = [Copier::Iocopy, Copier::Sparsecp];
    let text = table("harvester-upgrade-8g", FsKind::Xfs, &copiers);
    let _redacted = redacted();
    insta::assert_snapshot!("harvester_upgrade_8g_xfs_scale_0_1", text);
}

#[test]
fn harvester_upgrade_on_btrfs() {
    testbed::require!("tune2fs", "blkid");
    testbed::require_fs!(FsKind::Btrfs);
    let copiers = [Copier::Iocopy, Copier::Sparsecp];
    let text = table("harvester-upgrade-8g", FsKind::Btrfs, &copiers);
    let _redacted = redacted();
    insta::assert_snapshot!("harvester_upgrade_8g_btrfs_scale_0_1", text);
}
