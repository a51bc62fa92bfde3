use testbed::{skip_reason, FsKind};

#[test]
fn fs_kind_names_round_trip_through_display_parse_and_serde() {
    for kind in FsKind::all() {
        let name = kind.to_string();
        assert_eq!(name.parse::<FsKind>().unwrap(), kind);
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        let back: FsKind = serde_json::from_str(&format!("\"{name}\"")).unwrap();
        assert_eq!(back, kind);
        assert!(kind.mkfs_tool().ends_with(&name));
    }
    assert_eq!("XFS".parse::<FsKind>().unwrap(), FsKind::Xfs);
    let err = "ntfs".parse::<FsKind>().unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unknown filesystem "ntfs" (expected ext2, ext4, xfs or btrfs)"#
    );
}

#[test]
fn skip_reason_names_the_missing_tool() {
    let reason = skip_reason(&["sh", "no-such-tool-for-testbed"]);
    let expected = if rustix::process::geteuid().is_root() {
        "needs no-such-tool-for-testbed (not installed)"
    } else {
        "needs root"
    };
    assert_eq!(reason.as_deref(), Some(expected));
}

#[test]
fn skip_reason_is_none_for_root_with_tools_present() {
    testbed::require!();
    assert_eq!(skip_reason(&["sh"]), None);
}

#[test]
fn require_returns_the_given_value_when_skipping() {
    fn guarded() -> u32 {
        // Prints a SKIP line: that is the behaviour under test.
        testbed::require!("no-such-tool-for-testbed" => 7);
        0
    }
    assert_eq!(guarded(), 7);
}
