use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{allocated, code, s, sparse_file, sparsecp, stderr, stdout};

const MIB: u64 = 1 << 20;

#[test]
fn copy_keeps_holes_and_prints_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (
        dir.path().join("active.img"),
        dir.path().join("passive.img"),
    );
    sparse_file(&src, 64 * MIB, &[(MIB, 3 * MIB), (40 * MIB, 5000)]);
    let out = sparsecp(&["copy", s(&src), s(&dst)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("active.img -> ")
            && text.contains("(read/write + zero scan by sparse workers)")
            && text.contains("allocated: source 3.1M, destination 3.1M"),
        "{text}"
    );
    assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
    assert!(allocated(&dst) <= allocated(&src));
}

#[test]
fn copy_never_is_fully_allocated_and_json_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("a"), dir.path().join("b"));
    sparse_file(&src, 8 * MIB, &[(0, 4096)]);
    let out = sparsecp(&["copy", "--sparse", "never", "--json", s(&src), s(&dst)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["copy"]["destination_allocated"],
        serde_json::json!(allocated(&dst))
    );
    assert!(allocated(&dst) >= 8 * MIB);
    assert_eq!(v["copy"]["sparse"], "never");
    // The method and the worker shape the plan chose.
    assert_eq!(v["copy"]["phases"][0]["method"], "read-write");
    assert_eq!(v["copy"]["phases"][0]["shape"], "ring");
}

#[test]
fn copy_with_verify_passes_and_reports_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("a"), dir.path().join("b"));
    sparse_file(&src, 8 * MIB, &[(MIB, 4096)]);
    let out = sparsecp(&["copy", "--verify", "--fsync", s(&src), s(&dst)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("OK: content identical"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn copy_from_stdin_makes_holes_of_zero_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("from-stdin");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sparsecp"))
        .args(["copy", "-", s(&dst)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut data = vec![0u8; 4 * MIB as usize];
    data[2 * MIB as usize] = 7;
    child.stdin.take().unwrap().write_all(&data).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read(&dst).unwrap(), data);
    assert_eq!(allocated(&dst), 4096);
}

#[test]
fn a_missing_source_is_one_line_naming_it_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.img");
    let dst = dir.path().join("dst");
    let out = sparsecp(&["copy", s(&missing), s(&dst)]);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("nope.img") && err.contains("No such file"),
        "{err}"
    );
    assert!(!dst.exists());
}

#[test]
fn copying_a_file_onto_itself_is_refused_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, b"keep").unwrap();
    let out = sparsecp(&["copy", s(&a), s(&a)]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("is the same file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&a).unwrap(), b"keep");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        code(&sparsecp(&["copy", "--sparse", "sometimes", "a", "b"])),
        2
    );
    assert_eq!(code(&sparsecp(&["copy", "onlyone"])), 2);
    assert_eq!(code(&sparsecp(&["frobnicate"])), 2);
}

#[test]
fn copy_to_standard_output_gives_exactly_the_bytes_and_reports_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("hole.img");
    sparse_file(&src, 1 << 20, &[(500_000, 4096)]);
    let want = std::fs::read(&src).unwrap();
    for json in [false, true] {
        let mut args = vec!["copy", s(&src), "/dev/stdout"];
        if json {
            args.insert(1, "--json");
        }
        // stdout is a pipe here, as in `sparsecp copy hole.img /dev/stdout | cmp - hole.img`.
        let o = sparsecp(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(o.stdout.len(), want.len(), "json: {json}");
        assert!(o.stdout == want, "json: {json}: the copy differs");
        let report = stderr(&o);
        match json {
            true => assert!(report.trim_start().starts_with('{'), "{report}"),
            false => assert!(report.contains("-> /dev/stdout"), "{report}"),
        }
    }
}
