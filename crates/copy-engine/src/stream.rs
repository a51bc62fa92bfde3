//! Reading pipes, terminals and standard input so that a cancel ends the
//! wait for input.
//!
//! SIGINT cannot interrupt a read blocked on a silent pipe: signal handlers
//! installed with SA_RESTART (signal-hook's) restart it, so a copy from a
//! writer that sends nothing would wait forever. [`CancellableReader`]
//! polls in short slices and looks at the [`Cancel`] flag between them,
//! then reads the file descriptor directly, so no bytes wait in a buffer
//! that poll cannot see.

use std::io::{self, Read};
use std::os::fd::AsFd;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::progress::Cancel;

/// How long one poll waits before the cancel flag is looked at again.
const SLICE: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 100_000_000,
};

/// A readable file descriptor (a pipe, FIFO, terminal, `io::stdin()`)
/// whose reads give up with an error once `cancel` is raised; the copy
/// then ends as [`Error::Interrupted`](crate::Error::Interrupted).
#[derive(Debug)]
pub struct CancellableReader<F: AsFd> {
    fd: F,
    cancel: Cancel,
}

impl<F: AsFd> CancellableReader<F> {
    /// Reads `fd` until end of file or until `cancel` is raised. A
    /// non-blocking `fd` is fine: reads wait in poll, not in read.
    pub fn new(fd: F, cancel: Cancel) -> CancellableReader<F> {
        CancellableReader { fd, cancel }
    }
}

impl<F: AsFd> Read for CancellableReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.cancel.is_cancelled() {
                return Err(io::Error::other("cancelled while waiting for input"));
            }
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut fds, Some(&SLICE)) {
                Ok(0) | Err(Errno::INTR) => continue,
                // Readable, hung up or in error: the read tells which.
                Ok(_) => match rustix::io::read(&self.fd, &mut *buf) {
                    // Someone else took the bytes: wait again.
                    Err(Errno::AGAIN | Errno::INTR) => continue,
                    read => return read.map_err(io::Error::from),
                },
                Err(e) => return Err(e.into()),
            }
        }
    }
}
