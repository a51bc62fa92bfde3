use std::os::unix::fs::FileExt;
use std::path::Path;

use harness::Copier;
use testbed::{FsKind, ScratchFs, MIB};

/// A 64 MiB file with 1 MiB of data at 0 and at 32 MiB, holes elsewhere.
fn sparse_source(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("active.img");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(64 * MIB).unwrap();
    let data: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8 + 1).collect();
    file.write_all_at(&data, 0).unwrap();
    file.write_all_at(&data, 32 * MIB).unwrap();
    file.sync_all().unwrap();
    path
}

fn allocated(path: &Path) -> u64 {
    copy_engine::Layout::of(path).unwrap().allocated
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    copy_engine::verify(a, b, None).unwrap().identical
}

#[test]
fn iocopy_writes_every_hole_out_as_zeros() {
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 256 * MIB).unwrap();
    let src = sparse_source(fs.path());
    let dst = fs.path().join("passive.img");
    Copier::Iocopy.copy(&src, &dst).unwrap();
    assert!(same_bytes(&src, &dst));
    assert!(allocated(&dst) >= 64 * MIB, "{}", allocated(&dst));
}

#[test]
fn go_iocopy_writes_every_hole_out_as_zeros() {
    testbed::require!("go");
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 256 * MIB).unwrap();
    let src = sparse_source(fs.path());
    let dst = fs.path().join("passive.img");
    Copier::GoIocopy.copy(&src, &dst).unwrap();
    assert!(same_bytes(&src, &dst));
    assert!(allocated(&dst) >= 64 * MIB, "{}", allocated(&dst));
}

#[test]
fn sparse_copiers_allocate_no_more_than_the_source() {
    testbed::require!("cp", "fallocate", "go");
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 256 * MIB).unwrap();
    let src = sparse_source(fs.path());
    for copier in [
        Copier::GoSparse,
        Copier::Cp,
        Copier::HarvesterFix,
        Copier::Sparsecp,
        Copier::SparsecpAlways,
    ] {
        let dst = fs.path().join(format!("passive-{copier}.img"));
        copier.copy(&src, &dst).unwrap();
        assert!(same_bytes(&src, &dst), "{copier}");
        assert!(
            allocated(&dst) <= allocated(&src),
            "{copier}: {} > {}",
            allocated(&dst),
            allocated(&src)
        );
    }
}

#[test]
fn external_copier_gets_shell_quoted_paths() {
    testbed::require!("sh", "cp");
    testbed::require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 256 * MIB).unwrap();
    let dir = fs.path().join("it's a dir; $(false)");
    std::fs::create_dir(&dir).unwrap();
    let src = sparse_source(&dir);
    let dst = dir.join("passive \"copy\".img");
    let copier = Copier::external("external", "cp --sparse=always {src} {dst}").unwrap();
    copier.copy(&src, &dst).unwrap();
    assert!(same_bytes(&src, &dst));
    assert!(allocated(&dst) <= allocated(&src));
}

#[test]
fn external_copier_failure_is_an_error() {
    let copier = Copier::external("external", "false {src} {dst}").unwrap();
    let error = copier
        .copy(Path::new("/nonexistent/a"), Path::new("/nonexistent/b"))
        .unwrap_err();
    assert!(format!("{error:#}").contains("failed"), "{error:#}");
}

#[test]
fn copier_names_and_templates_parse() {
    let names: Vec<String> = Copier::builtins().iter().map(Copier::name).collect();
    insta::assert_snapshot!(names.join(" "), @"iocopy go-iocopy go-sparse cp harvester-fix sparsecp sparsecp-always");
    assert_eq!(
        Copier::from_name_or_command("iocopy").unwrap(),
        Copier::Iocopy
    );
    assert!(matches!(
        Copier::from_name_or_command("dd if={src} of={dst}").unwrap(),
        Copier::External { .. }
    ));
    assert!(Copier::from_name_or_command("no-such-copier").is_err());
    assert!(Copier::external("x", "cp {src} /elsewhere").is_err());
    assert_eq!(harness::copier::shell_quote("it's"), r"'it'\''s'");
}
