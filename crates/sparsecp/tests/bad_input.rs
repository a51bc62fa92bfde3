//! Bad command lines and paths, through the binary as a user meets them:
//! each fails with one line on stderr naming the path and the cause, the
//! documented exit status (3: the operation failed, 130: interrupted), and
//! nothing created or changed.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::support::{
    code, listing, one_error_line, s, sparsecp, stderr, temporaries, BindMount, FAILED, INTERRUPTED,
};

/// The `nobody` user, to meet permission bits that root bypasses.
const NOBODY: u32 = 65534;

fn run<I, A>(args: I) -> Output
where
    I: IntoIterator<Item = A>,
    A: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_sparsecp"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `sparsecp copy ARGS` as `nobody` when we are root (root ignores
/// permission bits), else as ourselves. `nobody` runs a copy of the binary
/// in `dir` (made enterable by [`scratch`]): the build directory may be
/// out of its reach.
fn run_unprivileged(dir: &Path, args: &[&Path]) -> Output {
    let mut cmd = if rustix::process::geteuid().is_root() {
        let binary = dir.join("sparsecp-for-nobody");
        if !binary.exists() {
            std::fs::copy(env!("CARGO_BIN_EXE_sparsecp"), &binary).unwrap();
        }
        let mut cmd = Command::new(binary);
        cmd.uid(NOBODY).gid(NOBODY);
        cmd
    } else {
        Command::new(env!("CARGO_BIN_EXE_sparsecp"))
    };
    cmd.arg("copy").args(args).stdin(Stdio::null());
    // Another test thread forking while the copy was being written holds
    // it open for a moment: exec then fails with ETXTBSY.
    for _ in 0..100 {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(Duration::from_millis(10))
            }
            out => return out.unwrap(),
        }
    }
    panic!("{}: text file busy", cmd.get_program().to_string_lossy());
}

/// A scratch directory others may enter (so `nobody` can reach what is
/// inside), holding a small source file.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = dir.path().join("src.img");
    std::fs::write(&src, b"the new content").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o644)).unwrap();
    (dir, src)
}

#[test]
fn a_missing_source_fails_naming_it() {
    let (dir, _) = scratch();
    let before = listing(dir.path());
    let missing = dir.path().join("no-such.img");
    let out = sparsecp(&["copy", s(&missing), s(&dir.path().join("dst"))]);
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&missing), "No such file or directory"]);
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_directory_source_fails_naming_it() {
    let (dir, _) = scratch();
    let sub = dir.path().join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    let before = listing(dir.path());
    let out = sparsecp(&["copy", s(&sub), s(&dir.path().join("dst"))]);
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&sub), "is a directory"]);
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_destination_in_a_missing_directory_fails_naming_it() {
    let (dir, src) = scratch();
    let before = listing(dir.path());
    let missing = dir.path().join("missing-dir");
    let out = sparsecp(&["copy", s(&src), s(&missing.join("dst"))]);
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&missing), "No such file or directory"]);
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_destination_in_a_read_only_directory_fails_naming_it() {
    // Permission bits, met by an unprivileged user.
    let (dir, src) = scratch();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(ro.join("dst"), b"old").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = listing(&ro);
    let out = run_unprivileged(dir.path(), &[&src, &ro.join("dst")]);
    assert_eq!(code(&out), FAILED, "{}", stderr(&out));
    one_error_line(&out, &[s(&ro), "Permission denied"]);
    assert_eq!(listing(&ro), before);
    // A read-only mount, which stops root too.
    testbed::require!("mount", "umount");
    let view = dir.path().join("ro-view");
    std::fs::create_dir(&view).unwrap();
    let _mount = BindMount::new(&ro, &view, true);
    let out = run([
        "copy".as_ref(),
        src.as_os_str(),
        view.join("dst").as_os_str(),
    ]);
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&view), "Read-only file system"]);
    assert_eq!(listing(&ro), before);
}

#[test]
fn a_read_only_destination_is_refused_to_users_and_replaced_by_root_like_cp() {
    let (dir, src) = scratch();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // Others may create and rename in the directory, but not write dst.
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let dst = out_dir.join("dst");
    std::fs::write(&dst, b"old").unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = listing(&out_dir);
    let out = run_unprivileged(dir.path(), &[&src, &dst]);
    assert_eq!(code(&out), FAILED, "{}", stderr(&out));
    one_error_line(&out, &[s(&dst), "not writable", "Permission denied"]);
    assert_eq!(listing(&out_dir), before);
    // Root writes any file, as `cp` does; the replacement keeps the mode.
    testbed::require!();
    let out = sparsecp(&["copy", "-q", s(&src), s(&dst)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&dst).unwrap(), b"the new content");
    assert_eq!(
        std::fs::metadata(&dst).unwrap().permissions().mode() & 0o777,
        0o444
    );
}

/// `chattr +i`, undone on drop so the directory can be removed.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let st = Command::new("chattr").arg("+i").arg(path).status().unwrap();
        assert!(st.success(), "chattr +i {}", path.display());
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn an_immutable_destination_fails_with_eperm_naming_it() {
    testbed::require!("chattr");
    let (dir, src) = scratch();
    let dst = dir.path().join("dst");
    std::fs::write(&dst, b"old").unwrap();
    let _immutable = Immutable::set(&dst);
    let before = listing(dir.path());
    let out = sparsecp(&["copy", s(&src), s(&dst)]);
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&dst), "Operation not permitted"]);
    assert_eq!(listing(dir.path()), before);
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
    // An immutable directory: no temporary can be made in it.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let _locked = Immutable::set(&locked);
    let out = sparsecp(&["copy", s(&src), s(&locked.join("dst"))]);
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&locked), "Operation not permitted"]);
    assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0);
}

#[test]
fn the_same_file_through_a_hard_link_symlink_or_bind_mount_is_refused() {
    let (dir, src) = scratch();
    std::fs::hard_link(&src, dir.path().join("hard")).unwrap();
    std::os::unix::fs::symlink(&src, dir.path().join("soft")).unwrap();
    let mut dsts = vec![dir.path().join("hard"), dir.path().join("soft")];
    let view = dir.path().join("view");
    std::fs::create_dir(&view).unwrap();
    let _mount = match testbed::skip_reason(&["mount", "umount"]) {
        None => {
            let sub = dir.path().join("sub");
            std::fs::create_dir(&sub).unwrap();
            std::fs::write(sub.join("inner"), b"inner").unwrap();
            std::fs::hard_link(&src, sub.join("src-link")).unwrap();
            dsts.push(view.join("src-link"));
            Some(BindMount::new(&sub, &view, false))
        }
        Some(reason) => {
            testbed::report_skip("bad_input::same_file (bind mount part)", &reason);
            None
        }
    };
    let before = listing(dir.path());
    for dst in &dsts {
        let out = sparsecp(&["copy", s(&src), s(dst)]);
        assert_eq!(code(&out), FAILED, "{}", dst.display());
        one_error_line(&out, &[s(dst), "is the same file as", s(&src)]);
        assert_eq!(std::fs::read(&src).unwrap(), b"the new content");
    }
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn non_utf8_names_copy_and_are_named_in_errors() {
    let (dir, src) = scratch();
    let name = |bytes: &[u8]| dir.path().join(OsStr::from_bytes(bytes));
    let (odd_src, odd_dst) = (name(b"src-\xff\xfe.img"), name(b"dst-\xe9t\xe9.img"));
    std::fs::copy(&src, &odd_src).unwrap();
    let out = run([
        OsStr::new("copy"),
        OsStr::new("-q"),
        odd_src.as_os_str(),
        odd_dst.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&odd_dst).unwrap(), b"the new content");
    let before = listing(dir.path());
    let missing = name(b"missing-\xff.img");
    let out = run([OsStr::new("copy"), missing.as_os_str(), odd_dst.as_os_str()]);
    assert_eq!(code(&out), FAILED);
    // The name, its undecodable bytes shown as U+FFFD.
    one_error_line(
        &out,
        &[&missing.to_string_lossy(), "No such file or directory"],
    );
    assert_eq!(listing(dir.path()), before);
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

fn spawn(args: &[&OsStr], stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sparsecp"))
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until a child of ours has installed its SIGINT handler (SigCgt
/// in /proc), then a little more for it to block where the test wants it:
/// a SIGINT sent earlier would kill it instead of cancelling the copy.
fn settle(child: &Child) {
    let status = format!("/proc/{}/status", child.id());
    let start = Instant::now();
    loop {
        let caught = std::fs::read_to_string(&status)
            .ok()
            .and_then(|t| {
                let line = t.lines().find(|l| l.starts_with("SigCgt:"))?;
                u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (Signal::INT.as_raw() - 1)) != 0);
        if caught {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no SIGINT handler"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// Sends `sig` to a child of ours.
fn signal(child: &Child, sig: Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// Waits up to `limit` for a child of ours; kills it (it hung) if it does
/// not exit, and fails.
fn wait_within(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("hung: no exit within {limit:?}; stderr {:?}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_fifo_destination_gets_the_bytes_or_fails_cleanly() {
    let (dir, src) = scratch();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    // With a reader: every byte, in order.
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::read(fifo).unwrap()
    });
    let out = sparsecp(&["copy", "-q", s(&src), s(&fifo)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(reader.join().unwrap(), b"the new content");
    // A reader that goes away early: EPIPE, named.
    let big = dir.path().join("big.img");
    std::fs::write(&big, vec![7u8; 8 << 20]).unwrap();
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let mut f = std::fs::File::open(fifo).unwrap();
            let mut buf = [0u8; 4096];
            f.read_exact(&mut buf).unwrap();
        }
    });
    let out = sparsecp(&["copy", "-q", s(&big), s(&fifo)]);
    reader.join().unwrap();
    assert_eq!(code(&out), FAILED);
    one_error_line(&out, &[s(&fifo), "Broken pipe"]);
    // A reader that stops reading but stays: the copy waits for room
    // until SIGINT ends it.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let mut f = std::fs::File::open(fifo).unwrap();
            let mut buf = [0u8; 4096];
            f.read_exact(&mut buf).unwrap();
            done_rx.recv().unwrap();
        }
    });
    let child = spawn(
        &[OsStr::new("copy"), big.as_os_str(), fifo.as_os_str()],
        Stdio::null(),
    );
    settle(&child);
    signal(&child, Signal::INT);
    let out = wait_within(child, Duration::from_secs(5));
    done_tx.send(()).unwrap();
    reader.join().unwrap();
    assert_eq!(out.status.code(), Some(INTERRUPTED), "{:?}", out.status);
    one_error_line(&out, &[s(&fifo), "interrupted"]);
    // No reader at all: it waits, like `cat > fifo`, until SIGINT ends it.
    let before = listing(dir.path());
    let child = spawn(
        &[OsStr::new("copy"), src.as_os_str(), fifo.as_os_str()],
        Stdio::null(),
    );
    settle(&child);
    signal(&child, Signal::INT);
    let out = wait_within(child, Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(INTERRUPTED), "{:?}", out.status);
    one_error_line(&out, &[s(&fifo), "interrupted"]);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_fifo_source_copies_what_is_sent_and_sigint_ends_a_wait_for_a_writer() {
    let (dir, _) = scratch();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let dst = dir.path().join("dst");
    std::fs::write(&dst, b"old").unwrap();
    // A writer: its bytes, exactly, once it closes.
    let mut sent = vec![0u8; 2 << 20];
    sent.extend_from_slice(b"and the end");
    let writer = std::thread::spawn({
        let (fifo, sent) = (fifo.clone(), sent.clone());
        move || std::fs::write(fifo, sent).unwrap()
    });
    let out = sparsecp(&["copy", "-q", s(&fifo), s(&dst)]);
    writer.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read(&dst).unwrap() == sent);
    // No writer yet, then a writer that holds the FIFO open silently:
    // SIGINT ends either wait.
    std::fs::write(&dst, b"old").unwrap();
    let before = listing(dir.path());
    for silent_writer in [false, true] {
        let child = spawn(
            &[OsStr::new("copy"), fifo.as_os_str(), dst.as_os_str()],
            Stdio::null(),
        );
        let writer =
            silent_writer.then(|| std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
        settle(&child);
        signal(&child, Signal::INT);
        let out = wait_within(child, Duration::from_secs(5));
        drop(writer);
        let what = if silent_writer {
            "silent writer"
        } else {
            "no writer"
        };
        assert_eq!(
            out.status.code(),
            Some(INTERRUPTED),
            "{what}: {}",
            stderr(&out)
        );
        one_error_line(&out, &[s(&dst), "interrupted"]);
        assert_eq!(listing(dir.path()), before, "{what}");
    }
}

#[test]
fn inspect_and_verify_of_a_fifo_answer_without_waiting_for_a_writer() {
    let (dir, src) = scratch();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let child = spawn(&[OsStr::new("inspect"), fifo.as_os_str()], Stdio::null());
    let out = wait_within(child, Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for args in [[&fifo, &src], [&src, &fifo]] {
        let child = spawn(
            &[
                OsStr::new("verify"),
                args[0].as_os_str(),
                args[1].as_os_str(),
            ],
            Stdio::null(),
        );
        let out = wait_within(child, Duration::from_secs(5));
        assert_eq!(out.status.code(), Some(FAILED));
        one_error_line(&out, &[s(&fifo), "cannot verify a stream"]);
    }
}

#[test]
fn dev_null_as_destination_takes_every_byte_and_stays_dev_null() {
    let (_dir, src) = scratch();
    let out = sparsecp(&["copy", "--json", s(&src), "/dev/null"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["copy"]["bytes_written"], 15);
    let m = std::fs::metadata("/dev/null").unwrap();
    assert!(m.file_type().is_char_device() && m.rdev() == rustix::fs::makedev(1, 3));
}

/// A stream that ends early cannot be told from one that ended: the copy
/// is exactly the bytes received (README: SRC may be `-`).
#[test]
fn stdin_closed_early_gives_exactly_the_bytes_received() {
    let (dir, _) = scratch();
    let dst = dir.path().join("from-stdin");
    std::fs::write(&dst, b"old").unwrap();
    let mut child = spawn(
        &[OsStr::new("copy"), OsStr::new("-"), dst.as_os_str()],
        Stdio::piped(),
    );
    let mut sent = vec![0u8; 3 << 20];
    sent.extend_from_slice(b"cut short");
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&sent).unwrap();
        // Dropped here: the writer closes the pipe mid-stream.
    }
    let out = wait_within(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read(&dst).unwrap() == sent);
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
}

/// A stdin that sends nothing holds the copy; SIGINT must still end it,
/// with the destination untouched and no temporary left.
#[test]
fn sigint_while_waiting_on_stdin_ends_the_copy() {
    let (dir, _) = scratch();
    let dst = dir.path().join("dst");
    std::fs::write(&dst, b"old").unwrap();
    let before = listing(dir.path());
    let mut child = spawn(
        &[OsStr::new("copy"), OsStr::new("-"), dst.as_os_str()],
        Stdio::piped(),
    );
    let stdin = child.stdin.take().unwrap(); // held open, silent
    settle(&child);
    signal(&child, Signal::INT);
    let out = wait_within(child, Duration::from_secs(5));
    drop(stdin);
    assert_eq!(
        out.status.code(),
        Some(INTERRUPTED),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    assert!(out.status.signal().is_none());
    one_error_line(&out, &[s(&dst), "interrupted"]);
    assert_eq!(listing(dir.path()), before);
}
