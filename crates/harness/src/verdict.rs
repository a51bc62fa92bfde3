//! The gate: what a copier must achieve for the install (and upgrade) to
//! count as good, with every reason it does not.

use serde::Serialize;

use crate::install::{ACTIVE_LABEL, PASSIVE_LABEL};
use crate::measure::{du_h, ImageFacts};
use crate::run::CopierRun;

/// Whether a run passes, and each reason it does not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// No failure was found.
    pub passed: bool,
    /// One line per failed check.
    pub failures: Vec<String>,
}

/// Judges one run: `passive.img` allocates at most `tolerance` times
/// `active.img`, holds the same bytes, both carry their labels and check
/// clean, and the upgrade (if any) fits and leaves clean, labelled images.
pub fn judge(run: &CopierRun, tolerance: f64) -> Verdict {
    let mut failures = Vec::new();
    let install = &run.install;
    check_image(&run.active, ACTIVE_LABEL, "installed", &mut failures);
    if let Some(error) = &install.copy_error {
        failures.push(format!("the copy failed: {error}"));
    }
    if let Some(passive) = &install.passive {
        let limit = (run.active.allocated as f64 * tolerance) as u64;
        if passive.allocated > limit {
            failures.push(format!(
                "passive.img allocates {} ({} bytes), {:.2}x active.img's {} ({} bytes); \
                 the limit is {tolerance}x ({} bytes)",
                du_h(passive.allocated),
                passive.allocated,
                passive.ratio_to(&run.active),
                du_h(run.active.allocated),
                run.active.allocated,
                limit
            ));
        }
        if !install.identical {
            failures.push(match install.first_difference {
                Some(at) => format!("passive.img differs from active.img at byte {at}"),
                None => "passive.img differs from active.img".to_owned(),
            });
        }
        check_image(passive, PASSIVE_LABEL, "installed", &mut failures);
    } else if install.copy_error.is_none() {
        failures.push("passive.img was not measured".to_owned());
    }
    if let Some(upgrade) = &run.upgrade {
        if !upgrade.fits() {
            failures.push(format!(
                "the upgrade ran out of space on COS_STATE: {}",
                upgrade.out_of_space.join("; ")
            ));
        }
        for (facts, label) in [
            (&upgrade.active, ACTIVE_LABEL),
            (&upgrade.passive, PASSIVE_LABEL),
        ] {
            if let Some(facts) = facts {
                check_image(facts, label, "upgraded", &mut failures);
            }
        }
    }
    Verdict {
        passed: failures.is_empty(),
        failures,
    }
}

fn check_image(facts: &ImageFacts, label: &str, when: &str, failures: &mut Vec<String>) {
    if facts.label.as_deref() != Some(label) {
        failures.push(format!(
            "{when} {} is labelled {:?}, not {label}",
            facts.name,
            facts.label.as_deref().unwrap_or("")
        ));
    }
    if !facts.fsck_clean {
        failures.push(format!(
            "fsck -fn finds errors in {when} {}:\n{}",
            facts.name, facts.fsck_output
        ));
    }
}
