//! Reading pipes, terminals and standard input so that a cancel ends the
//! wait for input.
//!
//! SIGINT cannot interrupt a read blocked on a silent pipe: signal handlers
//! installed with SA_RESTART (signal-hook's) restart it, so a copy from a
//! writer that sends nothing would wait forever. [`CancellableReader`]
//! waits in poll instead (`sys::read_waiting`), in short slices, and looks
//! at the [`Cancel`] flag between them.

use std::io::{self, Read};
use std::os::fd::AsFd;

use crate::progress::Cancel;
use crate::sys;

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
        sys::read_waiting(&self.fd, buf, &self.cancel)
    }
}
