//! How long work tells the outside world how far it got, and how the outside
//! world asks it to stop. The engine has no terminal code: the command line
//! plugs a progress bar in through [`Progress`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Receives progress of one operation. Calls come from the engine's worker
/// threads, hence `Sync`.
pub trait Progress: Sync {
    /// The operation starts; `total` logical bytes will pass (0: unknown).
    fn start(&self, _what: &str, _total: u64) {}
    /// `bytes` more logical bytes are done (holes count too).
    fn advance(&self, _bytes: u64) {}
    /// The operation ended, successfully or not.
    fn finish(&self) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A flag the caller raises (e.g. from a SIGINT handler) to make a running
/// operation stop at the next chunk, clean up, and return
/// [`Error::Interrupted`](crate::Error::Interrupted).
#[derive(Debug, Default, Clone)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A new, lowered flag.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Wraps an existing flag (e.g. one registered with a signal handler).
    pub fn from_flag(flag: Arc<AtomicBool>) -> Cancel {
        Cancel(flag)
    }

    /// Raises the flag.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is raised.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
