//! What a guest needs from the host: the kernel (a Debian package fetched
//! with `apt-get download` and unpacked with `dpkg-deb -x`, never
//! installed) and the binaries it runs, built here with cargo.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// An unpacked kernel package.
#[derive(Debug)]
pub struct Kernel {
    /// The .deb it came from.
    pub package: PathBuf,
    /// Its package name (`linux-image-6.1.0-56-amd64`).
    pub package_name: String,
    /// The release (`6.1.0-56-amd64`), as `uname -r` will say.
    pub release: String,
    /// `boot/vmlinuz-RELEASE`.
    pub vmlinuz: PathBuf,
    /// `lib/modules/RELEASE`.
    pub modules_dir: PathBuf,
}

/// Finds (in `target/matrix/debs`, then `extra`) or downloads the newest
/// `linux-image-VERSION*-amd64` package and unpacks it under
/// `target/matrix/kernels/`.
pub fn fetch(version: &str, work: &Path, extra: Option<&Path>) -> anyhow::Result<Kernel> {
    let debs = work.join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    let mut deb = find_deb(&debs, version)?;
    if deb.is_none() {
        if let Some(extra) = extra {
            if let Some(found) = find_deb(extra, version)? {
                let copy = debs.join(found.file_name().expect("a file name"));
                std::fs::copy(&found, &copy).with_context(|| {
                    format!("cannot copy {} to {}", found.display(), copy.display())
                })?;
                deb = Some(copy);
            }
        }
    }
    let deb = match deb {
        Some(deb) => deb,
        None => download(version, &debs)?,
    };
    let file = deb.file_name().expect("a file name").to_string_lossy();
    let package_name = file.split('_').next().unwrap_or(&file).to_owned();
    let unpacked = work.join("kernels").join(&package_name).join("root");
    if !unpacked.join("boot").is_dir() {
        std::fs::create_dir_all(&unpacked)
            .with_context(|| format!("cannot create {}", unpacked.display()))?;
        let status = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked)
            .status()
            .context("cannot run dpkg-deb")?;
        if !status.success() {
            bail!("{}: dpkg-deb -x failed ({status})", deb.display());
        }
    }
    let vmlinuz = std::fs::read_dir(unpacked.join("boot"))
        .with_context(|| format!("cannot list {}/boot", unpacked.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .with_context(|| format!("{}: no boot/vmlinuz-*", deb.display()))?;
    let release = vmlinuz
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_owned();
    let modules_dir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|dir| unpacked.join(dir).join(&release))
        .find(|dir| dir.is_dir())
        .with_context(|| format!("{}: no lib/modules/{release}", deb.display()))?;
    Ok(Kernel {
        package: deb,
        package_name,
        release,
        vmlinuz,
        modules_dir,
    })
}

/// Whether a package name is the image of kernel `version`: `6.1` takes
/// `linux-image-6.1.0-56-amd64` but not `linux-image-6.12...`.
fn matches(name: &str, version: &str) -> bool {
    let Some(rest) = name.strip_prefix(&format!("linux-image-{version}")) else {
        return false;
    };
    (rest.starts_with('.') || rest.starts_with('-') || rest.starts_with('+'))
        && name.ends_with("-amd64")
        && !name.contains("-dbg")
        && !name.contains("-rt-")
        && !name.contains("-cloud-")
}

fn find_deb(dir: &Path, version: &str) -> anyhow::Result<Option<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let file = p.file_name().unwrap_or_default().to_string_lossy();
            file.ends_with(".deb") && matches(file.split('_').next().unwrap_or_default(), version)
        })
        .collect();
    found.sort_by_key(|p| natural(&p.to_string_lossy()));
    Ok(found.pop())
}

/// `apt-get download` of the newest matching image package into `debs`.
fn download(version: &str, debs: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new("apt-cache")
        .args(["search", "--names-only"])
        .arg(format!("^linux-image-{}[.-]", version.replace('.', "\\.")))
        .output()
        .context("cannot run apt-cache")?;
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| matches(n, version) && !n.ends_with("-unsigned"))
        .map(str::to_owned)
        .collect();
    names.sort_by_key(|name| natural(name));
    let Some(name) = names.pop() else {
        bail!(
            "no Debian package linux-image-{version}*-amd64 in the apt sources \
             (apt-cache search found none; add the suite that has it, or --debs DIR)"
        );
    };
    eprintln!("matrix: apt-get download {name}");
    let status = Command::new("apt-get")
        .args(["download", "-q"])
        .arg(&name)
        .current_dir(debs)
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!(
            "{}: apt-get download {name} failed ({status})",
            debs.display()
        );
    }
    find_deb(debs, version)?
        .with_context(|| format!("{}: apt-get download {name} left no .deb", debs.display()))
}

/// Sorts `6.1.0-9` before `6.1.0-56`: digit runs compare as numbers.
fn natural(name: &str) -> Vec<(u64, String)> {
    let mut parts = Vec::new();
    let mut digits = String::new();
    let mut text = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !text.is_empty() {
                parts.push((0, std::mem::take(&mut text)));
            }
            digits.push(c);
        } else {
            if !digits.is_empty() {
                parts.push((digits.parse().unwrap_or(0), String::new()));
                digits.clear();
            }
            text.push(c);
        }
    }
    if !digits.is_empty() {
        parts.push((digits.parse().unwrap_or(0), String::new()));
    }
    if !text.is_empty() {
        parts.push((0, text));
    }
    parts
}

/// The integration-test binaries of copy-engine and sparsecp (the
/// loop-device tests), built with `cargo test --no-run`: (package,
/// binary, package directory).
pub fn test_binaries(root: &Path) -> anyhow::Result<Vec<(String, PathBuf, PathBuf)>> {
    let messages = cargo_json(
        root,
        &[
            "test",
            "--no-run",
            "-p",
            "copy-engine",
            "-p",
            "sparsecp",
            "--message-format=json",
        ],
    )?;
    let mut found = Vec::new();
    for m in messages {
        let is_integration = m["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "test"));
        let (Some(exe), Some(manifest)) = (m["executable"].as_str(), m["manifest_path"].as_str())
        else {
            continue;
        };
        if !is_integration {
            continue;
        }
        let dir = Path::new(manifest)
            .parent()
            .expect("a crate dir")
            .to_owned();
        let package = dir
            .file_name()
            .expect("a crate dir name")
            .to_string_lossy()
            .into_owned();
        found.push((package, PathBuf::from(exe), dir));
    }
    found.sort();
    if found.is_empty() {
        bail!("cargo test --no-run built no integration tests of copy-engine or sparsecp");
    }
    Ok(found)
}

/// `sparsecp-gate`, built with `cargo build`.
pub fn gate_binary(root: &Path) -> anyhow::Result<PathBuf> {
    let messages = cargo_json(
        root,
        &[
            "build",
            "-p",
            "harness",
            "--bin",
            "sparsecp-gate",
            "--message-format=json",
        ],
    )?;
    messages
        .iter()
        .filter_map(|m| m["executable"].as_str())
        .find(|exe| exe.ends_with("/sparsecp-gate"))
        .map(PathBuf::from)
        .context("cargo build -p harness --bin sparsecp-gate built no sparsecp-gate")
}

fn cargo_json(root: &Path, args: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !out.status.success() {
        bail!("cargo {} failed ({})", args.join(" "), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_prefix_picks_its_kernel_and_not_a_longer_one() {
        assert!(matches("linux-image-6.1.0-56-amd64", "6.1"));
        assert!(!matches("linux-image-6.12.100+deb12-amd64", "6.1"));
        assert!(matches("linux-image-6.12.100+deb12-amd64", "6.12"));
        assert!(matches("linux-image-6.12.100+deb12-amd64", "6.12.100"));
        assert!(!matches("linux-image-6.1.0-56-amd64-dbg", "6.1"));
        assert!(!matches("linux-image-6.1.0-56-rt-amd64", "6.1"));
    }

    #[test]
    fn abi_numbers_sort_as_numbers() {
        let mut names = ["linux-image-6.1.0-56-amd64", "linux-image-6.1.0-9-amd64"];
        names.sort_by_key(|name| natural(name));
        assert_eq!(names[1], "linux-image-6.1.0-56-amd64");
    }
}
