//! Finding and running external tools, and deciding when a test must skip.
//!
//! [`run_tool`] is the one way the workspace runs a command that must
//! succeed: it fails with the command line, the exit status and what the
//! command said, in one error.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context};

use crate::FsKind;

/// Directories searched after `$PATH`: a non-root `$PATH` often lacks the
/// sbin directories where `mkfs.*` live.
const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// Finds an executable by name in `$PATH`, then in the sbin directories.
///
/// A name containing `/` is returned as is if it exists.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_dirs)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why a test needing root and these tools cannot run here, or `None` if it
/// can. Reasons read like "needs root" or "needs mkfs.xfs (not installed)".
pub fn skip_reason(tools: &[&str]) -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root".to_owned());
    }
    tools
        .iter()
        .find(|tool| find_tool(tool).is_none())
        .map(|tool| format!("needs {tool} (not installed)"))
}

/// Prints `SKIP <test>: <reason>` to stderr.
///
/// It writes to the stderr handle rather than through `eprintln!`, which
/// the test harness captures and shows only for failing tests: a skipped
/// test passes, and must not pass silently.
pub fn report_skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {reason}");
}

/// The path of the function enclosing a `fn here() {}`, from the type
/// name of `here`: `crate::module::test_name`.
#[doc(hidden)]
pub fn __test_name(here: &str) -> String {
    let path = here.strip_suffix("::here").unwrap_or(here);
    path.replace("::{{closure}}", "")
}

/// Why a filesystem of this kind cannot be made, checked and mounted here,
/// or `None` if it can: root, its `mkfs` and `fsck` tools, `blkid`, and
/// kernel support.
pub fn fs_skip_reason(kind: FsKind) -> Option<String> {
    if let Some(reason) = skip_reason(&[kind.mkfs_tool(), kind.fsck_tool(), "blkid"]) {
        return Some(reason);
    }
    if !kernel_supports(kind) {
        return Some(format!("needs kernel support for {kind}"));
    }
    None
}

fn kernel_supports(kind: FsKind) -> bool {
    let listed = std::fs::read_to_string("/proc/filesystems").is_ok_and(|list| {
        list.lines()
            .any(|line| line.split_whitespace().last() == Some(kind.name()))
    });
    // Not loaded yet is fine if the module exists: mount(2) loads it.
    listed || module_exists(kind)
}

fn module_exists(kind: FsKind) -> bool {
    let release = rustix::system::uname();
    let release = release.release().to_string_lossy();
    let module = match kind {
        // ext2 is usually served by the ext4 driver.
        FsKind::Ext2 | FsKind::Ext4 => "ext4",
        FsKind::Xfs => "xfs",
        FsKind::Btrfs => "btrfs",
    };
    Path::new("/lib/modules")
        .join(release.as_ref())
        .join("kernel/fs")
        .join(module)
        .is_dir()
}

/// Builds a command for a tool found by [`find_tool`], so that tools in
/// sbin work even when `$PATH` lacks it.
pub(crate) fn command(tool: &str) -> anyhow::Result<Command> {
    let path = find_tool(tool).with_context(|| format!("{tool} is not installed"))?;
    let mut cmd = Command::new(path);
    // Tools must not localise the output we parse or show.
    cmd.env("LC_ALL", "C");
    Ok(cmd)
}

/// Runs a command to completion, capturing its output; fails if it cannot
/// be started. The exit status is left to the caller.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<Output> {
    cmd.output()
        .with_context(|| format!("cannot run {}", describe(cmd)))
}

/// Runs `cmd` to completion with `LC_ALL=C` and its output captured, and
/// fails unless it exits successfully. The error names the command line
/// and the exit status, then what the command said (stderr, then stdout),
/// e.g. ``cp -- a b failed (exit status: 1): cp: cannot stat 'a': ...``.
pub fn run_tool(cmd: &mut Command) -> anyhow::Result<Output> {
    // Tools must not localise what we show or parse.
    let out = output(cmd.env("LC_ALL", "C"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let said = [stderr.trim(), stdout.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        bail!("{} failed ({}): {said}", describe(cmd), out.status);
    }
    Ok(out)
}

/// `program arg arg ...` for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}
