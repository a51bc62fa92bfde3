//! `cargo xtask bench`: builds the bench runner in release mode and
//! sparsecp as it ships (the `dist` profile: stripped, fat LTO, which is
//! what the binary-size target and every timing should see), and hands
//! every argument to `sparsecp-bench` (crates/bench), which times sparsecp
//! against GNU cp and the other tools on the testbed.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// Arguments passed through to `sparsecp-bench` (`--runs N`, `--quick`,
/// `--case NAME`, `--out DIR`; see `cargo xtask bench -- --help`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Everything after `bench`, for sparsecp-bench.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Builds both binaries optimised, then runs the benchmarks.
pub fn run(args: Args) -> Result<()> {
    let root = crate::test::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // sparsecp as shipped: the dist profile, linked as `cargo xtask dist`
    // links it.
    let statically = crate::dist::static_build_args()?;
    for (profile, package, extra) in [
        ("release", "bench", &[][..]),
        ("dist", "sparsecp", &statically[..]),
    ] {
        let built = Command::new(&cargo)
            .current_dir(&root)
            .args(["build", "--profile", profile, "-p", package])
            .args(extra)
            .status()
            .context("cannot run cargo build")?;
        if !built.success() {
            bail!("cargo build --profile {profile} -p {package} failed");
        }
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let runner = target.join("release").join("sparsecp-bench");
    let mut command = Command::new(&runner);
    command.current_dir(&root).args(&args.args);
    if !args.args.iter().any(|a| a.starts_with("--sparsecp")) {
        command
            .arg("--sparsecp")
            .arg(crate::dist::built_binary(&target, "sparsecp")?);
    }
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", runner.display()))?;
    if !status.success() {
        bail!("sparsecp-bench failed ({status})");
    }
    Ok(())
}
