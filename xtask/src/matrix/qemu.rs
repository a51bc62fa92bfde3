//! Booting a kernel under QEMU with a deadline, and finding out whether
//! KVM works here.
//!
//! QEMU runs under `nice -n 19` (which execs it, so the child's pid is
//! QEMU's) with the serial console on its stdout; a thread copies the
//! console to a log file and echoes the guest's `MATRIX` progress lines.
//! On timeout the child is killed by its pid, and nothing else.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// The accelerator a guest ran with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// QEMU's emulator (slow, works everywhere).
    Tcg,
}

impl Accel {
    /// The `-accel` value.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// One boot: the kernel, its initramfs and what else the guest gets.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// Extra kernel command line (after `console=ttyS0 panic=-1 quiet`).
    pub cmdline: String,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Further QEMU arguments (shares, disks).
    pub extra: Vec<String>,
}

/// How a boot ended.
#[derive(Debug)]
pub struct Outcome {
    /// The console, whole.
    pub console: String,
    /// False when the deadline killed QEMU.
    pub finished: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// Boots `boot` with `accel`, writing the console to `log`; kills QEMU
/// after `timeout`.
pub fn run(boot: &Boot, accel: Accel, timeout: Duration, log: &Path) -> anyhow::Result<Outcome> {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "19", "qemu-system-x86_64", "-accel", accel.name()])
        .args(["-m", &boot.memory_mib.to_string()])
        .args(["-smp", &boot.cpus.to_string()])
        .args([
            "-display",
            "none",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(&boot.kernel)
        .arg("-initrd")
        .arg(&boot.initrd)
        .arg("-append")
        .arg(format!("console=ttyS0 panic=-1 quiet {}", boot.cmdline))
        .args(&boot.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .context("cannot run qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let reader = std::thread::spawn(move || {
        let mut console = String::new();
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).into_owned();
            let _ = writeln!(file, "{}", line.trim_end_matches('\r'));
            if line.starts_with("MATRIX") {
                eprintln!("matrix: [guest] {}", line.trim_end());
            }
            console.push_str(&line);
            console.push('\n');
        }
        console
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    let finished = loop {
        if child.try_wait().context("cannot wait for qemu")?.is_some() {
            break true;
        }
        if started.elapsed() > timeout {
            eprintln!(
                "matrix: QEMU (pid {pid}) still running after {} s: killing it",
                timeout.as_secs()
            );
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let mut console = reader.join().unwrap_or_default();
    let errors = errors.join().unwrap_or_default();
    if !errors.trim().is_empty() {
        console.push_str("\n[qemu stderr]\n");
        console.push_str(&errors);
    }
    Ok(Outcome {
        console,
        finished,
        elapsed: started.elapsed(),
    })
}

/// Whether KVM works: `/dev/kvm` exists and a probe boot of `boot` (whose
/// init says `MATRIX-BOOTED` and powers off) under `-accel kvm` gets that
/// far within `timeout`. Under nested virtualisation a guest can stall
/// right after the firmware, so the device's presence proves nothing.
pub fn kvm_works(boot: &Boot, timeout: Duration, log: &Path) -> anyhow::Result<(bool, String)> {
    if !Path::new("/dev/kvm").exists() {
        return Ok((false, "no /dev/kvm".into()));
    }
    let outcome = run(boot, Accel::Kvm, timeout, log)?;
    if outcome.console.contains("MATRIX-BOOTED") {
        return Ok((
            true,
            format!(
                "a probe boot under KVM reached init in {:.1} s",
                outcome.elapsed.as_secs_f64()
            ),
        ));
    }
    let why = match outcome.finished {
        false => format!(
            "a probe boot under KVM did not reach init in {} s (killed)",
            timeout.as_secs()
        ),
        true => format!(
            "a probe boot under KVM ended without reaching init (see {})",
            log.display()
        ),
    };
    Ok((false, why))
}
