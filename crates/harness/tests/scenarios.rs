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

#[test]
fn every_scenario_file_is_compiled_in() {
    let mut files: Vec<String> = std::fs::read_dir(Scenario::dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(Scenario::names().unwrap(), files);
    for (name, text) in harness::scenario::BUILTIN {
        let on_disk = std::fs::read_to_string(Scenario::dir().join(format!("{name}.toml")));
        assert_eq!(on_disk.unwrap(), *text, "{name}");
    }
}

#[test]
fn a_scenario_file_of_ones_own_loads_by_path_and_a_wrong_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = harness::scenario::BUILTIN[0];
    let mine = dir.path().join("my-install.toml");
    std::fs::write(&mine, text.replace("harvester-install", "my-install")).unwrap();
    let scenario = Scenario::load(mine.to_str().unwrap()).unwrap();
    assert_eq!(scenario.name, "my-install");
    let wrong = dir.path().join("other.toml");
    std::fs::write(&wrong, text).unwrap();
    let error = format!("{:#}", Scenario::load(wrong.to_str().unwrap()).unwrap_err());
    assert!(error.contains("must match the file"), "{error}");
    let error = format!("{:#}", Scenario::load("no-such").unwrap_err());
    assert!(error.contains("builtins: harvester-install"), "{error}");
}

#[test]
fn the_go_copiers_compile_in_every_source_they_build_from() {
    use harness::go_programs::{GO_IOCOPY, GO_SPARSECOPY};
    for program in [GO_IOCOPY, GO_SPARSECOPY] {
        let root = program.source_dir();
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if path.is_dir() {
                    dirs.push(path);
                } else if name == "go.mod" || (name.ends_with(".go") && !name.ends_with("_test.go"))
                {
                    on_disk.push(
                        path.strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> =
            program.sources.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "{}", program.name);
        for (path, text) in program.sources {
            assert_eq!(std::fs::read_to_string(root.join(path)).unwrap(), *text);
        }
    }
}
