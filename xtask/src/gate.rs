//! `cargo xtask gate`: `sparsecp-gate gate` from the checkout (see
//! [`harness::cli`]); exits 1 when the gate fails.

/// Runs `cargo xtask gate`.
pub fn run(args: harness::cli::GateArgs) -> anyhow::Result<()> {
    let reports = crate::test::workspace_root().join("target/gate");
    if !harness::cli::gate(&args, &reports)? {
        std::process::exit(1);
    }
    Ok(())
}
