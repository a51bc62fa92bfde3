//! The installer's steps, replayed: build `active.img`, copy it to
//! `passive.img` with a copier, and upgrade through `transition.img`.
//!
//! The steps follow elemental-toolkit v1.1: truncate the image, `mkfs.ext2
//! -L`, attach a loop device, mount, write the OS tree, unmount, detach;
//! then `passive.img` is a copy relabelled with `tune2fs -L COS_PASSIVE`.
//! The upgrade builds `transition.img` the same way, then `mv active.img
//! passive.img`, relabels, and `mv transition.img active.img`, all without
//! checking free space first, as the installer does.

use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;
use testbed::TreeStats;

use crate::copier::Copier;
use crate::image::{build_image, tree_on_image, BuiltImage};
use crate::measure::ImageFacts;
use crate::partition::CosState;
use crate::scenario::{ImageSpec, Scenario};

/// Label of the image the system boots.
pub const ACTIVE_LABEL: &str = "COS_ACTIVE";
/// Label of the fallback image.
pub const PASSIVE_LABEL: &str = "COS_PASSIVE";
/// Free space at or below this on COS_STATE counts as "ran out": a full
/// ext4 still reports its reserved clusters (up to 16 MiB) as free.
pub const FULL_THRESHOLD: u64 = 32 << 20;

/// A COS_STATE partition with `active.img` installed on it.
#[derive(Debug)]
pub struct Installation {
    state: CosState,
    /// `active.img` right after the install.
    pub active: ImageFacts,
    /// The OS tree written into it.
    pub tree: TreeStats,
    /// COS_STATE free space before anything was written.
    pub free_empty: u64,
    /// COS_STATE free space with `active.img` on it.
    pub free_with_active: u64,
}

/// What copying `active.img` to `passive.img` gave.
#[derive(Debug, Clone, Serialize)]
pub struct InstallOutcome {
    /// The copier's name.
    pub copier: String,
    /// COS_STATE free space before the copy.
    pub free_before: u64,
    /// COS_STATE free space after the copy and relabelling.
    pub free_after: u64,
    /// Why the copy failed, if it did.
    pub copy_error: Option<String>,
    /// Whether `passive.img` had `active.img`'s bytes, compared right after
    /// the copy (before `tune2fs` changes its superblock).
    pub identical: bool,
    /// The first differing offset, if any.
    pub first_difference: Option<u64>,
    /// `passive.img` after relabelling; `None` if the copy failed.
    pub passive: Option<ImageFacts>,
    /// Wall time of the copy alone (not snapshotted).
    pub copy_seconds: f64,
}

/// What the upgrade through `transition.img` gave.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeOutcome {
    /// COS_STATE free space before the upgrade.
    pub free_before: u64,
    /// COS_STATE free space once `transition.img` was written.
    pub free_after_transition: u64,
    /// COS_STATE free space at the end.
    pub free_after: u64,
    /// `transition.img` right after it was written, before the swap.
    pub transition: Option<ImageFacts>,
    /// The new `active.img` (the former transition image), after the swap.
    pub active: Option<ImageFacts>,
    /// The new `passive.img` (the former active image), after the swap.
    pub passive: Option<ImageFacts>,
    /// Whether `transition.img`, read back, holds the tree written into it
    /// (same files, sizes and zero blocks); `None` if writing it failed.
    pub tree_intact: Option<bool>,
    /// Evidence that COS_STATE ran out of space; empty if the upgrade fits.
    pub out_of_space: Vec<String>,
}

impl UpgradeOutcome {
    /// The upgrade wrote everything and every image checks clean.
    pub fn fits(&self) -> bool {
        self.out_of_space.is_empty()
    }
}

impl Installation {
    /// Creates COS_STATE as `scenario` says and installs `active.img` on it.
    pub fn install_active(scenario: &Scenario) -> anyhow::Result<Installation> {
        let state = CosState::create(&scenario.state)?;
        let free_empty = state.free_bytes()?;
        let path = state.image_path("active.img");
        let built = build_image(&path, &scenario.install, ACTIVE_LABEL)
            .context("cannot install active.img")?;
        if let Some(error) = built.flush_error {
            bail!("installing active.img: {error}");
        }
        let tree = built.tree;
        let free_with_active = state.free_bytes()?;
        let active = ImageFacts::measure(&path)?;
        Ok(Installation {
            state,
            active,
            tree,
            free_empty,
            free_with_active,
        })
    }

    /// The partition.
    pub fn state(&self) -> &CosState {
        &self.state
    }

    /// Copies `active.img` to `passive.img` with `copier`, checks the copy
    /// against the original, relabels it and measures it.
    pub fn install_passive(&self, copier: &Copier) -> anyhow::Result<InstallOutcome> {
        let active = self.state.image_path("active.img");
        let passive = self.state.image_path("passive.img");
        let free_before = self.state.free_bytes()?;
        let started = Instant::now();
        let copied = copier.copy(&active, &passive);
        let copy_seconds = started.elapsed().as_secs_f64();
        let mut outcome = InstallOutcome {
            copier: copier.name(),
            free_before,
            free_after: free_before,
            copy_error: None,
            identical: false,
            first_difference: None,
            passive: None,
            copy_seconds,
        };
        if let Err(e) = copied {
            outcome.copy_error = Some(format!("{e:#}"));
            outcome.free_after = self.state.free_bytes()?;
            return Ok(outcome);
        }
        let verified = copy_engine::verify(&active, &passive, None)
            .with_context(|| format!("cannot compare {}", passive.display()))?;
        outcome.identical = verified.identical;
        outcome.first_difference = verified.first_difference;
        testbed::set_ext_label(&passive, PASSIVE_LABEL)?;
        outcome.free_after = self.state.free_bytes()?;
        outcome.passive = Some(ImageFacts::measure(&passive)?);
        Ok(outcome)
    }

    /// Removes `passive.img`, so the next copier starts from the same state.
    pub fn remove_passive(&self) -> anyhow::Result<()> {
        let passive = self.state.image_path("passive.img");
        match std::fs::remove_file(&passive) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", passive.display())),
        }
    }

    /// Upgrades to the OS `spec` describes the way the installer does, and
    /// collects every sign that COS_STATE ran out of space on the way.
    pub fn upgrade(&self, spec: &ImageSpec) -> anyhow::Result<UpgradeOutcome> {
        let transition = self.state.image_path("transition.img");
        let free_before = self.state.free_bytes()?;
        let mut evidence = Vec::new();
        let written = build_image(&transition, spec, ACTIVE_LABEL);
        match &written {
            Err(e) => evidence.push(format!("writing transition.img failed: {e:#}")),
            Ok(BuiltImage {
                flush_error: Some(error),
                ..
            }) => evidence.push(format!(
                "transition.img's writes did not reach COS_STATE: {error}"
            )),
            Ok(_) => {}
        }
        let free_after_transition = self.state.free_bytes()?;
        if free_after_transition <= FULL_THRESHOLD {
            evidence.push(format!(
                "COS_STATE free space reached {free_after_transition} bytes"
            ));
        }
        let transition_facts = match ImageFacts::measure(&transition) {
            Ok(facts) => Some(facts),
            Err(e) => {
                evidence.push(format!("cannot check transition.img: {e:#}"));
                None
            }
        };
        if let Some(facts) = &transition_facts {
            if !facts.fsck_clean {
                evidence.push(format!(
                    "fsck -fn finds errors in transition.img:\n{}",
                    facts.fsck_output
                ));
            }
        }
        // Errors that neither the writes nor fsck show: file data that
        // never reached COS_STATE reads back as zeros.
        let mut tree_intact = None;
        if let Ok(built) = &written {
            match tree_on_image(&transition) {
                Ok(found) => {
                    tree_intact = Some(found == built.tree);
                    if found != built.tree {
                        evidence.push(format!(
                            "transition.img does not hold the tree written into it: \
                             read back {}, wrote {}",
                            describe_tree(&found),
                            describe_tree(&built.tree)
                        ));
                    }
                }
                Err(e) => {
                    tree_intact = Some(false);
                    evidence.push(format!("cannot read transition.img's tree back: {e:#}"));
                }
            }
        }
        let mut outcome = UpgradeOutcome {
            tree_intact,
            free_before,
            free_after_transition,
            free_after: free_after_transition,
            transition: transition_facts,
            active: None,
            passive: None,
            out_of_space: evidence,
        };
        // rsync failing aborts the installer; anything else goes unnoticed
        // (the writes through the loop device "succeeded") and it swaps
        // the images, as in the field.
        if written.is_ok() {
            self.swap_images()?;
            let active = ImageFacts::measure(&self.state.image_path("active.img"))?;
            if !active.fsck_clean {
                outcome
                    .out_of_space
                    .push("fsck -fn finds errors in the new active.img".to_owned());
            }
            outcome.active = Some(active);
            outcome.passive = Some(ImageFacts::measure(&self.state.image_path("passive.img"))?);
            outcome.free_after = self.state.free_bytes()?;
        }
        Ok(outcome)
    }

    /// `mv active.img passive.img; tune2fs -L COS_PASSIVE passive.img;
    /// mv transition.img active.img`.
    fn swap_images(&self) -> anyhow::Result<()> {
        let active = self.state.image_path("active.img");
        let passive = self.state.image_path("passive.img");
        let transition = self.state.image_path("transition.img");
        std::fs::rename(&active, &passive).context("cannot move active.img to passive.img")?;
        testbed::set_ext_label(&passive, PASSIVE_LABEL)?;
        std::fs::rename(&transition, &active)
            .context("cannot move transition.img to active.img")?;
        Ok(())
    }
}

/// `N files, N dirs, N bytes (N in zero blocks)`.
fn describe_tree(stats: &TreeStats) -> String {
    format!(
        "{} files, {} dirs, {} bytes ({} in zero blocks)",
        stats.files, stats.dirs, stats.bytes, stats.zero_bytes
    )
}
