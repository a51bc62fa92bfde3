//! A terminal progress bar for the engine's [`Progress`] trait.

use std::io::IsTerminal;
use std::time::Duration;

use copy_engine::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on standard error, drawn only when it is a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar that shows itself if `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Bar {
        let target = if enabled && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bar(ProgressBar::with_draw_target(None, target))
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        let template = if total > 0 {
            "{prefix} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{prefix} {spinner} {bytes} {bytes_per_sec}"
        };
        let style = ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> ");
        self.0.set_style(style);
        self.0.set_prefix(what.to_string());
        self.0.set_position(0);
        if total > 0 {
            self.0.set_length(total);
        }
        // A hidden bar needs no ticker thread.
        if !self.0.is_hidden() {
            self.0.enable_steady_tick(Duration::from_millis(200));
        }
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
