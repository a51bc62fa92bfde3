//! `cargo xtask dist`: the release artefacts, in `target/dist/`.
//!
//! 1. the binaries in [`BINARIES`], built with `--profile dist` (stripped,
//!    LTO, see the root `Cargo.toml`) and linked statically
//!    ([`static_build_args`]) in `target/dist-build/` (cargo would put a
//!    profile called `dist` in `target/dist/`, mixing its `deps/` with the
//!    artefacts), each checked against its size limit;
//! 2. man pages (`man/*.1`, clap_mangen) and shell completions
//!    (`completions/`, clap_complete: bash, zsh, fish), generated from
//!    `sparsecp::command()`, the clap definition the binary parses with;
//! 3. `sparsecp-VERSION-ARCH-linux.tar.gz`: binaries, man pages,
//!    completions, README;
//! 4. a `.deb` (cargo-deb) and an `.rpm` (cargo-generate-rpm), from the
//!    metadata in `crates/sparsecp/Cargo.toml`; the tools are taken from
//!    PATH, else from `target/tools/bin`, else installed there with
//!    `cargo install --locked`;
//! 5. `SHA256SUMS` over the binaries and packages.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap_complete::Shell as CompletionShell;
use xshell::{cmd, Shell};

use crate::test::workspace_root;

/// A binary to ship.
struct Binary {
    /// The cargo package that builds it.
    package: &'static str,
    /// The binary's name.
    name: &'static str,
    /// The largest it may be, in bytes.
    max_bytes: u64,
    /// Its clap definition, for man pages and completions.
    command: fn() -> clap::Command,
}

/// What gets shipped; another binary is one more line.
const BINARIES: &[Binary] = &[
    Binary {
        package: "sparsecp",
        name: "sparsecp",
        max_bytes: 3 * 1024 * 1024,
        command: sparsecp::command,
    },
    // The gate is a CI tool (it needs root, loop devices and e2fsprogs):
    // it ships in the tarball, not in the .deb/.rpm of sparsecp.
    Binary {
        package: "harness",
        name: "sparsecp-gate",
        max_bytes: 12 * 1024 * 1024,
        command: harness::cli::command,
    },
];

/// The shells we generate completions for.
const SHELLS: [CompletionShell; 3] = [
    CompletionShell::Bash,
    CompletionShell::Zsh,
    CompletionShell::Fish,
];

/// Arguments of `cargo xtask dist`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the binaries, man pages, completions and the tarball (no .deb,
    /// .rpm: no packaging tools needed).
    #[arg(long)]
    no_packages: bool,
}

/// Runs `cargo xtask dist`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let root = workspace_root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    let dist = root.join("target/dist");
    let build = root.join("target/dist-build");
    if dist.exists() {
        fs::remove_dir_all(&dist).with_context(|| format!("cannot remove {}", dist.display()))?;
    }
    create_dir(&dist)?;

    let mut shipped = build_binaries(&sh, &build, &dist)?;
    let man = dist.join("man");
    let pages = write_man_pages(&man)?;
    let completions = dist.join("completions");
    write_completions(&completions)?;
    eprintln!(
        "dist: {} man page(s) in {}, completions in {}",
        pages.len(),
        man.display(),
        completions.display()
    );
    shipped.push(write_tarball(&sh, &root, &build, &dist)?);
    if args.no_packages {
        eprintln!("dist: --no-packages: no .deb, no .rpm");
    } else {
        shipped.push(build_deb(&sh, &root, &dist)?);
        shipped.push(build_rpm(&sh, &root, &dist)?);
    }
    write_checksums(&sh, &dist, &shipped)?;
    for path in &shipped {
        eprintln!(
            "dist: {} ({})",
            path.display(),
            human_size(file_size(path)?)
        );
    }
    Ok(())
}

/// The `cargo build` arguments of a shipped binary beyond its profile:
/// glibc linked statically (`+crt-static`, for the host's target, named so
/// that build scripts and proc macros stay dynamic). A dynamic sparsecp
/// spent ~0.2 ms of a 1.5 ms small copy loading libgcc_s, libm and libc:
/// relocations, and libgcc_s's constructor running CPUID, which traps to
/// the hypervisor in a VM (6% of the process's samples). Static, a 1 TiB
/// sparse copy took 1.23-1.27 ms against 1.47-1.51 dynamic and cp's
/// 1.27-1.34 (perf stat, 80 runs each). Nothing in the binaries looks up
/// users or hosts, which a static glibc could not do.
pub(crate) fn static_build_args() -> anyhow::Result<Vec<String>> {
    let host = host_triple()?;
    Ok(vec![
        "--target".into(),
        host.clone(),
        "--config".into(),
        format!("target.{host}.rustflags=[\"-C\", \"target-feature=+crt-static\"]"),
    ])
}

/// Where `cargo build --profile dist` with [`static_build_args`] puts the
/// binary `name` under the target directory `target`.
pub(crate) fn built_binary(target: &Path, name: &str) -> anyhow::Result<PathBuf> {
    Ok(target.join(host_triple()?).join("dist").join(name))
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("cannot run {rustc} -vV"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// Builds [`BINARIES`] with the dist profile, copies them to `dist` and
/// checks their sizes.
fn build_binaries(sh: &Shell, build: &Path, dist: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut selection = Vec::new();
    for b in BINARIES {
        selection.extend(["--package", b.package, "--bin", b.name].map(String::from));
    }
    let statically = static_build_args()?;
    cmd!(
        sh,
        "cargo build --locked --profile dist --target-dir {build} {statically...} {selection...}"
    )
    .run()
    .context("cargo build --profile dist failed")?;
    let mut out = Vec::new();
    for b in BINARIES {
        let built = built_binary(build, b.name)?;
        let shipped = dist.join(b.name);
        fs::copy(&built, &shipped)
            .with_context(|| format!("cannot copy {} to {}", built.display(), shipped.display()))?;
        let size = file_size(&shipped)?;
        if size > b.max_bytes {
            bail!(
                "{} is {} bytes, over its limit of {}",
                shipped.display(),
                size,
                b.max_bytes
            );
        }
        eprintln!(
            "dist: {} {} (limit {})",
            b.name,
            human_size(size),
            human_size(b.max_bytes)
        );
        out.push(shipped);
    }
    Ok(out)
}

/// Writes each binary's man pages (`sparsecp.1`, one per subcommand such
/// as `sparsecp-copy.1`, the same for `sparsecp-gate`) into `dir`; returns
/// their paths, sorted.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    create_dir(dir)?;
    for b in BINARIES {
        clap_mangen::generate_to((b.command)(), dir)
            .with_context(|| format!("cannot write man pages to {}", dir.display()))?;
    }
    read_dir(dir)
}

/// Writes bash, zsh and fish completions for each binary into `dir`
/// (`sparsecp.bash`, `_sparsecp`, `sparsecp.fish`, ...); returns their
/// paths.
pub fn write_completions(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    create_dir(dir)?;
    let mut written = Vec::new();
    for b in BINARIES {
        let mut command = (b.command)();
        let name = command.get_name().to_owned();
        for shell in SHELLS {
            written.push(
                clap_complete::generate_to(shell, &mut command, &name, dir).with_context(|| {
                    format!("cannot write {shell} completions to {}", dir.display())
                })?,
            );
        }
    }
    Ok(written)
}

/// Packs binaries, man pages, completions and the README into
/// `sparsecp-VERSION-ARCH-linux.tar.gz`, with fixed owners and order.
fn write_tarball(sh: &Shell, root: &Path, build: &Path, dist: &Path) -> anyhow::Result<PathBuf> {
    let name = format!(
        "sparsecp-{}-{}-linux",
        sparsecp_version(),
        std::env::consts::ARCH
    );
    let stage = build.join("stage");
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("cannot remove {}", stage.display()))?;
    }
    let top = stage.join(&name);
    for b in BINARIES {
        copy_into(&dist.join(b.name), &top.join("bin"))?;
    }
    for entry in read_dir(&dist.join("man"))? {
        copy_into(&entry, &top.join("man/man1"))?;
    }
    for entry in read_dir(&dist.join("completions"))? {
        copy_into(&entry, &top.join("completions"))?;
    }
    copy_into(&root.join("README.md"), &top)?;
    let tarball = dist.join(format!("{name}.tar.gz"));
    cmd!(
        sh,
        "tar --sort=name --owner=0 --group=0 --numeric-owner -C {stage} -czf {tarball} {name}"
    )
    .run()
    .context("tar failed")?;
    Ok(tarball)
}

/// `cargo deb` with the assets of `[package.metadata.deb]`, which point
/// into `target/dist/` (hence `--no-build`: the binary is already there).
fn build_deb(sh: &Shell, root: &Path, dist: &Path) -> anyhow::Result<PathBuf> {
    let path = tools_path(sh, root, "cargo-deb")?;
    let before = read_dir(dist)?;
    cmd!(
        sh,
        "cargo deb --locked --package sparsecp --no-build --no-strip --output {dist}"
    )
    .env("PATH", path)
    .run()
    .context("cargo deb failed")?;
    new_file(dist, &before, "deb")
}

/// `cargo generate-rpm` with the assets of `[package.metadata.generate-rpm]`.
fn build_rpm(sh: &Shell, root: &Path, dist: &Path) -> anyhow::Result<PathBuf> {
    let path = tools_path(sh, root, "cargo-generate-rpm")?;
    let before = read_dir(dist)?;
    cmd!(
        sh,
        "cargo generate-rpm --package crates/sparsecp --output {dist}"
    )
    .env("PATH", path)
    .run()
    .context("cargo generate-rpm failed")?;
    new_file(dist, &before, "rpm")
}

/// `PATH` with `target/tools/bin` first, after installing `tool` there
/// with `cargo install --locked` if it is neither on PATH nor there.
fn tools_path(sh: &Shell, root: &Path, tool: &str) -> anyhow::Result<std::ffi::OsString> {
    let tools = root.join("target/tools");
    let bin = tools.join("bin");
    if testbed::find_tool(tool).is_none() && !bin.join(tool).is_file() {
        eprintln!(
            "dist: {tool} is missing; installing it into {}",
            tools.display()
        );
        cmd!(sh, "cargo install --locked --root {tools} {tool}")
            .run()
            .with_context(|| format!("cannot install {tool}"))?;
    }
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).context("cannot build PATH for the packaging tools")
}

/// `SHA256SUMS` in `dist`, one line per shipped file, by file name.
fn write_checksums(sh: &Shell, dist: &Path, shipped: &[PathBuf]) -> anyhow::Result<()> {
    let names: Vec<String> = shipped
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let _in_dist = sh.push_dir(dist);
    let sums = cmd!(sh, "sha256sum -- {names...}")
        .read()
        .context("sha256sum failed")?;
    let path = dist.join("SHA256SUMS");
    fs::write(&path, sums + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// The file with `extension` that appeared in `dir` since `before`.
fn new_file(dir: &Path, before: &[PathBuf], extension: &str) -> anyhow::Result<PathBuf> {
    let mut made: Vec<PathBuf> = read_dir(dir)?
        .into_iter()
        .filter(|p| !before.contains(p) && p.extension().is_some_and(|e| e == extension))
        .collect();
    match made.len() {
        1 => Ok(made.remove(0)),
        n => bail!(
            "expected one new .{extension} in {}, found {n}",
            dir.display()
        ),
    }
}

fn sparsecp_version() -> String {
    sparsecp::command()
        .get_version()
        .expect("sparsecp's clap command has a version")
        .to_owned()
}

fn copy_into(file: &Path, dir: &Path) -> anyhow::Result<()> {
    create_dir(dir)?;
    let name = file
        .file_name()
        .with_context(|| format!("{} has no file name", file.display()))?;
    fs::copy(file, dir.join(name))
        .with_context(|| format!("cannot copy {} to {}", file.display(), dir.display()))?;
    Ok(())
}

fn read_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
        })
        .with_context(|| format!("cannot list {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

fn file_size(path: &Path) -> anyhow::Result<u64> {
    Ok(fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len())
}

fn human_size(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The man pages cover every subcommand and option of the clap
    /// definition, and the completions know the subcommands: no root, no
    /// build of the binary needed.
    #[test]
    fn man_pages_and_completions_come_from_the_clap_definition() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_man_pages(&dir.path().join("man")).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "sparsecp-copy.1",
                "sparsecp-dig.1",
                "sparsecp-gate-gate.1",
                "sparsecp-gate-list.1",
                "sparsecp-gate-scenario.1",
                "sparsecp-gate.1",
                "sparsecp-inspect.1",
                "sparsecp-verify.1",
                "sparsecp.1",
            ]
        );
        let gate = fs::read_to_string(&pages[2]).unwrap();
        for option in ["copier", "upgrade", "upgrade\\-preflight", "scenario"] {
            assert!(
                gate.contains(&format!("\\-\\-{option}")),
                "--{option} missing"
            );
        }
        let copy = fs::read_to_string(&pages[0]).unwrap();
        assert!(copy.starts_with(".ie"), "{copy}");
        for option in ["sparse", "reflink", "fsync", "verify", "no\\-space\\-check"] {
            assert!(
                copy.contains(&format!("\\-\\-{option}")),
                "--{option} missing"
            );
        }
        let completions = write_completions(&dir.path().join("completions")).unwrap();
        assert_eq!(completions.len(), 6);
        for file in &completions[..3] {
            let text = fs::read_to_string(file).unwrap();
            for word in [
                "copy",
                "inspect",
                "dig",
                "verify",
                "reflink",
                "no-space-check",
            ] {
                assert!(text.contains(word), "{}: no {word}", file.display());
            }
        }
    }
}
