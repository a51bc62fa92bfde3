use harness::Scenario;
use testbed::{FsKind, MIB};

#[test]
fn every_scenario_file_loads_under_its_own_name() {
    let names = Scenario::names().unwrap();
    assert_eq!(
        names,
        [
            "harvester-install",
            "harvester-install-8g",
            "harvester-upgrade-8g",
            "harvester-upgrade-v18-8g"
        ]
    );
    for name in names {
        let scenario = Scenario::load(&name).unwrap();
        assert_eq!(scenario.name, name);
        assert_eq!(scenario.scale, 1.0);
        assert_eq!(scenario.state.label, "COS_STATE");
    }
}

#[test]
fn harvester_install_is_issue_3s_layout() {
    let install = Scenario::load("harvester-install").unwrap();
    assert_eq!(install.state.size_mib, 15 * 1024);
    assert_eq!(install.state.fs, FsKind::Ext4);
    assert_eq!(install.install.size_mib, 3072);
    assert!(install.upgrade.is_none());
    let small = Scenario::load("harvester-install-8g").unwrap();
    assert_eq!(small.state.size_mib, 8 * 1024);
    assert_eq!(small.install, install.install);
    let upgrade = Scenario::load("harvester-upgrade-8g").unwrap();
    assert_eq!(upgrade.state, small.state);
    assert_eq!(upgrade.install, install.install);
    assert!(upgrade.upgrade.is_some());
}

#[test]
fn scaling_shrinks_every_size_to_whole_mib() {
    let scenario = Scenario::load("harvester-upgrade-8g").unwrap();
    let scaled = scenario.scaled(0.1).unwrap();
    assert_eq!(scaled.scale, 0.1);
    assert_eq!(scaled.state.size_mib, 819);
    assert_eq!(scaled.install.size_mib, 307);
    let upgrade = scaled.upgrade.as_ref().unwrap();
    assert_eq!(upgrade.size_mib, 410);
    for image in [&scaled.install, upgrade] {
        assert_eq!(image.tree_bytes % MIB, 0);
    }
    let original = scenario.install.tree_bytes as f64 * 0.1;
    assert!((scaled.install.tree_bytes as f64 - original).abs() <= MIB as f64);
}

#[test]
fn scaling_never_goes_below_a_filesystem_minimum() {
    let scenario = Scenario::load("harvester-install")
        .unwrap()
        .with_state_fs(FsKind::Xfs)
        .unwrap();
    let tiny = scenario.scaled(0.001).unwrap();
    assert_eq!(tiny.state.size_mib * MIB, FsKind::Xfs.min_size());
    assert_eq!(tiny.install.size_mib * MIB, FsKind::Ext2.min_size());
    assert!(tiny.install.tree_bytes < tiny.install.size_mib * MIB);
}

#[test]
fn scaling_and_filesystems_reject_nonsense() {
    let scenario = Scenario::load("harvester-install").unwrap();
    assert!(scenario.scaled(0.0).is_err());
    assert!(scenario.scaled(1.5).is_err());
    assert!(scenario.with_state_fs(FsKind::Ext2).is_err());
    assert!(Scenario::load("no-such-scenario").is_err());
}

#[test]
fn each_state_filesystem_gets_its_own_uuid() {
    let scenario = Scenario::load("harvester-install").unwrap();
    let uuids: Vec<String> = [FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs]
        .into_iter()
        .map(|fs| scenario.with_state_fs(fs).unwrap().state.uuid)
        .collect();
    insta::assert_snapshot!(uuids.join("\n"), @r"
    c05a7e00-0000-4000-8000-000000000015
    c05a7e00-0000-4000-8003-000000000015
    c05a7e00-0000-4000-8004-000000000015
    ");
}
