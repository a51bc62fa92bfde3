//! The peers measured beside the system's cp, rsync, dd and qemu-img: the
//! Rust copiers xcp and uutils cp (from crates.io) and bmaptool (Debian's
//! bmap-tools). When missing they are installed on first use into the
//! bench's own folder (`target/bench-tools`), never into the system, and
//! at pinned versions so that two reports measure the same programs. The
//! project's CI never runs the bench, so it never installs them.
//!
//! A peer that cannot be installed (no network, no cargo) is reported as
//! missing, with the reason, and its contenders are left out of the
//! tables, like any absent tool.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// xcp's version on crates.io, pinned.
const XCP: &str = "0.24.9";
/// uutils coreutils' version on crates.io, pinned; built with only `cp`.
const UUTILS: &str = "0.12.0";

/// Where the peers are, or why each is missing.
#[derive(Debug, Clone)]
pub struct Peers {
    /// The `xcp` binary.
    pub xcp: Result<PathBuf, String>,
    /// The uutils multi-call binary, run as `coreutils cp`.
    pub uutils: Result<PathBuf, String>,
    /// `bmaptool`.
    pub bmaptool: Result<PathBuf, String>,
}

impl Peers {
    /// Finds the peers in `dir` (or bmaptool on the system), installing
    /// what is missing into `dir`.
    pub fn install(dir: &Path) -> Peers {
        Peers {
            xcp: cargo_install(dir, "xcp", XCP, &[], "xcp").map_err(|e| format!("{e:#}")),
            uutils: cargo_install(
                dir,
                "coreutils",
                UUTILS,
                &["--no-default-features", "--features", "cp"],
                "coreutils",
            )
            .map_err(|e| format!("{e:#}")),
            bmaptool: bmaptool(dir).map_err(|e| format!("{e:#}")),
        }
    }

    /// The version line of each peer found, for the report's header.
    pub fn versions(&self) -> Vec<(&'static str, PathBuf)> {
        let mut found = Vec::new();
        for (name, path) in [
            ("xcp", &self.xcp),
            ("uutils coreutils", &self.uutils),
            ("bmaptool", &self.bmaptool),
        ] {
            if let Ok(path) = path {
                found.push((name, path.clone()));
            }
        }
        found
    }
}

/// The bench's own tool folder, beside its default report folder.
pub fn tools_dir() -> PathBuf {
    crate::default_out().with_file_name("bench-tools")
}

/// `dir/bin/BIN` after `cargo install --locked --root DIR CRATE@VERSION`
/// when it is not there yet at that version.
fn cargo_install(
    dir: &Path,
    krate: &str,
    version: &str,
    features: &[&str],
    bin: &str,
) -> anyhow::Result<PathBuf> {
    let path = dir.join("bin").join(bin);
    let stamp = dir.join(format!(".{krate}-{version}"));
    if path.is_file() && stamp.exists() {
        return Ok(path);
    }
    eprintln!(
        "setting up: installing {krate} {version} into {}",
        dir.display()
    );
    let status = Command::new("cargo")
        .args(["install", "--locked", "--quiet", "--root"])
        .arg(dir)
        .arg(format!("{krate}@{version}"))
        .args(features)
        .stdin(Stdio::null())
        .status()
        .context("cannot run cargo install")?;
    if !status.success() {
        bail!("cargo install {krate}@{version} failed ({status})");
    }
    std::fs::write(&stamp, b"").with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(path)
}

/// The system's `bmaptool`, else Debian's bmap-tools unpacked into
/// `dir/bmap-tools` (`apt-get download`, `dpkg-deb -x`: nothing is
/// installed into the system) behind a two-line launcher that points
/// Python at the unpacked package.
fn bmaptool(dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = testbed::find_tool("bmaptool") {
        return Ok(path);
    }
    let launcher = dir.join("bin/bmaptool");
    if launcher.is_file() {
        return Ok(launcher);
    }
    let unpacked = dir.join("bmap-tools");
    std::fs::create_dir_all(&unpacked)
        .with_context(|| format!("cannot create {}", unpacked.display()))?;
    eprintln!(
        "setting up: unpacking Debian's bmap-tools into {}",
        unpacked.display()
    );
    let fetched = Command::new("apt-get")
        .args(["download", "-q", "bmap-tools"])
        .current_dir(&unpacked)
        .stdin(Stdio::null())
        .status()
        .context("cannot run apt-get download")?;
    if !fetched.success() {
        bail!("apt-get download bmap-tools failed ({fetched})");
    }
    let deb = std::fs::read_dir(&unpacked)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    let root = unpacked.join("root");
    let unpacked_ok = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()
        .context("cannot run dpkg-deb")?;
    if !unpacked_ok.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    std::fs::create_dir_all(dir.join("bin"))?;
    let script = format!(
        "#!/bin/sh\nPYTHONPATH={}/usr/lib/python3/dist-packages exec python3 {}/usr/bin/bmaptool \"$@\"\n",
        root.display(),
        root.display()
    );
    std::fs::write(&launcher, script)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755))?;
    Ok(launcher)
}
