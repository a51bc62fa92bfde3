//! Running a scenario with a list of copiers (and, for upgrade scenarios,
//! upgrade strategies), and what came of it.
//!
//! The install is done once. An install-only scenario tries every copier on
//! it in turn, removing `passive.img` in between. An upgrade changes the
//! partition for good, so upgrade scenarios unmount the installed
//! COS_STATE as a snapshot and give each copier a copy of it; after the
//! copy, each strategy gets a copy of that state in turn. Snapshots are
//! bit-for-bit copies of the partition, so every try starts from exactly
//! the state the installer (and the copier) left.

use anyhow::Context;
use serde::Serialize;
use testbed::TreeStats;

use crate::copier::Copier;
use crate::estimate::{estimate_image, Estimate};
use crate::install::{InstallOutcome, Installation, ACTIVE_LABEL};
use crate::measure::ImageFacts;
use crate::partition::StateSnapshot;
use crate::scenario::Scenario;
use crate::upgrade::{Strategy, UpgradeOutcome};
use crate::verdict::{judge, Verdict};

/// The gate's default allowance: passive may allocate 1% more than active.
pub const DEFAULT_TOLERANCE: f64 = 1.01;

/// How to run a scenario: the copy's allowance and the upgrade strategies.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Most passive.img may allocate, relative to active.img.
    pub tolerance: f64,
    /// The strategies each copier's upgrade is tried with (upgrade
    /// scenarios only).
    pub strategies: Vec<Strategy>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            tolerance: DEFAULT_TOLERANCE,
            strategies: vec![Strategy::Elemental],
        }
    }
}

/// One copier's run through a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct CopierRun {
    /// The copier's name.
    pub copier: String,
    /// What the copier does.
    pub description: String,
    /// `active.img` as installed.
    pub active: ImageFacts,
    /// COS_STATE free space before anything was written.
    pub free_empty: u64,
    /// The copy to `passive.img`.
    pub install: InstallOutcome,
    /// Whether the copy passes, and why not.
    pub verdict: Verdict,
    /// The upgrade under each strategy, for scenarios that upgrade (none
    /// when the copy left no passive.img).
    pub upgrades: Vec<UpgradeOutcome>,
}

impl CopierRun {
    /// Whether the gate passes this run: the copy passes and no upgrade
    /// came out corrupted.
    pub fn passed(&self) -> bool {
        self.verdict.passed && self.upgrades.iter().all(|u| u.verdict.passes())
    }

    /// The upgrade under the strategy called `name`.
    pub fn upgrade(&self, name: &str) -> Option<&UpgradeOutcome> {
        self.upgrades.iter().find(|u| u.strategy == name)
    }

    /// Every reason the gate fails, one short line each.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = self.verdict.failures.clone();
        for upgrade in self.upgrades.iter().filter(|u| !u.verdict.passes()) {
            failures.extend(
                upgrade
                    .problems
                    .iter()
                    .map(|p| format!("upgrade ({}): {p}", upgrade.strategy)),
            );
        }
        failures
    }
}

/// Everything one scenario run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// The scenario as run (scaled, with its COS_STATE filesystem).
    pub scenario: Scenario,
    /// The OS tree installed into `active.img`.
    pub tree: TreeStats,
    /// The allowance the verdicts used.
    pub tolerance: f64,
    /// The upgrade strategies tried (empty for install-only scenarios).
    pub strategies: Vec<String>,
    /// What transition.img was estimated to allocate, for upgrades.
    pub estimate: Option<Estimate>,
    /// One run per copier, in the order given.
    pub runs: Vec<CopierRun>,
}

impl ScenarioReport {
    /// Whether every run passed the gate.
    pub fn all_passed(&self) -> bool {
        self.runs.iter().all(CopierRun::passed)
    }

    /// The run of the copier called `name`.
    pub fn run(&self, name: &str) -> Option<&CopierRun> {
        self.runs.iter().find(|r| r.copier == name)
    }
}

/// Runs `scenario` with each copier (and each strategy, if it upgrades),
/// telling `log` what it is doing.
pub fn run_scenario(
    scenario: &Scenario,
    copiers: &[Copier],
    options: &RunOptions,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<ScenarioReport> {
    anyhow::ensure!(!copiers.is_empty(), "no copier to run");
    log(&format!(
        "installing active.img on a {} MiB {} COS_STATE",
        scenario.state.size_mib, scenario.state.fs
    ));
    let installation = Installation::install_active(scenario)?;
    let tree = installation.installed.tree;
    let mut runs = Vec::new();
    let mut estimate = None;
    match &scenario.upgrade {
        None => {
            for copier in copiers {
                runs.push(run_copier(&installation, copier, options.tolerance, log)?);
                installation.remove_passive()?;
            }
        }
        Some(spec) => {
            anyhow::ensure!(!options.strategies.is_empty(), "no upgrade strategy to run");
            let needed = estimate_image(spec, ACTIVE_LABEL)
                .context("cannot estimate what transition.img will allocate")?;
            estimate = Some(needed);
            let (installed_state, installed) = installation.unmount()?;
            let mut installed_state = Some(installed_state);
            for (i, copier) in copiers.iter().enumerate() {
                let state = reuse_or_copy(&mut installed_state, i + 1 == copiers.len())?;
                let installation = Installation::mount(state, installed.clone())?;
                let mut run = run_copier(&installation, copier, options.tolerance, log)?;
                if run.install.passive.is_none() {
                    log(&format!("{copier}: no passive.img, so no upgrade"));
                    runs.push(run);
                    continue;
                }
                let (copied_state, _) = installation.unmount()?;
                let mut copied_state = Some(copied_state);
                for (j, strategy) in options.strategies.iter().enumerate() {
                    let last = j + 1 == options.strategies.len();
                    let state = reuse_or_copy(&mut copied_state, last)?;
                    let installation = Installation::mount(state, installed.clone())?;
                    log(&format!("upgrading after {copier} with {strategy}"));
                    let upgrade = installation
                        .upgrade(spec, strategy, &needed)
                        .with_context(|| format!("upgrade after {copier} ({strategy}) failed"))?;
                    log(&format!("{copier} + {strategy}: {}", upgrade.verdict));
                    run.upgrades.push(upgrade);
                }
                runs.push(run);
            }
        }
    }
    Ok(ScenarioReport {
        scenario: scenario.clone(),
        tree,
        tolerance: options.tolerance,
        strategies: match scenario.upgrade {
            Some(_) => options.strategies.iter().map(Strategy::name).collect(),
            None => Vec::new(),
        },
        estimate,
        runs,
    })
}

/// The snapshot itself for its last use, else a copy of it.
fn reuse_or_copy(slot: &mut Option<StateSnapshot>, last: bool) -> anyhow::Result<StateSnapshot> {
    let snapshot = slot.as_ref().context("a snapshot was used up")?;
    if last {
        Ok(slot.take().expect("checked above"))
    } else {
        snapshot.copy()
    }
}

/// Runs one copier on an installation: copies `active.img` to
/// `passive.img` and judges the copy.
pub fn run_copier(
    installation: &Installation,
    copier: &Copier,
    tolerance: f64,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<CopierRun> {
    log(&format!("copying active.img to passive.img with {copier}"));
    let install = installation
        .install_passive(copier)
        .with_context(|| format!("install with {copier} failed"))?;
    let installed = &installation.installed;
    let verdict = judge(&installed.active, &install, tolerance);
    log(&format!(
        "{copier}: copy {}",
        if verdict.passed { "passes" } else { "FAILS" }
    ));
    Ok(CopierRun {
        copier: copier.name(),
        description: copier.describe(),
        active: installed.active.clone(),
        free_empty: installed.free_empty,
        install,
        verdict,
        upgrades: Vec::new(),
    })
}
