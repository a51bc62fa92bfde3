//! Scenarios as data: what COS_STATE looks like, what the installer writes
//! into `active.img`, and what an upgrade writes into `transition.img`.
//!
//! Each scenario is a TOML file in `fixtures/scenarios/`, so a reviewer can
//! read the sizes next to the comments that justify them; they are compiled
//! in ([`BUILTIN`]), so the gate runs from any directory, and a scenario of
//! one's own loads from its file. [`Scenario::scaled`]
//! shrinks every size by one factor for quick runs, keeping each filesystem
//! above the smallest size its `mkfs` accepts.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use testbed::{FsKind, TreeSpec, MIB};

/// The scenario `cargo xtask scenario` runs when none is named.
pub const DEFAULT_SCENARIO: &str = "harvester-install";

/// The scenarios that ship, `(name, TOML text)`, from `fixtures/scenarios/`
/// (a test checks that none is missing).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "harvester-install",
        include_str!("../../../fixtures/scenarios/harvester-install.toml"),
    ),
    (
        "harvester-install-8g",
        include_str!("../../../fixtures/scenarios/harvester-install-8g.toml"),
    ),
    (
        "harvester-upgrade-8g",
        include_str!("../../../fixtures/scenarios/harvester-upgrade-8g.toml"),
    ),
    (
        "harvester-upgrade-v18-8g",
        include_str!("../../../fixtures/scenarios/harvester-upgrade-v18-8g.toml"),
    ),
];

/// One installer run to replay: the partition, the install, and optionally
/// an upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The file stem, like `harvester-install`.
    pub name: String,
    /// One sentence on what the scenario reproduces.
    pub description: String,
    /// The COS_STATE partition the images live on.
    pub state: StateSpec,
    /// The `active.img` the installer builds.
    pub install: ImageSpec,
    /// The `transition.img` an upgrade builds, if the scenario upgrades.
    #[serde(default)]
    pub upgrade: Option<ImageSpec>,
    /// The factor every size was multiplied by (1.0 as loaded).
    #[serde(default = "full_scale")]
    pub scale: f64,
}

fn full_scale() -> f64 {
    1.0
}

/// The COS_STATE partition: a filesystem on a loop device over a sparse file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// Partition size in MiB.
    pub size_mib: u64,
    /// Its filesystem (ext4 in Elemental; `--fs` replaces it).
    pub fs: FsKind,
    /// Its label.
    pub label: String,
    /// Its UUID, fixed so that runs are reproducible.
    pub uuid: String,
}

/// An OS image file the installer builds: truncated to `size_mib`, made
/// ext2, and filled with a generated OS tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Logical size of the image file in MiB.
    pub size_mib: u64,
    /// Bytes of regular files in the OS tree written into it.
    pub tree_bytes: u64,
    /// Seed of the generated tree (a new OS differs from the old one).
    pub tree_seed: u64,
    /// The ext2 UUID given to `mkfs.ext2`.
    pub uuid: String,
    /// Percent of the tree's bytes that are runs of zero blocks inside its
    /// files, written out as data (rsync without `--sparse` writes them):
    /// what a sparse copy or `fallocate --dig-holes` can give back.
    #[serde(default = "default_zero_run_percent")]
    pub zero_run_percent: u8,
}

/// [`TreeSpec::os_like`]'s share of zero runs, in percent.
fn default_zero_run_percent() -> u8 {
    5
}

impl ImageSpec {
    /// Logical size of the image in bytes.
    pub fn size(&self) -> u64 {
        self.size_mib * MIB
    }

    /// The OS tree to write into the image.
    pub fn tree(&self) -> TreeSpec {
        TreeSpec {
            seed: self.tree_seed,
            zero_run_share: f64::from(self.zero_run_percent) / 100.0,
            ..TreeSpec::os_like(self.tree_bytes)
        }
    }
}

impl StateSpec {
    /// Partition size in bytes.
    pub fn size(&self) -> u64 {
        self.size_mib * MIB
    }
}

impl Scenario {
    /// The directory holding the scenario files in the source tree.
    pub fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scenarios")
    }

    /// A builtin scenario by name, or a scenario file by path (anything
    /// ending in `.toml`).
    pub fn load(name: &str) -> anyhow::Result<Scenario> {
        if name.ends_with(".toml") {
            return Scenario::from_file(Path::new(name));
        }
        let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
            bail!(
                "no scenario {name:?}; builtins: {} (or give the path of a .toml file)",
                Scenario::names()?.join(", ")
            );
        };
        Scenario::parse(text, name).with_context(|| format!("builtin scenario {name:?}"))
    }

    /// Parses and checks one scenario file.
    pub fn from_file(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        Scenario::parse(&text, stem).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and checks a scenario whose name must be `stem`.
    fn parse(text: &str, stem: &str) -> anyhow::Result<Scenario> {
        let scenario: Scenario = toml::from_str(text).context("cannot parse the scenario")?;
        if scenario.name != stem {
            bail!(
                "the scenario names itself {:?}; the name must match the file ({stem:?})",
                scenario.name
            );
        }
        scenario.check().context("not a valid scenario")?;
        Ok(scenario)
    }

    /// The names of the builtin scenarios, sorted.
    pub fn names() -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| (*n).to_owned()).collect();
        names.sort();
        Ok(names)
    }

    /// The same scenario with every size multiplied by `factor` (rounded to
    /// whole MiB, never below the smallest valid filesystem).
    pub fn scaled(&self, factor: f64) -> anyhow::Result<Scenario> {
        if !(factor > 0.0 && factor <= 1.0) {
            bail!("scale must be in (0, 1], got {factor}");
        }
        let mut scaled = self.clone();
        scaled.scale = self.scale * factor;
        let mib = |m: u64, min: u64| ((m as f64 * factor).round() as u64).max(min / MIB);
        scaled.state.size_mib = mib(self.state.size_mib, scaled.state.fs.min_size());
        for image in std::iter::once(&mut scaled.install).chain(scaled.upgrade.as_mut()) {
            image.size_mib = mib(image.size_mib, FsKind::Ext2.min_size());
            image.tree_bytes = mib(image.tree_bytes.div_ceil(MIB), MIB) * MIB;
        }
        scaled.check()?;
        Ok(scaled)
    }

    /// The same scenario with COS_STATE made of `fs` instead.
    ///
    /// The partition UUID changes with the filesystem (its fourth group
    /// becomes `8001`, `8002`, ...): `mkfs.btrfs` refuses a UUID that any
    /// other device shows, and XFS will not mount a duplicate, so the same
    /// scenario must be able to run on two filesystems at once.
    pub fn with_state_fs(&self, fs: FsKind) -> anyhow::Result<Scenario> {
        let mut changed = self.clone();
        if fs != self.state.fs {
            let variant = FsKind::all().iter().position(|k| *k == fs).unwrap_or(0);
            changed.state.uuid = uuid_variant(&self.state.uuid, variant as u16 + 1)?;
        }
        changed.state.fs = fs;
        changed.state.size_mib = changed.state.size_mib.max(fs.min_size() / MIB);
        changed.check()?;
        Ok(changed)
    }

    /// A short tag for report folders: `<name>-<fs>`.
    pub fn tag(&self) -> String {
        format!("{}-{}", self.name, self.state.fs)
    }

    /// Rejects sizes no filesystem could hold.
    fn check(&self) -> anyhow::Result<()> {
        if self.state.fs == FsKind::Ext2 {
            bail!("COS_STATE must be ext4, xfs or btrfs");
        }
        if self.state.size() < self.state.fs.min_size() {
            bail!("COS_STATE of {} MiB is too small", self.state.size_mib);
        }
        for (what, image) in std::iter::once(("install", &self.install))
            .chain(self.upgrade.as_ref().map(|u| ("upgrade", u)))
        {
            if image.size() < FsKind::Ext2.min_size() {
                bail!("{what} image of {} MiB is too small", image.size_mib);
            }
            if image.zero_run_percent > 90 {
                bail!("{what} zero_run_percent must be at most 90");
            }
            if image.tree_bytes >= image.size() {
                bail!(
                    "{what} tree of {} bytes cannot fit a {} MiB image",
                    image.tree_bytes,
                    image.size_mib
                );
            }
        }
        Ok(())
    }
}

/// `uuid` with its fourth group replaced by `8000 + n` (hex; the variant
/// bits stay RFC 4122).
fn uuid_variant(uuid: &str, n: u16) -> anyhow::Result<String> {
    let mut groups: Vec<String> = uuid.split('-').map(str::to_owned).collect();
    if groups.len() != 5 || groups[3].len() != 4 {
        bail!("{uuid:?} is not a UUID");
    }
    groups[3] = format!("{:04x}", 0x8000 + (n & 0x0fff));
    Ok(groups.join("-"))
}
