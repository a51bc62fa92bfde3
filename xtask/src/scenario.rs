//! `cargo xtask scenario`: replay an installer scenario with copiers (and
//! upgrade strategies), print the tables, write the report folder. Also
//! home of [`ScenarioArgs`], the arguments `scenario` and `gate` share.

use std::path::PathBuf;

use anyhow::bail;
use harness::{
    report, table, Copier, RunOptions, Scenario, Strategy, DEFAULT_SCENARIO, DEFAULT_TOLERANCE,
};
use testbed::FsKind;

/// What to run and how: the arguments `scenario` and `gate` share.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// Scenario name: a file stem in fixtures/scenarios/.
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    pub scenario: String,
    /// Multiply every size by this factor (0 < F <= 1) for a quick run.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Filesystem of COS_STATE (the images stay ext2).
    #[arg(long, value_parser = parse_state_fs)]
    pub fs: Option<FsKind>,
    /// Most passive.img may allocate, relative to active.img.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
    pub tolerance: f64,
    /// Upgrade strategy for upgrade scenarios: elemental, dig-passive,
    /// preflight or drop-passive (repeatable; see the default per command).
    #[arg(long = "upgrade", value_name = "NAME")]
    pub upgrades: Vec<String>,
    /// A preflight command run with `sh -c` before transition.img is built,
    /// with COS_STATE_DIR, UPGRADE_BYTES_NEEDED, COS_STATE_BYTES_FREE,
    /// TRANSITION_IMG, ACTIVE_IMG and PASSIVE_IMG in its environment; a
    /// non-zero exit refuses the upgrade (the strategy `external`).
    #[arg(long, value_name = "CMD")]
    pub upgrade_preflight: Option<String>,
    /// Where to write the report (default: target/<command>/<scenario>-<fs>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl ScenarioArgs {
    /// Loads, scales and re-filesystems the scenario; fails if it cannot
    /// run here.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        let mut scenario = Scenario::load(&self.scenario)?;
        if let Some(fs) = self.fs {
            scenario = scenario.with_state_fs(fs)?;
        }
        if self.scale != 1.0 {
            scenario = scenario.scaled(self.scale)?;
        }
        if let Some(reason) = harness::skip_reason(scenario.state.fs) {
            bail!("cannot run scenarios here: {reason}");
        }
        Ok(scenario)
    }

    /// The tolerance and strategies; `default` are the strategies when
    /// neither --upgrade nor --upgrade-preflight is given.
    pub fn options(&self, default: Vec<Strategy>) -> anyhow::Result<RunOptions> {
        if self.tolerance.is_nan() || self.tolerance < 1.0 {
            bail!("--tolerance must be at least 1.0, got {}", self.tolerance);
        }
        let mut strategies = self
            .upgrades
            .iter()
            .map(|name| Strategy::builtin(name))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(command) = &self.upgrade_preflight {
            strategies.push(Strategy::External {
                command: command.clone(),
            });
        }
        if strategies.is_empty() {
            strategies = default;
        }
        Ok(RunOptions {
            tolerance: self.tolerance,
            strategies,
        })
    }
}

/// Arguments of `cargo xtask scenario`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: ScenarioArgs,
    /// A builtin copier to run, or a command with {src} and {dst}
    /// (repeatable; default: every builtin).
    #[arg(long = "copier", value_name = "NAME")]
    copiers: Vec<String>,
    /// An extra copier: a command line with {src} and {dst} (repeatable).
    #[arg(long = "external", value_name = "CMD")]
    externals: Vec<String>,
}

/// Parses `ext4`, `xfs` or `btrfs`.
pub fn parse_state_fs(s: &str) -> Result<FsKind, String> {
    match s.parse::<FsKind>() {
        Ok(FsKind::Ext2) | Err(_) => Err(format!("{s:?}: expected ext4, xfs or btrfs")),
        Ok(kind) => Ok(kind),
    }
}

/// Runs `cargo xtask scenario`: every builtin strategy unless told.
pub fn run(args: Args) -> anyhow::Result<()> {
    let scenario = args.common.scenario()?;
    let options = args.common.options(Strategy::builtins())?;
    let mut copiers = if args.copiers.is_empty() {
        Copier::builtins()
    } else {
        args.copiers
            .iter()
            .map(|name| Copier::from_name_or_command(name))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    for (i, template) in args.externals.iter().enumerate() {
        let name = match i {
            0 => "external".to_owned(),
            _ => format!("external-{}", i + 1),
        };
        copiers.push(Copier::external(name, template)?);
    }
    let started = std::time::Instant::now();
    let report = harness::run_scenario(&scenario, &copiers, &options, &mut |line| {
        eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64())
    })?;
    println!("{}", table::render_text(&report, table::FreeSpace::Figures));
    for run in report.runs.iter().filter(|r| !r.passed()) {
        println!("{} fails the gate:\n{}", run.copier, table::failures(run));
    }
    let dir = args
        .common
        .out
        .unwrap_or_else(|| report::default_dir("scenario", &report));
    let path = report::write_report(&report, &dir)?;
    let path = path.canonicalize().unwrap_or(path);
    println!(
        "took {:.0} s; report: {} (open {} in a browser for the maps)",
        started.elapsed().as_secs_f64(),
        path.display(),
        path.with_extension("html").display()
    );
    Ok(())
}
