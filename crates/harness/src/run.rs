//! Running a scenario with a list of copiers, and what came of it.
//!
//! An install-only scenario installs `active.img` once and tries every
//! copier on it in turn, removing `passive.img` in between. An upgrade
//! changes the partition for good, so upgrade scenarios install afresh
//! for each copier.

use anyhow::Context;
use serde::Serialize;
use testbed::TreeStats;

use crate::copier::Copier;
use crate::install::{InstallOutcome, Installation, UpgradeOutcome};
use crate::measure::ImageFacts;
use crate::scenario::Scenario;
use crate::verdict::{judge, Verdict};

/// The gate's default allowance: passive may allocate 1% more than active.
pub const DEFAULT_TOLERANCE: f64 = 1.01;

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
    /// The upgrade, for scenarios that upgrade.
    pub upgrade: Option<UpgradeOutcome>,
    /// Whether the gate passes this run, and why not.
    pub verdict: Verdict,
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
    /// One run per copier, in the order given.
    pub runs: Vec<CopierRun>,
}

impl ScenarioReport {
    /// Whether every run passed the gate.
    pub fn all_passed(&self) -> bool {
        self.runs.iter().all(|r| r.verdict.passed)
    }

    /// The run of the copier called `name`.
    pub fn run(&self, name: &str) -> Option<&CopierRun> {
        self.runs.iter().find(|r| r.copier == name)
    }
}

/// Runs `scenario` with each copier, telling `log` what it is doing.
pub fn run_scenario(
    scenario: &Scenario,
    copiers: &[Copier],
    tolerance: f64,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<ScenarioReport> {
    anyhow::ensure!(!copiers.is_empty(), "no copier to run");
    let mut runs = Vec::new();
    let mut tree = None;
    let mut shared: Option<Installation> = None;
    for copier in copiers {
        // Upgrades change the partition for good: they each get their own.
        let mut fresh = None;
        if scenario.upgrade.is_some() || shared.is_none() {
            log(&format!(
                "installing active.img on a {} MiB {} COS_STATE",
                scenario.state.size_mib, scenario.state.fs
            ));
            let installed = Installation::install_active(scenario)?;
            if scenario.upgrade.is_some() {
                fresh = Some(installed);
            } else {
                shared = Some(installed);
            }
        }
        let installation = fresh
            .as_ref()
            .or(shared.as_ref())
            .expect("an installation was just made");
        tree.get_or_insert(installation.tree);
        let run = run_copier(installation, copier, scenario, tolerance, log)?;
        runs.push(run);
    }
    Ok(ScenarioReport {
        scenario: scenario.clone(),
        tree: tree.expect("at least one copier ran"),
        tolerance,
        runs,
    })
}

/// Runs one copier on an installation: copies `active.img` to
/// `passive.img`, then upgrades if the scenario does (changing the
/// partition for good) or else removes `passive.img` again, and judges it.
pub fn run_copier(
    installation: &Installation,
    copier: &Copier,
    scenario: &Scenario,
    tolerance: f64,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<CopierRun> {
    log(&format!("copying active.img to passive.img with {copier}"));
    let install = installation
        .install_passive(copier)
        .with_context(|| format!("install with {copier} failed"))?;
    let upgrade = match &scenario.upgrade {
        Some(spec) => {
            log(&format!("upgrading after {copier}"));
            Some(
                installation
                    .upgrade(spec)
                    .with_context(|| format!("upgrade after {copier} failed"))?,
            )
        }
        None => {
            installation.remove_passive()?;
            None
        }
    };
    let mut run = CopierRun {
        copier: copier.name(),
        description: copier.describe(),
        active: installation.active.clone(),
        free_empty: installation.free_empty,
        install,
        upgrade,
        verdict: Verdict::default(),
    };
    run.verdict = judge(&run, tolerance);
    log(&format!(
        "{copier}: {}",
        if run.verdict.passed { "pass" } else { "FAIL" }
    ));
    Ok(run)
}
