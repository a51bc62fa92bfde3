use std::time::Instant;

use testbed::{copy_tree, generate_tree, tree_digest, tree_stats, TreeSpec, MIB};

fn spec(seed: u64, total_bytes: u64) -> TreeSpec {
    TreeSpec {
        seed,
        ..TreeSpec::os_like(total_bytes)
    }
}

#[test]
fn same_seed_gives_the_same_tree() {
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    let stats_a = generate_tree(a.path(), &spec(7, 24 * MIB)).unwrap();
    let stats_b = generate_tree(b.path(), &spec(7, 24 * MIB)).unwrap();
    let stats_c = generate_tree(c.path(), &spec(8, 24 * MIB)).unwrap();
    assert_eq!(stats_a, stats_b);
    assert_eq!(
        tree_digest(a.path()).unwrap(),
        tree_digest(b.path()).unwrap()
    );
    assert_ne!(
        tree_digest(a.path()).unwrap(),
        tree_digest(c.path()).unwrap()
    );
    assert_ne!(stats_a, stats_c);
}

#[test]
fn tree_hits_total_bytes_and_zero_share() {
    for total in [MIB, 10 * MIB, 100 * MIB] {
        let dir = tempdir();
        let spec = spec(1, total);
        let stats = generate_tree(dir.path(), &spec).unwrap();
        eprintln!("{total} bytes: {stats:?}");
        let off = stats.bytes.abs_diff(total) as f64 / total as f64;
        assert!(off <= 0.02, "{} bytes for {total}", stats.bytes);
        let zero_share = stats.zero_bytes as f64 / total as f64;
        assert!(
            (0.04..=0.06).contains(&zero_share),
            "zero share {zero_share}"
        );
        assert!(stats.files >= 8 && stats.dirs >= 5 && stats.symlinks >= 3);
        // Zero detection over the written tree finds exactly the runs.
        assert_eq!(tree_stats(dir.path()).unwrap(), stats);
    }
}

#[test]
fn tree_looks_like_an_os() {
    let dir = tempdir();
    generate_tree(dir.path(), &spec(3, 100 * MIB)).unwrap();
    for path in [
        "etc",
        "usr/bin",
        "usr/lib/x86_64-linux-gnu",
        "usr/share/doc",
        "boot",
    ] {
        assert!(dir.path().join(path).is_dir(), "no {path}");
    }
    assert_eq!(
        std::fs::read_link(dir.path().join("lib")).unwrap(),
        std::path::Path::new("usr/lib")
    );
}

#[test]
fn copy_tree_copies_everything() {
    let (src, dst) = (tempdir(), tempdir());
    let stats = generate_tree(src.path(), &spec(5, 8 * MIB)).unwrap();
    let copied = copy_tree(src.path(), &dst.path().join("copy")).unwrap();
    assert_eq!(copied, stats);
    assert_eq!(
        tree_digest(src.path()).unwrap(),
        tree_digest(&dst.path().join("copy")).unwrap()
    );
}

#[test]
fn tree_generation_is_fast() {
    let dir = tempdir();
    let started = Instant::now();
    let stats = generate_tree(dir.path(), &spec(9, 256 * MIB)).unwrap();
    let elapsed = started.elapsed();
    let rate = stats.bytes as f64 / MIB as f64 / elapsed.as_secs_f64();
    eprintln!(
        "generated {} files, {} MiB in {elapsed:.2?}: {rate:.0} MiB/s",
        stats.files,
        stats.bytes / MIB
    );
    // Generous: the data itself is made at GB/s; this bounds the writes.
    assert!(rate > 50.0, "{rate:.0} MiB/s");
}

/// A temporary directory on disk, never tmpfs.
fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(testbed::scratch_dir()).unwrap()
}

#[test]
fn empty_tree_has_only_the_skeleton() {
    let dir = tempdir();
    let stats = generate_tree(dir.path(), &spec(1, 0)).unwrap();
    assert_eq!((stats.files, stats.bytes, stats.symlinks), (0, 0, 3));
    assert_eq!(tree_stats(dir.path()).unwrap(), stats);
}
