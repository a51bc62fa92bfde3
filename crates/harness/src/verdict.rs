//! The gate's judgement of a copy: what a copier must achieve for the
//! install to count as good, with every reason it does not. (An upgrade's
//! verdict is [`crate::upgrade::judge_upgrade`]'s.)

use serde::Serialize;

use crate::install::{InstallOutcome, ACTIVE_LABEL, PASSIVE_LABEL};
use crate::measure::{du_h, ImageFacts};

/// Whether a copy passes, and each reason it does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// No failure was found.
    pub passed: bool,
    /// One short line per failed check.
    pub failures: Vec<String>,
}

/// Judges one copy: `passive.img` allocates at most `tolerance` times
/// `active.img`, holds the same bytes, and both carry their labels and
/// check clean.
pub fn judge(active: &ImageFacts, install: &InstallOutcome, tolerance: f64) -> Verdict {
    let mut failures = Vec::new();
    failures.extend(active.label_and_fsck_problems(ACTIVE_LABEL, "installed "));
    if let Some(error) = &install.copy_error {
        failures.push(match error.as_str() {
            // Already a sentence of its own.
            e if e.starts_with("the copier ") => e.to_owned(),
            e => format!("the copy failed: {}", e.lines().next().unwrap_or("")),
        });
    }
    if let Some(passive) = &install.passive {
        let limit = (active.allocated as f64 * tolerance) as u64;
        if passive.allocated > limit {
            failures.push(format!(
                "passive.img allocates {} ({} bytes), {:.2}x active.img's {} ({} bytes); \
                 the limit is {tolerance}x ({} bytes)",
                du_h(passive.allocated),
                passive.allocated,
                passive.ratio_to(active),
                du_h(active.allocated),
                active.allocated,
                limit
            ));
        }
        if !install.identical {
            failures.push(match install.first_difference {
                Some(at) => format!("passive.img differs from active.img at byte {at}"),
                None => "passive.img differs from active.img".to_owned(),
            });
        }
        failures.extend(passive.label_and_fsck_problems(PASSIVE_LABEL, "installed "));
    } else if install.copy_error.is_none() {
        failures.push("passive.img was not measured".to_owned());
    }
    Verdict {
        passed: failures.is_empty(),
        failures,
    }
}
