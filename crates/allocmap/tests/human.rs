//! `human_bytes` prints what `du -h` prints.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::Command;

use allocmap::human_bytes;

use crate::support::{GIB, KIB, MIB};

/// Sizes around every rounding boundary, with what GNU du 9.x prints for them.
const CASES: &[(u64, &str)] = &[
    (0, "0"),
    (1, "1"),
    (1023, "1023"),
    (KIB, "1.0K"),
    (KIB + 1, "1.1K"),
    (4 * KIB, "4.0K"),
    (10 * KIB - 1, "10K"),
    (10 * KIB, "10K"),
    (10 * KIB + 1, "11K"),
    (MIB - 1, "1.0M"),
    (12 * MIB, "12M"),
    (512 * MIB, "512M"),
    (17 * GIB / 10, "1.7G"),
    (17 * GIB / 10 + 1, "1.8G"),
    (3 * GIB, "3.0G"),
    (31 * GIB / 10, "3.1G"),
];

#[test]
fn matches_the_known_du_table() {
    for &(bytes, want) in CASES {
        assert_eq!(human_bytes(bytes), want, "human_bytes({bytes})");
    }
}

/// Makes sparse files of each size (no data is written) and asks the real du.
#[test]
fn matches_gnu_du_apparent_size() {
    let is_gnu = Command::new("du")
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("GNU coreutils"));
    testbed::skip_if!((!is_gnu).then(|| "needs GNU du (not installed)".to_owned()));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("allocmap-human-du");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    for &(bytes, _) in CASES {
        let path = dir.join(bytes.to_string());
        File::create(&path).unwrap().set_len(bytes).unwrap();
        let out = Command::new("du")
            .args(["-h", "--apparent-size"])
            .arg(&path)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(out.status.success(), "du failed on {}", path.display());
        let stdout = String::from_utf8(out.stdout).unwrap();
        let du = stdout.split_whitespace().next().unwrap();
        assert_eq!(human_bytes(bytes), du, "{bytes} bytes");
    }
    fs::remove_dir_all(&dir).unwrap();
}
