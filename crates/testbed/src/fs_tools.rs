//! Reproducible `mkfs`, read-only `fsck`, and label and UUID probing, by
//! running the distribution's tools on a device or an image file.

use std::path::Path;

use anyhow::{bail, Context};

use crate::mountinfo::{loop_backing_file, mounts};
use crate::tools::{command, describe, output, run_tool};
use crate::FsKind;

/// Creates a `kind` filesystem on `device_or_file`, reproducibly.
///
/// The UUID is fixed by the caller (ext* also use it as the directory hash
/// seed), discard is off (a discard on a loop device punches holes into the
/// image, which would muddle allocation tests), and the tool runs quietly.
/// ext2/ext4 get 4 KiB blocks even on small images, like real system
/// images, where `mke2fs` would otherwise pick 1 KiB.
///
/// Labels longer than the filesystem allows (12 bytes on XFS, 16 on ext*)
/// are an error rather than silently truncated.
pub fn mkfs(kind: FsKind, device_or_file: &Path, label: &str, uuid: &str) -> anyhow::Result<()> {
    check_label(kind, label)?;
    check_uuid(uuid)?;
    let mut cmd = command(kind.mkfs_tool())?;
    match kind {
        FsKind::Ext2 | FsKind::Ext4 => {
            cmd.args(["-F", "-q", "-b", "4096", "-L", label, "-U", uuid, "-E"])
                .arg(format!("nodiscard,hash_seed={uuid}"));
        }
        FsKind::Xfs => {
            cmd.args(["-f", "-q", "-K", "-L", label, "-m"])
                .arg(format!("uuid={uuid}"));
        }
        FsKind::Btrfs => {
            cmd.args(["-f", "-q", "-K", "-L", label, "-U", uuid]);
        }
    }
    cmd.arg(device_or_file);
    run_tool(&mut cmd)
        .with_context(|| format!("cannot make {kind} on {}", device_or_file.display()))?;
    Ok(())
}

fn check_label(kind: FsKind, label: &str) -> anyhow::Result<()> {
    if label.len() > kind.max_label_len() {
        bail!(
            "label {label:?} is {} bytes; {kind} allows at most {}",
            label.len(),
            kind.max_label_len()
        );
    }
    Ok(())
}

fn check_uuid(uuid: &str) -> anyhow::Result<()> {
    let groups: Vec<&str> = uuid.split('-').collect();
    let well_formed = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        bail!("{uuid:?} is not a UUID like 01234567-89ab-cdef-0123-456789abcdef");
    }
    Ok(())
}

/// A UUID derived from `seed`, for reproducible filesystems that must still
/// differ from each other (XFS refuses to mount two with the same UUID, and
/// btrfs confuses them).
pub fn uuid_from_seed(seed: u64) -> String {
    use rand::{RngCore, SeedableRng};
    let mut bytes = [0u8; 16];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    // RFC 4122 version 4, variant 1, so every tool accepts it.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// What a read-only filesystem check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckVerdict {
    /// The checker found no inconsistency.
    pub clean: bool,
    /// Its stdout and stderr, for the assertion message.
    pub output: String,
}

/// Checks the filesystem on `device_or_file` without changing it
/// (`e2fsck -fn`, `xfs_repair -n`, `btrfs check --readonly`).
///
/// An inconsistent filesystem is `Ok` with `clean: false`; an error means
/// the check could not run (missing tool, unreadable device, mounted).
pub fn fsck_clean(kind: FsKind, device_or_file: &Path) -> anyhow::Result<FsckVerdict> {
    if is_mounted(device_or_file)? {
        bail!(
            "{} is mounted; unmount it before checking",
            device_or_file.display()
        );
    }
    let mut cmd = command(kind.fsck_tool())?;
    match kind {
        FsKind::Ext2 | FsKind::Ext4 => {
            cmd.arg("-fn");
        }
        FsKind::Xfs => {
            cmd.arg("-n");
            if device_or_file.is_file() {
                cmd.arg("-f");
            }
        }
        FsKind::Btrfs => {
            cmd.args(["check", "--readonly"]);
        }
    }
    cmd.arg(device_or_file);
    let out = output(&mut cmd)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code();
    let clean = match (kind, code) {
        (_, Some(0)) => true,
        // e2fsck ORs its exit bits: 4 = errors left uncorrected (as -n
        // leaves them all), even when 8 says it then gave up.
        (FsKind::Ext2 | FsKind::Ext4, Some(code)) if code & 0b111 != 0 => false,
        (FsKind::Xfs | FsKind::Btrfs, Some(1)) => false,
        _ => bail!(
            "{} could not check ({}): {text}",
            describe(&cmd),
            out.status
        ),
    };
    Ok(FsckVerdict {
        clean,
        output: text,
    })
}

/// Whether `path` is mounted in this namespace: as the source of a mount,
/// or as the backing file of a mounted loop device.
fn is_mounted(path: &Path) -> anyhow::Result<bool> {
    let Ok(canonical) = path.canonicalize() else {
        return Ok(false);
    };
    Ok(mounts()?.iter().any(|m| {
        m.source == canonical || loop_backing_file(&m.source).is_some_and(|f| f == canonical)
    }))
}

/// The filesystem label on `device_or_file`, probed directly (no blkid
/// cache); `None` if it has no label or no recognisable filesystem.
pub fn read_label(device_or_file: &Path) -> anyhow::Result<Option<String>> {
    probe_tag(device_or_file, "LABEL")
}

/// The filesystem UUID on `device_or_file`, probed directly; `None` if there
/// is no recognisable filesystem.
pub fn read_uuid(device_or_file: &Path) -> anyhow::Result<Option<String>> {
    probe_tag(device_or_file, "UUID")
}

fn probe_tag(device_or_file: &Path, tag: &str) -> anyhow::Result<Option<String>> {
    let mut cmd = command("blkid")?;
    cmd.args(["-p", "-o", "value", "-s", tag])
        .arg(device_or_file);
    let out = output(&mut cmd)?;
    match out.status.code() {
        Some(0) => {
            let value = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
            Ok((!value.is_empty()).then_some(value))
        }
        // 2: nothing found (no filesystem, or no such tag).
        Some(2) => Ok(None),
        _ => bail!(
            "{} failed ({}): {}",
            describe(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// Sets the label of the ext2/3/4 filesystem on `file` (`tune2fs -L`).
pub fn set_ext_label(file: &Path, label: &str) -> anyhow::Result<()> {
    check_label(FsKind::Ext4, label)?;
    let mut cmd = command("tune2fs")?;
    cmd.arg("-L").arg(label).arg(file);
    run_tool(&mut cmd).with_context(|| format!("cannot label {}", file.display()))?;
    Ok(())
}
