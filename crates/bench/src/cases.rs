//! The cases of issue #5, each set up on loop-mounted filesystems.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use copy_engine::{CopyOptions, NoProgress};
use testbed::{FsKind, LoopDevice, ScratchFs, GIB};

use crate::case::{Case, Contender, Guard, Mode, RemoveOnDrop, Role};
use crate::child::Step;
use crate::fixtures::{self, ExtentPattern, FileFacts};
use crate::lab::{Lab, Tools};

/// Every case, by name, with what it measures, in the order they run.
pub const CASES: [(&str, &str); 11] = [
    ("install", "active.img -> passive.img on ext4: sparsecp vs cp, rsync, qemu-img, io.Copy (+dig), and the read-once-write-once limit (and each half)"),
    ("dig", "dig holes in a dense passive.img in place: sparsecp dig vs fallocate --dig-holes, and the two-thread read limit"),
    ("blockdev", "a loop block device over active.img as the source (zero detection): sparsecp vs cp --sparse=always, qemu-img convert"),
    ("blockdev-dest", "active.img onto a loop block device full of random bytes: sparsecp vs bmaptool copy, dd conv=sparse, qemu-img convert -n (holes must read as zeros)"),
    ("sparse-1tib", "a 1 TiB file with three 64 KiB extents: sparsecp vs cp"),
    ("extents-20k", "20,000 data extents of 4 KiB between 4 KiB holes: sparsecp vs cp"),
    ("extents-100k", "100,000 data extents of 4 KiB every 8 KiB (a fragmented VM image): sparsecp vs cp; sparsecp verify, dig and inspect --map too (peak RSS)"),
    ("extents-1m", "1,000,000 data extents of 4 KiB every 8 KiB: sparsecp vs cp (warm only); sparsecp verify, dig and inspect --map too (peak RSS)"),
    ("extents-1m-random", "1,000,000 data extents of 4-8 KiB between seeded random 4-128 KiB holes: sparsecp vs cp (warm only); verify, dig, inspect --map too"),
    ("reflink-xfs", "active.img copied on xfs: sparsecp (reflink auto) vs cp --reflink=auto"),
    ("reflink-btrfs", "active.img copied on btrfs: sparsecp (reflink auto) vs cp --reflink=auto"),
];

/// Sets up case `name` (its fixtures are made here, untimed).
pub fn build(name: &str, lab: &mut Lab) -> anyhow::Result<Case> {
    match name {
        "install" => install(lab),
        "dig" => dig(lab),
        "blockdev" => blockdev(lab),
        "blockdev-dest" => blockdev_dest(lab),
        "sparse-1tib" => sparse_1tib(lab),
        "extents-20k" => extents_20k(lab),
        "extents-100k" => extents(lab, "extents-100k", 100_000, ExtentPattern::Stride),
        "extents-1m" => extents(lab, "extents-1m", 1_000_000, ExtentPattern::Stride),
        "extents-1m-random" => extents(lab, "extents-1m-random", 1_000_000, ExtentPattern::Random),
        "reflink-xfs" => reflink(lab, FsKind::Xfs, "reflink-xfs"),
        "reflink-btrfs" => reflink(lab, FsKind::Btrfs, "reflink-btrfs"),
        other => bail!("no case {other:?}"),
    }
}

/// `sparsecp copy --sparse MODE --json SRC DST`.
fn sparsecp_copy(tools: &Tools, sparse: &str, src: &Path, dst: &Path) -> Step {
    step(
        &tools.sparsecp,
        &["copy", "--sparse", sparse, "--json"],
        &[src, dst],
    )
}

fn step(program: &Path, args: &[&str], paths: &[&Path]) -> Step {
    let mut step = Step::new(program, args);
    step.args
        .extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    step
}

fn add(case: &mut Case, tools: &Tools, contender: Contender) -> Option<usize> {
    case.add(contender, |p| tools.why_missing(p))
}

/// Adds `name`, one step writing the case's destination `d` (ours when
/// the name starts with "sparsecp"), checked against the case's reference.
fn add_copier(case: &mut Case, tools: &Tools, name: &str, copy: Step) -> Option<usize> {
    let role = if name.starts_with("sparsecp") {
        Role::Ours
    } else {
        Role::Theirs
    };
    let out = copy.args.last().map(PathBuf::from);
    add(case, tools, Contender::new(name, role, vec![copy], out))
}

/// A peer that copies one file to another (see `peers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// `xcp` with its defaults (copy_file_range, holes kept by SEEK_DATA).
    Xcp,
    /// uutils `cp` with this flag (`--sparse=auto`, `--reflink=auto`).
    Uutils(&'static str),
    /// `dd conv=sparse bs=64K`: seeks over all-zero 64 KiB blocks.
    Dd,
    /// `bmaptool copy` with the bmap `bmaptool create` made, untimed.
    Bmaptool,
}

/// Adds each of `peers` copying `src` to `dst` to `case`, paired with
/// `ours`; a peer that cannot do this case's job is listed as skipped,
/// with `why` it is left out.
fn add_peers(
    case: &mut Case,
    t: &Tools,
    ours: Option<usize>,
    (src, dst): (&Path, &Path),
    peers: &[Peer],
    left_out: &[(&str, &str)],
) -> anyhow::Result<()> {
    let out = Some(dst.to_owned());
    for &peer in peers {
        let (name, steps) = match peer {
            Peer::Xcp => (
                "xcp".to_owned(),
                vec![step(&Tools::peer(&t.peers.xcp, "xcp"), &[], &[src, dst])],
            ),
            Peer::Uutils(flag) => (
                format!("uutils cp {flag}"),
                vec![step(
                    &Tools::peer(&t.peers.uutils, "coreutils"),
                    &["cp", flag],
                    &[src, dst],
                )],
            ),
            Peer::Dd => {
                let (i, o) = (
                    format!("if={}", src.display()),
                    format!("of={}", dst.display()),
                );
                let args = [
                    i.as_str(),
                    o.as_str(),
                    "bs=64K",
                    "conv=sparse",
                    "status=none",
                ];
                (
                    "dd conv=sparse".to_owned(),
                    vec![Step::new(Tools::system("dd"), &args)],
                )
            }
            Peer::Bmaptool => {
                let program = Tools::peer(&t.peers.bmaptool, "bmaptool");
                let Some(bmap) = make_bmap(case, &program, src)? else {
                    case.skipped
                        .push(("bmaptool copy".into(), t.why_missing(&program)));
                    continue;
                };
                (
                    "bmaptool copy".to_owned(),
                    vec![step(&program, &["copy", "--bmap"], &[&bmap, src, dst])],
                )
            }
        };
        let theirs = add(
            case,
            t,
            Contender::new(&name, Role::Theirs, steps, out.clone()),
        );
        case.pair(ours, theirs);
    }
    for (name, why) in left_out {
        case.skipped.push(((*name).to_owned(), (*why).to_owned()));
    }
    Ok(())
}

/// `bmaptool create -o SRC.bmap SRC`, untimed, removed with the case;
/// `None` when bmaptool is missing.
fn make_bmap(case: &mut Case, bmaptool: &Path, src: &Path) -> anyhow::Result<Option<PathBuf>> {
    if !bmaptool.is_file() {
        return Ok(None);
    }
    let mut name = src.file_name().unwrap_or_default().to_owned();
    name.push(".bmap");
    let bmap = src.with_file_name(name);
    eprintln!(
        "setting up: bmaptool create -o {} (untimed)",
        bmap.display()
    );
    let status = std::process::Command::new(bmaptool)
        .args(["create", "-o"])
        .arg(&bmap)
        .arg(src)
        .status()
        .with_context(|| format!("cannot run {}", bmaptool.display()))?;
    if !status.success() {
        bail!("bmaptool create {} failed ({status})", src.display());
    }
    case.guards.push(Guard::File(RemoveOnDrop(bmap.clone())));
    Ok(Some(bmap))
}

fn install(lab: &mut Lab) -> anyhow::Result<Case> {
    let (src, facts) = lab.active()?;
    let root = lab.ext4()?;
    let dst = root.join("passive.img");
    let t = &lab.tools;
    let mut case = Case::new(
        "install",
        "installer copy: active.img -> passive.img on ext4".into(),
        format!("active.img, {}", facts.describe()),
        src.clone(),
        root.clone(),
    );
    let out = Some(dst.clone());
    let (s, d) = (src.as_path(), dst.as_path());
    let cp = Tools::system("cp");
    let ours_auto = add_copier(
        &mut case,
        t,
        "sparsecp auto",
        sparsecp_copy(t, "auto", s, d),
    );
    let ours_always = add(
        &mut case,
        t,
        Contender::new(
            "sparsecp always",
            Role::Ours,
            vec![sparsecp_copy(t, "always", s, d)],
            out.clone(),
        ),
    );
    let cp_auto = add(
        &mut case,
        t,
        Contender::new(
            "cp --sparse=auto",
            Role::Theirs,
            vec![step(&cp, &["--sparse=auto"], &[s, d])],
            out.clone(),
        ),
    );
    let cp_always = add(
        &mut case,
        t,
        Contender::new(
            "cp --sparse=always",
            Role::Theirs,
            vec![step(&cp, &["--sparse=always"], &[s, d])],
            out.clone(),
        ),
    );
    let rsync = add(
        &mut case,
        t,
        Contender::new(
            "rsync --sparse",
            Role::Theirs,
            vec![step(&Tools::system("rsync"), &["--sparse"], &[s, d])],
            out.clone(),
        ),
    );
    let qemu = add(
        &mut case,
        t,
        Contender::new(
            "qemu-img convert",
            Role::Theirs,
            vec![step(
                &Tools::system("qemu-img"),
                &["convert", "-f", "raw", "-O", "raw"],
                &[s, d],
            )],
            out.clone(),
        ),
    );
    let shipped = add(
        &mut case,
        t,
        Contender::new(
            "io.Copy + dig-holes",
            Role::Theirs,
            vec![
                step(&t.go(), &[], &[s, d]),
                step(&Tools::system("fallocate"), &["--dig-holes"], &[d]),
            ],
            out.clone(),
        ),
    );
    let go = add(
        &mut case,
        t,
        Contender::new(
            "Go io.Copy",
            Role::Theirs,
            vec![step(&t.go(), &[], &[s, d])],
            out.clone(),
        ),
    );
    add_peers(
        &mut case,
        t,
        ours_auto,
        (s, d),
        &[
            Peer::Xcp,
            Peer::Uutils("--sparse=auto"),
            Peer::Dd,
            Peer::Bmaptool,
        ],
        &[],
    )?;
    let limit_copy = add(
        &mut case,
        t,
        Contender::new(
            "limit: read+write once",
            Role::Limit,
            vec![step(&t.bench, &["limit-copy"], &[s, d])],
            out.clone(),
        ),
    );
    let limit_read = add(
        &mut case,
        t,
        Contender::new(
            "limit: read once",
            Role::Limit,
            vec![step(&t.bench, &["limit-read"], &[s])],
            None,
        ),
    );
    let mut write_only = Contender::new(
        "limit: write once",
        Role::Limit,
        vec![step(&t.bench, &["limit-write"], &[s, d])],
        out.clone(),
    );
    write_only.same_content = false;
    let limit_write = add(&mut case, t, write_only);
    for theirs in [
        cp_auto,
        rsync,
        qemu,
        shipped,
        go,
        limit_copy,
        limit_read,
        limit_write,
    ] {
        case.pair(ours_auto, theirs);
    }
    case.pair(ours_always, cp_always);
    Ok(case)
}

fn dig(lab: &mut Lab) -> anyhow::Result<Case> {
    let (active, _) = lab.active()?;
    let root = lab.ext4()?;
    let master = root.join("passive-dense.img");
    eprintln!("setting up: dense passive-dense.img (every byte of active.img written)");
    let guard = RemoveOnDrop(master.clone());
    fixtures::dense_copy(&active, &master)?;
    let facts = FileFacts::of(&master)?;
    let file = root.join("passive.img");
    let t = &lab.tools;
    let mut case = Case::new(
        "dig",
        "dig holes in place in a dense passive.img on ext4 (a fresh dense copy per run, untimed)"
            .into(),
        format!("passive.img as io.Copy leaves it, {}", facts.describe()),
        master.clone(),
        root,
    );
    case.guards.push(Guard::File(guard));
    // The input is the fresh dense copy, cached as it is written.
    case.warm_inputs.clear();
    let f = file.as_path();
    let mut ours = Contender::new(
        "sparsecp dig",
        Role::Ours,
        vec![step(&t.sparsecp, &["dig", "--json"], &[f])],
        Some(file.clone()),
    );
    ours.fresh_from = Some(master.clone());
    let mut theirs = Contender::new(
        "fallocate --dig-holes",
        Role::Theirs,
        vec![step(&Tools::system("fallocate"), &["--dig-holes"], &[f])],
        Some(file.clone()),
    );
    theirs.fresh_from = Some(master.clone());
    // The floor under a dig: every byte read once on both cores, as its two
    // readers do, with no zero scan and no punch.
    let mut limit = Contender::new(
        "limit: read once, two threads",
        Role::Limit,
        vec![step(&t.bench, &["limit-read", "--threads", "2"], &[f])],
        Some(file.clone()),
    );
    limit.fresh_from = Some(master);
    let ours = add(&mut case, t, ours);
    let theirs = add(&mut case, t, theirs);
    let limit = add(&mut case, t, limit);
    case.pair(ours, theirs);
    case.pair(ours, limit);
    Ok(case)
}

fn blockdev(lab: &mut Lab) -> anyhow::Result<Case> {
    let (active, facts) = lab.active()?;
    let root = lab.ext4()?;
    let device = LoopDevice::attach(&active)?;
    let src = device.path().to_owned();
    let dst = root.join("from-device.img");
    let t = &lab.tools;
    let mut case = Case::new(
        "blockdev",
        format!(
            "loop block device over active.img -> file on ext4 ({} of zero detection)",
            copy_engine::human_bytes(facts.size)
        ),
        format!("{} over active.img, {}", src.display(), facts.describe()),
        src.clone(),
        root,
    );
    case.guards.push(Guard::Loop(device));
    let (s, d, out) = (src.as_path(), dst.as_path(), Some(dst.clone()));
    let ours = add_copier(
        &mut case,
        t,
        "sparsecp auto",
        sparsecp_copy(t, "auto", s, d),
    );
    let cp = add_copier(
        &mut case,
        t,
        "cp --sparse=always",
        step(&Tools::system("cp"), &["--sparse=always"], &[s, d]),
    );
    let qemu = add(
        &mut case,
        t,
        Contender::new(
            "qemu-img convert",
            Role::Theirs,
            vec![step(
                &Tools::system("qemu-img"),
                &["convert", "-f", "raw", "-O", "raw"],
                &[s, d],
            )],
            out,
        ),
    );
    case.pair(ours, cp);
    case.pair(ours, qemu);
    Ok(case)
}

/// active.img onto a loop device over a file on the ext4 scratch
/// filesystem, 64 MiB larger than the image, refilled with random bytes
/// before every run (untimed, see `crate::device`). Only synced modes: a
/// copy onto a device is done when the data is on it (sparsecp and dd
/// fsync, bmaptool too, qemu-img does not), so every run ends with a
/// flush of the device, timed.
fn blockdev_dest(lab: &mut Lab) -> anyhow::Result<Case> {
    let (active, facts) = lab.active()?;
    let root = lab.ext4()?;
    let backing = root.join("device.img");
    let size = facts.size.next_multiple_of(4 * testbed::MIB) + 64 * testbed::MIB;
    eprintln!(
        "setting up: a loop device of {} for blockdev-dest",
        copy_engine::human_bytes(size)
    );
    let backing_guard = RemoveOnDrop(backing.clone());
    std::fs::File::create(&backing)
        .and_then(|f| f.set_len(size))
        .with_context(|| format!("cannot create {}", backing.display()))?;
    let device = LoopDevice::attach(&backing)?;
    let dev = device.path().to_owned();
    let t = &lab.tools;
    let mut case = Case::new(
        "blockdev-dest",
        format!(
            "active.img -> loop block device of {} full of random bytes",
            copy_engine::human_bytes(size)
        ),
        format!("active.img, {}", facts.describe()),
        active.clone(),
        root,
    );
    // Guards drop in order: the device before its backing file.
    case.guards.push(Guard::Loop(device));
    case.guards.push(Guard::File(backing_guard));
    case.device = Some(dev.clone());
    case.modes = vec![Mode::WarmSync, Mode::ColdSync];
    let (s, d, out) = (active.as_path(), dev.as_path(), Some(dev.clone()));
    let ours = add(
        &mut case,
        t,
        Contender::new(
            "sparsecp",
            Role::Ours,
            vec![step(&t.sparsecp, &["copy", "--json"], &[s, d])],
            out.clone(),
        ),
    );
    add_peers(&mut case, t, ours, (s, d), &[Peer::Bmaptool], &[])?;
    let (src_arg, dst_arg) = (format!("if={}", s.display()), format!("of={}", d.display()));
    let dd = add(
        &mut case,
        t,
        Contender::new(
            "dd conv=sparse",
            Role::Theirs,
            vec![step(
                &Tools::system("dd"),
                &[
                    &src_arg,
                    &dst_arg,
                    "conv=sparse,fsync",
                    "bs=64K",
                    "status=none",
                ],
                &[],
            )],
            out.clone(),
        ),
    );
    let qemu = add(
        &mut case,
        t,
        Contender::new(
            "qemu-img convert -n",
            Role::Theirs,
            vec![step(
                &Tools::system("qemu-img"),
                &["convert", "-n", "-O", "raw"],
                &[s, d],
            )],
            out,
        ),
    );
    for theirs in [dd, qemu] {
        case.pair(ours, theirs);
    }
    Ok(case)
}

/// sparsecp auto against `cp --sparse=auto` and `peers` (less those
/// `left_out`, with why) on a file built by `build`.
fn ours_vs_cp(
    lab: &mut Lab,
    (name, title): (&'static str, &str),
    file: &str,
    build: fn(&Path) -> anyhow::Result<FileFacts>,
    peers: &[Peer],
    left_out: &[(&str, &str)],
) -> anyhow::Result<Case> {
    let root = lab.ext4()?;
    let src = root.join(file);
    let guard = RemoveOnDrop(src.clone());
    let facts = build(&src)?;
    let dst = root.join(format!("copy-of-{file}"));
    let t = &lab.tools;
    let mut case = Case::new(
        name,
        title.into(),
        format!("{file}, {}", facts.describe()),
        src.clone(),
        root,
    );
    case.guards.push(Guard::File(guard));
    let (s, d) = (src.as_path(), dst.as_path());
    let ours = add_copier(
        &mut case,
        t,
        "sparsecp auto",
        sparsecp_copy(t, "auto", s, d),
    );
    let cp = add_copier(
        &mut case,
        t,
        "cp --sparse=auto",
        step(&Tools::system("cp"), &["--sparse=auto"], &[s, d]),
    );
    case.pair(ours, cp);
    add_peers(&mut case, t, ours, (s, d), peers, left_out)?;
    Ok(case)
}

fn sparse_1tib(lab: &mut Lab) -> anyhow::Result<Case> {
    ours_vs_cp(
        lab,
        (
            "sparse-1tib",
            "1 TiB file with three 64 KiB extents, copied on ext4",
        ),
        "huge.img",
        fixtures::build_huge_sparse,
        &[Peer::Xcp, Peer::Uutils("--sparse=auto"), Peer::Bmaptool],
        &[(
            "dd conv=sparse",
            "reads the whole 1 TiB, holes included: minutes per run",
        )],
    )
}

fn extents_20k(lab: &mut Lab) -> anyhow::Result<Case> {
    ours_vs_cp(
        lab,
        (
            "extents-20k",
            "20,000 data extents of 4 KiB between 4 KiB holes, copied on ext4",
        ),
        "fragmented.img",
        fixtures::build_fragmented,
        &[
            Peer::Xcp,
            Peer::Uutils("--sparse=auto"),
            Peer::Dd,
            Peer::Bmaptool,
        ],
        &[],
    )
}

/// A fragmented VM image of `count` extents (a tenth with `--quick`) on an
/// ext4 of its own: `sparsecp copy` against `cp --sparse=auto`, and a
/// second contender of ours that copies, verifies, digs and maps, so that
/// every command's peak RSS is measured on it. A million extents take
/// minutes per cp run, so those cases run warm only.
fn extents(
    lab: &mut Lab,
    name: &'static str,
    count: u64,
    pattern: ExtentPattern,
) -> anyhow::Result<Case> {
    let count = ((count as f64 * lab.scale) as u64).max(1);
    // Data per extent: 4 KiB, or 6 KiB on average for the random pattern;
    // room for the source and one copy.
    let data = count
        * if pattern == ExtentPattern::Stride {
            4
        } else {
            6
        }
        * 1024;
    let size = (2 * data + 2 * GIB).next_multiple_of(GIB);
    eprintln!(
        "setting up: ext4 of {} on a loop device, {count} extents",
        copy_engine::human_bytes(size)
    );
    let fs = ScratchFs::with_options(FsKind::Ext4, size, Some("noinit_itable"))
        .context("cannot make the ext4 filesystem")?;
    let root = fs.path().to_owned();
    let src = root.join("fragmented.img");
    let facts = fixtures::build_extents(&src, count, pattern)?;
    let dst = root.join("copy-of-fragmented.img");
    let map = root.join("map.svg");
    let t = &lab.tools;
    let mut case = Case::new(
        name,
        format!(
            "{count} data extents of {}, copied on ext4",
            pattern.describe()
        ),
        format!("fragmented.img, {}", facts.describe()),
        src.clone(),
        root,
    );
    case.guards.push(Guard::Fs(fs));
    if count >= 1_000_000 {
        case.modes = vec![Mode::Warm];
    }
    let (s, d, out) = (src.as_path(), dst.as_path(), Some(dst.clone()));
    let ours = add_copier(
        &mut case,
        t,
        "sparsecp auto",
        sparsecp_copy(t, "auto", s, d),
    );
    let cp = add_copier(
        &mut case,
        t,
        "cp --sparse=auto",
        step(&Tools::system("cp"), &["--sparse=auto"], &[s, d]),
    );
    case.pair(ours, cp);
    let mut all = Contender::new(
        "sparsecp copy+verify+dig+inspect",
        Role::Ours,
        vec![
            sparsecp_copy(t, "auto", s, d),
            step(&t.sparsecp, &["verify"], &[s, d]),
            step(&t.sparsecp, &["dig"], &[d]),
            step(&t.sparsecp, &["inspect", "--map"], &[map.as_path(), s]),
        ],
        out,
    );
    all.reports_json = false;
    add(&mut case, t, all);
    Ok(case)
}

fn reflink(lab: &mut Lab, kind: FsKind, name: &'static str) -> anyhow::Result<Case> {
    if let Some(reason) = testbed::fs_skip_reason(kind) {
        bail!("cannot run on {kind}: {reason}");
    }
    let (active, _) = lab.active()?;
    let size = (3 * lab.active_size())
        .max(kind.min_size())
        .next_multiple_of(GIB / 4);
    eprintln!(
        "setting up: {kind} of {} on a loop device",
        copy_engine::human_bytes(size)
    );
    let fs =
        ScratchFs::new(kind, size).with_context(|| format!("cannot make the {kind} filesystem"))?;
    let root = fs.path().to_owned();
    let src = root.join("active.img");
    copy_engine::copy(&active, &src, &CopyOptions::auto(), &NoProgress)
        .with_context(|| format!("cannot put active.img on {kind}"))?;
    testbed::syncfs(&root)?;
    let facts = FileFacts::of(&src)?;
    let dst = root.join("passive.img");
    let t = &lab.tools;
    let mut case = Case::new(
        name,
        format!("reflink copy of active.img on {kind}"),
        format!("active.img on {kind}, {}", facts.describe()),
        src.clone(),
        root,
    );
    let (s, d) = (src.as_path(), dst.as_path());
    let ours = add_copier(
        &mut case,
        t,
        "sparsecp auto",
        sparsecp_copy(t, "auto", s, d),
    );
    let cp = add_copier(
        &mut case,
        t,
        "cp --reflink=auto",
        step(&Tools::system("cp"), &["--reflink=auto"], &[s, d]),
    );
    case.pair(ours, cp);
    add_peers(
        &mut case,
        t,
        ours,
        (s, d),
        &[Peer::Xcp, Peer::Uutils("--reflink=auto")],
        &[
            ("dd conv=sparse", "cannot share extents: copies every byte"),
            (
                "bmaptool copy",
                "cannot share extents: copies every mapped byte",
            ),
        ],
    )?;
    case.guards.push(Guard::Fs(fs));
    Ok(case)
}
