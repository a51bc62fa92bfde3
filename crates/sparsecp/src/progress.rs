//! A terminal progress bar for the engine's [`Progress`] trait.

use std::io::IsTerminal;
use std::time::Duration;

use copy_engine::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on standard error, drawn only when it is a terminal.
pub struct Bar {
    bar: ProgressBar,
    /// Whether it draws at all: a hidden bar needs no ticker thread.
    shown: bool,
}

impl Bar {
    /// A bar that shows itself if `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Bar {
        let shown = enabled && std::io::stderr().is_terminal();
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bar {
            bar: ProgressBar::with_draw_target(None, target),
            shown,
        }
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
        self.bar.set_style(style);
        self.bar.set_prefix(what.to_string());
        self.bar.set_position(0);
        if total > 0 {
            self.bar.set_length(total);
        }
        if self.shown {
            self.bar.enable_steady_tick(Duration::from_millis(200));
        }
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
