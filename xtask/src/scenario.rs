//! `cargo xtask scenario`: `sparsecp-gate scenario` from the checkout (see
//! [`harness::cli`]).

/// Runs `cargo xtask scenario`.
pub fn run(args: harness::cli::ScenarioCmdArgs) -> anyhow::Result<()> {
    let reports = crate::test::workspace_root().join("target/scenario");
    harness::cli::scenario(&args, &reports)
}
