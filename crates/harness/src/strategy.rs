//! The upgrade strategies: what runs before `transition.img` is built, from
//! today's nothing to Harvester's dig, the free-space check elemental-toolkit
//! #2103 asks for, the #10687 workaround, or a command of the user's. What
//! each does is [`crate::upgrade::run_upgrade`]'s business.

use std::fmt;

use anyhow::Context;

/// What runs before `transition.img` is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Today's `elemental upgrade`: build, no check, rotate.
    Elemental,
    /// Harvester's upgrade script: `fallocate --dig-holes passive.img`
    /// first, then as [`Strategy::Elemental`].
    DigPassive,
    /// Estimate what `transition.img` will allocate and refuse, changing
    /// nothing, unless COS_STATE has that much free plus a headroom.
    Preflight,
    /// The #10687 workaround: delete passive.img, then as elemental. The
    /// node has no fallback image while the upgrade runs.
    DropPassive,
    /// A command run with `sh -c` before the build (see [`PREFLIGHT_ENV`]);
    /// a non-zero exit refuses the upgrade.
    External {
        /// The command line.
        command: String,
    },
}

/// The environment an external preflight command gets: name and meaning.
pub const PREFLIGHT_ENV: [(&str, &str); 6] = [
    ("COS_STATE_DIR", "the COS_STATE mount point"),
    (
        "UPGRADE_BYTES_NEEDED",
        "the estimate of what transition.img will allocate, in bytes",
    ),
    (
        "COS_STATE_BYTES_FREE",
        "COS_STATE's free bytes (f_bfree: the loop device may use reserved blocks)",
    ),
    ("TRANSITION_IMG", "the path of the transition.img to build"),
    ("ACTIVE_IMG", "the path of active.img"),
    ("PASSIVE_IMG", "the path of passive.img"),
];

impl Strategy {
    /// The builtin strategies, in table order.
    pub fn builtins() -> Vec<Strategy> {
        vec![
            Strategy::Elemental,
            Strategy::DigPassive,
            Strategy::Preflight,
            Strategy::DropPassive,
        ]
    }

    /// The builtin strategy called `name`.
    pub fn builtin(name: &str) -> anyhow::Result<Strategy> {
        Strategy::builtins()
            .into_iter()
            .find(|s| s.name() == name)
            .with_context(|| {
                let known: Vec<String> = Strategy::builtins().iter().map(|s| s.name()).collect();
                format!("no upgrade strategy {name:?}; known: {}", known.join(", "))
            })
    }

    /// The name shown in tables.
    pub fn name(&self) -> String {
        match self {
            Strategy::Elemental => "elemental",
            Strategy::DigPassive => "dig-passive",
            Strategy::Preflight => "preflight",
            Strategy::DropPassive => "drop-passive",
            Strategy::External { .. } => "external",
        }
        .to_owned()
    }

    /// What it does, in one line.
    pub fn describe(&self) -> String {
        match self {
            Strategy::Elemental => "build transition.img without a check, rotate".to_owned(),
            Strategy::DigPassive => {
                "fallocate --dig-holes passive.img, then build and rotate".to_owned()
            }
            Strategy::Preflight => format!(
                "refuse unless COS_STATE has the estimate + {}% free, then build and rotate",
                crate::estimate::HEADROOM_PERCENT
            ),
            Strategy::DropPassive => {
                "rm passive.img (no fallback image meanwhile), then build and rotate".to_owned()
            }
            Strategy::External { command } => {
                format!("sh -c {command:?} (non-zero refuses), then build and rotate")
            }
        }
    }

    /// Whether it may refuse, so the images must be fingerprinted first.
    pub fn may_refuse(&self) -> bool {
        matches!(self, Strategy::Preflight | Strategy::External { .. })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}
