//! The copy's decisions as values: `plan::plan` for a table of source
//! layouts x options x destination filesystem facts, snapshotted with
//! insta. A pure function: no root, no loop device, no file.

use std::fmt::Write;
use std::path::PathBuf;

use copy_engine::layout::Counted;
use copy_engine::plan::{
    self, CloneFallback, Destination, DeviceFacts, FsFacts, Refusal, Strategy,
};
use copy_engine::{CopyOptions, Extent, HoleMode, Layout, ReflinkMode, SourceKind, SparseMode};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

fn extent(offset: u64, length: u64) -> Extent {
    Extent {
        offset,
        length,
        unwritten: false,
        shared: false,
    }
}

fn layout(kind: SourceKind, size: u64, allocated: u64, extents: Vec<Extent>) -> Layout {
    Layout {
        path: PathBuf::from("src.img"),
        size,
        allocated,
        block_size: 4096,
        kind,
        extents,
        counted: None,
        walked: true,
    }
}

/// The source layouts of the table, by name.
fn layouts() -> Vec<(&'static str, Layout)> {
    // Like the install's active.img: 3 GiB, about 1.7 GiB of data in
    // extents with small and large gaps, one ending off a block boundary.
    let install = vec![
        extent(0, 512 * MIB),
        extent(512 * MIB + 16 * KIB, 256 * MIB),
        extent(GIB, 900 * MIB),
        extent(3 * GIB - 100 * KIB, 100 * KIB - 512),
    ];
    let allocated: u64 = install.iter().map(|e| e.length.div_ceil(4096) * 4096).sum();
    vec![
        (
            "sparse image (3 GiB, four extents)",
            layout(SourceKind::Regular, 3 * GIB - 512, allocated, install),
        ),
        (
            "dense file (64 MiB, fully allocated)",
            layout(
                SourceKind::Regular,
                64 * MIB,
                64 * MIB,
                vec![extent(0, 64 * MIB)],
            ),
        ),
        (
            "all holes (1 GiB, nothing allocated)",
            layout(SourceKind::Regular, GIB, 0, Vec::new()),
        ),
        (
            "filesystem without SEEK_HOLE (10 MiB)",
            layout(
                SourceKind::RegularNoHoles,
                10 * MIB,
                10 * MIB,
                vec![extent(0, 10 * MIB)],
            ),
        ),
        (
            "block device (256 MiB)",
            layout(
                SourceKind::BlockDevice,
                256 * MIB,
                0,
                vec![extent(0, 256 * MIB)],
            ),
        ),
        (
            "a million extents of 4 KiB every 8 KiB (counted, not listed)",
            many_extents(8 * KIB),
        ),
        (
            "a million extents of 4 KiB every 128 KiB (counted, not listed)",
            many_extents(128 * KIB),
        ),
    ]
}

/// A fragmented VM image: a million 4 KiB extents, one every `stride`
/// bytes, too many for a layout to list: it keeps the first few and counts
/// them all.
fn many_extents(stride: u64) -> Layout {
    let all = (0..1_000_000).map(|i| extent(i * stride, 4 * KIB));
    let mut l = layout(
        SourceKind::Regular,
        1_000_000 * stride,
        1_000_000 * 4 * KIB,
        all.clone().take(4).collect(),
    );
    l.counted = Some(Counted::of(all));
    l
}

/// The option sets of the table, by name.
fn options() -> Vec<(&'static str, CopyOptions)> {
    let with = |sparse, reflink, no_space_check| CopyOptions {
        sparse,
        reflink,
        no_space_check,
        ..CopyOptions::default()
    };
    vec![
        (
            "--sparse auto",
            with(SparseMode::Auto, ReflinkMode::Auto, false),
        ),
        (
            "--sparse always",
            with(SparseMode::Always, ReflinkMode::Auto, false),
        ),
        (
            "--sparse never --reflink never",
            with(SparseMode::Never, ReflinkMode::Never, false),
        ),
        (
            "--sparse auto --reflink never",
            with(SparseMode::Auto, ReflinkMode::Never, false),
        ),
        (
            "--sparse always --reflink never --no-space-check",
            with(SparseMode::Always, ReflinkMode::Never, true),
        ),
        (
            "--sparse auto --reflink always",
            with(SparseMode::Auto, ReflinkMode::Always, false),
        ),
    ]
}

/// The destinations of the table, by name.
fn destinations() -> Vec<(&'static str, Destination)> {
    let fs = |free_bytes, block_size, copy_file_range_pays| {
        Destination::NewFile(FsFacts {
            free_bytes,
            block_size,
            copy_file_range_pays,
        })
    };
    vec![
        ("new file on ext4 (4 KiB blocks)", fs(20 * GIB, 4096, false)),
        ("new file on xfs (4 KiB blocks)", fs(20 * GIB, 4096, true)),
        (
            "new file on btrfs (16 KiB blocks)",
            fs(20 * GIB, 16 * KIB, true),
        ),
        ("pipe or device, written in place", Destination::InPlace),
        (
            "existing file on ext4, overwritten in place (--in-place)",
            Destination::Overwrite(FsFacts {
                free_bytes: 20 * GIB,
                block_size: 4096,
                copy_file_range_pays: false,
            }),
        ),
    ]
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Every plan for one layout, as a reviewer reads it.
fn plans_for(layout: &Layout) -> String {
    let mut out = String::new();
    for (opts_name, opts) in options() {
        writeln!(out, "## {opts_name}").unwrap();
        if let Err(refusal) = plan::check_options(layout.kind, &opts) {
            writeln!(out, "  refused: {refusal:?}\n").unwrap();
            continue;
        }
        for (dest_name, dest) in destinations() {
            let plan = plan::plan(layout, &dest, &opts);
            writeln!(out, "  {dest_name}:\n{}", indent(&plan.to_string())).unwrap();
        }
    }
    out
}

#[test]
fn plans_for_every_layout_option_and_filesystem() {
    for (i, (name, layout)) in layouts().into_iter().enumerate() {
        let text = format!("# {name}\n\n{}", plans_for(&layout));
        insta::assert_snapshot!(format!("plans_{i}"), text);
    }
}

#[test]
fn stream_plans_read_front_to_back_through_the_ring() {
    let mut out = String::new();
    for (opts_name, opts) in options() {
        writeln!(out, "## {opts_name}").unwrap();
        if let Err(refusal) = plan::check_options(SourceKind::Stream, &opts) {
            writeln!(out, "  refused: {refusal:?}\n").unwrap();
            continue;
        }
        for (dest_name, dest) in destinations() {
            let plan = plan::plan_stream(&dest, &opts);
            writeln!(out, "  {dest_name}:\n{}", indent(&plan.to_string())).unwrap();
        }
    }
    insta::assert_snapshot!("stream_plans", out);
}

/// Onto a block device (issue 16): data at its offsets, holes filled by
/// the method `--holes` and `--sparse never` choose, with its fallback;
/// the device must hold the image (space needed).
#[test]
fn block_device_plans_write_data_then_fill_holes() {
    let devices = [
        (
            "loop device with write-zeroes (4 GiB)",
            DeviceFacts {
                size: 4 * GIB,
                logical_block: 512,
                write_zeroes_max: 4 * GIB - 512,
            },
        ),
        (
            "disk without write-zeroes (4 KiB blocks, 8 GiB)",
            DeviceFacts {
                size: 8 * GIB,
                logical_block: 4096,
                write_zeroes_max: 0,
            },
        ),
    ];
    let options = [
        ("--holes zero", CopyOptions::default()),
        (
            "--holes skip",
            CopyOptions {
                holes: HoleMode::Skip,
                ..CopyOptions::default()
            },
        ),
        ("--sparse never", CopyOptions::dense()),
    ];
    let mut out = String::new();
    for (name, layout) in layouts() {
        writeln!(out, "# {name}").unwrap();
        for (opts_name, opts) in &options {
            for (dev_name, facts) in devices {
                let plan = plan::plan(&layout, &Destination::BlockDevice(facts), opts);
                writeln!(
                    out,
                    "  {opts_name}, {dev_name}:\n{}",
                    indent(&plan.to_string())
                )
                .unwrap();
            }
        }
    }
    insta::assert_snapshot!("device_plans", out);
}

#[test]
fn refusals_come_before_any_plan() {
    let opts = CopyOptions {
        sparse: SparseMode::Never,
        reflink: ReflinkMode::Always,
        ..CopyOptions::default()
    };
    assert_eq!(
        plan::check_options(SourceKind::Regular, &opts),
        Err(Refusal::ReflinkDense)
    );
    let opts = CopyOptions {
        reflink: ReflinkMode::Always,
        ..CopyOptions::default()
    };
    assert_eq!(
        plan::check_options(SourceKind::Stream, &opts),
        Err(Refusal::ReflinkStream)
    );
    assert_eq!(plan::check_options(SourceKind::Regular, &opts), Ok(()));
}

/// A copy into a fresh file tries FICLONE before it walks the source: the
/// plan from the unwalked layout (stat's facts only) clones, leaves the
/// clone's holes (the source's) uncounted and defers its fallback; once
/// FICLONE declines,
/// the fallback planned from the walked layout is the one a walked clone
/// plan carries.
#[test]
fn a_fresh_file_is_cloned_before_the_source_is_walked() {
    let (_, walked) = layouts().swap_remove(0);
    let unwalked = Layout {
        extents: Vec::new(),
        walked: false,
        ..walked.clone()
    };
    let mut out = String::new();
    for (opts_name, opts) in options() {
        for (dest_name, dest) in destinations() {
            if !plan::clones_before_walking(SourceKind::Regular, &dest, &opts) {
                continue;
            }
            let first = plan::plan(&unwalked, &dest, &opts);
            writeln!(
                out,
                "## {opts_name}, {dest_name}:\n{}",
                indent(&first.to_string())
            )
            .unwrap();
            let Strategy::Clone { fallback, .. } = &first.strategy else {
                panic!("{opts_name} into {dest_name}: no clone before the walk");
            };
            let after = plan::plan(&walked, &dest, &opts);
            match (fallback, &after.strategy) {
                (CloneFallback::WalkThenPlan, Strategy::Clone { fallback, .. }) => {
                    let CloneFallback::Planned(planned) = fallback else {
                        panic!("{opts_name}: a walked clone plan without its fallback");
                    };
                    assert_eq!(
                        **planned,
                        plan::after_declined_clone(&walked, &dest, &opts),
                        "{opts_name} into {dest_name}"
                    );
                }
                (CloneFallback::Fail, _) => assert_eq!(opts.reflink, ReflinkMode::Always),
                other => panic!("{opts_name} into {dest_name}: {other:?}"),
            }
        }
    }
    insta::assert_snapshot!("clone_first_plans", out);
}
