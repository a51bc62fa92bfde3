use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use copy_engine::{Bmap, Layout};

use crate::support::{code, listing, one_error_line, s, sparse_file, sparsecp, stderr, FAILED};

const MIB: u64 = 1 << 20;

/// Several data extents and holes, and a data tail that ends 1000 bytes
/// into a 4 KiB block (bmaptool's last block is partial).
fn image(path: &Path) {
    let size = 6 * MIB + 4096 * 3 + 1000;
    sparse_file(
        path,
        size,
        &[
            (0, 8192),
            (MIB + 4096, 3 * 4096 + 100),
            (4 * MIB, 64 * 1024),
            (6 * MIB + 4096, 2 * 4096 + 1000),
        ],
    );
}

/// The same bytes, every one written: a source whose holes no one can see.
fn dense_copy(src: &Path, dst: &Path) {
    std::fs::write(dst, std::fs::read(src).unwrap()).unwrap();
}

/// `bmaptool create IMG > BMAP`.
fn bmaptool_create(img: &Path, bmap: &Path) {
    let out = Command::new("bmaptool")
        .arg("create")
        .arg(img)
        .output()
        .unwrap();
    assert!(out.status.success(), "bmaptool create: {}", stderr(&out));
    std::fs::write(bmap, &out.stdout).unwrap();
}

/// `sparsecp ARGS` with `input` on standard input (written from a thread,
/// which may stop early if sparsecp stops reading).
fn sparsecp_stdin(args: &[&str], input: Vec<u8>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sparsecp"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// The bmap's mapped bytes, as `(offset, length)`.
fn mapped(bmap: &Bmap) -> Vec<(u64, u64)> {
    bmap.ranges.iter().map(|r| bmap.byte_range(r)).collect()
}

/// Asserts `dst` has `img`'s bytes and data only inside the bmap's ranges.
fn assert_copied(img: &Path, dst: &Path, bmap: &Bmap) {
    assert_eq!(std::fs::read(img).unwrap(), std::fs::read(dst).unwrap());
    let ranges = mapped(bmap);
    for e in Layout::of(dst).unwrap().extents {
        assert!(
            ranges
                .iter()
                .any(|&(o, l)| e.offset >= o && e.end() <= (o + l).next_multiple_of(4096)),
            "{}: data at {}+{} where the bmap maps none ({ranges:?})",
            dst.display(),
            e.offset,
            e.length
        );
    }
}

#[test]
fn bmaptool_bmap_copies_a_dense_file_and_a_pipe_keeping_holes() {
    testbed::require!("bmaptool");
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    image(&p("img"));
    bmaptool_create(&p("img"), &p("x.bmap"));
    let bmap = Bmap::read(&p("x.bmap")).unwrap();
    assert_eq!(bmap.ranges.len(), 4, "{bmap:?}");

    let out = sparsecp(&["copy", "--bmap", s(&p("x.bmap")), s(&p("img")), s(&p("d1"))]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_copied(&p("img"), &p("d1"), &bmap);

    dense_copy(&p("img"), &p("dense"));
    let out = sparsecp(&[
        "copy",
        "--bmap",
        s(&p("x.bmap")),
        s(&p("dense")),
        s(&p("d2")),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_copied(&p("img"), &p("d2"), &bmap);

    let bytes = std::fs::read(p("img")).unwrap();
    let out = sparsecp_stdin(
        &["copy", "--bmap", s(&p("x.bmap")), "-", s(&p("d3"))],
        bytes,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_copied(&p("img"), &p("d3"), &bmap);

    // `bmaptool create --no-checksum`: the ranges are copied unchecked.
    let out = Command::new("bmaptool")
        .args([
            "create",
            "--no-checksum",
            "-o",
            s(&p("nc.bmap")),
            s(&p("img")),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "bmaptool create: {}", stderr(&out));
    let unchecked = Bmap::read(&p("nc.bmap")).unwrap();
    assert!(unchecked.ranges.iter().all(|r| r.sha256.is_none()));
    let out = sparsecp(&[
        "copy",
        "--bmap",
        s(&p("nc.bmap")),
        s(&p("dense")),
        s(&p("d4")),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_copied(&p("img"), &p("d4"), &unchecked);
}

#[test]
fn our_bmap_is_accepted_by_bmaptool_and_equals_its_own() {
    testbed::require!("bmaptool");
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    image(&p("img"));
    let out = sparsecp(&["inspect", "--bmap", s(&p("y.bmap")), s(&p("img"))]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let st = Command::new("bmaptool")
        .args(["copy", "--bmap", s(&p("y.bmap")), s(&p("img")), s(&p("d"))])
        .output()
        .unwrap();
    assert!(st.status.success(), "bmaptool copy: {}", stderr(&st));
    assert_eq!(
        std::fs::read(p("img")).unwrap(),
        std::fs::read(p("d")).unwrap()
    );

    // bmaptool does check a bmap file's own checksum: edited, ours is refused.
    let text = std::fs::read_to_string(p("y.bmap")).unwrap();
    let edited = text.replacen("> 0-1 </Range>", "> 0 </Range>", 1);
    assert_ne!(edited, text);
    std::fs::write(p("edited.bmap"), edited).unwrap();
    let st = Command::new("bmaptool")
        .args([
            "copy",
            "--bmap",
            s(&p("edited.bmap")),
            s(&p("img")),
            s(&p("d2")),
        ])
        .output()
        .unwrap();
    assert!(!st.status.success());
    assert!(
        stderr(&st).contains("checksum mismatch for bmap file"),
        "{}",
        stderr(&st)
    );

    bmaptool_create(&p("img"), &p("x.bmap"));
    let (ours, theirs) = (
        Bmap::read(&p("y.bmap")).unwrap(),
        Bmap::read(&p("x.bmap")).unwrap(),
    );
    assert_eq!(
        ours, theirs,
        "same image size, block size, ranges and checksums"
    );
}

/// A source with one byte flipped inside a mapped range, and a
/// destination that must survive the refused copy.
fn flipped_source(dir: &Path) -> (std::path::PathBuf, u64) {
    let (img, src) = (dir.join("img"), dir.join("flipped"));
    dense_copy(&img, &src);
    let at = MIB + 4096 + 5000; // inside the second range (blocks 257-260)
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&src)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0xff], at).unwrap();
    (src, at)
}

#[test]
fn a_range_that_does_not_match_its_checksum_fails_and_leaves_dst() {
    testbed::require!("bmaptool");
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    image(&p("img"));
    bmaptool_create(&p("img"), &p("x.bmap"));
    let (src, _) = flipped_source(dir.path());
    std::fs::write(p("dst"), b"the old destination").unwrap();
    let before = listing(dir.path());

    let out = sparsecp(&["copy", "--bmap", s(&p("x.bmap")), s(&src), s(&p("dst"))]);
    assert_eq!(code(&out), FAILED);
    one_error_line(
        &out,
        &[
            s(&src),
            s(&p("x.bmap")),
            "blocks 257-260",
            "does not match",
            "left untouched",
        ],
    );
    assert_eq!(
        listing(dir.path()),
        before,
        "nothing changed, no temporary left"
    );

    let bytes = std::fs::read(&src).unwrap();
    let out = sparsecp_stdin(
        &["copy", "--bmap", s(&p("x.bmap")), "-", s(&p("dst"))],
        bytes,
    );
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &["-: the SHA-256 of blocks 257-260", s(&p("x.bmap"))]);
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_source_smaller_than_the_bmaps_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    image(&p("img"));
    let out = sparsecp(&["inspect", "--bmap", s(&p("y.bmap")), s(&p("img"))]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let size = std::fs::metadata(p("img")).unwrap().len();
    let short = 5 * MIB;
    dense_copy(&p("img"), &p("short"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(p("short"))
        .unwrap()
        .set_len(short)
        .unwrap();
    std::fs::write(p("dst"), b"the old destination").unwrap();
    let before = listing(dir.path());

    let out = sparsecp(&[
        "copy",
        "--bmap",
        s(&p("y.bmap")),
        s(&p("short")),
        s(&p("dst")),
    ]);
    assert_eq!(code(&out), FAILED);
    let (found, image) = (format!("{short} bytes"), format!("{size} bytes"));
    one_error_line(&out, &[s(&p("short")), s(&p("y.bmap")), &found, &image]);
    assert_eq!(listing(dir.path()), before);

    let bytes = std::fs::read(p("short")).unwrap();
    let out = sparsecp_stdin(
        &["copy", "--bmap", s(&p("y.bmap")), "-", s(&p("dst"))],
        bytes,
    );
    assert_eq!(code(&out), FAILED);
    let ended = format!("-: ended after {short} bytes");
    one_error_line(&out, &[&ended, &image, s(&p("y.bmap"))]);
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_bmap_with_a_wrong_own_checksum_or_malformed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    image(&p("img"));
    let out = sparsecp(&["inspect", "--bmap", s(&p("y.bmap")), s(&p("img"))]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(p("y.bmap")).unwrap();
    // Claim one block more of the first range: the file no longer hashes
    // to its BmapFileChecksum.
    let edited = text.replacen("> 0-1 </Range>", "> 0-2 </Range>", 1);
    assert_ne!(edited, text, "{text}");
    std::fs::write(p("edited.bmap"), edited).unwrap();
    std::fs::write(p("garbage.bmap"), &text[..text.len() / 2]).unwrap();
    std::fs::write(p("dst"), b"the old destination").unwrap();
    let before = listing(dir.path());

    let out = sparsecp(&[
        "copy",
        "--bmap",
        s(&p("edited.bmap")),
        s(&p("img")),
        s(&p("dst")),
    ]);
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&p("edited.bmap")), "own checksum does not match"]);
    let out = sparsecp(&[
        "copy",
        "--bmap",
        s(&p("garbage.bmap")),
        s(&p("img")),
        s(&p("dst")),
    ]);
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&p("garbage.bmap")), "not a bmap file"]);
    let out = sparsecp(&["copy", "--bmap", s(&p("img")), s(&p("img")), s(&p("dst"))]);
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&p("img")), "not a bmap file"]);
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_named_pipe_source_is_read_in_order_and_dev_null_checks_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    image(&p("img"));
    let out = sparsecp(&["inspect", "--bmap", s(&p("y.bmap")), s(&p("img"))]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let st = Command::new("mkfifo").arg(p("fifo")).status().unwrap();
    assert!(st.success());
    let (fifo, bytes) = (p("fifo"), std::fs::read(p("img")).unwrap());
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
        let _ = f.write_all(&bytes);
    });
    let out = sparsecp(&["copy", "--bmap", s(&p("y.bmap")), s(&p("fifo")), s(&p("d"))]);
    writer.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_copied(&p("img"), &p("d"), &Bmap::read(&p("y.bmap")).unwrap());

    // Into /dev/null, a copy only checks the source against the bmap.
    let out = sparsecp(&["copy", "--bmap", s(&p("y.bmap")), s(&p("img")), "/dev/null"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (src, _) = flipped_source(dir.path());
    let out = sparsecp(&["copy", "--bmap", s(&p("y.bmap")), s(&src), "/dev/null"]);
    assert_eq!(code(&out), FAILED);
    one_error_line(
        &out,
        &[
            "blocks 257-260",
            "/dev/null was written in place up to byte",
        ],
    );
}
