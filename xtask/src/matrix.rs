//! `cargo xtask matrix`: the loop-device tests and the gate on the kernels
//! users run, each booted under QEMU (issue #18).
//!
//! Hole reporting and copy offload change between kernels, so a verdict
//! holds for one kernel only. For each chosen kernel this boots the
//! Debian kernel package (fetched with `apt-get download` into
//! `target/matrix/debs/`, unpacked with `dpkg-deb -x`, never installed)
//! and runs inside it copy-engine's and sparsecp's integration tests (the
//! loop-device ones) and the gate, once per builtin copier, on the install
//! scenario at reduced scale. `host` runs the same script natively on the
//! running kernel (whose image may not be on disk). It prints and writes
//! `target/matrix/report.md` and `report.json`: kernel x copier x verdict
//! and test counts per kernel.
//!
//! The guest environment, and why:
//! - **A small initramfs of our own** (`initramfs.rs`): static busybox as
//!   init and the modules needed before the host's root is reachable
//!   (virtio, 9p, loop, ext4, xfs, btrfs and their dependencies). Building
//!   a Debian root image would take minutes and gigabytes per kernel, and
//!   would test different tool versions than the host row.
//! - **The host's root, read-only, over virtio-9p**, chrooted into: the
//!   test binaries, the gate, mkfs/fsck/losetup/blkid and Go are the very
//!   files the host row runs, so the only thing that changes between rows
//!   is the kernel. Read-only, so a guest cannot harm the host.
//! - **Writable places**: tmpfs on `/tmp` and `/run` (mount points only);
//!   a sparse raw file as a virtio-blk disk, made ext4 in the guest and
//!   mounted at `SPARSECP_SCRATCH` for every image (discard on, so the
//!   host file shrinks back as images are deleted); a writable 9p share of
//!   `target/matrix/out/<kernel>/` for the script and the results (one
//!   log, exit status and duration per step), so nothing is parsed off the
//!   serial console except progress.
//! - **KVM when it works**: `/dev/kvm` can exist under nested
//!   virtualisation and still stall the guest after the firmware, so a
//!   probe boot under `-accel kvm` with a timeout decides; otherwise TCG.
//!   The report says which ran.
//!
//! Everything is built on the host first (`cargo test --no-run`, the
//! `sparsecp-gate` binary, the Go copiers), so the guest runs binaries,
//! never cargo or the Go compiler (its view of the checkout is read-only).

mod initramfs;
mod kernel;
mod qemu;
mod results;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use qemu::{Accel, Boot};
use results::{KernelRow, Report};

/// Arguments of `cargo xtask matrix`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A kernel: a Debian version prefix (`6.1`, `6.12`) or `host` for the
    /// running kernel, natively (repeatable; default: 6.1, 6.12, host).
    #[arg(long = "kernel", value_name = "VERSION")]
    kernels: Vec<String>,
    /// The gate's scenario.
    #[arg(long, default_value = "harvester-install")]
    scenario: String,
    /// The gate's scale.
    #[arg(long, default_value_t = 0.05)]
    scale: f64,
    /// Property-test cases per property (the host's `cargo xtask test`
    /// runs 2000; under TCG that would take hours).
    #[arg(long, default_value_t = 16)]
    proptest_cases: u32,
    /// Test threads per test binary.
    #[arg(long, default_value_t = 2)]
    test_threads: u32,
    /// Virtual CPUs per guest.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 4096)]
    memory: u32,
    /// Minutes one step (a test binary, a gate run) may take before
    /// `timeout` kills it (exit 124 in the report: a hang or a crawl is a
    /// result too, and the other steps still run).
    #[arg(long, default_value_t = 20)]
    step_timeout: u64,
    /// Minutes a guest may run before QEMU is killed.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Force an accelerator (kvm or tcg) instead of probing.
    #[arg(long)]
    accel: Option<String>,
    /// Another directory to look for kernel .debs in before downloading.
    #[arg(long)]
    debs: Option<PathBuf>,
    /// Skip the tests (run the gate only).
    #[arg(long)]
    no_tests: bool,
    /// Skip the gate (run the tests only).
    #[arg(long)]
    no_gate: bool,
    /// Run nothing: rewrite report.md from report.json (after removing the
    /// rows named with --drop).
    #[arg(long)]
    render: bool,
    /// With --render: a kernel row to remove (repeatable).
    #[arg(long, value_name = "KERNEL")]
    drop: Vec<String>,
    /// Run this shell script in each kernel instead of the tests and the
    /// gate, for investigating a difference (`sh SCRIPT OUT`, with
    /// `SPARSECP_SCRATCH` set as for the tests; its output lands in
    /// `target/matrix/out/<kernel>/script.log`). Writes no report.
    #[arg(long, value_name = "SCRIPT", conflicts_with = "render")]
    script: Option<PathBuf>,
}

/// One step of the script: a name, a directory and a command.
struct Step {
    name: String,
    dir: PathBuf,
    argv: Vec<String>,
}

/// Runs `cargo xtask matrix`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if testbed::skip_reason(&[]).is_some() {
        bail!("cargo xtask matrix needs root (loop devices and mounts, here and in the guests)");
    }
    let root = crate::test::workspace_root();
    let work = root.join("target/matrix");
    if args.render {
        let mut report = Report::load(&work)?;
        report.rows.retain(|r| !args.drop.contains(&r.label));
        report.write_replacing(&work)?;
        println!("{}", report.render_markdown());
        return Ok(());
    }
    let kernels = match args.kernels.is_empty() {
        true => vec!["6.1".to_owned(), "6.12".to_owned(), "host".to_owned()],
        false => args.kernels.clone(),
    };
    let steps = match &args.script {
        Some(script) => vec![script_step(script)?],
        None => build_steps(&root, &args)?,
    };
    let mut report = Report::new(&args.scenario, args.scale, args.proptest_cases);
    let mut accel: Option<Accel> = match args.accel.as_deref() {
        None => None,
        Some("kvm") => Some(Accel::Kvm),
        Some("tcg") => Some(Accel::Tcg),
        Some(other) => bail!("--accel {other}: expected kvm or tcg"),
    };
    for label in &kernels {
        let out = work.join("out").join(label);
        if out.exists() {
            std::fs::remove_dir_all(&out)
                .with_context(|| format!("cannot remove {}", out.display()))?;
        }
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        write_script(&out.join("run.sh"), &root, &steps, &args)?;
        let started = Instant::now();
        let row = if label == "host" {
            eprintln!("matrix: host: running natively on the running kernel");
            run_native(&work, &out)?;
            KernelRow::collect(
                label,
                "native (host kernel, no QEMU)",
                &out,
                &steps_names(&steps),
            )
        } else {
            match run_guest(label, &work, &out, &args, &mut accel) {
                Ok(how) => KernelRow::collect(label, &how, &out, &steps_names(&steps)),
                Err(e) => {
                    eprintln!("matrix: {label}: {e:#}");
                    KernelRow::failed(label, &format!("{e:#}"))
                }
            }
        };
        let mut row = row;
        row.seconds = started.elapsed().as_secs();
        if args.script.is_some() {
            eprintln!(
                "matrix: {label}: script done in {} s; output in {}",
                row.seconds,
                out.display()
            );
            continue;
        }
        eprintln!("matrix: {label}: done in {} s", row.seconds);
        report.rows.retain(|r| r.label != row.label);
        report.rows.push(row);
        // Written after every kernel, so an interrupted run keeps its rows.
        report.write(&work)?;
    }
    if args.script.is_some() {
        return Ok(());
    }
    println!("{}", report.render_markdown());
    println!("report: {}", work.join("report.md").display());
    Ok(())
}

fn steps_names(steps: &[Step]) -> Vec<String> {
    steps.iter().map(|s| s.name.clone()).collect()
}

/// Builds what the guests run and lists the steps.
fn build_steps(root: &Path, args: &Args) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    if !args.no_tests {
        eprintln!("matrix: building the test binaries (cargo test --no-run)");
        for (package, binary, dir) in kernel::test_binaries(root)? {
            steps.push(Step {
                name: format!("tests-{package}"),
                dir,
                argv: vec![
                    binary.display().to_string(),
                    format!("--test-threads={}", args.test_threads),
                ],
            });
        }
    }
    if !args.no_gate {
        eprintln!("matrix: building sparsecp-gate and the Go copiers");
        let gate = kernel::gate_binary(root)?;
        for program in [
            harness::go_programs::GO_IOCOPY,
            harness::go_programs::GO_SPARSECOPY,
        ] {
            program.binary()?;
        }
        for copier in harness::Copier::builtins() {
            let name = copier.name();
            steps.push(Step {
                name: format!("gate-{name}"),
                dir: PathBuf::from("/"),
                argv: vec![
                    gate.display().to_string(),
                    "gate".into(),
                    "--copier".into(),
                    name.clone(),
                    "--scenario".into(),
                    args.scenario.clone(),
                    "--scale".into(),
                    args.scale.to_string(),
                    "--out".into(),
                    format!("$OUT/gate-{name}-report"),
                ],
            });
        }
    }
    Ok(steps)
}

/// The one step of `--script`: the script, by its absolute path (the
/// guest sees the host's root), given the out directory.
fn script_step(script: &Path) -> anyhow::Result<Step> {
    let script = std::fs::canonicalize(script)
        .with_context(|| format!("--script {}: cannot find it", script.display()))?;
    Ok(Step {
        name: "script".into(),
        dir: PathBuf::from("/"),
        argv: vec!["sh".into(), script.display().to_string(), "$OUT".into()],
    })
}

/// Single-quotes a word for `sh`, except a leading `$OUT`.
fn quote(word: &str) -> String {
    match word.strip_prefix("$OUT") {
        Some(rest) => format!("\"$OUT\"'{}'", rest.replace('\'', r"'\''")),
        None => format!("'{}'", word.replace('\'', r"'\''")),
    }
}

fn write_script(path: &Path, root: &Path, steps: &[Step], args: &Args) -> anyhow::Result<()> {
    let mut s = String::from(
        "#!/bin/sh\n\
         # Written by `cargo xtask matrix`: runs each step with its output in\n\
         # OUT/NAME.log (stderr in NAME.err), its exit status in NAME.rc and its seconds in NAME.secs.\n\
         OUT=$1\n\
         export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         export HOME=/tmp INSTA_UPDATE=no CI=true RUST_BACKTRACE=1\n",
    );
    s.push_str(&format!("export PROPTEST_CASES={}\n", args.proptest_cases));
    // insta finds the snapshots under the workspace root, which it asks
    // `cargo metadata` for; the script's PATH has no cargo, and insta's
    // fallback (the crate's directory) fails every snapshot test.
    s.push_str(&format!(
        "export INSTA_WORKSPACE_ROOT={}\n",
        quote(&root.display().to_string())
    ));
    s.push_str(&format!("STEP_TIMEOUT={}m\n", args.step_timeout));
    s.push_str(
        r#"if [ -n "${MATRIX_SCRATCH_DEV:-}" ]; then
  mkfs.ext4 -q -F "$MATRIX_SCRATCH_DEV" > "$OUT/scratch.log" 2>&1 || { echo "MATRIX-FATAL mkfs.ext4 $MATRIX_SCRATCH_DEV failed"; exit 1; }
  mkdir -p /tmp/scratch
  mount -o discard "$MATRIX_SCRATCH_DEV" /tmp/scratch || { echo "MATRIX-FATAL cannot mount $MATRIX_SCRATCH_DEV"; exit 1; }
  export SPARSECP_SCRATCH=/tmp/scratch
  # Temporary files on the scratch disk as on the host's disk: the guest's
  # /tmp is a tmpfs of half its memory, and tests write 1 GiB files there.
  mkdir -p /tmp/scratch/tmp
  export TMPDIR=/tmp/scratch/tmp
fi
uname -r > "$OUT/uname"
step() {
  name=$1; dir=$2; shift 2
  echo "MATRIX: $name: started"
  start=$(date +%s)
  (cd "$dir" && exec timeout --kill-after=30 "$STEP_TIMEOUT" "$@") > "$OUT/$name.log" 2> "$OUT/$name.err"
  rc=$?
  end=$(date +%s)
  echo $rc > "$OUT/$name.rc"
  echo $((end - start)) > "$OUT/$name.secs"
  echo "MATRIX: $name: exit $rc in $((end - start)) s"
}
"#,
    );
    for step in steps {
        let argv: Vec<String> = step.argv.iter().map(|a| quote(a)).collect();
        s.push_str(&format!(
            "step {} {} {}\n",
            quote(&step.name),
            quote(&step.dir.display().to_string()),
            argv.join(" ")
        ));
    }
    s.push_str("if [ -n \"${MATRIX_SCRATCH_DEV:-}\" ]; then umount /tmp/scratch; fi\n");
    std::fs::write(path, s).with_context(|| format!("cannot write {}", path.display()))
}

/// The host row: the script, natively, with its images under
/// `target/matrix/scratch/host`.
fn run_native(work: &Path, out: &Path) -> anyhow::Result<()> {
    let scratch = work.join("scratch/host");
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let status = std::process::Command::new("sh")
        .arg(out.join("run.sh"))
        .arg(out)
        .env("SPARSECP_SCRATCH", &scratch)
        .env_remove("MATRIX_SCRATCH_DEV")
        .status()
        .context("cannot run sh")?;
    if !status.success() {
        bail!("{}: {status}", out.join("run.sh").display());
    }
    Ok(())
}

/// One guest row: fetch and unpack the kernel, build its initramfs, probe
/// KVM once, boot. Returns how it ran (for the report).
fn run_guest(
    label: &str,
    work: &Path,
    out: &Path,
    args: &Args,
    accel: &mut Option<Accel>,
) -> anyhow::Result<String> {
    let kernel = kernel::fetch(label, work, args.debs.as_deref())?;
    eprintln!(
        "matrix: {label}: {} ({})",
        kernel.release,
        kernel.package.display()
    );
    let kwork = work.join("kernels").join(&kernel.release);
    let (initrd, modules) = initramfs::build(&kernel.modules_dir, &kwork)?;
    eprintln!(
        "matrix: {label}: initramfs with {} modules: {}",
        modules.len(),
        modules.join(" ")
    );
    let mut boot = Boot {
        kernel: kernel.vmlinuz.clone(),
        initrd,
        cmdline: "matrix=probe".into(),
        memory_mib: args.memory,
        cpus: args.cpus,
        extra: Vec::new(),
    };
    let accel = match accel {
        Some(a) => *a,
        None => {
            let log = work.join("kvm-probe.log");
            let (works, why) = qemu::kvm_works(&boot, Duration::from_secs(45), &log)?;
            eprintln!(
                "matrix: KVM {}: {why}",
                if works { "works" } else { "unusable" }
            );
            let chosen = if works { Accel::Kvm } else { Accel::Tcg };
            *accel = Some(chosen);
            chosen
        }
    };
    let scratch = work.join("scratch").join(format!("{label}.raw"));
    std::fs::create_dir_all(scratch.parent().expect("a parent"))
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let file = std::fs::File::create(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    file.set_len(48 << 30)
        .with_context(|| format!("cannot size {}", scratch.display()))?;
    drop(file);
    boot.cmdline = "matrix=run".into();
    boot.extra = vec![
        "-virtfs".into(),
        // remap: the host's / spans several filesystems (its /proc,
        // /sys, ...); without it inode numbers collide and mounting over
        // those directories in the guest fails.
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap".into(),
        "-virtfs".into(),
        format!(
            "local,path={},mount_tag=out,security_model=none",
            out.display()
        ),
        "-drive".into(),
        format!(
            "file={},if=virtio,format=raw,discard=unmap,cache=unsafe",
            scratch.display()
        ),
    ];
    let timeout = Duration::from_secs(args.timeout * 60);
    let outcome = qemu::run(&boot, accel, timeout, &out.join("console.log"));
    let _ = std::fs::remove_file(&scratch);
    let outcome = outcome?;
    let how = format!(
        "QEMU {} ({} vCPU, {} MiB), Debian {}",
        accel.name(),
        args.cpus,
        args.memory,
        kernel.package_name
    );
    if !outcome.finished {
        bail!(
            "{}: the guest did not finish within {} min (QEMU killed); see {}",
            kernel.release,
            args.timeout,
            out.join("console.log").display()
        );
    }
    if let Some(line) = outcome
        .console
        .lines()
        .find(|l| l.starts_with("MATRIX-FATAL"))
    {
        bail!("{}: {line}", kernel.release);
    }
    if !outcome.console.contains("MATRIX-DONE") {
        bail!(
            "{}: the guest stopped before the script ended; see {}",
            kernel.release,
            out.join("console.log").display()
        );
    }
    Ok(how)
}
