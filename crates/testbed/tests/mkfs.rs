use testbed::{
    fresh_image_path, fsck_clean, mkfs, read_label, read_uuid, require, require_fs, set_ext_label,
    BackingFile, FsKind, ScratchFs, MIB,
};

fn image(name: &str, size: u64) -> BackingFile {
    BackingFile::create(&fresh_image_path(name), size).unwrap()
}

const UUID: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

fn mkfs_sets_the_given_uuid_and_label_and_checks_clean(kind: FsKind) {
    let file = image(&format!("mkfs-{kind}"), kind.min_size().max(64 * MIB));
    mkfs(kind, file.path(), "testbed", UUID).unwrap();
    assert_eq!(read_uuid(file.path()).unwrap().as_deref(), Some(UUID));
    assert_eq!(read_label(file.path()).unwrap().as_deref(), Some("testbed"));
    let verdict = fsck_clean(kind, file.path()).unwrap();
    assert!(
        verdict.clean,
        "fresh {kind} is not clean:\n{}",
        verdict.output
    );
}

#[test]
fn mkfs_ext2_sets_uuid_and_label_and_is_clean() {
    require_fs!(FsKind::Ext2);
    mkfs_sets_the_given_uuid_and_label_and_checks_clean(FsKind::Ext2);
}

#[test]
fn mkfs_ext4_sets_uuid_and_label_and_is_clean() {
    require_fs!(FsKind::Ext4);
    mkfs_sets_the_given_uuid_and_label_and_checks_clean(FsKind::Ext4);
}

#[test]
fn mkfs_xfs_sets_uuid_and_label_and_is_clean() {
    require_fs!(FsKind::Xfs);
    mkfs_sets_the_given_uuid_and_label_and_checks_clean(FsKind::Xfs);
}

#[test]
fn mkfs_btrfs_sets_uuid_and_label_and_is_clean() {
    require_fs!(FsKind::Btrfs);
    mkfs_sets_the_given_uuid_and_label_and_checks_clean(FsKind::Btrfs);
}

#[test]
fn mkfs_rejects_a_label_too_long_for_xfs() {
    let file = image("mkfs-long-label", 300 * MIB);
    let err = mkfs(FsKind::Xfs, file.path(), "thirteen-char", UUID).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"label "thirteen-char" is 13 bytes; xfs allows at most 12"#
    );
}

#[test]
fn ext_label_round_trips_through_tune2fs_and_blkid() {
    require_fs!(FsKind::Ext4);
    require!("tune2fs");
    let file = image("label", 32 * MIB);
    mkfs(FsKind::Ext4, file.path(), "before", UUID).unwrap();
    assert_eq!(read_label(file.path()).unwrap().as_deref(), Some("before"));
    set_ext_label(file.path(), "after-relabel").unwrap();
    assert_eq!(
        read_label(file.path()).unwrap().as_deref(),
        Some("after-relabel")
    );
    set_ext_label(file.path(), "").unwrap();
    assert_eq!(read_label(file.path()).unwrap(), None);
}

#[test]
fn read_label_of_a_blank_image_is_none() {
    require!("blkid");
    let file = image("blank", MIB);
    assert_eq!(read_label(file.path()).unwrap(), None);
    assert_eq!(read_uuid(file.path()).unwrap(), None);
}

#[test]
fn fsck_finds_a_damaged_ext4() {
    require_fs!(FsKind::Ext4);
    let file = image("damaged", 32 * MIB);
    mkfs(FsKind::Ext4, file.path(), "damaged", UUID).unwrap();
    // Zero the group descriptors in the block after the superblock.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file.path())
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0u8; 4096], 4096).unwrap();
    drop(f);
    let verdict = fsck_clean(FsKind::Ext4, file.path()).unwrap();
    assert!(!verdict.clean, "damage not found:\n{}", verdict.output);
}

#[test]
fn fsck_refuses_a_mounted_device() {
    require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 32 * MIB).unwrap();
    let err = fsck_clean(FsKind::Ext4, fs.device()).unwrap_err();
    assert!(err.to_string().contains("is mounted"), "{err:#}");
}

#[test]
fn fsck_refuses_the_image_of_a_mounted_filesystem() {
    require_fs!(FsKind::Ext4);
    let fs = ScratchFs::new(FsKind::Ext4, 32 * MIB).unwrap();
    let err = fsck_clean(FsKind::Ext4, fs.backing_file()).unwrap_err();
    assert!(err.to_string().contains("is mounted"), "{err:#}");
}
