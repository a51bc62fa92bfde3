//! Standard input that stops waiting once the copy is cancelled.
//!
//! SIGINT cannot interrupt a read blocked on a silent pipe or terminal: the
//! signal handlers restart it (SA_RESTART), so `sparsecp copy - DST` would
//! wait for input forever. Each read first polls standard input in short
//! slices and looks at the cancel flag between them; the read itself goes
//! straight to the file descriptor, so no bytes wait in a buffer that poll
//! cannot see.

use std::io::{self, Read};
use std::os::fd::AsFd;

use copy_engine::Cancel;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

/// How long one poll waits before the cancel flag is looked at again.
const SLICE: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 100_000_000,
};

/// Standard input, read unbuffered, giving up when `cancel` is raised.
pub struct CancellableStdin {
    cancel: Cancel,
}

impl CancellableStdin {
    /// Reads standard input until end of file or until `cancel` is raised.
    pub fn new(cancel: Cancel) -> CancellableStdin {
        CancellableStdin { cancel }
    }
}

impl Read for CancellableStdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        loop {
            if self.cancel.is_cancelled() {
                return Err(io::Error::other("cancelled while waiting for input"));
            }
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            match poll(&mut fds, Some(&SLICE)) {
                Ok(0) | Err(Errno::INTR) => continue,
                // Readable, hung up or in error: the read tells which.
                Ok(_) => return rustix::io::read(fd, buf).map_err(io::Error::from),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
