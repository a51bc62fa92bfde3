//! The guest's initramfs: busybox, the kernel modules needed before the
//! host's root is reachable, and an `/init` that mounts the host's root
//! read-only over virtio-9p and runs the matrix script chrooted into it.
//!
//! Debian's kernel packages ship no `modules.dep` (depmod makes it on
//! install, and kmod is not a dependency of this project), so the
//! dependencies come from each module's own `.modinfo` section
//! (`depends=a,b`). Compressed modules (`.ko.xz`, `.ko.zst`) are
//! decompressed here on the host: busybox's `insmod` loads plain ELF only.
//! Crypto drivers that ext4 and btrfs ask for by algorithm name
//! (`crc32c`, `xxhash64`, `sha256`, `blake2b`) are soft dependencies,
//! absent from `depends=`; they are loaded when the kernel has them as
//! modules, since the guest has no `modprobe` to answer the kernel's
//! request.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// Modules the guest must have: loop devices, the three filesystems of
/// the tests and the gate, and virtio for the shares and the scratch disk.
const NEEDED: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "9pnet_virtio",
    "9p",
    "loop",
    "ext4",
    "xfs",
    "btrfs",
    // The fault tests: FUSE (read errors) and squashfs (no holes reported).
    "fuse",
    "squashfs",
];

/// Soft dependencies, loaded when present as modules.
const OPTIONAL: &[&str] = &[
    "crc32c_generic",
    "crc32c_intel",
    "xxhash_generic",
    "sha256_generic",
    "blake2b_generic",
];

/// `/init`: `matrix=probe` on the command line only says it booted (the
/// KVM probe); otherwise it mounts the shares and runs `run.sh` from the
/// writable one, then powers off.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do
  insmod "/modules/$m.ko" 2>/dev/null || echo "MATRIX: insmod $m failed"
done
case " $(cat /proc/cmdline) " in
  *" matrix=probe "*) echo "MATRIX-BOOTED $(uname -r)"; poweroff -f ;;
esac
echo "MATRIX: booted $(uname -r)"
mkdir -p /host
o=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$o,ro,cache=loose" hostroot /host || { echo "MATRIX-FATAL cannot mount the host root"; poweroff -f; }
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
# What udev would add: without /dev/stdout, `sparsecp copy x /dev/stdout`
# makes a regular file there.
ln -sf /proc/self/fd /host/dev/fd
ln -sf /proc/self/fd/0 /host/dev/stdin
ln -sf /proc/self/fd/1 /host/dev/stdout
ln -sf /proc/self/fd/2 /host/dev/stderr
mount -t tmpfs -o mode=1777 tmp /host/tmp
mount -t tmpfs run /host/run
mkdir -p /host/tmp/out
mount -t 9p -o "$o" out /host/tmp/out || { echo "MATRIX-FATAL cannot mount the out share"; poweroff -f; }
MATRIX_SCRATCH_DEV=/dev/vda chroot /host /bin/sh /tmp/out/run.sh /tmp/out
echo "MATRIX-DONE rc=$?"
sync
umount /host/tmp/out
poweroff -f
"#;

/// Builds `ird.cpio.gz` in `work` for the kernel whose modules are in
/// `modules_dir` (`lib/modules/VERSION` of the unpacked package); returns
/// its path and the modules it loads, in load order.
pub fn build(modules_dir: &Path, work: &Path) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let index = index_modules(modules_dir)?;
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    // The crypto drivers first: libcrc32c (a dependency of xfs and btrfs)
    // asks for the crc32c algorithm as it loads.
    for name in OPTIONAL {
        let name = normalize(name);
        if index.contains_key(&name) {
            visit(&name, &index, &mut seen, &mut order)?;
        }
    }
    for name in NEEDED {
        let name = normalize(name);
        if !index.contains_key(&name) {
            if is_builtin(modules_dir, &name) {
                continue;
            }
            bail!(
                "{}: no module {name} (neither a .ko nor built in)",
                modules_dir.display()
            );
        }
        visit(&name, &index, &mut seen, &mut order)?;
    }
    let root = work.join("initramfs");
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("cannot remove {}", root.display()))?;
    }
    for dir in ["bin", "proc", "sys", "dev", "modules", "host"] {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let busybox = testbed::find_tool("busybox")
        .context("busybox: not installed (apt-get install busybox-static)")?;
    let target = root.join("bin/busybox");
    std::fs::copy(&busybox, &target)
        .with_context(|| format!("cannot copy {} to {}", busybox.display(), target.display()))?;
    for (name, bytes) in &order {
        let path = root.join("modules").join(format!("{name}.ko"));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    write_exec(&root.join("init"), INIT)?;
    let names: Vec<String> = order.into_iter().map(|(name, _)| name).collect();
    std::fs::write(root.join("modules.order"), names.join("\n") + "\n")
        .with_context(|| format!("cannot write {}/modules.order", root.display()))?;
    let archive = work.join("ird.cpio.gz");
    let script = format!(
        "cd '{}' && find . | cpio -o -H newc --quiet | gzip -1 > '{}'",
        root.display(),
        archive.display()
    );
    let status = Command::new("sh")
        .args(["-c", &script])
        .status()
        .context("cannot run cpio")?;
    if !status.success() {
        bail!("{}: cpio | gzip failed ({status})", archive.display());
    }
    Ok((archive, names))
}

fn write_exec(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

/// Module names compare with `-` and `_` alike (the kernel does).
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

fn is_builtin(modules_dir: &Path, name: &str) -> bool {
    std::fs::read_to_string(modules_dir.join("modules.builtin")).is_ok_and(|text| {
        text.lines().any(|line| {
            let file = line.rsplit('/').next().unwrap_or(line);
            normalize(file.trim_end_matches(".ko")) == name
        })
    })
}

/// Every module under `kernel/`, by name, and its file.
type Index = BTreeMap<String, PathBuf>;

fn index_modules(modules_dir: &Path) -> anyhow::Result<Index> {
    let mut index = Index::new();
    let mut stack = vec![modules_dir.join("kernel")];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
                .iter()
                .find_map(|ext| file.strip_suffix(ext))
            else {
                continue;
            };
            index.insert(normalize(stem), path);
        }
    }
    if index.is_empty() {
        bail!("{}: no kernel modules", modules_dir.display());
    }
    Ok(index)
}

fn visit(
    name: &str,
    index: &Index,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<(String, Vec<u8>)>,
) -> anyhow::Result<()> {
    if !seen.insert(name.to_owned()) {
        return Ok(());
    }
    let Some(path) = index.get(name) else {
        // A dependency built into the kernel has no file.
        return Ok(());
    };
    let bytes = decompress(path)?;
    for dep in depends(&bytes) {
        visit(&normalize(&dep), index, seen, order)?;
    }
    order.push((name.to_owned(), bytes));
    Ok(())
}

fn decompress(path: &Path) -> anyhow::Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        "xz"
    } else if name.ends_with(".zst") {
        "zstd"
    } else if name.ends_with(".gz") {
        "gzip"
    } else {
        return std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    };
    let out = Command::new(tool)
        .args(["-dc"])
        .arg(path)
        .output()
        .with_context(|| format!("{}: cannot run {tool}", path.display()))?;
    if !out.status.success() {
        bail!(
            "{}: {tool} -dc failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// The `depends=` field of a module's `.modinfo` (NUL-separated strings).
fn depends(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .find_map(|field| field.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
