//! harness: replays the Harvester/Elemental install and upgrade on a real,
//! loop-mounted COS_STATE partition and measures what each way of copying
//! `active.img` to `passive.img` does to allocation, labels, consistency
//! and free space (issue #3).
//!
//! The pieces, in the order a run uses them:
//! - [`scenario`]: the scenarios in `fixtures/scenarios/*.toml`, scaling.
//! - [`partition`]: COS_STATE and mounted images as RAII guards.
//! - [`image`]: building an OS image, reading its tree back.
//! - [`install`]: the installer's steps; [`Installation`].
//! - [`copier`]: the named copiers ([`Copier::Iocopy`], ...).
//! - [`go_programs`]: building the Go copiers of `fixtures/` (`go-iocopy`,
//!   `go-sparsecopy`) with the system Go.
//! - [`measure`]: sizes, allocation, label and fsck of an image.
//! - [`verdict`]: the gate's judgement of one copy.
//! - [`estimate`]: what an upgrade's transition.img will allocate.
//! - [`strategy`]: what runs before the upgrade builds transition.img.
//! - [`upgrade`]: the upgrade under a [`Strategy`], and its three verdicts.
//! - [`run`]: a scenario with copiers and strategies; [`ScenarioReport`].
//! - [`table`] and [`report`]: what people review.
//! - [`cli`]: the gate's command line (`sparsecp-gate`, `cargo xtask gate`).
//!
//! Everything needs root and the e2fsprogs tools; callers check with
//! [`skip_reason`] first.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod copier;
pub mod estimate;
pub mod go_programs;
pub mod image;
pub mod install;
pub mod measure;
pub mod partition;
pub mod report;
pub mod run;
pub mod scenario;
pub mod strategy;
pub mod table;
pub mod upgrade;
pub mod verdict;

pub use copier::Copier;
pub use estimate::Estimate;
pub use install::{InstallOutcome, Installation, Installed};
pub use measure::{du_h, ImageFacts};
pub use run::{run_scenario, CopierRun, RunOptions, ScenarioReport, DEFAULT_TOLERANCE};
pub use scenario::{ImageSpec, Scenario, StateSpec, DEFAULT_SCENARIO};
pub use upgrade::{Strategy, UpgradeOutcome, UpgradeVerdict};
pub use verdict::{judge, Verdict};

/// Why scenarios cannot run here (not root, a tool or filesystem missing),
/// or `None` if they can. `fs` is the COS_STATE filesystem.
pub fn skip_reason(fs: testbed::FsKind) -> Option<String> {
    testbed::fs_skip_reason(fs)
        .or_else(|| testbed::fs_skip_reason(testbed::FsKind::Ext2))
        .or_else(|| testbed::skip_reason(&["tune2fs", "blkid"]))
}
