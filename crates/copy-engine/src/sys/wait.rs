//! Waiting on pipes and FIFOs without leaving SIGINT's reach.
//!
//! A read blocked on a silent pipe, a write blocked on a full one and an
//! open(2) of a FIFO with no peer all ignore SIGINT: signal handlers
//! installed with SA_RESTART (signal-hook's) restart them. So the engine
//! keeps such descriptors non-blocking and waits here instead, in slices of
//! [`SLICE`], looking at the [`Cancel`] flag between them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::progress::Cancel;

/// How long one poll waits before the cancel flag is looked at again.
const SLICE: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 100_000_000,
};

/// How long to wait between attempts to open a FIFO that has no reader.
const OPEN_RETRY: Duration = Duration::from_millis(20);

/// Why a wait ended without the bytes.
#[derive(Debug)]
pub enum WaitError {
    /// The cancel flag was raised.
    Cancelled,
    /// The syscall named by `op` failed.
    Failed {
        /// What was being done ("write at offset N", "poll", "open").
        op: String,
        /// The OS error.
        err: io::Error,
    },
}

/// Waits up to one [`SLICE`] for `fd` to be ready for `flags`. Readiness,
/// a hang-up, a timeout and EINTR all return `Ok`: the caller's next read
/// or write tells which.
fn wait_slice(fd: impl AsFd, flags: PollFlags) -> io::Result<()> {
    let mut fds = [PollFd::new(&fd, flags)];
    match poll(&mut fds, Some(&SLICE)) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reads once from `fd` (blocking or not) into `buf`, waiting in poll
/// while there is nothing to read; gives up with an error once `cancel`
/// is raised. Reads the descriptor directly, so no bytes wait in a buffer
/// that poll cannot see.
pub fn read_waiting(fd: impl AsFd, buf: &mut [u8], cancel: &Cancel) -> io::Result<usize> {
    loop {
        if cancel.is_cancelled() {
            return Err(io::Error::other("cancelled while waiting for input"));
        }
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&SLICE)) {
            Ok(0) | Err(Errno::INTR) => continue,
            // Readable, hung up or in error: the read tells which.
            Ok(_) => match rustix::io::read(&fd, &mut *buf) {
                // Someone else took the bytes: wait again.
                Err(Errno::AGAIN | Errno::INTR) => continue,
                read => return read.map_err(io::Error::from),
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes all of `buf` in order to a pipe or device, `offset` being where
/// it starts in the stream (for errors). On a non-blocking FIFO whose
/// reader stops reading, waits for room in slices.
pub fn write_waiting(
    mut dst: &File,
    mut buf: &[u8],
    offset: u64,
    cancel: &Cancel,
) -> Result<(), WaitError> {
    let mut at = offset;
    let failed = |at: u64, err| WaitError::Failed {
        op: format!("write at offset {at}"),
        err,
    };
    while !buf.is_empty() {
        match dst.write(buf) {
            Ok(0) => return Err(failed(at, io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                buf = &buf[n..];
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if cancel.is_cancelled() {
                    return Err(WaitError::Cancelled);
                }
                wait_slice(dst, PollFlags::OUT).map_err(|err| WaitError::Failed {
                    op: "poll".into(),
                    err,
                })?;
            }
            Err(e) => return Err(failed(at, e)),
        }
    }
    Ok(())
}

/// Opens a FIFO for writing. open(2) of a FIFO blocks until a reader
/// comes, out of SIGINT's reach, so it is opened non-blocking and retried
/// (`ENXIO`: no reader yet) until a reader appears or `cancel` is raised.
/// The file stays non-blocking: [`write_waiting`] waits for room itself.
pub fn open_fifo_for_writing(path: &Path, cancel: &Cancel) -> Result<File, WaitError> {
    loop {
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        match opened {
            Ok(file) => return Ok(file),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if cancel.is_cancelled() {
                    return Err(WaitError::Cancelled);
                }
                std::thread::sleep(OPEN_RETRY);
            }
            Err(err) => {
                return Err(WaitError::Failed {
                    op: "open".into(),
                    err,
                })
            }
        }
    }
}
