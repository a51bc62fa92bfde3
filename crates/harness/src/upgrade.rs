//! The upgrade, step by step, under a chosen strategy, and its verdict.
//!
//! `elemental upgrade` builds `cOS/transition.img` on COS_STATE the way
//! the installer built `active.img`, without checking free space, then
//! rotates: `mv active.img passive.img`, relabel it COS_PASSIVE, `mv
//! transition.img active.img`. When COS_STATE runs out, the writes through
//! the loop device seem to succeed and the new active.img is corrupt
//! (harvester/harvester#10687). A [`Strategy`] is what runs before that:
//! nothing (`elemental`), Harvester's `fallocate --dig-holes` on
//! passive.img (`dig-passive`), the free-space check elemental-toolkit
//! #2103 asks for (`preflight`), the #10687 workaround of deleting
//! passive.img (`drop-passive`), or a command of the user's (`external`).
//!
//! [`run_upgrade`] records COS_STATE's free space around every step, then
//! [`judge_upgrade`] gives one of three verdicts from what it measured:
//! - **upgraded**: the rotation happened, both images check clean with the
//!   right labels, and both trees read back with the content written into
//!   them (by digest: the #10687 files were all NUL bytes on a clean fsck);
//! - **refused**: the strategy said no, and active.img and passive.img hold
//!   the same bytes as before, with their labels, and no transition.img;
//! - **corrupted**: anything else.

use std::fmt;
use std::process::Command;

use anyhow::Context;
use serde::Serialize;

use crate::estimate::Estimate;
use crate::image::{build_image, tree_digest_on_image};
use crate::install::{Installed, ACTIVE_LABEL, PASSIVE_LABEL};
use crate::measure::{content_digest, du_h, ImageFacts};
use crate::partition::CosState;
use crate::scenario::ImageSpec;
pub use crate::strategy::{Strategy, PREFLIGHT_ENV};

/// The three outcomes of an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeVerdict {
    /// It fit, and every image reads back right.
    Upgraded,
    /// The strategy said no, and nothing changed.
    Refused,
    /// Anything else: the gate fails.
    Corrupted,
}

impl UpgradeVerdict {
    /// Whether the gate passes it.
    pub fn passes(self) -> bool {
        self != UpgradeVerdict::Corrupted
    }
}

impl fmt::Display for UpgradeVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeVerdict::Upgraded => "upgraded",
            UpgradeVerdict::Refused => "refused",
            UpgradeVerdict::Corrupted => "CORRUPTED",
        })
    }
}

/// One step of an upgrade and COS_STATE's free space around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What ran, like `fallocate --dig-holes passive.img`.
    pub name: String,
    /// Free bytes before it.
    pub free_before: u64,
    /// Free bytes after it.
    pub free_after: u64,
    /// What came of it, in a few words.
    pub outcome: String,
}

/// Everything one upgrade measured, and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeOutcome {
    /// The strategy's name.
    pub strategy: String,
    /// What the strategy does.
    pub description: String,
    /// What `transition.img` was expected to allocate.
    pub estimate: Estimate,
    /// The steps that ran, in order.
    pub steps: Vec<Step>,
    /// Why the strategy refused the upgrade, if it did.
    pub refusal: Option<String>,
    /// Whether a fallback image (passive.img) existed throughout.
    pub fallback_kept: bool,
    /// passive.img after `fallocate --dig-holes` (dig-passive only).
    pub dug_passive: Option<ImageFacts>,
    /// `transition.img` as written, before the rotation.
    pub transition: Option<ImageFacts>,
    /// active.img at the end.
    pub active: Option<ImageFacts>,
    /// passive.img at the end.
    pub passive: Option<ImageFacts>,
    /// Whether the new active.img holds the new tree, byte for byte.
    pub new_tree_intact: Option<bool>,
    /// Whether passive.img still holds the installed tree.
    pub old_tree_intact: Option<bool>,
    /// Refused: whether active.img and passive.img kept their bytes.
    pub images_unchanged: Option<bool>,
    /// Signs of corruption, one short line each (why it is not upgraded
    /// or refused).
    pub problems: Vec<String>,
    /// The verdict.
    pub verdict: UpgradeVerdict,
}

impl UpgradeOutcome {
    /// Free space before the first step.
    pub fn free_before(&self) -> u64 {
        self.steps.first().map_or(0, |s| s.free_before)
    }

    /// Free space after the last step.
    pub fn free_after(&self) -> u64 {
        self.steps.last().map_or(0, |s| s.free_after)
    }

    /// The estimate's error against what transition.img really allocated,
    /// if it was written in full.
    pub fn estimate_error(&self) -> Option<f64> {
        let transition = self.transition.as_ref()?;
        (self.verdict == UpgradeVerdict::Upgraded)
            .then(|| self.estimate.error_against(transition.allocated))
    }
}

impl UpgradeOutcome {
    /// Whether the ext2 image at `path` holds the tree whose digest is
    /// `digest` (`tree` names it in the problem noted when it does not).
    fn check_tree(&mut self, path: &std::path::Path, tree: &str, digest: u64) -> bool {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match tree_digest_on_image(path) {
            Ok(found) if found == digest => true,
            Ok(_) => {
                self.problems.push(format!(
                    "{name} does not hold {tree}: its files read back different bytes"
                ));
                false
            }
            Err(e) => {
                self.problems.push(format!(
                    "cannot read {tree} back from {name}: {}",
                    one_line(&e)
                ));
                false
            }
        }
    }

    /// Measures active.img or passive.img (by `label`) at the end, noting
    /// a wrong label or fsck errors as problems.
    fn record_image(&mut self, path: &std::path::Path, label: &str) -> anyhow::Result<()> {
        let facts = ImageFacts::measure(path)?;
        self.problems
            .extend(facts.label_and_fsck_problems(label, ""));
        if label == ACTIVE_LABEL {
            self.active = Some(facts);
        } else {
            self.passive = Some(facts);
        }
        Ok(())
    }
}

/// The images before the upgrade, to tell a refusal that changed nothing.
struct Before {
    active: u64,
    passive: Option<u64>,
}

/// Upgrades the installation on `state` to the OS `spec` describes, under
/// `strategy`; returns what happened and the verdict.
pub fn run_upgrade(
    state: &CosState,
    installed: &Installed,
    spec: &ImageSpec,
    strategy: &Strategy,
    estimate: &Estimate,
) -> anyhow::Result<UpgradeOutcome> {
    let active = state.image_path("active.img");
    let passive = state.image_path("passive.img");
    let transition = state.image_path("transition.img");
    let before = if strategy.may_refuse() {
        Some(Before {
            active: content_digest(&active)?,
            passive: passive
                .exists()
                .then(|| content_digest(&passive))
                .transpose()?,
        })
    } else {
        None
    };
    let mut outcome = UpgradeOutcome {
        strategy: strategy.name(),
        description: strategy.describe(),
        estimate: *estimate,
        steps: Vec::new(),
        refusal: None,
        fallback_kept: passive.exists(),
        dug_passive: None,
        transition: None,
        active: None,
        passive: None,
        new_tree_intact: None,
        old_tree_intact: None,
        images_unchanged: None,
        problems: Vec::new(),
        verdict: UpgradeVerdict::Corrupted,
    };

    // The strategy's own step.
    match strategy {
        Strategy::Elemental => {}
        Strategy::DigPassive => {
            let mut cmd = Command::new("fallocate");
            cmd.arg("--dig-holes").arg(&passive);
            step(
                state,
                &mut outcome,
                "fallocate --dig-holes passive.img",
                |_| testbed::run_tool(&mut cmd).map(|_| ((), "dug".to_owned())),
            )?;
            outcome.dug_passive = Some(ImageFacts::measure(&passive)?);
        }
        Strategy::Preflight => {
            outcome.refusal = step(state, &mut outcome, "preflight: estimate vs free", |free| {
                let wanted = estimate.with_headroom();
                let refusal = (wanted > free).then(|| {
                    format!(
                        "refused: transition.img needs an estimated {} ({} bytes) plus {}% \
                         headroom, COS_STATE has {} ({free} bytes) free; free {} more first",
                        du_h(estimate.needed),
                        estimate.needed,
                        crate::estimate::HEADROOM_PERCENT,
                        du_h(free),
                        du_h(wanted - free)
                    )
                });
                let said = refusal.clone().unwrap_or_else(|| "fits".to_owned());
                Ok((refusal, said))
            })?;
        }
        Strategy::DropPassive => {
            step(state, &mut outcome, "rm passive.img", |_| {
                std::fs::remove_file(&passive)
                    .with_context(|| format!("cannot remove {}", passive.display()))?;
                Ok((
                    (),
                    "removed: no fallback image until the rotation".to_owned(),
                ))
            })?;
            outcome.fallback_kept = false;
        }
        Strategy::External { command } => {
            let free = state.free_bytes()?;
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(command)
                .env("COS_STATE_DIR", state.root())
                .env("UPGRADE_BYTES_NEEDED", estimate.needed.to_string())
                .env("COS_STATE_BYTES_FREE", free.to_string())
                .env("TRANSITION_IMG", &transition)
                .env("ACTIVE_IMG", &active)
                .env("PASSIVE_IMG", &passive);
            outcome.refusal = step(state, &mut outcome, "preflight command", |_| {
                let out = cmd
                    .output()
                    .with_context(|| format!("cannot run sh -c {command:?}"))?;
                let said = first_line(&out.stderr)
                    .or_else(|| first_line(&out.stdout))
                    .unwrap_or_default();
                Ok(if out.status.success() {
                    (None, format!("exit 0 {said}").trim_end().to_owned())
                } else {
                    let refusal = format!("refused by the command ({}): {said}", out.status);
                    (Some(refusal.clone()), refusal)
                })
            })?;
        }
    }

    if outcome.refusal.is_some() {
        check_refusal(state, before.as_ref(), &mut outcome)?;
    } else {
        build_and_rotate(state, installed, spec, &mut outcome)?;
    }
    outcome.verdict = judge_upgrade(&outcome);
    Ok(outcome)
}

/// Builds transition.img, rotates if the installer would, and checks both
/// images.
fn build_and_rotate(
    state: &CosState,
    installed: &Installed,
    spec: &ImageSpec,
    outcome: &mut UpgradeOutcome,
) -> anyhow::Result<()> {
    let transition = state.image_path("transition.img");
    let built = step(state, outcome, "build transition.img", |_| {
        let built = build_image(&transition, spec, ACTIVE_LABEL);
        let said = match &built {
            Ok(image) => match &image.flush_error {
                Some(error) => format!("writes lost: {}", error.lines().next().unwrap_or("")),
                None => "written".to_owned(),
            },
            Err(e) => format!("failed: {}", one_line(e)),
        };
        Ok((built, said))
    })?;
    let free = state.free_bytes()?;
    if free <= crate::install::FULL_THRESHOLD {
        outcome
            .problems
            .push(format!("COS_STATE ran out of space ({free} bytes free)"));
    }
    outcome.transition = ImageFacts::measure(&transition).ok();
    let image = match built {
        // The installer sees this one fail and stops before the rotation.
        Err(e) => {
            outcome
                .problems
                .push(format!("building transition.img failed: {}", one_line(&e)));
            return Ok(());
        }
        Ok(image) => image,
    };
    if let Some(error) = &image.flush_error {
        outcome.problems.push(format!(
            "transition.img's writes did not reach COS_STATE: {}",
            error.lines().next().unwrap_or("")
        ));
    }
    // The installer noticed nothing: it rotates, as in the field.
    let passive = state.image_path("passive.img");
    let active = state.image_path("active.img");
    step(state, outcome, "rotate", |_| {
        std::fs::rename(&active, &passive).context("cannot move active.img to passive.img")?;
        testbed::set_ext_label(&passive, PASSIVE_LABEL)?;
        std::fs::rename(&transition, &active)
            .context("cannot move transition.img to active.img")?;
        Ok(((), "active -> passive, transition -> active".to_owned()))
    })?;
    outcome.new_tree_intact = Some(outcome.check_tree(&active, "the new tree", image.tree_digest));
    outcome.old_tree_intact =
        Some(outcome.check_tree(&passive, "the installed tree", installed.tree_digest));
    outcome.record_image(&active, ACTIVE_LABEL)?;
    outcome.record_image(&passive, PASSIVE_LABEL)?;
    Ok(())
}

/// After a refusal: the images must be as they were, with no
/// transition.img.
fn check_refusal(
    state: &CosState,
    before: Option<&Before>,
    outcome: &mut UpgradeOutcome,
) -> anyhow::Result<()> {
    let before = before.expect("strategies that refuse fingerprint first");
    let active = state.image_path("active.img");
    let passive = state.image_path("passive.img");
    let transition = state.image_path("transition.img");
    if transition.exists() {
        outcome
            .problems
            .push("refused, but transition.img was left on COS_STATE".to_owned());
    }
    let mut unchanged = true;
    for (path, was, label) in [
        (&active, Some(before.active), ACTIVE_LABEL),
        (&passive, before.passive, PASSIVE_LABEL),
    ] {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let now = path.exists().then(|| content_digest(path)).transpose()?;
        if now != was {
            unchanged = false;
            outcome.problems.push(match (was, now) {
                (Some(_), None) => format!("refused, but {name} is gone"),
                (None, Some(_)) => format!("refused, but {name} appeared"),
                _ => format!("refused, but {name} changed"),
            });
        }
        if now.is_some() {
            outcome.record_image(path, label)?;
        }
    }
    outcome.images_unchanged = Some(unchanged);
    Ok(())
}

/// The verdict from what [`run_upgrade`] measured.
pub fn judge_upgrade(outcome: &UpgradeOutcome) -> UpgradeVerdict {
    if !outcome.problems.is_empty() {
        return UpgradeVerdict::Corrupted;
    }
    if outcome.refusal.is_some() {
        return match outcome.images_unchanged {
            Some(true) => UpgradeVerdict::Refused,
            _ => UpgradeVerdict::Corrupted,
        };
    }
    let clean = |facts: &Option<ImageFacts>| facts.as_ref().is_some_and(|f| f.fsck_clean);
    if outcome.new_tree_intact == Some(true)
        && outcome.old_tree_intact == Some(true)
        && clean(&outcome.active)
        && clean(&outcome.passive)
    {
        UpgradeVerdict::Upgraded
    } else {
        UpgradeVerdict::Corrupted
    }
}

/// Runs `body` as a step, recording COS_STATE's free space around it.
/// `body` gets the free space before and returns its value and what came
/// of it in a few words.
fn step<T>(
    state: &CosState,
    outcome: &mut UpgradeOutcome,
    name: &str,
    body: impl FnOnce(u64) -> anyhow::Result<(T, String)>,
) -> anyhow::Result<T> {
    let free_before = state.free_bytes()?;
    let (value, said) =
        body(free_before).with_context(|| format!("upgrade step {name:?} failed"))?;
    let free_after = state.free_bytes()?;
    outcome.steps.push(Step {
        name: name.to_owned(),
        free_before,
        free_after,
        outcome: said,
    });
    Ok(value)
}

fn first_line(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// An error's chain on one line, cut to its first line.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or("").to_owned()
}
