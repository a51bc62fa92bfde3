//! A source that changes while it is copied or dug, changed from the
//! engine's writer thread at a chosen point (or by a thread of our own
//! that races it): the copy ends in an error or in a consistent copy
//! (the source as it was before or after the change), never in a hang and
//! never in a short or torn copy; the old destination survives the error.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use copy_engine::{copy, CopyReport, Error, SparseMode};
use rustix::fs::{fallocate, FallocateFlags};
use testbed::MIB;

use crate::support::{self, MidCopy, Piece::*, Spec};

const SIZE: u64 = 64 * MIB;

/// 48 MiB of data, an 8 MiB hole, 8 MiB of data: sparse, so every mode
/// reads it through the zero-scanning pipeline.
fn source() -> Spec {
    Spec {
        size: SIZE,
        pieces: vec![Data(0, 48 * MIB), Data(56 * MIB, 8 * MIB)],
    }
}

const OLD: &[u8] = b"the old destination";

struct Case {
    dir: tempfile::TempDir,
    before: Vec<u8>,
}

impl Case {
    fn new(spec: &Spec) -> Case {
        let dir = tempfile::tempdir().unwrap();
        support::build(&dir.path().join("src.img"), spec);
        let before = support::read_all(&dir.path().join("src.img"));
        Case { dir, before }
    }

    fn src(&self) -> PathBuf {
        self.dir.path().join("src.img")
    }

    fn dst(&self, mode: SparseMode) -> PathBuf {
        let dst = self.dir.path().join(format!("dst-{mode}.img"));
        std::fs::write(&dst, OLD).unwrap();
        dst
    }

    /// Asserts an error left the old destination and no temporary, or a
    /// success copied the source whole as it was `before` or is now.
    fn check(&self, mode: SparseMode, dst: &Path, result: Result<CopyReport, Error>) {
        let now = support::read_all(&self.src());
        match result {
            Err(e) => {
                assert!(matches!(e, Error::SourceChanged { .. }), "{mode}: {e}");
                assert_eq!(support::read_all(dst), OLD, "{mode}: {e}");
            }
            Ok(report) => {
                let copied = support::read_all(dst);
                assert!(
                    copied == self.before || copied == now,
                    "{mode}: a copy of {} bytes that is neither the source before ({} bytes) nor after the change ({} bytes)",
                    copied.len(),
                    self.before.len(),
                    now.len()
                );
                assert_eq!(report.size, copied.len() as u64);
            }
        }
        assert_eq!(support::temporaries(self.dir.path()), Vec::<String>::new());
    }
}

/// Runs `f` on its own thread; a copy that has not returned within a
/// minute hangs.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the operation hung (no result within 60 s)")
}

const MODES: [SparseMode; 3] = [SparseMode::Auto, SparseMode::Always, SparseMode::Never];

/// Copies `case`'s source with every mode, running `change` once 8 MiB in.
fn copy_changing(case: &Case, change: impl Fn(&Path) + Sync + Send + Clone + 'static) {
    for mode in MODES {
        let src = case.src();
        support::build(&src, &source());
        let dst = case.dst(mode);
        let (s, d, change) = (src.clone(), dst.clone(), change.clone());
        let result = within_a_minute(move || {
            let hook = MidCopy::new(8 * MIB, {
                let s = s.clone();
                move || change(&s)
            });
            let r = copy(&s, &d, &support::opts(mode), &hook);
            assert!(hook.fired(), "the change happened mid-copy");
            r
        });
        case.check(mode, &dst, result);
    }
}

fn append(path: &Path, len: u64) {
    let f = OpenOptions::new().append(true).open(path).unwrap();
    let end = f.metadata().unwrap().len();
    f.write_all_at(&vec![0xa5; len as usize], end).unwrap();
}

fn punch(path: &Path, offset: u64, len: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    fallocate(
        &f,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        offset,
        len,
    )
    .unwrap();
}

#[test]
fn a_source_grown_mid_copy_is_reported_never_copied_short() {
    let case = Case::new(&source());
    copy_changing(&case, |src| append(src, MIB));
    // Not one success: each copy must have seen the growth.
    for mode in MODES {
        assert_eq!(
            support::read_all(&case.dir.path().join(format!("dst-{mode}.img"))),
            OLD
        );
    }
}

#[test]
fn a_source_grown_by_a_racing_thread_is_reported() {
    let case = Case::new(&source());
    for mode in MODES {
        let src = case.src();
        support::build(&src, &source());
        let dst = case.dst(mode);
        let (s, d) = (src.clone(), dst.clone());
        let result = within_a_minute(move || {
            let stop = AtomicBool::new(false);
            // The writer starts only once the copy is 8 MiB in, so the copy
            // has taken the original size; the copy goes on only once the
            // first append is done, so it must see a growth. What is left
            // to the race is how many appends land before the copy ends.
            let (go_tx, go_rx) = mpsc::sync_channel::<()>(0);
            let (appended_tx, appended_rx) = mpsc::sync_channel::<()>(0);
            std::thread::scope(|scope| {
                let (stop, s) = (&stop, &s);
                scope.spawn(move || {
                    // An error: the copy ended before 8 MiB (and failed).
                    if go_rx.recv().is_err() {
                        return;
                    }
                    // Appends 64 KiB at a time until the copy returns.
                    let mut first = Some(appended_tx);
                    while !stop.load(Ordering::SeqCst) {
                        append(s, 64 * 1024);
                        if let Some(tx) = first.take() {
                            let _ = tx.send(());
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                });
                let channels = std::sync::Mutex::new((go_tx, appended_rx));
                let hook = MidCopy::new(8 * MIB, || {
                    let channels = channels.lock().unwrap();
                    channels.0.send(()).unwrap();
                    channels.1.recv().unwrap();
                });
                let r = copy(s, &d, &support::opts(mode), &hook);
                stop.store(true, Ordering::SeqCst);
                // Drops the sender, so a writer never started ends too.
                drop(channels);
                r
            })
        });
        let err = result.as_ref().map(|_| ()).unwrap_err();
        let Error::SourceChanged { before, after, .. } = err else {
            panic!("{mode}: {err}")
        };
        assert!(*before == SIZE && *after > SIZE, "{mode}: {err}");
        case.check(mode, &dst, result);
    }
}

#[test]
fn a_source_truncated_mid_copy_is_reported() {
    for to in [32 * MIB, 4 * MIB, 0] {
        let case = Case::new(&source());
        copy_changing(&case, move |src| {
            OpenOptions::new()
                .write(true)
                .open(src)
                .unwrap()
                .set_len(to)
                .unwrap()
        });
        for mode in MODES {
            let dst = case.dir.path().join(format!("dst-{mode}.img"));
            assert_eq!(support::read_all(&dst), OLD, "truncated to {to}, {mode}");
        }
    }
}

#[test]
fn a_source_truncated_and_regrown_mid_copy_is_an_error_or_a_consistent_copy() {
    let case = Case::new(&source());
    copy_changing(&case, |src| {
        let f = OpenOptions::new().write(true).open(src).unwrap();
        f.set_len(2 * MIB).unwrap();
        f.set_len(SIZE).unwrap();
    });
}

#[test]
fn a_hole_punched_ahead_of_the_copy_is_an_error_or_a_consistent_copy() {
    let case = Case::new(&source());
    copy_changing(&case, |src| punch(src, 40 * MIB, 4 * MIB));
}

/// Punched behind the reader and ahead of it: a copy taking the old bytes
/// of one and the zeros of the other would match neither version.
#[test]
fn holes_punched_behind_and_ahead_of_the_copy_never_make_a_torn_copy() {
    let case = Case::new(&source());
    copy_changing(&case, |src| {
        punch(src, 0, 4 * MIB);
        punch(src, 40 * MIB, 4 * MIB);
    });
}

/// A dig whose file grows meanwhile must not punch the new bytes: its
/// zero tail ends at the old end of file, and punching it up to its block
/// end would zero what was appended there.
#[test]
fn a_file_grown_mid_dig_keeps_the_appended_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passive.img");
    let tail = 10 * MIB + 100; // not a multiple of the block size
    let spec = Spec {
        size: tail,
        pieces: vec![Data(0, 8 * MIB), Zeros(8 * MIB, 2 * MIB + 100)],
    };
    support::build(&file, &spec);
    let before = support::read_all(&file);
    let f = file.clone();
    let result = within_a_minute(move || {
        let hook = MidCopy::new(MIB, {
            let f = f.clone();
            move || append(&f, 8192)
        });
        copy_engine::dig(&f, &copy_engine::Cancel::new(), &hook)
    });
    if let Err(e) = &result {
        assert!(matches!(e, Error::SourceChanged { .. }), "{e}");
    }
    let after = support::read_all(&file);
    assert_eq!(after.len() as u64, tail + 8192, "{result:?}");
    assert!(after[..tail as usize] == before[..], "old content changed");
    let lost = after[tail as usize..]
        .iter()
        .filter(|&&b| b != 0xa5)
        .count();
    assert_eq!(lost, 0, "dig zeroed {lost} appended bytes: {result:?}");
}

#[test]
fn a_file_truncated_mid_dig_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passive.img");
    let spec = Spec {
        size: 16 * MIB,
        pieces: vec![Data(0, 8 * MIB), Zeros(8 * MIB, 8 * MIB)],
    };
    support::build(&file, &spec);
    let before = support::read_all(&file);
    let f = file.clone();
    let result = within_a_minute(move || {
        let hook = MidCopy::new(MIB, {
            let f = f.clone();
            move || {
                OpenOptions::new()
                    .write(true)
                    .open(&f)
                    .unwrap()
                    .set_len(4 * MIB)
                    .unwrap()
            }
        });
        copy_engine::dig(&f, &copy_engine::Cancel::new(), &hook)
    });
    let err = result.unwrap_err();
    assert!(matches!(err, Error::SourceChanged { .. }), "{err}");
    assert!(support::read_all(&file) == before[..4 * MIB as usize]);
}
