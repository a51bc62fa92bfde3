//! The installer's steps, replayed: build `active.img`, then copy it to
//! `passive.img` with a copier. The upgrade that may follow is
//! [`crate::upgrade`]'s.
//!
//! The steps follow elemental-toolkit v1.1: truncate the image, `mkfs.ext2
//! -L`, attach a loop device, mount, write the OS tree, unmount, detach;
//! then `passive.img` is a copy relabelled with `tune2fs -L COS_PASSIVE`.

use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;
use testbed::TreeStats;

use crate::copier::Copier;
use crate::estimate::Estimate;
use crate::image::build_image;
use crate::measure::ImageFacts;
use crate::partition::{CosState, Df, StateSnapshot};
use crate::scenario::{ImageSpec, Scenario};
use crate::upgrade::{run_upgrade, Strategy, UpgradeOutcome};

/// Label of the image the system boots.
pub const ACTIVE_LABEL: &str = "COS_ACTIVE";
/// Label of the fallback image.
pub const PASSIVE_LABEL: &str = "COS_PASSIVE";
/// Free space at or below this on COS_STATE counts as "ran out": a full
/// ext4 still reports its reserved clusters (up to 16 MiB) as free.
pub const FULL_THRESHOLD: u64 = 32 << 20;

/// What the install left on COS_STATE, measured once: every copier and
/// upgrade starts from it.
#[derive(Debug, Clone)]
pub struct Installed {
    /// `active.img` right after the install.
    pub active: ImageFacts,
    /// The OS tree written into it.
    pub tree: TreeStats,
    /// That tree's digest ([`testbed::tree_digest`]).
    pub tree_digest: u64,
    /// COS_STATE free space before anything was written.
    pub free_empty: u64,
}

/// A mounted COS_STATE partition with `active.img` installed on it.
#[derive(Debug)]
pub struct Installation {
    state: CosState,
    /// What the install left.
    pub installed: Installed,
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
    /// What `df` shows of COS_STATE after the copy.
    pub df_after: Option<Df>,
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
        let active = ImageFacts::measure(&path)?;
        Ok(Installation {
            state,
            installed: Installed {
                active,
                tree: built.tree,
                tree_digest: built.tree_digest,
                free_empty,
            },
        })
    }

    /// Mounts a snapshot of an installation again.
    pub fn mount(snapshot: StateSnapshot, installed: Installed) -> anyhow::Result<Installation> {
        Ok(Installation {
            state: snapshot.mount()?,
            installed,
        })
    }

    /// Unmounts the partition, keeping it as a snapshot to mount again.
    pub fn unmount(self) -> anyhow::Result<(StateSnapshot, Installed)> {
        Ok((self.state.unmount()?, self.installed))
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
            df_after: None,
            copy_error: None,
            identical: false,
            first_difference: None,
            passive: None,
            copy_seconds,
        };
        let failure = match copied {
            Err(e) => Some(format!("{e:#}")),
            Ok(()) if !passive.is_file() => {
                Some("the copier exited 0 but left no passive.img".to_owned())
            }
            Ok(()) => None,
        };
        if let Some(failure) = failure {
            outcome.copy_error = Some(failure);
            outcome.free_after = self.state.free_bytes()?;
            return Ok(outcome);
        }
        let verified = copy_engine::verify(&active, &passive, None)
            .with_context(|| format!("cannot compare {}", passive.display()))?;
        outcome.identical = verified.identical;
        outcome.first_difference = verified.first_difference;
        testbed::set_ext_label(&passive, PASSIVE_LABEL)?;
        outcome.free_after = self.state.free_bytes()?;
        outcome.df_after = Some(self.state.df()?);
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

    /// Upgrades to the OS `spec` describes under `strategy` (see
    /// [`crate::upgrade`]); `estimate` is what transition.img should take.
    pub fn upgrade(
        &self,
        spec: &ImageSpec,
        strategy: &Strategy,
        estimate: &Estimate,
    ) -> anyhow::Result<UpgradeOutcome> {
        run_upgrade(&self.state, &self.installed, spec, strategy, estimate)
    }
}
